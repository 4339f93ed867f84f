//! The stack's secret and `os.urandom`'s bytes on a board: health-checked output of its noise
//! source ([`Entropy`]), the start-up test run on every use (`k230_hal::trng::Trng::new`).
//! A board whose source fails the test must not start its network (a guessable secret makes TCP
//! sequence numbers, ports and DNS ids guessable): the firmware stops its bring-up, the
//! MicroPython module returns `K230NET_E_ENTROPY`.

use k230_hal::reg::Mmio;
use k230_hal::trng::bcm2835::{self, Bcm2835Rng};
use k230_hal::trng::{self, HealthError, Pufrt, Trng};
use netstack::Seed;

use crate::description::Entropy;

/// Fills `dest` from `source`, after its start-up health test.
///
/// # Safety
/// The source's registers (the PUFrt block at `k230_hal::trng::BASE`, or the BCM2835 RNG at its
/// base) must be mapped at their physical address and not be used by anything else meanwhile.
pub unsafe fn fill(source: Entropy, dest: &mut [u8]) -> Result<(), HealthError> {
    match source {
        Entropy::K230Trng => {
            // SAFETY: the PUFrt block's registers, per the caller used only here.
            let regs = unsafe { Mmio::new(trng::BASE, trng::LEN) };
            Trng::new(Pufrt::new(regs))?.fill(dest)
        }
        Entropy::Bcm2835Rng { base } => {
            // SAFETY: the RNG's registers, per the caller used only here.
            let regs = unsafe { Mmio::new(base, bcm2835::LEN) };
            Trng::new(Bcm2835Rng::new(regs))?.fill(dest)
        }
    }
}

/// The stack's 256-bit secret from `source` ([`fill`]).
///
/// # Safety
/// As for [`fill`].
pub unsafe fn seed(source: Entropy) -> Result<Seed, HealthError> {
    let mut bytes = [0u8; 32];
    // SAFETY: per the caller.
    unsafe { fill(source, &mut bytes) }?;
    Ok(Seed::from_bytes(bytes))
}
