//! A smoltcp `Device` straight on a [`Wire`] (no NIC model in between): a stack on a TAP
//! device, for instance. Frames are received into one buffer and built in another, both kept,
//! so nothing is allocated per frame (smoltcp's own `TunTapInterface` allocates a vector for
//! every frame it sends and receives). On a wire with offloads ([`Wire::offloads`], a TAP) the
//! device offloads what a NIC with checksum and TCP segmentation offload would: TCP and UDP
//! checksums on the way out, and (feature `large-send`) large TCP frames.

use smoltcp::phy::{self, Checksum, Device, DeviceCapabilities, Medium, PacketMeta};
use smoltcp::time::Instant;

use super::Wire;

/// The largest frame handled: a 1500-byte MTU and the Ethernet header.
const FRAME_MAX: usize = 1514;

/// A smoltcp Ethernet device over `W`.
#[derive(Debug)]
pub struct WireDevice<W> {
    wire: W,
    rx: Vec<u8>,
    tx: Vec<u8>,
}

impl<W: Wire> WireDevice<W> {
    /// A device sending and receiving on `wire`.
    pub fn new(wire: W) -> Self {
        let tx = wire.offloads().unwrap_or(FRAME_MAX).max(FRAME_MAX);
        Self {
            wire,
            rx: Vec::with_capacity(FRAME_MAX),
            tx: vec![0; tx],
        }
    }

    /// The wire.
    pub fn wire(&self) -> &W {
        &self.wire
    }
}

/// The segment size the stack asks a large frame to be cut into (feature `large-send`).
fn segment_size(meta: &PacketMeta) -> Option<std::num::NonZeroU16> {
    #[cfg(feature = "large-send")]
    return meta.segmentation_offload_size;
    #[cfg(not(feature = "large-send"))]
    {
        let _ = meta;
        None
    }
}

/// Offers the stack large frames of up to `large` bytes (feature `large-send`; without it the
/// wire's checksum offload alone is used).
fn offer_large(caps: &mut DeviceCapabilities, large: usize) {
    #[cfg(feature = "large-send")]
    {
        caps.segmentation.tcpv4 = std::num::NonZeroUsize::new(large);
    }
    #[cfg(not(feature = "large-send"))]
    let _ = (caps, large);
}

/// A received frame, in the device's receive buffer.
pub struct RxToken<'a>(&'a [u8]);

/// Room for one frame, in the device's transmit buffer.
pub struct TxToken<'a, W> {
    wire: &'a mut W,
    buf: &'a mut [u8],
    meta: PacketMeta,
}

impl phy::RxToken for RxToken<'_> {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        f(self.0)
    }
}

impl<W: Wire> phy::TxToken for TxToken<'_, W> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let len = len.min(self.buf.len());
        let frame = &mut self.buf[..len];
        let result = f(frame);
        let sent = match self.wire.offloads() {
            Some(_) => self.wire.send_offloaded(frame, segment_size(&self.meta)),
            None => self.wire.send(frame),
        };
        if let Err(e) = sent {
            // A full wire loses the frame, as a busy cable would; TCP sends it again.
            log::debug!("wire device: send: {e}");
        }
        result
    }

    fn set_meta(&mut self, meta: PacketMeta) {
        self.meta = meta;
    }
}

impl<W: Wire> Device for WireDevice<W> {
    type RxToken<'a>
        = RxToken<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = TxToken<'a, W>
    where
        Self: 'a;

    fn receive(&mut self, _: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        self.rx.clear();
        match self.wire.recv_into(&mut self.rx) {
            Ok(Some(_)) => Some((
                RxToken(&self.rx),
                TxToken {
                    wire: &mut self.wire,
                    buf: &mut self.tx,
                    meta: PacketMeta::default(),
                },
            )),
            Ok(None) => None,
            Err(e) => {
                log::warn!("wire device: recv: {e}");
                None
            }
        }
    }

    fn transmit(&mut self, _: Instant) -> Option<Self::TxToken<'_>> {
        Some(TxToken {
            wire: &mut self.wire,
            buf: &mut self.tx,
            meta: PacketMeta::default(),
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = FRAME_MAX;
        if let Some(large) = self.wire.offloads() {
            // The wire fills outgoing checksums; incoming ones are checked by the stack.
            caps.checksum.tcp = Checksum::Rx;
            caps.checksum.udp = Checksum::Rx;
            offer_large(&mut caps, large);
        }
        caps
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::wire::pair::pair;
    use smoltcp::phy::{RxToken as _, TxToken as _};

    #[test]
    fn frames_cross_both_ways_through_the_kept_buffers() {
        let (a, mut b) = pair(4);
        let mut dev = WireDevice::new(a);
        assert!(dev.receive(Instant::ZERO).is_none());
        dev.transmit(Instant::ZERO)
            .unwrap()
            .consume(60, |buf| buf.fill(0x11));
        assert_eq!(b.recv().unwrap(), Some(vec![0x11; 60]));
        b.send(&[0x22; 1514]).unwrap();
        b.send(&[0x33; 42]).unwrap();
        let (rx, _) = dev.receive(Instant::ZERO).unwrap();
        assert_eq!(rx.consume(|f| f.to_vec()), vec![0x22; 1514]);
        let (rx, tx) = dev.receive(Instant::ZERO).unwrap();
        assert_eq!(rx.consume(|f| f.to_vec()), vec![0x33; 42]);
        // The reply token sends on the same wire.
        tx.consume(64, |buf| buf.fill(0x44));
        assert_eq!(b.recv().unwrap(), Some(vec![0x44; 64]));
        assert_eq!(dev.capabilities().max_transmission_unit, FRAME_MAX);
    }
}
