//! Host-side devices for tests and benchmarks (feature `std`): an in-memory Ethernet wire with
//! two ends, a middleware that reorders frames (smoltcp's `FaultInjector` drops and corrupts
//! but never reorders), and smoltcp's TAP device for tests against Linux.

#[cfg(target_os = "linux")]
pub use smoltcp::phy::{wait, TunTapInterface};

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::vec::Vec;

use smoltcp::phy::{Device, DeviceCapabilities, Medium, RxToken, TxToken};
use smoltcp::time::Instant;

/// Largest Ethernet frame carried (1500-byte MTU plus the 14-byte header).
pub const FRAME_MAX: usize = 1514;
/// Frames a direction of the wire queues before it drops new ones (like a full NIC ring).
pub const WIRE_QUEUE: usize = 256;

type Queue = Arc<Mutex<VecDeque<Vec<u8>>>>;

/// One end of an in-memory Ethernet wire.
#[derive(Debug)]
pub struct WireEnd {
    rx: Queue,
    tx: Queue,
}

/// A wire with two ends: what one end transmits, the other receives.
pub fn wire() -> (WireEnd, WireEnd) {
    let a: Queue = Arc::default();
    let b: Queue = Arc::default();
    (
        WireEnd {
            rx: a.clone(),
            tx: b.clone(),
        },
        WireEnd { rx: b, tx: a },
    )
}

impl WireEnd {
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

/// Room for one frame on a queue.
pub struct QueueTx<'a>(&'a Queue);

impl TxToken for QueueTx<'_> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let mut frame = vec![0u8; len];
        let result = f(&mut frame);
        let mut queue = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if queue.len() < WIRE_QUEUE {
            queue.push_back(frame);
        }
        result
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
        Some((FrameRx(frame), QueueTx(&self.tx)))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<Self::TxToken<'_>> {
        Some(QueueTx(&self.tx))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = FRAME_MAX;
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
