//! Host-side devices for tests and benchmarks (feature `std`): an in-memory Ethernet wire with
//! two ends (either of which may offload checksums and TCP segmentation as a NIC does), a
//! middleware that reorders frames (smoltcp's `FaultInjector` drops and corrupts but never
//! reorders), and smoltcp's TAP device for tests against Linux.

#[cfg(target_os = "linux")]
pub use smoltcp::phy::{wait, TunTapInterface};

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::vec::Vec;

use smoltcp::phy::{
    Checksum, ChecksumCapabilities, Device, DeviceCapabilities, Medium, PacketMeta, RxToken,
    TxToken,
};
use smoltcp::time::Instant;

use crate::checksum;
use crate::segment::Large;

/// Largest Ethernet frame carried (1500-byte MTU plus the 14-byte header).
pub const FRAME_MAX: usize = 1514;
/// Frames a direction of the wire queues before it drops new ones (like a full NIC ring).
pub const WIRE_QUEUE: usize = 256;
/// The largest frame an offloading end takes to cut into TCP segments (the RTL8152's 16 KiB
/// transfer buffer less its descriptor, rounded down).
pub const OFFLOAD_LARGE: usize = 16_000;

type Queue = Arc<Mutex<VecDeque<Vec<u8>>>>;

/// One end of an in-memory Ethernet wire.
#[derive(Debug)]
pub struct WireEnd {
    rx: Queue,
    tx: Queue,
    /// Whether this end offloads, and how many large frames it cut.
    offload: Option<u64>,
}

/// A wire with two ends: what one end transmits, the other receives.
pub fn wire() -> (WireEnd, WireEnd) {
    let a: Queue = Arc::default();
    let b: Queue = Arc::default();
    (
        WireEnd {
            rx: a.clone(),
            tx: b.clone(),
            offload: None,
        },
        WireEnd {
            rx: b,
            tx: a,
            offload: None,
        },
    )
}

impl WireEnd {
    /// This end as a NIC with checksum and TCP segmentation offload: it fills the TCP and UDP
    /// checksums of what it sends and (with feature `large-send`) cuts large TCP frames (up to
    /// [`OFFLOAD_LARGE`] bytes) into segments.
    pub fn offloading(self) -> Self {
        Self {
            offload: Some(0),
            ..self
        }
    }

    /// Large frames this end cut into segments (`None` without offloads).
    pub fn large_frames(&self) -> Option<u64> {
        self.offload
    }

    /// Frames waiting to be received at this end.
    pub fn pending(&self) -> usize {
        self.rx.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Frames this end sent that the other end has not received yet.
    pub fn in_flight(&self) -> usize {
        self.tx.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

/// A received frame.
pub struct FrameRx(Vec<u8>);

impl RxToken for FrameRx {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        f(&self.0)
    }
}

/// Room for one frame (or, at an offloading end, a large frame's segments) on a queue.
pub struct QueueTx<'a> {
    queue: &'a Queue,
    /// The large frames cut, at an offloading end.
    offload: Option<&'a mut u64>,
    meta: PacketMeta,
}

impl TxToken for QueueTx<'_> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let mut frame = vec![0u8; len];
        let result = f(&mut frame);
        let mut frames = Vec::new();
        let offloading = self.offload.is_some();
        match (self.offload, crate::segment::requested(&self.meta)) {
            (Some(large_frames), Some(mss)) => {
                // A large frame that is no TCP frame is lost, as a NIC would drop it.
                if let Some(large) = Large::new(&frame, mss) {
                    *large_frames += 1;
                    for index in 0..large.count() {
                        let mut segment = vec![0u8; large.len(index)];
                        large.write(index, &mut segment);
                        frames.push(segment);
                    }
                }
            }
            _ => frames.push(frame),
        }
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        for mut frame in frames {
            if offloading {
                checksum::fill(&mut frame, &ChecksumCapabilities::default());
            }
            if queue.len() < WIRE_QUEUE {
                queue.push_back(frame);
            }
        }
        result
    }

    fn set_meta(&mut self, meta: PacketMeta) {
        self.meta = meta;
    }
}

impl WireEnd {
    /// Room for a frame on the sending queue.
    fn tx_token(&mut self) -> QueueTx<'_> {
        QueueTx {
            queue: &self.tx,
            offload: self.offload.as_mut(),
            meta: PacketMeta::default(),
        }
    }
}

impl Device for WireEnd {
    type RxToken<'a> = FrameRx;
    type TxToken<'a> = QueueTx<'a>;

    fn receive(&mut self, _timestamp: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let frame = self
            .rx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front()?;
        Some((FrameRx(frame), self.tx_token()))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<Self::TxToken<'_>> {
        Some(self.tx_token())
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = FRAME_MAX;
        if self.offload.is_some() {
            caps.checksum.tcp = Checksum::Rx;
            caps.checksum.udp = Checksum::Rx;
            crate::segment::offer(&mut caps, Some(OFFLOAD_LARGE));
        }
        caps
    }
}

/// Reorders received frames: with probability `percent`, the next two waiting frames are
/// swapped before the first is delivered.
pub struct Reorder<D: Device> {
    inner: D,
    held: VecDeque<Vec<u8>>,
    percent: u8,
    state: u64,
}

impl<D: Device> Reorder<D> {
    /// Wraps `inner`; `seed` drives the choices.
    pub fn new(inner: D, percent: u8, seed: u64) -> Self {
        Self {
            inner,
            held: VecDeque::new(),
            percent: percent.min(100),
            state: seed | 1,
        }
    }

    /// The wrapped device.
    pub fn inner(&self) -> &D {
        &self.inner
    }

    /// A pseudo-random percentage (xorshift64).
    fn roll(&mut self) -> u8 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        u8::try_from(self.state % 100).unwrap_or(0)
    }
}

impl<D: Device> Device for Reorder<D> {
    type RxToken<'a>
        = FrameRx
    where
        Self: 'a;
    type TxToken<'a>
        = D::TxToken<'a>
    where
        Self: 'a;

    fn receive(&mut self, timestamp: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        while self.held.len() < WIRE_QUEUE {
            let Some((rx, _)) = self.inner.receive(timestamp) else {
                break;
            };
            let frame = rx.consume(|bytes| bytes.to_vec());
            self.held.push_back(frame);
        }
        if self.held.len() >= 2 && self.roll() < self.percent {
            self.held.swap(0, 1);
        }
        let frame = self.held.pop_front()?;
        match self.inner.transmit(timestamp) {
            Some(tx) => Some((FrameRx(frame), tx)),
            None => {
                self.held.push_front(frame);
                None
            }
        }
    }

    fn transmit(&mut self, timestamp: Instant) -> Option<Self::TxToken<'_>> {
        self.inner.transmit(timestamp)
    }

    fn capabilities(&self) -> DeviceCapabilities {
        self.inner.capabilities()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_is_in_flight_at_the_sender_and_pending_at_the_receiver() {
        let (mut a, mut b) = wire();
        let now = Instant::from_micros(0);
        a.transmit(now)
            .expect("room")
            .consume(3, |f| f.copy_from_slice(b"abc"));
        assert_eq!((a.in_flight(), b.pending()), (1, 1));
        assert_eq!((a.pending(), b.in_flight()), (0, 0));
        let (rx, _) = b.receive(now).expect("the frame");
        assert_eq!(rx.consume(|f| f.to_vec()), b"abc");
        assert_eq!((a.in_flight(), b.pending()), (0, 0));
    }
}
