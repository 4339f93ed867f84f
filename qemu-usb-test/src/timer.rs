//! Time from the ARM generic timer: CNTPCT_EL0 counts at CNTFRQ_EL0 Hz.

use embedded_hal::delay::DelayNs;

/// Microseconds since the counter started.
pub fn now_us() -> u64 {
    let (count, freq): (u64, u64);
    // SAFETY: reading the counter and its frequency has no side effects; both are accessible at
    // every exception level the image runs at.
    unsafe {
        core::arch::asm!("isb; mrs {}, cntpct_el0", out(reg) count, options(nomem, nostack));
        core::arch::asm!("mrs {}, cntfrq_el0", out(reg) freq, options(nomem, nostack));
    }
    if freq == 0 {
        return 0;
    }
    // u128 keeps count * 1e6 from overflowing; the quotient fits u64 for 500 000 years.
    (u128::from(count) * 1_000_000 / u128::from(freq)) as u64
}

/// Busy-wait delays on the generic timer, for the DWC2 driver.
#[derive(Clone, Copy)]
pub struct Delay;

impl DelayNs for Delay {
    fn delay_ns(&mut self, ns: u32) {
        let end = now_us() + u64::from(ns).div_ceil(1000);
        while now_us() < end {}
    }
}
