//! A socket's timeout mode, as `settimeout`/`setblocking` set it.

use netstack::api::Micros;

use crate::errno::SocketError;

/// How long a socket operation may wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timeout {
    /// `settimeout(None)` / `setblocking(True)`: wait as long as it takes (the default).
    Blocking,
    /// `settimeout(0)` / `setblocking(False)`: never wait.
    NonBlocking,
    /// `settimeout(secs)`: wait at most this many microseconds.
    After(Micros),
}

impl Timeout {
    /// The mode `settimeout(secs)` sets for a number of seconds.
    ///
    /// Like modlwip, the value is truncated to whole milliseconds first (`1000 * secs` cast to an
    /// integer), so anything below 1 ms means non-blocking. Negative or non-finite values are a
    /// `ValueError` (CPython's rule; modlwip's C cast is undefined for them).
    pub fn from_secs(secs: f64) -> Result<Self, SocketError> {
        if !secs.is_finite() || secs < 0.0 {
            return Err(SocketError::Value("Timeout value out of range"));
        }
        // `as` saturates for values beyond u64.
        let ms = (1000.0 * secs) as u64;
        Ok(match ms {
            0 => Timeout::NonBlocking,
            ms => Timeout::After(ms.saturating_mul(1000)),
        })
    }

    /// The mode `setblocking(flag)` sets.
    pub const fn from_blocking(flag: bool) -> Self {
        if flag {
            Timeout::Blocking
        } else {
            Timeout::NonBlocking
        }
    }

    /// The time by which an operation starting at `now` gives up (`None`: never).
    pub(crate) fn deadline(self, now: Micros) -> Option<Micros> {
        match self {
            Timeout::Blocking => None,
            Timeout::NonBlocking => Some(now),
            Timeout::After(us) => Some(now.saturating_add(us)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_truncate_to_milliseconds_like_modlwip() {
        assert_eq!(Timeout::from_secs(0.0), Ok(Timeout::NonBlocking));
        assert_eq!(Timeout::from_secs(0.0009), Ok(Timeout::NonBlocking));
        assert_eq!(Timeout::from_secs(0.001), Ok(Timeout::After(1_000)));
        assert_eq!(Timeout::from_secs(1.5), Ok(Timeout::After(1_500_000)));
        assert_eq!(Timeout::from_secs(2.0004), Ok(Timeout::After(2_000_000)));
        assert_eq!(Timeout::from_secs(1e30), Ok(Timeout::After(u64::MAX)));
    }

    #[test]
    fn negative_and_non_finite_are_value_errors() {
        for bad in [-1.0, -0.001, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert!(
                matches!(Timeout::from_secs(bad), Err(SocketError::Value(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn setblocking_flag() {
        assert_eq!(Timeout::from_blocking(true), Timeout::Blocking);
        assert_eq!(Timeout::from_blocking(false), Timeout::NonBlocking);
    }

    #[test]
    fn deadlines() {
        assert_eq!(Timeout::Blocking.deadline(5), None);
        assert_eq!(Timeout::NonBlocking.deadline(5), Some(5));
        assert_eq!(Timeout::After(10).deadline(5), Some(15));
        assert_eq!(Timeout::After(u64::MAX).deadline(5), Some(u64::MAX));
    }
}
