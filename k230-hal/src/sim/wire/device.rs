//! A smoltcp `Device` straight on a [`Wire`] (no NIC model in between): a stack on a TAP
//! device, for instance. Frames are received into one buffer and built in another, both kept,
//! so nothing is allocated per frame (smoltcp's own `TunTapInterface` allocates a vector for
//! every frame it sends and receives). On a wire with offloads ([`Wire::offloads`], a TAP) the
//! device offloads what a NIC with checksum and TCP segmentation offload would: TCP and UDP
//! checksums on the way out, and (feature `large-send`) large TCP frames; on one that vouches
//! for received checksums ([`Wire::vouch_checksums`]), the device checks only the others (as
//! the RTL8152 driver checks what its chip did not), drops and counts a wrong one, and the stack
//! checks none.

use smoltcp::phy::{self, Checksum, Device, DeviceCapabilities, Medium, PacketMeta};
use smoltcp::time::Instant;

use super::Wire;
use crate::eth::rtl8152::offload;

/// The largest frame handled: a 1500-byte MTU and the Ethernet header.
const FRAME_MAX: usize = 1514;

/// A smoltcp Ethernet device over `W`.
#[derive(Debug)]
pub struct WireDevice<W> {
    wire: W,
    rx: Vec<u8>,
    tx: Vec<u8>,
    /// The wire vouches for some received checksums: the device checks the rest.
    checks: bool,
    bad_checksums: u64,
}

impl<W: Wire> WireDevice<W> {
    /// A device sending and receiving on `wire` (asking it to vouch for received checksums).
    pub fn new(mut wire: W) -> Self {
        let tx = wire.offloads().unwrap_or(FRAME_MAX).max(FRAME_MAX);
        let checks = wire.vouch_checksums().unwrap_or_else(|e| {
            log::warn!("wire device: checksums stay the stack's: {e}");
            false
        });
        Self {
            wire,
            rx: Vec::with_capacity(FRAME_MAX),
            tx: vec![0; tx],
            checks,
            bad_checksums: 0,
        }
    }

    /// The wire.
    pub fn wire(&self) -> &W {
        &self.wire
    }

    /// Received frames dropped for a wrong TCP or UDP checksum (only the device checks, on a
    /// wire that vouches for checksums).
    pub fn bad_checksums(&self) -> u64 {
        self.bad_checksums
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
        loop {
            self.rx.clear();
            match self.wire.recv_vouched(&mut self.rx) {
                Ok(Some((_, vouched))) => {
                    if !self.checks || vouched || offload::software_check(&self.rx) {
                        break;
                    }
                    self.bad_checksums += 1;
                }
                Ok(None) => return None,
                Err(e) => {
                    log::warn!("wire device: recv: {e}");
                    return None;
                }
            }
        }
        Some((
            RxToken(&self.rx),
            TxToken {
                wire: &mut self.wire,
                buf: &mut self.tx,
                meta: PacketMeta::default(),
            },
        ))
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
        // What the stack still does of the TCP and UDP checksums: filling them unless the wire
        // does, checking them unless the device does.
        let ours = match (self.wire.offloads().is_some(), self.checks) {
            (false, false) => Checksum::Both,
            (true, false) => Checksum::Rx,
            (false, true) => Checksum::Tx,
            (true, true) => Checksum::None,
        };
        caps.checksum.tcp = ours;
        caps.checksum.udp = ours;
        if let Some(large) = self.wire.offloads() {
            offer_large(&mut caps, large);
        }
        caps
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eth::rtl8152::offload::tests::tcp_frame;
    use crate::sim::wire::pair::pair;
    use smoltcp::phy::{RxToken as _, TxToken as _};
    use std::collections::VecDeque;
    use std::io;

    /// A wire that vouches for the checksums of the frames marked so.
    struct Vouching(VecDeque<(Vec<u8>, bool)>);

    impl Wire for Vouching {
        fn send(&mut self, _frame: &[u8]) -> io::Result<()> {
            Ok(())
        }

        fn recv_into(&mut self, into: &mut Vec<u8>) -> io::Result<Option<usize>> {
            Ok(self.recv_vouched(into)?.map(|(n, _)| n))
        }

        fn vouch_checksums(&mut self) -> io::Result<bool> {
            Ok(true)
        }

        fn recv_vouched(&mut self, into: &mut Vec<u8>) -> io::Result<Option<(usize, bool)>> {
            Ok(self.0.pop_front().map(|(frame, vouched)| {
                into.extend_from_slice(&frame);
                (frame.len(), vouched)
            }))
        }
    }

    #[test]
    fn on_a_wire_that_vouches_for_checksums_the_device_checks_the_others_and_the_stack_none() {
        let good = tcp_frame(b"good");
        let mut bad = tcp_frame(b"bad!");
        // The TCP checksum's low byte (Ethernet 14 + IPv4 20 + 17).
        bad[51] ^= 0xff;
        let mut dev = WireDevice::new(Vouching(VecDeque::from([
            (bad.clone(), false),
            (good.clone(), false),
            (bad.clone(), true),
        ])));
        // The stack fills outgoing checksums (this wire has no offloads) and checks none.
        let caps = dev.capabilities().checksum;
        assert!(caps.tcp.tx() && !caps.tcp.rx() && caps.udp.tx() && !caps.udp.rx());
        let mut got = Vec::new();
        while let Some((rx, _)) = dev.receive(Instant::ZERO) {
            got.push(rx.consume(|f| f.to_vec()));
        }
        // The unvouched wrong one is dropped and counted; the vouched one is the sender's word.
        assert_eq!(got, vec![good, bad]);
        assert_eq!(dev.bad_checksums(), 1);
    }

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
