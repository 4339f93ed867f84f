//! The readiness bits of MicroPython's stream `ioctl(MP_STREAM_POLL)` (`py/stream.h`), which
//! `select.poll` and asyncio read.

use core::ops::{BitAnd, BitOr, BitOrAssign};

/// A set of `MP_STREAM_POLL_*` bits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PollFlags(u16);

impl PollFlags {
    /// No bits.
    pub const NONE: Self = Self(0);
    /// `MP_STREAM_POLL_RD` (0x0001): readable (data, EOF or a pending connection).
    pub const RD: Self = Self(0x0001);
    /// `MP_STREAM_POLL_WR` (0x0004): writable.
    pub const WR: Self = Self(0x0004);
    /// `MP_STREAM_POLL_ERR` (0x0008): the socket holds an error.
    pub const ERR: Self = Self(0x0008);
    /// `MP_STREAM_POLL_HUP` (0x0010): hung up (never connected, or reset).
    pub const HUP: Self = Self(0x0010);
    /// `MP_STREAM_POLL_NVAL` (0x0020): the socket is closed.
    pub const NVAL: Self = Self(0x0020);

    /// The flags in the raw `uintptr_t` argument of `ioctl`; unknown bits are dropped.
    pub const fn from_bits_truncate(bits: usize) -> Self {
        Self((bits & 0x3d) as u16)
    }

    /// The raw bits.
    pub const fn bits(self) -> usize {
        self.0 as usize
    }

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BitOr for PollFlags {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

impl BitOrAssign for PollFlags {
    fn bitor_assign(&mut self, rhs: Self) {
        self.0 |= rhs.0;
    }
}

impl BitAnd for PollFlags {
    type Output = Self;
    fn bitand(self, rhs: Self) -> Self {
        Self(self.0 & rhs.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_match_py_stream_h() {
        assert_eq!(PollFlags::RD.bits(), 0x01);
        assert_eq!(PollFlags::WR.bits(), 0x04);
        assert_eq!(PollFlags::ERR.bits(), 0x08);
        assert_eq!(PollFlags::HUP.bits(), 0x10);
        assert_eq!(PollFlags::NVAL.bits(), 0x20);
    }

    #[test]
    fn set_operations() {
        let f = PollFlags::RD | PollFlags::WR;
        assert!(f.contains(PollFlags::RD) && f.contains(PollFlags::WR));
        assert!(!f.contains(PollFlags::HUP));
        assert_eq!(f & PollFlags::WR, PollFlags::WR);
        let mut g = PollFlags::NONE;
        g |= PollFlags::ERR;
        assert_eq!(g.bits(), 0x08);
        assert_eq!(PollFlags::from_bits_truncate(0xffff).bits(), 0x3d);
    }
}
