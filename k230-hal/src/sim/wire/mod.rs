//! Wire backends: where the simulated NIC's frames go.
//!
//! A [`Wire`] moves whole Ethernet frames (no preamble, no CRC) without blocking. Backends
//! compose like smoltcp's middleware devices: [`pair`] connects two ends in-process (thread-safe,
//! so two simulated boards in two threads can talk), [`tap`] reaches the Linux kernel through a
//! TAP device, [`pcap::PcapWriter`] wraps any wire and records what crosses it, and
//! [`impair::Impair`] wraps any wire and loses, corrupts, duplicates or reorders frames.

pub mod impair;
pub mod pair;
pub mod pcap;
pub mod tap;

use std::io;

/// A non-blocking Ethernet wire.
pub trait Wire: Send {
    /// Puts a frame on the wire. Fails with [`io::ErrorKind::WouldBlock`] when the wire cannot
    /// take it now (the caller keeps it and retries).
    fn send(&mut self, frame: &[u8]) -> io::Result<()>;

    /// The next frame that arrived, or `None` when none is waiting.
    fn recv(&mut self) -> io::Result<Option<Vec<u8>>>;
}

impl<W: Wire + ?Sized> Wire for Box<W> {
    fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        (**self).send(frame)
    }

    fn recv(&mut self) -> io::Result<Option<Vec<u8>>> {
        (**self).recv()
    }
}
