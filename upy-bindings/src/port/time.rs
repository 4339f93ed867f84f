//! `time`: sleeps and tick counters as MicroPython documents them (`sleep`, `sleep_ms`,
//! `sleep_us`, `ticks_ms`, `ticks_us`, `ticks_cpu`, `ticks_add`, `ticks_diff`, `time`, `time_ns`).
//!
//! Ticks wrap at [`TICKS_PERIOD`] (MicroPython's `MICROPY_PY_TIME_TICKS_PERIOD`: the positive
//! small-int range, 2^62 on 64-bit object representation A, 2^30 on 32-bit) and must be compared
//! with `ticks_diff`. Sleeps of a millisecond or more go through MicroPython's `mp_hal_delay_ms`,
//! which runs the event hook (the network) and raises a pending `KeyboardInterrupt`; the
//! sub-millisecond rest is a busy wait. `time()`/`time_ns()` count from the port's epoch
//! ([`super::Port::time_ns`]; the boards have no real-time clock: since boot).

use crate::args;
use crate::error::Error;
use crate::ffi;
use crate::obj::Obj;
use crate::object::{Fun, Module, Value};
use crate::runtime::{catch_exception, try_or_raise};
use crate::table;

/// The tick counters' period.
pub const TICKS_PERIOD: u64 = 1 << (usize::BITS - 2);

table!(GLOBALS = {
    c"__name__" => Value::Str(c"time"),
    c"sleep" => Value::Fun(&SLEEP),
    c"sleep_ms" => Value::Fun(&SLEEP_MS),
    c"sleep_us" => Value::Fun(&SLEEP_US),
    c"ticks_ms" => Value::Fun(&TICKS_MS),
    c"ticks_us" => Value::Fun(&TICKS_US),
    c"ticks_cpu" => Value::Fun(&TICKS_CPU),
    c"ticks_add" => Value::Fun(&TICKS_ADD),
    c"ticks_diff" => Value::Fun(&TICKS_DIFF),
    c"time" => Value::Fun(&TIME),
    c"time_ns" => Value::Fun(&TIME_NS),
});

/// The `time` module.
pub static MODULE: Module = Module::new(c"time", &GLOBALS);

static SLEEP: Fun = Fun::var(1, 1, sleep);
static SLEEP_MS: Fun = Fun::var(1, 1, sleep_ms);
static SLEEP_US: Fun = Fun::var(1, 1, sleep_us);
static TICKS_MS: Fun = Fun::var(0, 0, ticks_ms);
static TICKS_US: Fun = Fun::var(0, 0, ticks_us);
static TICKS_CPU: Fun = Fun::var(0, 0, ticks_cpu);
static TICKS_ADD: Fun = Fun::var(2, 2, ticks_add);
static TICKS_DIFF: Fun = Fun::var(2, 2, ticks_diff);
static TIME: Fun = Fun::var(0, 0, time);
static TIME_NS: Fun = Fun::var(0, 0, time_ns);

/// `t` reduced to the ticks period.
pub const fn wrap(t: u64) -> u64 {
    t & (TICKS_PERIOD - 1)
}

/// `ticks_diff(end, start)`: the signed distance from `start` to `end`, both within the period.
pub const fn diff(end: u64, start: u64) -> i64 {
    let half = TICKS_PERIOD / 2;
    (wrap(end.wrapping_sub(start).wrapping_add(half)) as i64) - half as i64
}

/// `ticks_add(t, delta)`: `None` when `delta` is outside (-period/2, period/2).
pub fn add(t: u64, delta: i64) -> Option<u64> {
    let half = (TICKS_PERIOD / 2) as i64;
    (delta > -half && delta < half).then(|| wrap(t.wrapping_add(delta as u64)))
}

/// A ticks argument: an int within the period (`OverflowError` otherwise, as MicroPython's
/// `ticks_add` says "ticks interval overflow").
fn ticks_arg(obj: Obj) -> Result<u64, Error> {
    let t = isize::try_from(obj)?;
    u64::try_from(t)
        .ok()
        .filter(|t| *t < TICKS_PERIOD)
        .ok_or(Error::OverflowError)
}

fn ticks_obj(t: u64) -> Result<Obj, Error> {
    // Within the period, so a small int.
    Obj::try_from(wrap(t) as isize)
}

/// Sleeps `us` microseconds: whole milliseconds with the event hook running (may raise
/// `KeyboardInterrupt`), the rest busy.
fn delay_us(us: u64) -> Result<(), Error> {
    let ms = us / 1000;
    if ms > 0 {
        let ms = usize::try_from(ms).map_err(|_| Error::OverflowError)?;
        // SAFETY: plain value, on the interpreter thread.
        // EXCEPTION: raises KeyboardInterrupt (or what a scheduled callback raises).
        catch_exception(|| unsafe { ffi::mp_hal_delay_ms(ms) })?;
    }
    busy_wait_us(us % 1000);
    Ok(())
}

/// Waits `us` microseconds on `mp_hal_ticks_us` without handling events.
fn busy_wait_us(us: u64) {
    // SAFETY: reads the timer.
    // EXCEPTION: none.
    let start = unsafe { ffi::mp_hal_ticks_us() };
    // SAFETY: as above.
    while (unsafe { ffi::mp_hal_ticks_us() }.wrapping_sub(start) as u64) < us {
        core::hint::spin_loop();
    }
}

unsafe extern "C" fn sleep(n: usize, args: *const Obj) -> Obj {
    // SAFETY: MicroPython passes `n` valid objects.
    let args = unsafe { args::slice(n, args) };
    try_or_raise(|| {
        let secs = args[0].to_f64()?;
        if !secs.is_finite() {
            return Err(Error::ValueError("sleep length must be finite"));
        }
        // Negative sleeps return at once, as MicroPython's.
        if secs > 0.0 {
            let us = secs * 1e6;
            if us >= u64::MAX as f64 {
                return Err(Error::OverflowError);
            }
            delay_us(us as u64)?;
        }
        Ok(())
    })
}

unsafe extern "C" fn sleep_ms(n: usize, args: *const Obj) -> Obj {
    // SAFETY: MicroPython passes `n` valid objects.
    let args = unsafe { args::slice(n, args) };
    try_or_raise(|| {
        let ms = isize::try_from(args[0])?;
        if let Ok(ms) = u64::try_from(ms) {
            delay_us(ms.checked_mul(1000).ok_or(Error::OverflowError)?)?;
        }
        Ok(())
    })
}

unsafe extern "C" fn sleep_us(n: usize, args: *const Obj) -> Obj {
    // SAFETY: MicroPython passes `n` valid objects.
    let args = unsafe { args::slice(n, args) };
    try_or_raise(|| {
        let us = isize::try_from(args[0])?;
        if let Ok(us) = u64::try_from(us) {
            delay_us(us)?;
        }
        Ok(())
    })
}

unsafe extern "C" fn ticks_ms(_n: usize, _args: *const Obj) -> Obj {
    // SAFETY: reads the timer.
    // EXCEPTION: none.
    try_or_raise(|| ticks_obj(unsafe { ffi::mp_hal_ticks_ms() } as u64))
}

unsafe extern "C" fn ticks_us(_n: usize, _args: *const Obj) -> Obj {
    // SAFETY: reads the timer.
    // EXCEPTION: none.
    try_or_raise(|| ticks_obj(unsafe { ffi::mp_hal_ticks_us() } as u64))
}

unsafe extern "C" fn ticks_cpu(_n: usize, _args: *const Obj) -> Obj {
    try_or_raise(|| ticks_obj(super::get()?.ticks_cpu()))
}

unsafe extern "C" fn ticks_add(n: usize, args: *const Obj) -> Obj {
    // SAFETY: MicroPython passes `n` valid objects.
    let args = unsafe { args::slice(n, args) };
    try_or_raise(|| {
        let t = ticks_arg(args[0])?;
        let delta = i64::try_from(isize::try_from(args[1])?).map_err(|_| Error::OverflowError)?;
        ticks_obj(add(t, delta).ok_or(Error::OverflowError)?)
    })
}

unsafe extern "C" fn ticks_diff(n: usize, args: *const Obj) -> Obj {
    // SAFETY: MicroPython passes `n` valid objects.
    let args = unsafe { args::slice(n, args) };
    try_or_raise(|| {
        let end = ticks_arg(args[0])?;
        let start = ticks_arg(args[1])?;
        Obj::try_from(diff(end, start) as isize)
    })
}

unsafe extern "C" fn time(_n: usize, _args: *const Obj) -> Obj {
    try_or_raise(|| {
        let secs = super::get()?.time_ns() / 1_000_000_000;
        Obj::try_from(isize::try_from(secs).map_err(|_| Error::OverflowError)?)
    })
}

unsafe extern "C" fn time_ns(_n: usize, _args: *const Obj) -> Obj {
    try_or_raise(|| {
        let ns = super::get()?.time_ns();
        // SAFETY: plain value.
        // EXCEPTION: raises MemoryError (a big int is allocated).
        catch_exception(|| unsafe { ffi::mp_obj_new_int_from_ull(ns) })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_arithmetic_wraps_at_the_period() {
        let last = TICKS_PERIOD - 1;
        assert_eq!(add(last, 1), Some(0));
        assert_eq!(add(0, -1), Some(last));
        assert_eq!(diff(0, last), 1);
        assert_eq!(diff(last, 0), -1);
        assert_eq!(diff(1000, 400), 600);
        assert_eq!(diff(400, 1000), -600);
        // The largest distances either way.
        let half = TICKS_PERIOD / 2;
        assert_eq!(diff(half - 1, 0), (half - 1) as i64);
        assert_eq!(diff(half, 0), -(half as i64));
        assert_eq!(add(5, (half - 1) as i64), Some(5 + half - 1));
        assert_eq!(add(5, half as i64), None);
        assert_eq!(add(5, -(half as i64)), None);
    }
}
