//! cargo-fuzz entry point; the body is [`k230_fuzz::dwc2_channel::run`], which the stable corpus test
//! (`tests/tests/fuzz_corpus.rs`) replays too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| k230_fuzz::dwc2_channel::run(data));
