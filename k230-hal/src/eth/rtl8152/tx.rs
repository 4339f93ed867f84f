//! The transmit path: TX descriptor views and batching of frames into bulk-OUT transfers.
//!
//! Each frame goes behind an 8-byte descriptor: opts1 holds FS (bit 31, first segment), LS
//! (bit 30, last segment) and the frame length (bits 17..0); opts1 and opts2 hold offloads (the
//! TCP and UDP checksums, large send: [`super::offload`]).
//! Several descriptor+frame pairs may share one bulk-OUT transfer, each descriptor starting
//! 4-byte aligned. Source: Linux `drivers/net/usb/r8152.c` (`struct tx_desc`, `TX_FS`, `TX_LS`,
//! `TX_ALIGN`, `r8152_tx_agg_fill`, `agg_buf_sz`), CherryUSB `class/vendor/net/usbh_rtl8152.c`
//! (linkoutput).
//!
//! The batch is one transfer of at most [`TX_BUF_SIZE`] bytes (Linux's `agg_buf_sz`, 16 KiB,
//! which is also the DWC2 driver's pipe buffer). The stack gets room for a frame (a smoltcp
//! token) only while the batch has room for the largest one, a large send of
//! [`MAX_LARGE_SEND`] bytes; two of those fit one batch, and so do [`MAX_BURST`] full-size
//! frames.

use super::offload::{self, LargeSend};
use crate::eth::driver::Counters;
use crate::usb::{Pipe, UsbError, UsbHost};
use core::task::Poll;

/// Size of a TX descriptor.
pub const TX_DESC_LEN: usize = 8;
/// Alignment of each descriptor within a transfer.
pub const TX_ALIGN: usize = 4;
/// opts1: first segment of a frame.
pub const TX_FS: u32 = 1 << 31;
/// opts1: last segment of a frame.
pub const TX_LS: u32 = 1 << 30;
/// opts1: frame length mask.
pub const TX_LEN_MASK: u32 = 0x3ffff;
/// Largest frame accepted for sending (CRC excluded; the chip appends it).
pub const MAX_FRAME: usize = 1514;
/// Size of the batch buffer, the largest bulk-OUT transfer: Linux's `agg_buf_sz` (16 KiB).
pub const TX_BUF_SIZE: usize = 16 * 1024;
/// Largest frame accepted for large send (Ethernet header included, CRC excluded): two of them
/// with their descriptors and alignment fit one batch. (Linux allows a frame up to
/// `RTL_LIMITED_TSO_SIZE`, nearly the whole aggregate, as its queue holds frames outside the
/// aggregate; here the stack writes straight into the batch.)
pub const MAX_LARGE_SEND: usize = (TX_BUF_SIZE / 2 - TX_DESC_LEN) / TX_ALIGN * TX_ALIGN - TX_ALIGN;
/// Frames that always fit into an empty batch buffer.
pub const MAX_BURST: usize = TX_BUF_SIZE / (TX_DESC_LEN + MAX_FRAME + 2);
const _: () = assert!(2 * (TX_DESC_LEN + MAX_LARGE_SEND + TX_ALIGN) <= TX_BUF_SIZE);

/// Why a frame could not be queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxError {
    /// No room until the transfer in flight completes: retry later.
    Full,
    /// The frame is empty or longer than [`MAX_FRAME`] ([`MAX_LARGE_SEND`] for a large send).
    BadLength,
}

/// How a frame is to go out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sending {
    /// As it is (with the checksum offload of [`offload::tx_request`]).
    Whole,
    /// Cut by the chip into segments of at most this many payload bytes
    /// ([`offload::large_send_request`]).
    LargeSend(u16),
}

/// A large-send frame that cannot be segmented and is too long to go whole (dropped).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unsegmentable;

/// A view of an 8-byte TX descriptor.
#[derive(Clone, Copy, Debug)]
pub struct TxDescriptor<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> TxDescriptor<T> {
    /// A view of `buf`, which must hold a whole descriptor.
    pub fn new_checked(buf: T) -> Option<Self> {
        (buf.as_ref().len() >= TX_DESC_LEN).then_some(Self { buf })
    }

    /// opts1: segment flags and length.
    pub fn opts1(&self) -> u32 {
        let b = self.buf.as_ref();
        u32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }

    /// Frame length.
    pub fn frame_len(&self) -> usize {
        (self.opts1() & TX_LEN_MASK) as usize
    }

    /// True for a whole frame in one segment (FS and LS both set).
    pub fn is_whole_frame(&self) -> bool {
        self.opts1() & (TX_FS | TX_LS) == TX_FS | TX_LS
    }

    /// The large send asked for: the transport header's offset and the MSS.
    pub fn large_send(&self) -> Option<(usize, u16)> {
        let (opts1, opts2) = (self.opts1(), self.opts2());
        (opts1 & offload::TX_GTSENDV4 != 0).then_some((
            (opts1 >> offload::TX_GTTCPHO_SHIFT) as usize & offload::TX_GTTCPHO_MAX,
            (opts2 >> offload::TX_MSS_SHIFT) as u16 & offload::TX_MSS_MAX,
        ))
    }

    /// opts2: offloads.
    pub fn opts2(&self) -> u32 {
        let b = self.buf.as_ref();
        u32::from_le_bytes([b[4], b[5], b[6], b[7]])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TxDescriptor<T> {
    /// Describes a whole frame of `len` bytes with the offloads `opts2`.
    pub fn set_whole_frame(&mut self, len: usize, opts2: u32) {
        self.set(TX_FS | TX_LS | (len as u32 & TX_LEN_MASK), opts2);
    }

    /// Describes a frame of `len` bytes the chip sends as the large send `ls`.
    pub fn set_large_send(&mut self, len: usize, ls: &LargeSend) {
        self.set(
            TX_FS | TX_LS | ls.opts1 | (len as u32 & TX_LEN_MASK),
            ls.opts2,
        );
    }

    fn set(&mut self, opts1: u32, opts2: u32) {
        let b = self.buf.as_mut();
        b[..4].copy_from_slice(&opts1.to_le_bytes());
        b[4..8].copy_from_slice(&opts2.to_le_bytes());
    }
}

/// Room for one frame at the batch's end, reserved by [`TxQueue::reserve`]: the frame is written
/// into [`Slot::frame`] and joins the batch with [`Slot::commit`] (dropped uncommitted, the
/// batch stays as it was).
pub struct Slot<'q> {
    queue: &'q mut TxQueue,
    /// Offset of the descriptor.
    at: usize,
    len: usize,
    sending: Sending,
}

impl Slot<'_> {
    /// The frame's bytes, to write.
    pub fn frame(&mut self) -> &mut [u8] {
        let start = self.at + TX_DESC_LEN;
        &mut self.queue.buf[start..start + self.len]
    }

    /// Adds the written frame to the batch behind its descriptor, which asks the chip for the
    /// frame's TCP or UDP checksum ([`offload::tx_request`]) or for its large send
    /// ([`offload::large_send_request`]). A large-send frame that needs no segmenting, or
    /// cannot be segmented, goes whole if it fits [`MAX_FRAME`]; otherwise it is dropped.
    pub fn commit(self) -> Result<(), Unsegmentable> {
        let (at, len) = (self.at, self.len);
        let q = self.queue;
        let (desc, rest) = q.buf[at..].split_at_mut(TX_DESC_LEN);
        let frame = &mut rest[..len];
        let mut desc = TxDescriptor { buf: desc };
        let large = match self.sending {
            Sending::LargeSend(mss) => offload::large_send_request(frame, mss),
            Sending::Whole => None,
        };
        let (frames, bytes) = match large {
            Some(ls) => {
                desc.set_large_send(len, &ls);
                (ls.segments, ls.wire_bytes)
            }
            None if len <= MAX_FRAME => {
                desc.set_whole_frame(len, offload::tx_request(frame));
                (1, len as u64)
            }
            None => return Err(Unsegmentable),
        };
        q.buf[q.len..at].fill(0);
        q.len = at + TX_DESC_LEN + len;
        q.frames += frames;
        q.bytes += bytes;
        Ok(())
    }
}

/// The batch being filled plus the transfer in flight, kept until it completes so that it can
/// be sent once more after the endpoint's halt was cleared.
pub struct TxQueue {
    buf: [u8; TX_BUF_SIZE],
    len: usize,
    frames: u64,
    bytes: u64,
    flight: [u8; TX_BUF_SIZE],
    flight_len: usize,
    /// The transfer in flight is already the retry after a STALL.
    retried: bool,
    in_flight_frames: u64,
    in_flight_bytes: u64,
}

impl Default for TxQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl TxQueue {
    /// An empty queue.
    pub const fn new() -> Self {
        Self {
            buf: [0; TX_BUF_SIZE],
            len: 0,
            frames: 0,
            bytes: 0,
            flight: [0; TX_BUF_SIZE],
            flight_len: 0,
            retried: false,
            in_flight_frames: 0,
            in_flight_bytes: 0,
        }
    }

    /// True when a frame of `len` bytes fits into the batch.
    pub fn has_room_for(&self, len: usize) -> bool {
        self.len.next_multiple_of(TX_ALIGN) + TX_DESC_LEN + len <= TX_BUF_SIZE
    }

    /// True when the largest frame fits, a large send of [`MAX_LARGE_SEND`] bytes.
    pub fn has_room(&self) -> bool {
        self.has_room_for(MAX_LARGE_SEND)
    }

    /// Reserves room for a frame of `len` bytes to go out as `sending`.
    pub fn reserve(&mut self, len: usize, sending: Sending) -> Result<Slot<'_>, TxError> {
        let max = match sending {
            Sending::Whole => MAX_FRAME,
            Sending::LargeSend(_) => MAX_LARGE_SEND,
        };
        if len == 0 || len > max {
            return Err(TxError::BadLength);
        }
        if !self.has_room_for(len) {
            return Err(TxError::Full);
        }
        Ok(Slot {
            at: self.len.next_multiple_of(TX_ALIGN),
            queue: self,
            len,
            sending,
        })
    }

    /// Appends a whole frame of `len` bytes that `write` writes (see [`Slot::commit`]).
    /// Refused, `write` is handed back uncalled.
    pub fn push<R, W: FnOnce(&mut [u8]) -> R>(
        &mut self,
        len: usize,
        write: W,
    ) -> Result<R, (TxError, W)> {
        let mut slot = match self.reserve(len, Sending::Whole) {
            Ok(slot) => slot,
            Err(e) => return Err((e, write)),
        };
        let result = write(slot.frame());
        // A whole frame of at most MAX_FRAME bytes always commits.
        let _ = slot.commit();
        Ok(result)
    }

    /// Drops the batch and forgets the transfer in flight (the device went away); returns the
    /// frames lost.
    pub fn clear(&mut self) -> u64 {
        let lost = self.frames + self.in_flight_frames;
        self.len = 0;
        self.frames = 0;
        self.bytes = 0;
        self.flight_len = 0;
        self.retried = false;
        self.in_flight_frames = 0;
        self.in_flight_bytes = 0;
        lost
    }

    /// After a STALL: clears the endpoint's halt and sends the transfer once more. True when
    /// the retry is in flight.
    fn retry_after_stall<H: UsbHost>(&mut self, host: &mut H, pipe: &Pipe) -> bool {
        if self.retried {
            return false;
        }
        self.retried = true;
        if let Err(e) = host.clear_halt(*pipe) {
            log::warn!("rtl8152: clearing the bulk OUT halt failed: {e:?}");
            return false;
        }
        host.submit_out(pipe, &self.flight[..self.flight_len])
            .is_ok()
    }

    /// Accounts for the transfer in flight and submits the batch when the pipe is idle.
    pub fn flush<H: UsbHost>(&mut self, host: &mut H, pipe: &Pipe, stats: &mut Counters) {
        if self.in_flight_frames > 0 || self.len > 0 {
            match host.poll_out(pipe) {
                Poll::Pending => return,
                Poll::Ready(Err(UsbError::Stall))
                    if self.in_flight_frames > 0 && self.retry_after_stall(host, pipe) =>
                {
                    log::info!("rtl8152: bulk OUT stalled; halt cleared, transfer resent");
                    return;
                }
                Poll::Ready(Ok(())) => {
                    stats.tx_frames += self.in_flight_frames;
                    stats.tx_bytes += self.in_flight_bytes;
                }
                Poll::Ready(Err(e)) => {
                    log::warn!(
                        "rtl8152: bulk OUT failed: {e:?}, {} frames lost",
                        self.in_flight_frames
                    );
                    stats.tx_errors += 1;
                    stats.tx_dropped += self.in_flight_frames;
                }
            }
            self.in_flight_frames = 0;
            self.in_flight_bytes = 0;
        }
        if self.len == 0 {
            return;
        }
        self.flight[..self.len].copy_from_slice(&self.buf[..self.len]);
        self.flight_len = self.len;
        self.retried = false;
        match host.submit_out(pipe, &self.flight[..self.flight_len]) {
            Ok(()) => {
                self.in_flight_frames = self.frames;
                self.in_flight_bytes = self.bytes;
            }
            Err(UsbError::Busy) => return,
            Err(e) => {
                log::warn!(
                    "rtl8152: bulk OUT submit failed: {e:?}, {} frames lost",
                    self.frames
                );
                stats.tx_errors += 1;
                stats.tx_dropped += self.frames;
            }
        }
        self.len = 0;
        self.frames = 0;
        self.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_bits() {
        let mut b = [0xffu8; 8];
        TxDescriptor { buf: &mut b[..] }.set_whole_frame(1514, 0);
        assert_eq!(b, [0xea, 0x05, 0x00, 0xc0, 0, 0, 0, 0]);
        let d = TxDescriptor::new_checked(&b[..]).unwrap();
        assert!(d.is_whole_frame());
        assert_eq!(d.frame_len(), 1514);
        assert!(TxDescriptor::new_checked(&b[..7]).is_none());
        TxDescriptor { buf: &mut b[..] }.set_whole_frame(60, offload::TX_TCP_CS | 1);
        assert_eq!(b, [60, 0, 0, 0xc0, 1, 0, 0, 0x40]);
    }

    #[test]
    fn batch_aligns_each_descriptor_and_fills_up() {
        let mut q = TxQueue::new();
        assert!(q.push(61, |f| f.fill(1)).is_ok());
        assert!(q.push(60, |f| f.fill(2)).is_ok());
        assert_eq!(q.len, 8 + 61 + 3 + 8 + 60);
        let second = TxDescriptor::new_checked(&q.buf[72..]).unwrap();
        assert_eq!(second.frame_len(), 60);
        assert_eq!(second.opts2(), 0, "not IPv4: no offload");
        let tcp = offload::tests::tcp_frame(b"x");
        let at = q.len.next_multiple_of(TX_ALIGN);
        assert!(q.push(tcp.len(), |f| f.copy_from_slice(&tcp)).is_ok());
        let third = TxDescriptor::new_checked(&q.buf[at..]).unwrap();
        assert_ne!(third.opts2() & offload::TX_TCP_CS, 0);
        assert_eq!(q.push(0, |_| ()).map_err(|e| e.0), Err(TxError::BadLength));
        assert_eq!(
            q.push(1515, |_| ()).map_err(|e| e.0),
            Err(TxError::BadLength)
        );
        let mut n = 3;
        while q.push(MAX_FRAME, |_| ()).is_ok() {
            n += 1;
            assert!(n < 100);
        }
        assert_eq!(
            q.push(MAX_FRAME, |_| ()).map_err(|e| e.0),
            Err(TxError::Full)
        );
        assert!(!q.has_room());
        assert!(n >= MAX_BURST);
    }

    #[test]
    fn two_largest_frames_share_a_batch_and_a_token_always_has_room_for_one() {
        let mut q = TxQueue::new();
        let tcp = offload::tests::tcp_frame(&[7; MAX_LARGE_SEND - 54]);
        for _ in 0..2 {
            assert!(q.has_room());
            let mut slot = q.reserve(tcp.len(), Sending::LargeSend(1460)).unwrap();
            slot.frame().copy_from_slice(&tcp);
            slot.commit().unwrap();
        }
        assert!(!q.has_room());
        assert_eq!(q.frames, 2 * 6, "8126 payload bytes are 6 segments each");
        assert_eq!(
            q.reserve(MAX_LARGE_SEND + 1, Sending::LargeSend(1460))
                .err(),
            Some(TxError::BadLength)
        );
        // An uncommitted slot leaves the batch as it was.
        let mut q = TxQueue::new();
        q.reserve(100, Sending::Whole).unwrap().frame().fill(0xff);
        assert_eq!((q.len, q.frames), (0, 0));
        // A large send whose payload fits one segment goes whole, with checksum offload.
        let small = offload::tests::tcp_frame(b"fits one segment");
        let mut slot = q.reserve(small.len(), Sending::LargeSend(1460)).unwrap();
        slot.frame().copy_from_slice(&small);
        slot.commit().unwrap();
        let d = TxDescriptor::new_checked(&q.buf[..]).unwrap();
        assert_eq!(d.large_send(), None);
        assert_ne!(d.opts2() & offload::TX_TCP_CS, 0);
        // An MSS beyond what a frame holds is lowered to fit.
        let mut slot = q.reserve(tcp.len(), Sending::LargeSend(2000)).unwrap();
        slot.frame().copy_from_slice(&tcp);
        slot.commit().unwrap();
        let d = TxDescriptor::new_checked(&q.buf[small.len() + 8 + 2..]).unwrap();
        assert_eq!(d.large_send(), Some((34, 1460)));
    }
}
