//! The TRNG driver against the TRNG model: good output passes the start-up test and serves
//! `rand_core` users; a stuck or cycling output is refused at start-up or, once in use, fails
//! every later read; a stopped clock is started.
#![cfg(feature = "sim")]

use k230_hal::sim::trng::{Output, TrngModel};
use k230_hal::trng::health::STARTUP_BYTES;
use k230_hal::trng::{HealthError, Pufrt, Trng, PROPORTION_CODE, REPETITION_CODE};
use rand::{Rng, RngCore};

#[test]
fn random_output_passes_start_up_and_serves_rand_users() {
    let model = TrngModel::new(Output::Random(1));
    let mut trng = Trng::new(Pufrt::new(model.clone())).expect("healthy");
    // The start-up test read and discarded its 1024 bytes.
    assert_eq!(model.reads(), STARTUP_BYTES / 4);
    let mut bytes = [0u8; 37];
    trng.try_fill_bytes(&mut bytes).unwrap();
    assert!(bytes.iter().any(|&b| b != 0));
    let roll: u8 = trng.gen_range(1..=6);
    assert!((1..=6).contains(&roll));
    let a = trng.next_u64();
    assert_ne!(a, trng.next_u64());
    assert!(model.violations().is_empty(), "{:?}", model.violations());
}

#[test]
fn a_stuck_output_is_refused_at_start_up() {
    for (word, expected) in [
        (0, HealthError::Repetition),
        (0xffff_ffff, HealthError::Repetition),
        // No byte repeats in a row, but the word does.
        (0xdead_beef, HealthError::Proportion),
    ] {
        let model = TrngModel::new(Output::Stuck(word));
        assert_eq!(
            Trng::new(Pufrt::new(model.clone())).err(),
            Some(expected),
            "{word:#x}"
        );
        assert!(model.reads() <= STARTUP_BYTES / 4);
    }
}

#[test]
fn a_short_cycle_is_refused_at_start_up() {
    let model = TrngModel::new(Output::Cycle(vec![0x0123_4567, 0x89ab_cdef, 0x1357_9bdf]));
    assert_eq!(
        Trng::new(Pufrt::new(model)).err(),
        Some(HealthError::Proportion)
    );
}

#[test]
fn a_source_stuck_in_use_fails_every_later_read() {
    let model = TrngModel::new(Output::Random(2));
    let mut trng = Trng::new(Pufrt::new(model.clone())).unwrap();
    model.set_output(Output::Stuck(0));
    let mut buf = [0u8; 64];
    let err = trng.try_fill_bytes(&mut buf).unwrap_err();
    assert_eq!(err.code(), Some(REPETITION_CODE));
    // Even a healthy output afterwards is not trusted again.
    model.set_output(Output::Random(3));
    assert_eq!(trng.word(), Err(HealthError::Repetition));
    assert!(trng.try_fill_bytes(&mut buf).is_err());
    assert_ne!(REPETITION_CODE, PROPORTION_CODE);
}

#[test]
#[should_panic(expected = "TRNG failed its health test")]
fn the_infallible_api_panics_after_a_failure() {
    let model = TrngModel::new(Output::Random(4));
    let mut trng = Trng::new(Pufrt::new(model.clone())).unwrap();
    model.set_output(Output::Stuck(0));
    let _ = trng.next_u32() ^ trng.next_u32();
}

#[test]
fn a_stopped_clock_is_started_before_the_test() {
    let model = TrngModel::clock_off(Output::Random(5));
    assert!(Trng::new(Pufrt::new(model.clone())).is_ok());
    assert!(model.violations().is_empty(), "{:?}", model.violations());
}
