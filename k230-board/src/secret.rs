//! The stack's secret on a K230 board: 32 bytes from the TRNG after its start-up health test.
//! A board whose TRNG fails the test must not start its network (a guessable secret makes TCP
//! sequence numbers, ports and DNS ids guessable): the firmware stops its bring-up, the
//! MicroPython module returns `K230NET_E_ENTROPY`.

use k230_hal::reg::Mmio;
use k230_hal::trng::{self, HealthError, Trng};
use netstack::Seed;

/// The secret from the TRNG.
///
/// # Safety
/// The PUFrt block's registers (`k230_hal::trng::BASE`) must be mapped at their physical
/// address and not be used by anything else meanwhile.
pub unsafe fn trng_seed() -> Result<Seed, HealthError> {
    // SAFETY: the PUFrt block's registers, per the caller used only here.
    let regs = unsafe { Mmio::new(trng::BASE, trng::LEN) };
    let mut bytes = [0u8; 32];
    Trng::new(regs)?.fill(&mut bytes)?;
    Ok(Seed::from_bytes(bytes))
}
