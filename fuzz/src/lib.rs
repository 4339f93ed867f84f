//! Fuzz bodies for the K230 network stack, one module per cargo-fuzz target.
//!
//! Each module's `run(data)` is what its target in `fuzz_targets/` calls; the same functions
//! replay the committed corpora (`corpus/<target>/`) and any crash file added to them in the
//! workspace's stable test `tests/tests/fuzz_corpus.rs`, so a crash once found stays a
//! regression test. A body panics
//! only when the code under test breaks an invariant (or panics itself).
//!
//! Corpus files: the hand-made seeds come from `gen_corpus.py` (real frames, RTL8152 aggregates,
//! descriptors); `found-*` files are inputs earlier fuzz runs found, picked from a merged corpus
//! for the coverage they reach, so that short CI runs start from deep states.

pub mod dwc2_channel;
pub mod netstack_frames;
pub mod rtl8152_rx;
pub mod socket_sequence;
pub mod upy_calls;
pub mod usb_descriptors;
