//! True random numbers, health-checked: [`Trng`] runs the start-up and continuous health tests
//! ([`health`]) over a noise [`Source`] and offers `rand_core`'s [`RngCore`] + [`CryptoRng`] on
//! top. Sources: the K230's TRNG, the random number register of the PUFsecurity PUFrt block in
//! the SoC's security unit ([`Pufrt`], below), and the BCM2835's RNG of QEMU's raspi3b
//! ([`bcm2835`]).
//!
//! PUFrt facts, from the vendor's own code:
//! - the security unit is at 0x9121_0000 and its PUFrt block at offset 0x3000 (canmv-k230/rtsmart
//!   `kernel/bsp/maix3/board/board.h` `SECURITY_BASE_ADDR`, `drivers/interdrv/cipher/puf_fw/
//!   drv_pufs.c` `RT_ADDR_OFFSET`; canmv-k230/u-boot `include/kendryte/k230_platform.h`
//!   `PUFIOT_ADDR_START`, `RT_ADDR_OFFSET`); the device tree node is `trng@91213000`,
//!   `compatible = "canaan,k230-rng"`, `reg = <0x0 0x91213000 0x0 0x2AC>` (kendryte/k230_sdk
//!   `src/little/linux/arch/riscv/boot/dts/kendryte/k230.dtsi`);
//! - a random 32-bit word is read from the block's `rn` register at offset 0x2a0 (Canaan's Linux
//!   hwrng driver, kendryte/k230_sdk `src/little/linux/drivers/char/hw_random/k230-rng.c`,
//!   `PUF_REG_TRNG_OFFSET`; `struct pufs_rt_regs` in rtsmart `puf_fw/pufs_rt/pufs_rt_regs.h`:
//!   64 `pif` words, 64 padding, 16 `ptr`, 16 `ptc`, 8 words, then `rn`). Neither the Linux
//!   driver nor RT-Smart's `hwrng_read` / `_pufs_rand` polls a status bit first; `rn_status`
//!   (0x2a4) and `healthcfg` (0x2a8) exist but no vendor code reads them, so this driver does not
//!   rely on them and runs its own tests instead;
//! - bit 1 of the block's `cfg` register (0x2c8) gates the generator's clock (rtsmart
//!   `pufs_rt.c` `rt_check_rngclk_enable`, `rt_write_rngclk`); no vendor boot path writes it, so
//!   it is taken to be on after reset, and set here if it is not.
//!
//! 0x9121_3300 (which Canaan's Linux r8152 patch reads to make a MAC, in a variable it calls
//! `trng_addr`) is not the generator: it is `puf[0]`, the first word of the chip's unique ID
//! (offset 0x300 in the same struct; the patch is titled "use chip ID as MAC addr"). It reads
//! the same value every time and would fail the health tests.
//!
//! Not verified on hardware: nothing here has run on a K230 yet.

pub mod bcm2835;
pub mod health;

use core::num::NonZeroU32;

use rand_core::{CryptoRng, RngCore};

use crate::reg::RegisterBlock;
pub use health::HealthError;
use health::{Health, STARTUP_BYTES};

/// Physical base of the PUFrt block (`trng@91213000`).
pub const BASE: usize = 0x9121_3000;
/// Bytes of the register window this driver uses (through `cfg`).
pub const LEN: usize = 0x2cc;
/// The random number register.
pub const RN: usize = 0x2a0;
/// The block's configuration register.
pub const CFG: usize = 0x2c8;
/// `cfg` bit: the random number generator's clock runs.
pub const CFG_RNG_CLOCK: u32 = 1 << 1;

/// A noise source: raw 32-bit words, before any health test.
pub trait Source {
    /// The next raw word; `None` when the source has none to give (within its own bound on
    /// waiting).
    fn raw_word(&mut self) -> Option<u32>;
}

/// The K230's PUFrt random number register as a [`Source`].
#[derive(Debug)]
pub struct Pufrt<R: RegisterBlock> {
    regs: R,
}

impl<R: RegisterBlock> Pufrt<R> {
    /// The block at `regs`, its generator's clock started if it was off.
    pub fn new(regs: R) -> Self {
        if regs.read32(CFG) & CFG_RNG_CLOCK == 0 {
            log::info!("trng: generator clock was off; starting it");
            regs.modify32(CFG, 0, CFG_RNG_CLOCK);
        }
        Self { regs }
    }
}

impl<R: RegisterBlock> Source for Pufrt<R> {
    fn raw_word(&mut self) -> Option<u32> {
        // No status to wait for (module docs): every read is a word.
        Some(self.regs.read32(RN))
    }
}

/// A noise source, health-checked.
#[derive(Debug)]
pub struct Trng<S: Source> {
    source: S,
    health: Health,
    failed: Option<HealthError>,
}

impl<S: Source> Trng<S> {
    /// Runs the start-up test over `source`: the first [`STARTUP_BYTES`] bytes of output through
    /// both health tests, discarded. A stuck, repeating or silent output is an error, and no
    /// `Trng` is made.
    pub fn new(source: S) -> Result<Self, HealthError> {
        let mut trng = Self {
            source,
            health: Health::new(),
            failed: None,
        };
        for _ in 0..STARTUP_BYTES / 4 {
            if let Err(e) = trng.word() {
                log::error!("trng: start-up health test failed: {e:?}");
                return Err(e);
            }
        }
        Ok(trng)
    }

    /// The next health-checked word. After a failure every call fails: the output is no longer
    /// trusted until the generator is set up again with [`Trng::new`].
    pub fn word(&mut self) -> Result<u32, HealthError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let checked = self
            .source
            .raw_word()
            .ok_or(HealthError::Silent)
            .and_then(|word| self.health.check_word(word).map(|()| word));
        checked.inspect_err(|&e| {
            log::error!("trng: health test failed: {e:?}");
            self.failed = Some(e);
        })
    }

    /// Fills `dest` with health-checked output.
    pub fn fill(&mut self, dest: &mut [u8]) -> Result<(), HealthError> {
        for chunk in dest.chunks_mut(4) {
            let word = self.word()?.to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
        Ok(())
    }
}

/// `rand_core` error code of a failed repetition count test (in the range it reserves for
/// custom codes).
pub const REPETITION_CODE: NonZeroU32 = custom_code(1);
/// `rand_core` error code of a failed adaptive proportion test.
pub const PROPORTION_CODE: NonZeroU32 = custom_code(2);
/// `rand_core` error code of a source that gave no output.
pub const SILENT_CODE: NonZeroU32 = custom_code(3);

/// Custom `rand_core` error code `n`.
const fn custom_code(n: u32) -> NonZeroU32 {
    match NonZeroU32::new(rand_core::Error::CUSTOM_START + n) {
        Some(code) => code,
        None => panic!("CUSTOM_START is not zero"),
    }
}

impl From<HealthError> for rand_core::Error {
    fn from(e: HealthError) -> Self {
        rand_core::Error::from(match e {
            HealthError::Repetition => REPETITION_CODE,
            HealthError::Proportion => PROPORTION_CODE,
            HealthError::Silent => SILENT_CODE,
        })
    }
}

/// `rand_core`'s interface. The infallible methods panic once a health test has failed (as
/// `RngCore` documents for a source that can no longer deliver); use
/// [`RngCore::try_fill_bytes`] to handle the failure instead.
impl<S: Source> RngCore for Trng<S> {
    fn next_u32(&mut self) -> u32 {
        match self.word() {
            Ok(w) => w,
            Err(e) => panic!("TRNG failed its health test: {e:?}"),
        }
    }

    fn next_u64(&mut self) -> u64 {
        rand_core::impls::next_u64_via_u32(self)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        if let Err(e) = self.fill(dest) {
            panic!("TRNG failed its health test: {e:?}");
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill(dest).map_err(rand_core::Error::from)
    }
}

/// The output comes from a physical noise source and is health-checked.
impl<S: Source> CryptoRng for Trng<S> {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reg::MockRegisterBlock;
    use mockall::predicate::eq;

    #[test]
    fn the_rng_clock_is_started_when_off_and_left_alone_when_on() {
        let mut regs = MockRegisterBlock::new();
        regs.expect_read32()
            .with(eq(CFG))
            .times(1)
            .return_const(0x10u32);
        regs.expect_modify32()
            .with(eq(CFG), eq(0), eq(CFG_RNG_CLOCK))
            .times(1)
            .return_const(());
        let mut n = 0u32;
        regs.expect_read32().with(eq(RN)).returning(move |_| {
            n = n.wrapping_add(1).wrapping_mul(0x9e37_79b9).rotate_left(7);
            n
        });
        assert!(Trng::new(Pufrt::new(regs)).is_ok());

        let mut regs = MockRegisterBlock::new();
        regs.expect_read32()
            .with(eq(CFG))
            .times(1)
            .return_const(CFG_RNG_CLOCK);
        regs.expect_modify32().never();
        regs.expect_read32().with(eq(RN)).return_const(0u32);
        assert_eq!(
            Trng::new(Pufrt::new(regs)).err(),
            Some(HealthError::Repetition)
        );
    }

    #[test]
    fn health_errors_map_to_custom_rand_core_codes() {
        let e = rand_core::Error::from(HealthError::Proportion);
        assert_eq!(e.code(), Some(PROPORTION_CODE));
        assert_eq!(PROPORTION_CODE.get(), rand_core::Error::CUSTOM_START + 2);
    }
}
