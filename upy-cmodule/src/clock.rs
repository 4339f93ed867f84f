//! Time from the firmware: upy-socket's [`Clock`] and the DWC2 driver's delay.

use core::cell::Cell;

use embedded_hal::delay::DelayNs;
use netstack::api::Micros;
use upy_socket::Clock;

use crate::hooks;

/// Extends a wrapping 32-bit microsecond counter to a monotonic 64-bit one.
///
/// Correct as long as it sees the counter at least once per wrap (71 minutes); the event poll
/// hook and every socket call read it far more often.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ticks {
    last: u32,
    total: Micros,
}

impl Ticks {
    /// A counter that starts at the first reading.
    pub const fn starting_at(raw: u32) -> Self {
        Self {
            last: raw,
            total: 0,
        }
    }

    /// The 64-bit time for the counter reading `raw`.
    pub fn extend(&mut self, raw: u32) -> Micros {
        self.total += u64::from(raw.wrapping_sub(self.last));
        self.last = raw;
        self.total
    }
}

/// [`Clock`] over the firmware's `k230net_ticks_us` and `k230net_delay_us`; a pending
/// exception (`k230net_interrupt_pending`, Ctrl-C) interrupts socket waits.
///
/// Its waits never sleep between polls ([`Clock::max_idle`] 0): the NIC raises no interrupt
/// that could end a sleep (the DWC2 driver is polled) and `k230net_delay_us` is a busy wait, so a
/// wait spends the time polling the NIC instead, and sees a frame as soon as it is there.
#[derive(Debug)]
pub struct FirmwareClock {
    ticks: Cell<Ticks>,
}

impl FirmwareClock {
    /// A clock whose zero is now.
    pub fn new() -> Self {
        Self {
            ticks: Cell::new(Ticks::starting_at(hooks::ticks_us())),
        }
    }
}

impl Default for FirmwareClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for FirmwareClock {
    fn now(&self) -> Micros {
        let mut ticks = self.ticks.get();
        let now = ticks.extend(hooks::ticks_us());
        self.ticks.set(ticks);
        now
    }

    fn sleep_until(&mut self, deadline: Micros) {
        let now = self.now();
        if deadline > now {
            hooks::delay_us(u32::try_from(deadline - now).unwrap_or(u32::MAX));
        }
    }

    fn max_idle(&self) -> Option<Micros> {
        Some(0)
    }

    fn interrupted(&self) -> bool {
        hooks::interrupt_pending()
    }
}

/// The DWC2 driver's delay, over `k230net_delay_us`.
#[derive(Clone, Copy, Debug, Default)]
pub struct FirmwareDelay;

impl DelayNs for FirmwareDelay {
    fn delay_ns(&mut self, ns: u32) {
        hooks::delay_us(ns.div_ceil(1_000));
    }

    fn delay_us(&mut self, us: u32) {
        hooks::delay_us(us);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Mutex;

    /// The firmware's counter, as the fake hooks below keep it.
    static RAW: AtomicU32 = AtomicU32::new(0);
    /// Delays asked of the firmware.
    static DELAYS: Mutex<Vec<u32>> = Mutex::new(Vec::new());
    /// The hooks are process-wide: one test at a time uses them.
    static HOOKS: Mutex<()> = Mutex::new(());

    #[no_mangle]
    extern "C" fn k230net_ticks_us() -> u32 {
        RAW.load(Ordering::SeqCst)
    }

    #[no_mangle]
    extern "C" fn k230net_interrupt_pending() -> core::ffi::c_int {
        PENDING.load(Ordering::SeqCst).into()
    }

    /// What the fake interpreter says about a pending exception.
    static PENDING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

    #[test]
    fn firmware_clock_is_interrupted_while_an_exception_is_pending() {
        let _hooks = HOOKS.lock().unwrap();
        let clock = FirmwareClock::new();
        assert!(!clock.interrupted());
        PENDING.store(true, Ordering::SeqCst);
        assert!(clock.interrupted());
        PENDING.store(false, Ordering::SeqCst);
    }

    #[no_mangle]
    extern "C" fn k230net_delay_us(us: u32) {
        DELAYS.lock().unwrap().push(us);
        RAW.fetch_add(us, Ordering::SeqCst);
    }

    #[test]
    fn firmware_clock_counts_across_the_wrap_and_sleeps_through_the_hook() {
        let _hooks = HOOKS.lock().unwrap();
        DELAYS.lock().unwrap().clear();
        RAW.store(u32::MAX - 99, Ordering::SeqCst);
        let mut clock = FirmwareClock::new();
        assert_eq!(clock.now(), 0);
        RAW.fetch_add(300, Ordering::SeqCst);
        assert_eq!(clock.now(), 300);
        clock.sleep_until(1_300);
        assert_eq!(clock.now(), 1_300);
        clock.sleep_until(1_000);
        assert_eq!(*DELAYS.lock().unwrap(), [1_000]);
    }

    #[test]
    fn firmware_delay_rounds_nanoseconds_up() {
        let _hooks = HOOKS.lock().unwrap();
        DELAYS.lock().unwrap().clear();
        let mut delay = FirmwareDelay;
        delay.delay_ns(1_500);
        delay.delay_ns(1);
        delay.delay_us(7);
        assert_eq!(*DELAYS.lock().unwrap(), [2, 1, 7]);
    }

    #[test]
    fn ticks_extend_across_the_wrap() {
        let mut t = Ticks::starting_at(u32::MAX - 10);
        assert_eq!(t.extend(u32::MAX - 10), 0);
        assert_eq!(t.extend(u32::MAX), 10);
        assert_eq!(t.extend(5), 16);
        assert_eq!(t.extend(5), 16);
        assert_eq!(t.extend(1_005), 1_016);
    }

    #[test]
    fn ticks_keep_counting_over_many_wraps() {
        let mut t = Ticks::starting_at(0);
        let step = 3_000_000_000u32;
        let mut raw = 0u32;
        for _ in 0..10 {
            raw = raw.wrapping_add(step);
            t.extend(raw);
        }
        assert_eq!(t.extend(raw), 10 * u64::from(step));
    }
}
