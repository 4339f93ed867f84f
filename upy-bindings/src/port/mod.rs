//! The board's own modules, written from MicroPython's documentation (upstream keeps them in
//! `extmod/`, which the sdist the firmware builds from does not have): [`time`], [`select`],
//! [`os`] and [`machine`], and the [`Port`] the board installs for what MicroPython's HAL does not
//! offer (CPU counter, clock rate, entropy, reset).

pub mod machine;
pub mod os;
pub mod select;
pub mod time;

use crate::error::Error;
use crate::statics::Static;

/// `os.uname()`'s fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Uname {
    /// `sysname`.
    pub sysname: &'static str,
    /// `nodename`.
    pub nodename: &'static str,
    /// `release`.
    pub release: &'static str,
    /// `version`.
    pub version: &'static str,
    /// `machine`.
    pub machine: &'static str,
}

/// What the board provides to [`time`], [`os`] and [`machine`].
pub trait Port {
    /// The CPU's fastest free-running counter (`time.ticks_cpu`).
    fn ticks_cpu(&self) -> u64;
    /// Nanoseconds since the port's epoch (`time.time_ns`; since boot on a board without a
    /// real-time clock).
    fn time_ns(&self) -> u64;
    /// The CPU clock in Hz (`machine.freq()`).
    fn freq(&self) -> u64;
    /// `os.uname()`.
    fn uname(&self) -> Uname;
    /// Fills `buf` from the board's entropy source (`os.urandom`); the errno if it cannot.
    fn urandom(&self, buf: &mut [u8]) -> Result<(), i32>;
    /// Resets the board (`machine.reset()`); returns only with the errno of a board that cannot.
    fn reset(&self) -> i32;
}

static PORT: Static<Option<&'static dyn Port>> = Static::new(None);

/// Installs the board's [`Port`].
///
/// # Safety
/// On the interpreter thread while no binding function runs (before scripts start).
pub unsafe fn set(port: &'static dyn Port) {
    // SAFETY: per the caller, nothing reads the static meanwhile.
    unsafe { *PORT.get() = Some(port) };
}

/// The installed port; `OSError(ENODEV)` before one is.
fn get() -> Result<&'static dyn Port, Error> {
    // SAFETY: written once by `set` before scripts run, only read afterwards.
    unsafe { *PORT.get() }.ok_or(Error::OsError(crate::backend::ENODEV))
}
