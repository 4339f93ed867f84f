//! The `flags` argument of `recv(n, flags)` / `recvfrom(n, flags)`, as modlwip reads it.

use crate::consts::{MSG_DONTWAIT, MSG_PEEK};

/// What a receive call asks for beyond the socket's own settings.
///
/// modlwip tests only [`MSG_PEEK`] and [`MSG_DONTWAIT`] and ignores every other bit; so does
/// [`RecvFlags::from_bits`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecvFlags {
    /// `MSG_PEEK`: return the data but leave it queued for the next receive.
    pub peek: bool,
    /// `MSG_DONTWAIT`: this call does not wait, as if the socket were non-blocking.
    pub dont_wait: bool,
}

impl RecvFlags {
    /// No flags: a plain `recv(n)`.
    pub const NONE: Self = Self {
        peek: false,
        dont_wait: false,
    };

    /// The flags of a Python integer argument; unknown bits are ignored, as modlwip does.
    pub const fn from_bits(bits: i64) -> Self {
        Self {
            peek: bits & MSG_PEEK as i64 != 0,
            dont_wait: bits & MSG_DONTWAIT as i64 != 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_bits_are_read_and_others_ignored() {
        assert_eq!(RecvFlags::from_bits(0), RecvFlags::NONE);
        assert_eq!(
            RecvFlags::from_bits(MSG_PEEK.into()),
            RecvFlags {
                peek: true,
                dont_wait: false
            }
        );
        assert_eq!(
            RecvFlags::from_bits(MSG_DONTWAIT.into()),
            RecvFlags {
                peek: false,
                dont_wait: true
            }
        );
        // Linux's MSG_WAITALL (0x100) and MSG_OOB (0x1) vs modlwip's numbering: only bits 0
        // and 1 mean anything.
        assert_eq!(RecvFlags::from_bits(0x100), RecvFlags::NONE);
        assert_eq!(
            RecvFlags::from_bits(-1),
            RecvFlags {
                peek: true,
                dont_wait: true
            }
        );
    }
}
