//! A wire middleware that records every frame in a classic pcap file (LINKTYPE_ETHERNET).
//!
//! Format: the 24-byte global header (magic 0xa1b2c3d4, version 2.4, snaplen, link type 1)
//! then per frame a 16-byte record header (seconds, microseconds, captured and original
//! length) and the bytes, all in host byte order as the magic number tells readers
//! (tcpdump/libpcap `pcap-savefile(5)`).

use super::Wire;
use std::io::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

/// pcap magic number for microsecond timestamps.
pub const MAGIC: u32 = 0xa1b2_c3d4;
/// LINKTYPE_ETHERNET.
pub const LINKTYPE_ETHERNET: u32 = 1;
/// Largest frame recorded whole.
pub const SNAPLEN: u32 = 65535;

/// Wraps `inner` and writes each frame sent or received to `out`.
pub struct PcapWriter<W: Wire, O: Write + Send> {
    inner: W,
    out: O,
}

impl<W: Wire, O: Write + Send> PcapWriter<W, O> {
    /// Writes the global header to `out` and wraps `inner`.
    pub fn new(inner: W, mut out: O) -> io::Result<Self> {
        let mut h = Vec::with_capacity(24);
        h.extend_from_slice(&MAGIC.to_ne_bytes());
        h.extend_from_slice(&2u16.to_ne_bytes());
        h.extend_from_slice(&4u16.to_ne_bytes());
        h.extend_from_slice(&0i32.to_ne_bytes()); // thiszone
        h.extend_from_slice(&0u32.to_ne_bytes()); // sigfigs
        h.extend_from_slice(&SNAPLEN.to_ne_bytes());
        h.extend_from_slice(&LINKTYPE_ETHERNET.to_ne_bytes());
        out.write_all(&h)?;
        out.flush()?;
        Ok(Self { inner, out })
    }

    /// The wrapped wire and the output.
    pub fn into_inner(self) -> (W, O) {
        (self.inner, self.out)
    }

    fn record(&mut self, frame: &[u8]) -> io::Result<()> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let caplen = frame.len().min(SNAPLEN as usize);
        let mut h = Vec::with_capacity(16 + caplen);
        h.extend_from_slice(&(now.as_secs() as u32).to_ne_bytes());
        h.extend_from_slice(&now.subsec_micros().to_ne_bytes());
        h.extend_from_slice(&(caplen as u32).to_ne_bytes());
        h.extend_from_slice(&(frame.len() as u32).to_ne_bytes());
        h.extend_from_slice(&frame[..caplen]);
        self.out.write_all(&h)?;
        self.out.flush()
    }
}

impl<W: Wire, O: Write + Send> Wire for PcapWriter<W, O> {
    fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        self.inner.send(frame)?;
        self.record(frame)
    }

    fn recv_into(&mut self, into: &mut Vec<u8>) -> io::Result<Option<usize>> {
        let start = into.len();
        let got = self.inner.recv_into(into)?;
        if got.is_some() {
            self.record(&into[start..])?;
        }
        Ok(got)
    }
}
