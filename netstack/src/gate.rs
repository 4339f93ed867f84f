//! The receive gate: where each received frame goes ([`Route`]), decided before smoltcp sees it.
//!
//! - A SYN that a full listen backlog must not answer is dropped ([`crate::backlog`]).
//! - A SYN for a listener goes through an interface whose generator draws the connection's
//!   RFC 6528 initial sequence number ([`crate::scratch`]): smoltcp takes a listening socket's
//!   sequence number from the generator of the interface that processes the SYN.
//! - A DHCP server's message goes to the DHCP client, which has a socket set of its own (its
//!   transaction ids come from throwaway interfaces too).
//! - Everything else goes to the stack's interface and sockets.
//!
//! The gate also notes what the frame was ([`Seen`]): a TCP RST (so that a socket closed by it
//! is reported as refused or reset), a UDP datagram (so that the stack can count the ones no
//! socket took), an ARP message (the DHCP client's neighbour, [`crate::scratch`]).
//!
//! Frames are read through smoltcp's checked `wire` views; anything that does not parse is
//! passed on untouched for smoltcp to judge. [`OneFrame`] hands the frame to the interface
//! chosen, as a device holding that one frame.

use core::net::{Ipv4Addr, SocketAddrV4};

use smoltcp::phy::{Device, DeviceCapabilities, PacketMeta, RxToken, TxToken};
use smoltcp::time::Instant;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetFrame, EthernetProtocol, IpProtocol, Ipv4Packet,
    TcpPacket, UdpPacket, DHCP_CLIENT_PORT, DHCP_SERVER_PORT,
};

use crate::backlog::{admit_syn, ListenPools, SynFate};

/// A host on the link: its IPv4 address and MAC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Neighbour {
    /// IPv4 address.
    pub ip: Ipv4Addr,
    /// Ethernet address.
    pub mac: [u8; 6],
}

/// What a received frame is, as far as the gate cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Segment {
    /// Not a frame the gate acts on.
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
    /// An ARP request or reply (smoltcp learns the sender from it when it is aimed at us).
    Arp {
        /// The sender's addresses.
        sender: Neighbour,
        /// The address asked for or answered to.
        target: Ipv4Addr,
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
    /// The frame was an ARP message: its sender and target address.
    pub arp: Option<(Neighbour, Ipv4Addr)>,
}

/// Where a received frame goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// To the stack's interface and sockets.
    Stack,
    /// A SYN that a listener's pool takes, for the connection from `remote` to `local`: through
    /// an interface that draws its initial sequence number.
    Listener {
        /// The listener's side (the SYN's destination).
        local: SocketAddrV4,
        /// The connecting side (the SYN's source).
        remote: SocketAddrV4,
    },
    /// A DHCP server's message, to the running DHCP client.
    Dhcp,
    /// Nowhere: a SYN that a full backlog must not answer.
    Drop,
}

/// Classifies an Ethernet frame.
pub fn classify(frame: &[u8]) -> Segment {
    let Ok(eth) = EthernetFrame::new_checked(frame) else {
        return Segment::Other;
    };
    match eth.ethertype() {
        EthernetProtocol::Ipv4 => {}
        EthernetProtocol::Arp => return classify_arp(eth.payload()),
        _ => return Segment::Other,
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

/// Classifies the payload of an ARP frame.
fn classify_arp(payload: &[u8]) -> Segment {
    let Ok(packet) = ArpPacket::new_checked(payload) else {
        return Segment::Other;
    };
    match ArpRepr::parse(&packet) {
        Ok(ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Request | ArpOperation::Reply,
            source_hardware_addr,
            source_protocol_addr,
            target_protocol_addr,
            ..
        }) => Segment::Arp {
            sender: Neighbour {
                ip: source_protocol_addr,
                mac: source_hardware_addr.0,
            },
            target: target_protocol_addr,
        },
        _ => Segment::Other,
    }
}

/// Where `frame` goes and what it was; `dhcp_client` tells whether the DHCP client runs.
pub fn judge(frame: &[u8], pools: &impl ListenPools, dhcp_client: bool) -> (Seen, Route) {
    let mut seen = Seen::default();
    let route = match classify(frame) {
        Segment::Syn { src, dst } => match admit_syn(pools, dst, src) {
            SynFate::Refused => Route::Stack,
            SynFate::Admitted => Route::Listener {
                local: dst,
                remote: src,
            },
            SynFate::Dropped => {
                log::debug!("backlog full: dropping SYN {src} -> {dst}");
                seen.syn_dropped = true;
                Route::Drop
            }
        },
        Segment::Rst => {
            seen.rst = true;
            Route::Stack
        }
        Segment::Udp { src_port, dst, len } => {
            seen.udp = Some((src_port, dst, len));
            if dhcp_client && src_port == DHCP_SERVER_PORT && dst.port() == DHCP_CLIENT_PORT {
                Route::Dhcp
            } else {
                Route::Stack
            }
        }
        Segment::Arp { sender, target } => {
            seen.arp = Some((sender, target));
            Route::Stack
        }
        Segment::Other => Route::Stack,
    };
    (seen, route)
}

/// A device holding one received frame (and the token to answer it), for the one interface
/// that processes it; it has nothing more to receive and nothing else to send.
pub struct OneFrame<'f, T> {
    frame: Option<&'f [u8]>,
    meta: PacketMeta,
    tx: Option<T>,
    caps: &'f DeviceCapabilities,
}

impl<'f, T: TxToken> OneFrame<'f, T> {
    /// `frame`, received with `meta` on a device of `caps`, answered through `tx`.
    pub fn new(frame: &'f [u8], meta: PacketMeta, tx: T, caps: &'f DeviceCapabilities) -> Self {
        Self {
            frame: Some(frame),
            meta,
            tx: Some(tx),
            caps,
        }
    }
}

/// The frame a [`OneFrame`] holds.
pub struct Held<'f> {
    frame: &'f [u8],
    meta: PacketMeta,
}

impl RxToken for Held<'_> {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        f(self.frame)
    }

    fn meta(&self) -> PacketMeta {
        self.meta
    }
}

impl<'f, T: TxToken> Device for OneFrame<'f, T> {
    type RxToken<'a>
        = Held<'f>
    where
        Self: 'a;
    type TxToken<'a>
        = T
    where
        Self: 'a;

    fn receive(&mut self, _timestamp: Instant) -> Option<(Held<'f>, T)> {
        if self.frame.is_none() || self.tx.is_none() {
            return None;
        }
        let frame = self.frame.take()?;
        let tx = self.tx.take()?;
        Some((
            Held {
                frame,
                meta: self.meta,
            },
            tx,
        ))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<T> {
        self.tx.take()
    }

    fn capabilities(&self) -> DeviceCapabilities {
        self.caps.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backlog::{MockListenPools, PoolState};
    use smoltcp::phy::{Loopback, Medium};
    use smoltcp::wire::{EthernetAddress, EthernetRepr, IpAddress, Ipv4Repr, TcpControl};

    const SRC: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const DST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

    /// An Ethernet/IPv4/TCP frame with the given control flag and ACK presence.
    fn frame(control: TcpControl, ack: bool) -> Vec<u8> {
        let tcp = crate::testframe::segment(control, 1, ack.then_some(5), &[]);
        crate::testframe::tcp_frame(SRC, DST, &tcp)
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
        let buf = udp(5353, 9, &[0xaa; 5]);
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

    fn pools(state: Option<PoolState>) -> MockListenPools {
        let mut pools = MockListenPools::new();
        pools.expect_pool_state().return_const(state);
        pools
    }

    #[test]
    fn syns_go_to_the_listener_path_or_are_dropped_for_a_full_pool() {
        let syn = frame(TcpControl::Syn, false);
        let full = pools(Some(PoolState {
            listening: false,
            serves_source: false,
        }));
        let (seen, route) = judge(&syn, &full, false);
        assert_eq!(route, Route::Drop);
        assert!(seen.syn_dropped && !seen.rst);

        let open = pools(Some(PoolState {
            listening: true,
            serves_source: false,
        }));
        let (seen, route) = judge(&syn, &open, false);
        assert_eq!(
            route,
            Route::Listener {
                local: SocketAddrV4::new(DST, 80),
                remote: SocketAddrV4::new(SRC, 40000)
            }
        );
        assert_eq!(seen, Seen::default());

        // No listener: smoltcp refuses it (no sequence number is drawn for a RST).
        assert_eq!(judge(&syn, &pools(None), false).1, Route::Stack);
    }

    #[test]
    fn rsts_are_noted() {
        let (seen, route) = judge(&frame(TcpControl::Rst, false), &pools(None), false);
        assert!(seen.rst);
        assert_eq!(route, Route::Stack);
    }

    fn arp(operation: ArpOperation) -> Vec<u8> {
        let repr = ArpRepr::EthernetIpv4 {
            operation,
            source_hardware_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
            source_protocol_addr: SRC,
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: DST,
        };
        let eth = EthernetRepr {
            src_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
            dst_addr: EthernetAddress::BROADCAST,
            ethertype: EthernetProtocol::Arp,
        };
        let mut buf = vec![0u8; eth.buffer_len() + repr.buffer_len()];
        let mut e = EthernetFrame::new_unchecked(&mut buf[..]);
        eth.emit(&mut e);
        repr.emit(&mut ArpPacket::new_unchecked(e.payload_mut()));
        buf
    }

    #[test]
    fn arp_requests_and_replies_name_their_sender() {
        for operation in [ArpOperation::Request, ArpOperation::Reply] {
            let frame = arp(operation);
            let sender = Neighbour {
                ip: SRC,
                mac: [2, 0, 0, 0, 0, 1],
            };
            assert_eq!(
                classify(&frame),
                Segment::Arp {
                    sender,
                    target: DST
                }
            );
            let (seen, route) = judge(&frame, &pools(None), true);
            assert_eq!(seen.arp, Some((sender, DST)));
            assert_eq!(route, Route::Stack);
            for len in 0..frame.len() {
                assert!(
                    !matches!(classify(&frame[..len]), Segment::Arp { .. }),
                    "length {len}"
                );
            }
        }
        assert_eq!(classify(&arp(ArpOperation::Unknown(7))), Segment::Other);
    }

    /// A UDP datagram from `src_port` to `dst_port` of DST.
    fn udp(src_port: u16, dst_port: u16, payload: &[u8]) -> Vec<u8> {
        use smoltcp::wire::{UdpPacket, UdpRepr};
        let udp = UdpRepr { src_port, dst_port };
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
            |p| p.copy_from_slice(payload),
            &checksums,
        );
        buf
    }

    #[test]
    fn dhcp_server_messages_go_to_the_running_client_only() {
        let offer = udp(DHCP_SERVER_PORT, DHCP_CLIENT_PORT, &[0; 8]);
        assert_eq!(judge(&offer, &pools(None), true).1, Route::Dhcp);
        assert_eq!(judge(&offer, &pools(None), false).1, Route::Stack);
        let other = udp(DHCP_SERVER_PORT, 69, &[0; 8]);
        assert_eq!(judge(&other, &pools(None), true).1, Route::Stack);
        let (seen, _) = judge(&offer, &pools(None), true);
        assert_eq!(
            seen.udp,
            Some((
                DHCP_SERVER_PORT,
                SocketAddrV4::new(DST, DHCP_CLIENT_PORT),
                8
            ))
        );
    }

    #[test]
    fn one_frame_gives_its_frame_once_with_the_answer_token() {
        let mut lo = Loopback::new(Medium::Ethernet);
        let caps = lo.capabilities();
        let syn = frame(TcpControl::Syn, false);
        let tx = lo.transmit(Instant::ZERO).expect("loopback has room");
        let mut one = OneFrame::new(&syn, PacketMeta::default(), tx, &caps);
        assert_eq!(
            one.capabilities().max_transmission_unit,
            caps.max_transmission_unit
        );
        let (rx, tx) = one.receive(Instant::ZERO).expect("the frame");
        assert_eq!(rx.consume(|f| f.to_vec()), syn);
        assert!(one.receive(Instant::ZERO).is_none());
        assert!(
            one.transmit(Instant::ZERO).is_none(),
            "the token went with the frame"
        );
        tx.consume(3, |buf| buf.copy_from_slice(&[1, 2, 3]));
        let (rx, _) = lo.receive(Instant::ZERO).expect("the answer");
        assert_eq!(rx.consume(|f| f.to_vec()), [1, 2, 3]);
    }
}
