//! What every NIC driver of this crate tells the layers above, whichever chip it drives.
//!
//! In the spirit of embassy-net-driver's `Driver` (hardware address, link state): a network
//! stack, a supervisor or a console needs the station address, whether the link has carrier,
//! and counters. The counters are `u64` (a `u32` frame counter wraps within a day at line rate)
//! and mean the same in every driver, with the meanings of Linux's `rtnl_link_stats64`: a frame
//! the driver could not deliver is counted once, in the same field whichever driver lost it.

/// Whether the link has carrier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkState {
    /// No carrier (cable out, PHY down, or the device gone).
    Down,
    /// Carrier.
    Up,
}

impl LinkState {
    /// `Up` when `up`.
    pub fn from_up(up: bool) -> Self {
        if up {
            Self::Up
        } else {
            Self::Down
        }
    }

    /// True for `Up`.
    pub fn is_up(self) -> bool {
        self == Self::Up
    }
}

/// A NIC driver's counters; every frame it could not deliver is counted in one of them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Frames handed up to the stack.
    pub rx_frames: u64,
    /// Bytes of those frames (no CRC).
    pub rx_bytes: u64,
    /// Well-formed frames not handed up: longer than the driver hands up, or received and still
    /// waiting to be handed up when the device went away.
    pub rx_dropped: u64,
    /// Bulk-IN transfers that failed. A device leaving the bus is not counted: that is a state
    /// (see [`HotPlug`](super::supervisor::HotPlug)), not an error.
    pub rx_errors: u64,
    /// Received data discarded as no well-formed frame (a truncated aggregate's rest, a transfer
    /// shorter than an Ethernet header).
    pub rx_malformed: u64,
    /// Frames not handed up for a wrong IPv4, TCP or UDP checksum, by a driver that checks them
    /// for the stack (found by the NIC, or by the driver where the NIC did not check).
    pub rx_bad_checksum: u64,
    /// Frames whose bulk-OUT transfer completed.
    pub tx_frames: u64,
    /// Bytes of those frames.
    pub tx_bytes: u64,
    /// Frames not sent: longer than the driver sends (oversize), lost with a failed transfer, or
    /// thrown away because the device went away.
    pub tx_dropped: u64,
    /// Bulk-OUT transfers that failed (their frames are in `tx_dropped`).
    pub tx_errors: u64,
}

/// What a NIC driver tells about itself.
pub trait Driver {
    /// The station (MAC) address the driver sends with.
    fn mac(&self) -> [u8; 6];
    /// Whether the link has carrier, as last seen.
    fn link_state(&self) -> LinkState;
    /// The counters so far.
    fn counters(&self) -> Counters;
}
