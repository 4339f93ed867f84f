//! Wire backends: where the simulated NIC's frames go.
//!
//! A [`Wire`] moves whole Ethernet frames (no preamble, no CRC) without blocking. Backends
//! compose like smoltcp's middleware devices: [`pair`] connects two ends in-process (thread-safe,
//! so two simulated boards in two threads can talk), [`tap`] reaches the Linux kernel through a
//! TAP device, [`pcap::PcapWriter`] wraps any wire and records what crosses it, and
//! [`impair::Impair`] wraps any wire and loses, corrupts, duplicates or reorders frames.
//! [`device::WireDevice`] puts a smoltcp stack straight on a wire.

pub mod device;
pub mod impair;
pub mod pair;
pub mod pcap;
pub mod tap;

use std::io;
use std::num::NonZeroU16;

/// A non-blocking Ethernet wire.
pub trait Wire: Send {
    /// Puts a frame on the wire. Fails with [`io::ErrorKind::WouldBlock`] when the wire cannot
    /// take it now (the caller keeps it and retries).
    fn send(&mut self, frame: &[u8]) -> io::Result<()>;

    /// Appends the next frame that arrived to `into` and returns its length, or `None` (and
    /// `into` as it was) when none is waiting. The caller reuses `into`: nothing is allocated
    /// per frame once it has grown.
    fn recv_into(&mut self, into: &mut Vec<u8>) -> io::Result<Option<usize>>;

    /// The next frame that arrived in a vector of its own, or `None` when none is waiting.
    fn recv(&mut self) -> io::Result<Option<Vec<u8>>> {
        let mut frame = Vec::new();
        Ok(self.recv_into(&mut frame)?.map(|_| frame))
    }

    /// Asks the wire to pass on received frames whose TCP or UDP checksum it need not have
    /// checked, because their sender vouches for them (a TAP: frames of the kernel's own, whose
    /// checksum field then holds only the pseudo-header's sum), and to say so per frame in
    /// [`Wire::recv_vouched`]; true if it does (the default: false, every frame is whole).
    fn vouch_checksums(&mut self) -> io::Result<bool> {
        Ok(false)
    }

    /// As [`Wire::recv_into`], with whether the frame's TCP or UDP checksum is vouched for (only
    /// ever true after [`Wire::vouch_checksums`]).
    fn recv_vouched(&mut self, into: &mut Vec<u8>) -> io::Result<Option<(usize, bool)>> {
        Ok(self.recv_into(into)?.map(|n| (n, false)))
    }

    /// The largest frame (Ethernet header included) the wire takes through
    /// [`Wire::send_offloaded`], or `None` when it has no offloads (the default).
    fn offloads(&self) -> Option<usize> {
        None
    }

    /// Puts a frame on the wire whose TCP or UDP checksum (over IPv4) the wire fills in and,
    /// with `mss`, which it cuts into TCP segments of `mss` payload bytes, as a NIC with
    /// checksum and segmentation offload does. Only for wires with [`Wire::offloads`].
    fn send_offloaded(&mut self, frame: &[u8], mss: Option<NonZeroU16>) -> io::Result<()> {
        let _ = (frame, mss);
        Err(io::ErrorKind::Unsupported.into())
    }
}

impl<W: Wire + ?Sized> Wire for Box<W> {
    fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        (**self).send(frame)
    }

    fn recv_into(&mut self, into: &mut Vec<u8>) -> io::Result<Option<usize>> {
        (**self).recv_into(into)
    }

    fn vouch_checksums(&mut self) -> io::Result<bool> {
        (**self).vouch_checksums()
    }

    fn recv_vouched(&mut self, into: &mut Vec<u8>) -> io::Result<Option<(usize, bool)>> {
        (**self).recv_vouched(into)
    }

    fn offloads(&self) -> Option<usize> {
        (**self).offloads()
    }

    fn send_offloaded(&mut self, frame: &[u8], mss: Option<NonZeroU16>) -> io::Result<()> {
        (**self).send_offloaded(frame, mss)
    }
}
