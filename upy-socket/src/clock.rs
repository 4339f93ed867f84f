//! The time source blocking socket operations measure their timeouts with.

use netstack::api::Micros;

use crate::wait::MAX_IDLE_SLEEP;

/// A monotonic microsecond clock that can also wait.
///
/// The board implements it with the CPU timer (and may wake early on a USB interrupt); the host
/// uses `StdClock` (feature `std`); tests use a mock whose sleeps advance a virtual time.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
pub trait Clock {
    /// Microseconds since an arbitrary, fixed origin; never decreases.
    fn now(&self) -> Micros;
    /// Waits until `deadline` (or less: returning early is allowed, e.g. on an interrupt).
    fn sleep_until(&mut self, deadline: Micros);
    /// The longest a wait may sleep without polling the stack, `None` for no bound. A frame's
    /// arrival is no timer the stack can announce, so a clock whose [`sleep_until`] sleeps
    /// through arrivals bounds its sleeps ([`MAX_IDLE_SLEEP`], the default). A clock that returns
    /// from [`sleep_until`] as soon as a frame may have arrived (a simulation that runs the peer
    /// while it sleeps) answers `None`, and waits then sleep only until the stack's next timer
    /// or the deadline.
    ///
    /// [`sleep_until`]: Clock::sleep_until
    fn max_idle(&self) -> Option<Micros> {
        Some(MAX_IDLE_SLEEP)
    }
    /// Whether the user asked to stop waiting (on the board: Ctrl-C, a pending
    /// `KeyboardInterrupt`). A wait that sees it gives up with [`SocketError::Interrupted`],
    /// leaving the socket as it was. Never, unless the clock says so.
    ///
    /// [`SocketError::Interrupted`]: crate::SocketError::Interrupted
    fn interrupted(&self) -> bool {
        false
    }
}

/// [`Clock`] on the host: `std::time::Instant` and `std::thread::sleep`.
#[cfg(feature = "std")]
#[derive(Clone, Copy, Debug)]
pub struct StdClock {
    origin: std::time::Instant,
}

#[cfg(feature = "std")]
impl StdClock {
    /// A clock whose zero is now.
    pub fn new() -> Self {
        Self {
            origin: std::time::Instant::now(),
        }
    }
}

#[cfg(feature = "std")]
impl Default for StdClock {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(feature = "std")]
impl Clock for StdClock {
    fn now(&self) -> Micros {
        u64::try_from(self.origin.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    fn sleep_until(&mut self, deadline: Micros) {
        let now = self.now();
        if deadline > now {
            std::thread::sleep(std::time::Duration::from_micros(deadline - now));
        }
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;

    #[test]
    fn std_clock_is_monotonic_and_sleeps_until_the_deadline() {
        let mut clock = StdClock::new();
        let start = clock.now();
        clock.sleep_until(start + 2_000);
        let end = clock.now();
        assert!(end >= start + 2_000, "slept {} us", end - start);
        // A deadline in the past returns at once.
        clock.sleep_until(start);
        assert!(clock.now() >= end);
    }
}
