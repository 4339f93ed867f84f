//! The receive gate: a `Device` middleware that looks at each received frame before smoltcp
//! does, drops the SYNs a full listen backlog must not answer ([`crate::backlog`]) and notes TCP
//! RSTs, so that a socket closed by that frame can be reported as refused or reset, and UDP
//! datagrams, so that the stack can count the ones no socket took.
//!
//! Frames are read through smoltcp's checked `wire` views; anything that does not parse is
//! passed on untouched for smoltcp to judge.

use core::cell::Cell;
use core::net::SocketAddrV4;

use smoltcp::phy::{Device, DeviceCapabilities, RxToken};
use smoltcp::time::Instant;
use smoltcp::wire::{
    EthernetFrame, EthernetProtocol, IpProtocol, Ipv4Packet, TcpPacket, UdpPacket,
};

use crate::backlog::{admit_syn, ListenPools};

/// What a received frame is, as far as the gate cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Segment {
    /// Not a TCP segment the gate acts on.
    Other,
    /// A connection-opening SYN (SYN without ACK).
    Syn {
        /// Sender.
        src: SocketAddrV4,
        /// Destination.
        dst: SocketAddrV4,
    },
    /// A segment with RST set.
    Rst,
    /// A UDP datagram.
    Udp {
        /// Source port.
        src_port: u16,
        /// Destination.
        dst: SocketAddrV4,
        /// Payload bytes.
        len: usize,
    },
}

/// What the gate saw of one received frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Seen {
    /// The frame was a TCP RST.
    pub rst: bool,
    /// The frame was a SYN the gate dropped (full backlog).
    pub syn_dropped: bool,
    /// The frame was a UDP datagram: source port, destination, payload bytes.
    pub udp: Option<(u16, SocketAddrV4, usize)>,
}

/// Classifies an Ethernet frame.
pub fn classify(frame: &[u8]) -> Segment {
    let Ok(eth) = EthernetFrame::new_checked(frame) else {
        return Segment::Other;
    };
    if eth.ethertype() != EthernetProtocol::Ipv4 {
        return Segment::Other;
    }
    let Ok(ip) = Ipv4Packet::new_checked(eth.payload()) else {
        return Segment::Other;
    };
    if ip.frag_offset() != 0 || ip.more_frags() {
        return Segment::Other;
    }
    if ip.next_header() == IpProtocol::Udp {
        return match UdpPacket::new_checked(ip.payload()) {
            Ok(udp) => Segment::Udp {
                src_port: udp.src_port(),
                dst: SocketAddrV4::new(ip.dst_addr(), udp.dst_port()),
                len: udp.payload().len(),
            },
            Err(_) => Segment::Other,
        };
    }
    if ip.next_header() != IpProtocol::Tcp {
        return Segment::Other;
    }
    let Ok(tcp) = TcpPacket::new_checked(ip.payload()) else {
        return Segment::Other;
    };
    if tcp.rst() {
        Segment::Rst
    } else if tcp.syn() && !tcp.ack() {
        Segment::Syn {
            src: SocketAddrV4::new(ip.src_addr(), tcp.src_port()),
            dst: SocketAddrV4::new(ip.dst_addr(), tcp.dst_port()),
        }
    } else {
        Segment::Other
    }
}

/// Wraps the device for one ingress step.
pub struct Gate<'d, D: Device, P: ListenPools> {
    inner: &'d mut D,
    pools: &'d P,
    seen: &'d Cell<Seen>,
}

impl<'d, D: Device, P: ListenPools> Gate<'d, D, P> {
    /// Gates `inner` by the state of `pools`; notes in `seen` what the received frame was.
    pub fn new(inner: &'d mut D, pools: &'d P, seen: &'d Cell<Seen>) -> Self {
        Self { inner, pools, seen }
    }
}

/// A received frame on its way through the gate.
pub struct GateRx<'t, R: RxToken, P: ListenPools> {
    inner: R,
    pools: &'t P,
    seen: &'t Cell<Seen>,
}

impl<R: RxToken, P: ListenPools> RxToken for GateRx<'_, R, P> {
    fn consume<T, F>(self, f: F) -> T
    where
        F: FnOnce(&[u8]) -> T,
    {
        let pools = self.pools;
        let seen = self.seen;
        self.inner.consume(|frame| match classify(frame) {
            Segment::Syn { src, dst } if !admit_syn(pools, dst, src) => {
                log::debug!("backlog full: dropping SYN {src} -> {dst}");
                seen.set(Seen {
                    syn_dropped: true,
                    ..Seen::default()
                });
                // An empty frame fails smoltcp's Ethernet check and is dropped without reply.
                f(&[])
            }
            Segment::Rst => {
                seen.set(Seen {
                    rst: true,
                    ..Seen::default()
                });
                f(frame)
            }
            Segment::Udp { src_port, dst, len } => {
                seen.set(Seen {
                    udp: Some((src_port, dst, len)),
                    ..Seen::default()
                });
                f(frame)
            }
            Segment::Syn { .. } | Segment::Other => f(frame),
        })
    }

    fn meta(&self) -> smoltcp::phy::PacketMeta {
        self.inner.meta()
    }
}

impl<D: Device, P: ListenPools> Device for Gate<'_, D, P> {
    type RxToken<'a>
        = GateRx<'a, D::RxToken<'a>, P>
    where
        Self: 'a;
    type TxToken<'a>
        = D::TxToken<'a>
    where
        Self: 'a;

    fn receive(&mut self, timestamp: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let (rx, tx) = self.inner.receive(timestamp)?;
        let rx = GateRx {
            inner: rx,
            pools: self.pools,
            seen: self.seen,
        };
        Some((rx, tx))
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
    use crate::backlog::{MockListenPools, PoolState};
    use core::net::Ipv4Addr;
    use smoltcp::phy::{Loopback, Medium, TxToken};
    use smoltcp::wire::{
        EthernetAddress, EthernetRepr, IpAddress, Ipv4Repr, TcpControl, TcpRepr, TcpSeqNumber,
    };

    const SRC: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const DST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

    /// Builds an Ethernet/IPv4/TCP frame with the given control flag and ACK presence.
    fn frame(control: TcpControl, ack: bool) -> Vec<u8> {
        let tcp = TcpRepr {
            src_port: 40000,
            dst_port: 80,
            control,
            seq_number: TcpSeqNumber(1),
            ack_number: ack.then_some(TcpSeqNumber(5)),
            window_len: 1000,
            window_scale: None,
            max_seg_size: None,
            sack_permitted: false,
            sack_ranges: [None, None, None],
            timestamp: None,
            payload: &[],
        };
        let ip = Ipv4Repr {
            src_addr: SRC,
            dst_addr: DST,
            next_header: IpProtocol::Tcp,
            payload_len: tcp.buffer_len(),
            hop_limit: 64,
        };
        let eth = EthernetRepr {
            src_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
            dst_addr: EthernetAddress([2, 0, 0, 0, 0, 2]),
            ethertype: EthernetProtocol::Ipv4,
        };
        let mut buf = vec![0u8; eth.buffer_len() + ip.buffer_len() + tcp.buffer_len()];
        let mut e = EthernetFrame::new_unchecked(&mut buf[..]);
        eth.emit(&mut e);
        let mut i = Ipv4Packet::new_unchecked(e.payload_mut());
        ip.emit(&mut i, &smoltcp::phy::ChecksumCapabilities::default());
        let mut t = TcpPacket::new_unchecked(i.payload_mut());
        tcp.emit(
            &mut t,
            &IpAddress::Ipv4(SRC),
            &IpAddress::Ipv4(DST),
            &smoltcp::phy::ChecksumCapabilities::default(),
        );
        buf
    }

    #[test]
    fn classifies_syn_rst_and_the_rest() {
        assert_eq!(
            classify(&frame(TcpControl::Syn, false)),
            Segment::Syn {
                src: SocketAddrV4::new(SRC, 40000),
                dst: SocketAddrV4::new(DST, 80)
            }
        );
        assert_eq!(classify(&frame(TcpControl::Syn, true)), Segment::Other);
        assert_eq!(classify(&frame(TcpControl::Rst, false)), Segment::Rst);
        assert_eq!(classify(&frame(TcpControl::None, true)), Segment::Other);
    }

    #[test]
    fn classifies_udp_with_its_ports_and_length() {
        use smoltcp::wire::{UdpPacket, UdpRepr};
        let udp = UdpRepr {
            src_port: 5353,
            dst_port: 9,
        };
        let payload = [0xaa; 5];
        let ip = Ipv4Repr {
            src_addr: SRC,
            dst_addr: DST,
            next_header: IpProtocol::Udp,
            payload_len: udp.header_len() + payload.len(),
            hop_limit: 64,
        };
        let eth = EthernetRepr {
            src_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
            dst_addr: EthernetAddress([2, 0, 0, 0, 0, 2]),
            ethertype: EthernetProtocol::Ipv4,
        };
        let mut buf = vec![0u8; eth.buffer_len() + ip.buffer_len() + ip.payload_len];
        let mut e = EthernetFrame::new_unchecked(&mut buf[..]);
        eth.emit(&mut e);
        let checksums = smoltcp::phy::ChecksumCapabilities::default();
        let mut i = Ipv4Packet::new_unchecked(e.payload_mut());
        ip.emit(&mut i, &checksums);
        udp.emit(
            &mut UdpPacket::new_unchecked(i.payload_mut()),
            &IpAddress::Ipv4(SRC),
            &IpAddress::Ipv4(DST),
            payload.len(),
            |p| p.copy_from_slice(&payload),
            &checksums,
        );
        assert_eq!(
            classify(&buf),
            Segment::Udp {
                src_port: 5353,
                dst: SocketAddrV4::new(DST, 9),
                len: 5
            }
        );
        for len in 0..buf.len() {
            assert!(
                !matches!(classify(&buf[..len]), Segment::Udp { .. }),
                "length {len}"
            );
        }
    }

    #[test]
    fn short_or_hostile_frames_are_other() {
        let full = frame(TcpControl::Syn, false);
        for len in 0..full.len() {
            assert_eq!(classify(&full[..len]), Segment::Other, "length {len}");
        }
    }

    /// Pushes `frame` into a loopback device and returns what the gate hands to smoltcp.
    fn through_gate(frame: &[u8], pools: &MockListenPools, rst: &Cell<Seen>) -> Vec<u8> {
        let mut lo = Loopback::new(Medium::Ethernet);
        let tx = lo.transmit(Instant::ZERO).expect("loopback has room");
        tx.consume(frame.len(), |buf| buf.copy_from_slice(frame));
        let mut gate = Gate::new(&mut lo, pools, rst);
        let (rx, _tx) = gate.receive(Instant::ZERO).expect("frame queued");
        rx.consume(|seen| seen.to_vec())
    }

    #[test]
    fn gate_hides_syn_for_full_pool_and_notes_rst() {
        let rst = Cell::new(Seen::default());
        let mut full = MockListenPools::new();
        full.expect_pool_state().return_const(Some(PoolState {
            listening: false,
            serves_source: false,
        }));
        assert!(through_gate(&frame(TcpControl::Syn, false), &full, &rst).is_empty());
        assert!(!rst.get().rst);
        assert!(rst.get().syn_dropped);

        let mut open = MockListenPools::new();
        open.expect_pool_state().return_const(Some(PoolState {
            listening: true,
            serves_source: false,
        }));
        let syn = frame(TcpControl::Syn, false);
        assert_eq!(through_gate(&syn, &open, &rst), syn);

        let reset = frame(TcpControl::Rst, false);
        let none = MockListenPools::new();
        assert_eq!(through_gate(&reset, &none, &rst), reset);
        assert!(rst.get().rst);
    }
}
