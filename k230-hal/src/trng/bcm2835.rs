//! The BCM2835 random number generator (also in the BCM2837 of QEMU's raspi3b) as a noise
//! [`Source`] for [`super::Trng`].
//!
//! Facts: Linux `drivers/char/hw_random/bcm2835-rng.c`: `RNG_CTRL` at 0x0 (bit 0 `RNG_RBGEN`
//! enables the generator), `RNG_STATUS` at 0x4 (bits 31:24 the words ready to read; the low bits
//! take a warm-up count, `RNG_WARMUP_COUNT` 0x40000, of first words the generator discards),
//! `RNG_DATA` at 0x8; the driver writes the warm-up count, then `RNG_RBGEN`, and reads a word
//! from `RNG_DATA` once `RNG_STATUS` bits 31:24 are not zero. QEMU's model
//! (`hw/misc/bcm2835_rng.c`, a 0x10-byte window) keeps the low 20 bits of a `RNG_STATUS` write,
//! always reports one word ready and returns a word of the host's entropy per `RNG_DATA` read; it
//! sits at `RNG_OFFSET` 0x10_4000 from the peripheral base (`include/hw/arm/raspi_platform.h`).
//!
//! Not verified on hardware: on a BCM2837 the first word comes only after the warm-up, whose
//! duration at the generator's rate no source states; [`POLL_LIMIT`] bounds the wait for each
//! word (QEMU always has one ready), and a warm-up longer than that reads as a silent source.

use super::Source;
use crate::reg::RegisterBlock;

/// Bytes of the register window.
pub const LEN: usize = 0x10;
/// Control register.
pub const CTRL: usize = 0x0;
/// Status register: words ready, warm-up count.
pub const STATUS: usize = 0x4;
/// Data register: one random word per read.
pub const DATA: usize = 0x8;
/// `RNG_CTRL`: the generator runs.
pub const CTRL_RBGEN: u32 = 1;
/// First words the generator discards after it is enabled (Linux's `RNG_WARMUP_COUNT`).
pub const WARMUP_COUNT: u32 = 0x4_0000;
/// Where `RNG_STATUS` keeps the number of words ready.
pub const STATUS_READY_SHIFT: u32 = 24;
/// Status reads a word may wait for before the source counts as silent.
pub const POLL_LIMIT: u32 = 1 << 20;

/// The BCM2835 RNG at `regs`.
#[derive(Debug)]
pub struct Bcm2835Rng<R: RegisterBlock> {
    regs: R,
}

impl<R: RegisterBlock> Bcm2835Rng<R> {
    /// The generator at `regs`, enabled with Linux's warm-up count unless it already runs (then it
    /// is left as it is: its warm-up is over).
    pub fn new(regs: R) -> Self {
        if regs.read32(CTRL) & CTRL_RBGEN == 0 {
            regs.write32(STATUS, WARMUP_COUNT);
            regs.write32(CTRL, CTRL_RBGEN);
        }
        Self { regs }
    }
}

impl<R: RegisterBlock> Source for Bcm2835Rng<R> {
    fn raw_word(&mut self) -> Option<u32> {
        for _ in 0..POLL_LIMIT {
            if self.regs.read32(STATUS) >> STATUS_READY_SHIFT != 0 {
                return Some(self.regs.read32(DATA));
            }
            core::hint::spin_loop();
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reg::MockRegisterBlock;
    use crate::trng::{HealthError, Trng};
    use mockall::predicate::eq;
    use mockall::Sequence;

    /// Words from a fixed SplitMix64, as a good generator's would look.
    fn random_words() -> impl FnMut(usize) -> u32 {
        let mut state = 0x5eed_u64;
        move |_| {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            (z ^ (z >> 31)) as u32
        }
    }

    #[test]
    fn a_stopped_generator_gets_the_warm_up_count_then_the_enable() {
        let mut regs = MockRegisterBlock::new();
        let mut order = Sequence::new();
        regs.expect_read32()
            .with(eq(CTRL))
            .times(1)
            .in_sequence(&mut order)
            .return_const(0u32);
        regs.expect_write32()
            .with(eq(STATUS), eq(WARMUP_COUNT))
            .times(1)
            .in_sequence(&mut order)
            .return_const(());
        regs.expect_write32()
            .with(eq(CTRL), eq(CTRL_RBGEN))
            .times(1)
            .in_sequence(&mut order)
            .return_const(());
        Bcm2835Rng::new(regs);

        let mut running = MockRegisterBlock::new();
        running.expect_read32().with(eq(CTRL)).return_const(1u32);
        running.expect_write32().never();
        Bcm2835Rng::new(running);
    }

    #[test]
    fn data_is_read_only_once_the_status_says_a_word_is_ready() {
        let mut regs = MockRegisterBlock::new();
        regs.expect_read32().with(eq(CTRL)).return_const(1u32);
        let mut polls = 0;
        regs.expect_read32().with(eq(STATUS)).returning(move |_| {
            polls += 1;
            // QEMU's model: warm-up bits kept, one word ready; here only from the third poll.
            if polls < 3 {
                WARMUP_COUNT
            } else {
                (1 << STATUS_READY_SHIFT) | WARMUP_COUNT
            }
        });
        regs.expect_read32()
            .with(eq(DATA))
            .times(1)
            .return_const(0x1234_5678u32);
        assert_eq!(Bcm2835Rng::new(regs).raw_word(), Some(0x1234_5678));
    }

    #[test]
    fn a_generator_that_never_has_a_word_is_silent_after_the_poll_limit() {
        let mut regs = MockRegisterBlock::new();
        regs.expect_read32().with(eq(CTRL)).return_const(1u32);
        regs.expect_read32()
            .with(eq(STATUS))
            .times(POLL_LIMIT as usize)
            .return_const(0u32);
        regs.expect_read32().with(eq(DATA)).never();
        assert_eq!(
            Trng::new(Bcm2835Rng::new(regs)).err(),
            Some(HealthError::Silent)
        );
    }

    #[test]
    fn its_output_goes_through_the_health_tests() {
        let ready = 1u32 << STATUS_READY_SHIFT;
        let mut good = MockRegisterBlock::new();
        good.expect_read32().with(eq(CTRL)).return_const(1u32);
        good.expect_read32().with(eq(STATUS)).return_const(ready);
        good.expect_read32()
            .with(eq(DATA))
            .returning(random_words());
        let mut trng = Trng::new(Bcm2835Rng::new(good)).expect("healthy");
        let mut bytes = [0u8; 32];
        trng.fill(&mut bytes).unwrap();
        assert!(bytes.iter().any(|&b| b != 0));

        let mut stuck = MockRegisterBlock::new();
        stuck.expect_read32().with(eq(CTRL)).return_const(1u32);
        stuck.expect_read32().with(eq(STATUS)).return_const(ready);
        stuck.expect_read32().with(eq(DATA)).return_const(0u32);
        assert_eq!(
            Trng::new(Bcm2835Rng::new(stuck)).err(),
            Some(HealthError::Repetition)
        );
    }
}
