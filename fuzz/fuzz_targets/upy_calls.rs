//! cargo-fuzz entry point; the body is [`k230_fuzz::upy_calls::run`], which the stable corpus test
//! (`tests/tests/fuzz_corpus.rs`) replays too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| k230_fuzz::upy_calls::run(data));
