//! The receive path: RX descriptor views and parsing of aggregated bulk-IN transfers.
//!
//! With RX aggregation on, one bulk-IN transfer carries several frames. Each frame sits behind
//! a 24-byte descriptor whose first dword holds the frame length (mask 0x7fff) *including* the
//! 4 CRC bytes, and every descriptor starts 8-byte aligned from the start of the transfer.
//! Source: Linux `drivers/net/usb/r8152.c` (`struct rx_desc`, `RX_LEN_MASK`, `rx_bottom`,
//! `rx_agg_align`), CherryUSB `class/vendor/net/usbh_rtl8152.c` (`RX_ALIGN`, rx thread).

use super::offload::{self, RxChecksum};
use crate::eth::driver::Counters;
use core::ops::Range;

/// Size of an RX descriptor.
pub const RX_DESC_LEN: usize = 24;
/// Alignment of each descriptor within a transfer.
pub const RX_ALIGN: usize = 8;
/// CRC bytes counted in the descriptor's length and present after the frame.
pub const CRC_LEN: usize = 4;
/// Shortest length (CRC included) Linux accepts; shorter ones end the aggregate (`ETH_ZLEN`).
pub const MIN_LEN: usize = 60;
/// Largest frame (CRC excluded) handed up: the Ethernet MTU of the device.
pub const MAX_FRAME: usize = 1514;
/// Size of the receive buffer: the chip's aggregation limit (Linux `rx_buf_sz` = 16 KiB for
/// RTL8152 `RTL_VER_01/02/07`).
pub const RX_BUF_SIZE: usize = 16 * 1024;

/// Why an aggregate could not be parsed further.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RxError {
    /// Fewer bytes remain than a descriptor needs.
    TruncatedDescriptor,
    /// The descriptor's length runs past the end of the transfer.
    TruncatedFrame,
    /// The descriptor's length is below the Ethernet minimum.
    BogusLength,
}

/// A view of a 24-byte RX descriptor.
#[derive(Clone, Copy, Debug)]
pub struct RxDescriptor<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> RxDescriptor<T> {
    /// A view of `buf`, which must hold at least a whole descriptor.
    pub fn new_checked(buf: T) -> Result<Self, RxError> {
        if buf.as_ref().len() < RX_DESC_LEN {
            return Err(RxError::TruncatedDescriptor);
        }
        Ok(Self { buf })
    }

    /// opts1: length and flags.
    pub fn opts1(&self) -> u32 {
        let b = self.buf.as_ref();
        u32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }

    /// Length of the frame behind the descriptor, CRC included.
    pub fn frame_len(&self) -> usize {
        (self.opts1() & 0x7fff) as usize
    }

    /// What the chip says of the frame's checksums (opts2 and opts3).
    pub fn checksum(&self) -> RxChecksum {
        let b = self.buf.as_ref();
        let opts2 = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
        let opts3 = u32::from_le_bytes([b[8], b[9], b[10], b[11]]);
        RxChecksum::from_opts(opts2, opts3)
    }
}

/// What the next descriptor of an aggregate holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RxItem {
    /// A frame (CRC stripped) at this range of the transfer.
    Frame(Range<usize>),
    /// A well-formed frame longer than [`MAX_FRAME`], skipped.
    Oversize(usize),
}

/// A cursor over one aggregated bulk-IN transfer.
#[derive(Clone, Debug)]
pub struct Aggregate<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Aggregate<'a> {
    /// A cursor at offset `pos` of the transfer `buf`.
    pub fn new(buf: &'a [u8], pos: usize) -> Self {
        Self { buf, pos }
    }

    /// Offset of the next descriptor.
    pub fn position(&self) -> usize {
        self.pos
    }
}

impl Iterator for Aggregate<'_> {
    type Item = Result<RxItem, RxError>;

    /// The next item; after an error the cursor moves to the end (the rest cannot be trusted).
    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.buf.get(self.pos..).filter(|r| !r.is_empty())?;
        let item = match RxDescriptor::new_checked(rest) {
            Err(e) => Err(e),
            Ok(d) if d.frame_len() < MIN_LEN => Err(RxError::BogusLength),
            Ok(d) if d.frame_len() > rest.len() - RX_DESC_LEN => Err(RxError::TruncatedFrame),
            Ok(d) => {
                let len = d.frame_len();
                let start = self.pos + RX_DESC_LEN;
                let end = start + len;
                // Next descriptor: 8-aligned from the start of the transfer.
                self.pos = end.next_multiple_of(RX_ALIGN);
                let frame = len - CRC_LEN;
                return Some(Ok(if frame > MAX_FRAME {
                    RxItem::Oversize(frame)
                } else {
                    RxItem::Frame(start..start + frame)
                }));
            }
        };
        self.pos = self.buf.len();
        Some(item)
    }
}

/// The receive buffer and the cursor into the transfer it holds.
pub struct RxQueue {
    /// Transfer buffer handed to the host.
    pub buf: [u8; RX_BUF_SIZE],
    len: usize,
    pos: usize,
}

impl Default for RxQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl RxQueue {
    /// An empty queue.
    pub const fn new() -> Self {
        Self {
            buf: [0; RX_BUF_SIZE],
            len: 0,
            pos: 0,
        }
    }

    /// True when every frame of the current transfer was handed out.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.len
    }

    /// Starts parsing a newly completed transfer of `len` bytes.
    pub fn load(&mut self, len: usize) {
        self.len = len.min(RX_BUF_SIZE);
        self.pos = 0;
    }

    /// The next good frame's range in `buf`, counting drops, malformed descriptors and frames
    /// with a wrong checksum ([`super::offload`]).
    pub fn next_frame(&mut self, stats: &mut Counters) -> Option<Range<usize>> {
        let buf = &self.buf[..self.len];
        let mut agg = Aggregate::new(buf, self.pos);
        let found = loop {
            match agg.next() {
                None => break None,
                Some(Ok(RxItem::Frame(r))) => {
                    // The frame's descriptor is right in front of it.
                    let good = match RxDescriptor::new_checked(&buf[r.start - RX_DESC_LEN..])
                        .map(|d| d.checksum())
                    {
                        Ok(RxChecksum::Verified) => true,
                        Ok(RxChecksum::NotChecked) => offload::software_check(&buf[r.clone()]),
                        Ok(RxChecksum::Failed) | Err(_) => false,
                    };
                    if good {
                        break Some(r);
                    }
                    stats.rx_bad_checksum += 1;
                }
                Some(Ok(RxItem::Oversize(len))) => {
                    log::debug!("rtl8152: dropped {len}-byte oversize frame");
                    stats.rx_dropped += 1;
                }
                Some(Err(e)) => {
                    log::warn!(
                        "rtl8152: malformed RX aggregate at {}: {e:?}",
                        agg.position()
                    );
                    stats.rx_malformed += 1;
                }
            }
        };
        self.pos = agg.position();
        if let Some(r) = &found {
            stats.rx_frames += 1;
            stats.rx_bytes += r.len() as u64;
        }
        found
    }

    /// Empties the queue when the device went away: the good frames not handed out yet count as
    /// dropped (the rest as [`Self::next_frame`] counts it).
    pub fn discard(&mut self, stats: &mut Counters) {
        let mut rest = Counters::default();
        while self.next_frame(&mut rest).is_some() {}
        stats.rx_dropped += rest.rx_frames + rest.rx_dropped;
        stats.rx_bad_checksum += rest.rx_bad_checksum;
        stats.rx_malformed += rest.rx_malformed;
        self.len = 0;
        self.pos = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Appends a descriptor and `frame` plus 4 CRC bytes, aligned as the chip does.
    fn push(agg: &mut Vec<u8>, frame: &[u8]) {
        while agg.len() % RX_ALIGN != 0 {
            agg.push(0xee);
        }
        let len = (frame.len() + CRC_LEN) as u32;
        agg.extend_from_slice(&len.to_le_bytes());
        agg.extend_from_slice(&[0; RX_DESC_LEN - 4]);
        agg.extend_from_slice(frame);
        agg.extend_from_slice(&[0xc1, 0xc2, 0xc3, 0xc4]);
    }

    fn frames(buf: &[u8]) -> (Vec<Vec<u8>>, Counters) {
        let mut q = RxQueue::new();
        q.buf[..buf.len()].copy_from_slice(buf);
        q.load(buf.len());
        let mut stats = Counters::default();
        let mut out = Vec::new();
        while let Some(r) = q.next_frame(&mut stats) {
            out.push(q.buf[r].to_vec());
            assert!(out.len() <= 1000);
        }
        assert!(q.is_empty());
        (out, stats)
    }

    #[test]
    fn frames_not_handed_out_when_the_device_goes_are_counted_as_dropped() {
        let mut agg = Vec::new();
        for len in [60, 100, 1514] {
            push(&mut agg, &vec![0x5a; len]);
        }
        let mut q = RxQueue::new();
        q.buf[..agg.len()].copy_from_slice(&agg);
        q.load(agg.len());
        let mut stats = Counters::default();
        assert!(q.next_frame(&mut stats).is_some());
        q.discard(&mut stats);
        assert!(q.is_empty());
        assert_eq!((stats.rx_frames, stats.rx_dropped), (1, 2));
        assert_eq!(q.next_frame(&mut stats), None);
    }

    #[test]
    fn empty_transfer_has_no_frames() {
        let (f, s) = frames(&[]);
        assert!(f.is_empty());
        assert_eq!(s, Counters::default());
    }

    #[test]
    fn one_and_many_frames_with_alignment() {
        let sizes = [60, 61, 63, 64, 65, 100, 1514, 77];
        let mut agg = Vec::new();
        let want: Vec<Vec<u8>> = sizes
            .iter()
            .map(|&n| (0..n).map(|i| (i * 7 + n) as u8).collect())
            .collect();
        for f in &want {
            push(&mut agg, f);
        }
        let (got, s) = frames(&agg);
        assert_eq!(got, want);
        assert_eq!(s.rx_frames, sizes.len() as u64);
        assert_eq!(s.rx_bytes, sizes.iter().sum::<usize>() as u64);
        assert_eq!(s.rx_malformed, 0);
    }

    #[test]
    fn truncated_frame_is_counted_and_earlier_frames_kept() {
        let mut agg = Vec::new();
        push(&mut agg, &[1; 60]);
        push(&mut agg, &[2; 200]);
        agg.truncate(agg.len() - 10);
        let (got, s) = frames(&agg);
        assert_eq!(got, vec![vec![1; 60]]);
        assert_eq!(s.rx_malformed, 1);
    }

    #[test]
    fn truncated_descriptor_and_bogus_lengths() {
        let mut agg = Vec::new();
        push(&mut agg, &[1; 60]);
        let whole = agg.len();
        agg.resize(whole.next_multiple_of(8) + 10, 0);
        let (got, s) = frames(&agg);
        assert_eq!((got.len(), s.rx_malformed), (1, 1));

        for bogus in [0u32, 3, 59, 0x7fff, 0xffff_ffff] {
            let mut agg = Vec::new();
            agg.extend_from_slice(&bogus.to_le_bytes());
            agg.extend_from_slice(&[0; 100]);
            let (got, s) = frames(&agg);
            assert!(got.is_empty(), "length {bogus:#x}");
            assert_eq!(s.rx_malformed, 1);
        }
    }

    #[test]
    fn oversize_frame_is_dropped_and_parsing_continues() {
        let mut agg = Vec::new();
        push(&mut agg, &[1; 1600]);
        push(&mut agg, &[2; 70]);
        let (got, s) = frames(&agg);
        assert_eq!(got, vec![vec![2; 70]]);
        assert_eq!((s.rx_dropped, s.rx_frames), (1, 1));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut seed = 0x1234_5678u32;
        for _ in 0..2000 {
            let mut buf = vec![0u8; (seed % 3000) as usize];
            for b in buf.iter_mut() {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                *b = (seed >> 16) as u8;
            }
            // Make small lengths likely so that the walk goes deep.
            if buf.len() >= 2 {
                buf[1] &= 0x03;
            }
            let (got, s) = frames(&buf);
            assert!(got.len() as u64 == s.rx_frames);
        }
    }
}
