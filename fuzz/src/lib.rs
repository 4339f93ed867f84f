//! Fuzz bodies for the K230 network stack, one module per cargo-fuzz target.
//!
//! Each module's `run(data)` is what its target in `fuzz_targets/` calls; the same functions
//! replay the committed corpora (`corpus/<target>/`) and any crash file added to them in the
//! stable test `tests/corpus.rs`, so a crash once found stays a regression test. A body panics
//! only when the code under test breaks an invariant (or panics itself).
//!
//! Corpus files: the hand-made seeds come from `gen_corpus.py` (real frames, RTL8152 aggregates,
//! descriptors); `found-*` files are inputs earlier fuzz runs found, picked from a merged corpus
//! for the coverage they reach, so that short CI runs start from deep states.

pub mod dwc2_channel;
pub mod netstack_frames;
pub mod rtl8152_rx;
pub mod socket_sequence;
pub mod usb_descriptors;

/// Names of the targets, as directories under `corpus/` and binaries of the fuzz crate.
pub const TARGETS: [&str; 5] = [
    "rtl8152_rx",
    "usb_descriptors",
    "dwc2_channel",
    "netstack_frames",
    "socket_sequence",
];

/// The body of the target called `name`.
pub fn body(name: &str) -> Option<fn(&[u8])> {
    Some(match name {
        "rtl8152_rx" => rtl8152_rx::run,
        "usb_descriptors" => usb_descriptors::run,
        "dwc2_channel" => dwc2_channel::run,
        "netstack_frames" => netstack_frames::run,
        "socket_sequence" => socket_sequence::run,
        _ => return None,
    })
}
