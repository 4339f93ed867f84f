//! The functions the firmware provides to the library (`k230net.c` implements them).

extern "C" {
    /// MicroPython's `mp_hal_ticks_us()`, truncated to 32 bits (it may wrap).
    fn k230net_ticks_us() -> u32;
    /// Busy-waits; must not raise (k230net.c waits on the tick counter).
    fn k230net_delay_us(us: u32);
    /// Nonzero when the interpreter has an exception pending (Ctrl-C's `KeyboardInterrupt`).
    fn k230net_interrupt_pending() -> core::ffi::c_int;
    /// Reports a fatal error and does not return (`nlr_jump_fail`).
    #[cfg(target_os = "none")]
    fn k230net_panic(msg: *const u8, len: usize) -> !;
}

/// The firmware's microsecond counter (wraps after 2^32 us).
pub fn ticks_us() -> u32 {
    // SAFETY: the hook takes no arguments and only reads a timer.
    unsafe { k230net_ticks_us() }
}

/// Whether the interpreter has an exception pending (a blocking socket call then gives up).
pub fn interrupt_pending() -> bool {
    // SAFETY: the hook takes no arguments and only reads the interpreter's state.
    unsafe { k230net_interrupt_pending() != 0 }
}

/// Busy-waits `us` microseconds.
pub fn delay_us(us: u32) {
    // SAFETY: plain value; the hook does not raise (documented in k230net.h).
    unsafe { k230net_delay_us(us) }
}

/// Hands `msg` to the firmware's fatal-error path.
#[cfg(target_os = "none")]
pub fn panic(msg: &[u8]) -> ! {
    // SAFETY: `msg` is valid for reads of its length; the hook never returns.
    unsafe { k230net_panic(msg.as_ptr(), msg.len()) }
}
