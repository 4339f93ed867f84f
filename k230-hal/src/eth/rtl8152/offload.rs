//! Offloads: the TCP and UDP checksums of IPv4 frames computed by the chip on the way out and
//! checked by it on the way in, and large send (the chip cuts a large IPv4 TCP frame into
//! MSS-sized segments).
//!
//! Facts from Linux `drivers/net/usb/r8152.c` (`struct tx_desc`, `struct rx_desc`,
//! `r8152_tx_csum`, `r8152_rx_csum`): a TX descriptor's opts2 asks for the checksum with
//! `TCP_CS` (bit 30) or `UDP_CS` (bit 31), `IPV4_CS` (bit 29) and the transport header's offset
//! in the frame at bit 17 (`TCPHO_SHIFT`, at most 0x7ff); as for every Linux `CHECKSUM_PARTIAL`
//! frame, the checksum field holds the sum of the pseudo-header, which the chip's sum over the
//! segment takes in. An RX descriptor reports in opts2 which checksums the chip checked
//! (`RD_IPV4_CS` bit 19, `RD_TCP_CS` bit 22, `RD_UDP_CS` bit 23) and in opts3 which failed
//! (`IPF` bit 23, `UDPF` bit 22, `TCPF` bit 21). Linux's driver turns on nothing for either.
//!
//! Large send, from the same file: for a frame with a GSO size (`mss`), `r8152_tx_csum` sets
//! opts1 `GTSENDV4` (bit 28) and the transport header's offset at bit 18 (`GTTCPHO_SHIFT`, at
//! most `GTTCPHO_MAX` 0x7f) and opts2 the MSS at bit 17 (`MSS_SHIFT`, `min(mss, MSS_MAX)`,
//! `MSS_MAX` 0x7ff), and no checksum bits: the chip fills each segment's headers. The frame
//! goes as Linux's TCP hands it over: IPv4 total length and header checksum of the whole frame,
//! and in the TCP checksum field the pseudo-header's sum over the whole TCP length (Linux
//! `__tcp_v4_send_check`). `rtl8152_features_check` keeps a frame out of large send unless it
//! and its descriptor fit one TX aggregate (`agg_buf_sz`); `r8152_tx_agg_fill` packs such a
//! frame behind its descriptor like any other and counts its `gso_segs` as packets.
//!
//! The driver tells the stack that TCP and UDP checksums are not its job, so it answers for
//! every frame it hands up: one the chip did not check (an IPv4 TCP or UDP frame without the
//! flags) is checked here in software.

use smoltcp::wire::{
    checksum, EthernetFrame, EthernetProtocol, IpAddress, IpProtocol, Ipv4Packet, TcpPacket,
    UdpPacket,
};

/// TX opts2: compute the UDP checksum.
pub const TX_UDP_CS: u32 = 1 << 31;
/// TX opts2: compute the TCP checksum.
pub const TX_TCP_CS: u32 = 1 << 30;
/// TX opts2: the frame is IPv4.
pub const TX_IPV4_CS: u32 = 1 << 29;
/// TX opts2: shift of the transport header's offset.
pub const TX_TCPHO_SHIFT: u32 = 17;
/// Largest transport header offset the descriptor holds.
pub const TX_TCPHO_MAX: usize = 0x7ff;
/// TX opts1: large send of an IPv4 TCP frame.
pub const TX_GTSENDV4: u32 = 1 << 28;
/// TX opts1: shift of the transport header's offset for large send.
pub const TX_GTTCPHO_SHIFT: u32 = 18;
/// Largest transport header offset a large-send descriptor holds.
pub const TX_GTTCPHO_MAX: usize = 0x7f;
/// TX opts2: shift of the large send's MSS.
pub const TX_MSS_SHIFT: u32 = 17;
/// Largest MSS a large-send descriptor holds.
pub const TX_MSS_MAX: u16 = 0x7ff;
/// RX opts2: the chip checked the UDP checksum.
pub const RD_UDP_CS: u32 = 1 << 23;
/// RX opts2: the chip checked the TCP checksum.
pub const RD_TCP_CS: u32 = 1 << 22;
/// RX opts2: the chip checked the IPv4 header checksum.
pub const RD_IPV4_CS: u32 = 1 << 19;
/// RX opts3: the IPv4 header checksum is wrong.
pub const RX_IPF: u32 = 1 << 23;
/// RX opts3: the UDP checksum is wrong.
pub const RX_UDPF: u32 = 1 << 22;
/// RX opts3: the TCP checksum is wrong.
pub const RX_TCPF: u32 = 1 << 21;

/// An IPv4 TCP or UDP segment of a frame (also what the simulator's TAP offloads).
pub(crate) struct Segment {
    pub(crate) protocol: IpProtocol,
    /// Offset of the transport header in the frame.
    pub(crate) start: usize,
    /// Offset of the checksum field in the frame.
    pub(crate) field: usize,
    /// Offset of the datagram's end in the frame.
    pub(crate) end: usize,
    /// The folded sum of the pseudo-header (not complemented: what a checksum offload expects
    /// in the field).
    pub(crate) pseudo: u16,
}

/// The IPv4 TCP or UDP segment `frame` carries, if it is one whole (not a fragment) and its
/// header is within the frame.
pub(crate) fn segment(frame: &[u8]) -> Option<Segment> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != EthernetProtocol::Ipv4 {
        return None;
    }
    let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
    if ip.more_frags() || ip.frag_offset() != 0 {
        return None;
    }
    let protocol = ip.next_header();
    let (field, header) = match protocol {
        IpProtocol::Tcp => (16, 20),
        IpProtocol::Udp => (6, 8),
        _ => return None,
    };
    let start = EthernetFrame::<&[u8]>::header_len() + usize::from(ip.header_len());
    let len = usize::from(ip.total_len()) - usize::from(ip.header_len());
    if len < header {
        return None;
    }
    let pseudo = checksum::pseudo_header_v4(&ip.src_addr(), &ip.dst_addr(), protocol, len as u32);
    Some(Segment {
        protocol,
        start,
        field: start + field,
        end: start + len,
        pseudo,
    })
}

/// Prepares `frame` for the chip's checksum and returns the TX descriptor's opts2 asking for
/// it: for an IPv4 TCP or UDP frame, the pseudo-header's sum goes into the checksum field; any
/// other frame goes as it is (0).
pub fn tx_request(frame: &mut [u8]) -> u32 {
    let Some(s) = segment(frame) else { return 0 };
    if s.start > TX_TCPHO_MAX {
        return 0;
    }
    frame[s.field..s.field + 2].copy_from_slice(&s.pseudo.to_be_bytes());
    let which = if s.protocol == IpProtocol::Tcp {
        TX_TCP_CS
    } else {
        TX_UDP_CS
    };
    which | TX_IPV4_CS | ((s.start as u32) << TX_TCPHO_SHIFT)
}

/// A large send the chip carries out: the descriptor's bits and what goes on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LargeSend {
    /// opts1 bits besides FS, LS and the length.
    pub opts1: u32,
    /// opts2.
    pub opts2: u32,
    /// Segments the chip sends.
    pub segments: u64,
    /// Bytes of those segments (each with a copy of the headers).
    pub wire_bytes: u64,
}

/// Prepares `frame`, an IPv4 TCP frame whose payload is to go in segments of at most `mss`
/// bytes, for the chip's large send and returns the descriptor's request; the MSS is lowered so
/// that every segment fits [`super::tx::MAX_FRAME`]. `None` when the frame is not one whole
/// IPv4 TCP datagram filling the frame, its transport header lies beyond what the descriptor
/// holds, or its payload fits one segment (then it goes as a whole frame).
pub fn large_send_request(frame: &mut [u8], mss: u16) -> Option<LargeSend> {
    let s = segment(frame)?;
    if s.protocol != IpProtocol::Tcp || s.start > TX_GTTCPHO_MAX {
        return None;
    }
    if s.end != frame.len() {
        return None;
    }
    let tcp = TcpPacket::new_checked(&frame[s.start..]).ok()?;
    let headers = s.start + usize::from(tcp.header_len());
    let payload = frame.len() - headers;
    let fit = super::tx::MAX_FRAME.saturating_sub(headers);
    let mss = usize::from(mss.min(TX_MSS_MAX)).min(fit);
    if mss == 0 || payload <= mss {
        return None;
    }
    frame[s.field..s.field + 2].copy_from_slice(&s.pseudo.to_be_bytes());
    let segments = payload.div_ceil(mss);
    Some(LargeSend {
        opts1: TX_GTSENDV4 | ((s.start as u32) << TX_GTTCPHO_SHIFT),
        opts2: (mss as u32) << TX_MSS_SHIFT,
        segments: segments as u64,
        wire_bytes: (frame.len() + (segments - 1) * headers) as u64,
    })
}

/// What an RX descriptor says of a frame's checksums (Linux `r8152_rx_csum`, IPv4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RxChecksum {
    /// The chip checked the TCP or UDP checksum (and the IPv4 header's): right.
    Verified,
    /// The chip found a wrong IPv4, TCP or UDP checksum.
    Failed,
    /// The chip did not check a TCP or UDP checksum.
    NotChecked,
}

impl RxChecksum {
    /// From the descriptor's opts2 and opts3.
    pub fn from_opts(opts2: u32, opts3: u32) -> Self {
        if opts2 & RD_IPV4_CS == 0 {
            return Self::NotChecked;
        }
        let failed = opts3 & RX_IPF != 0
            || (opts2 & RD_UDP_CS != 0 && opts3 & RX_UDPF != 0)
            || (opts2 & RD_TCP_CS != 0 && opts3 & RX_TCPF != 0);
        if failed {
            Self::Failed
        } else if opts2 & (RD_UDP_CS | RD_TCP_CS) != 0 {
            Self::Verified
        } else {
            Self::NotChecked
        }
    }
}

/// Whether a frame the chip did not check may go up: true unless it is an IPv4 TCP or UDP frame
/// whose checksum is wrong (checked here, with smoltcp's checksum).
pub fn software_check(frame: &[u8]) -> bool {
    let Ok(eth) = EthernetFrame::new_checked(frame) else {
        return true;
    };
    if eth.ethertype() != EthernetProtocol::Ipv4 {
        return true;
    }
    let Ok(ip) = Ipv4Packet::new_checked(eth.payload()) else {
        return true;
    };
    let (src, dst) = (
        IpAddress::Ipv4(ip.src_addr()),
        IpAddress::Ipv4(ip.dst_addr()),
    );
    match ip.next_header() {
        IpProtocol::Tcp => {
            TcpPacket::new_checked(ip.payload()).is_ok_and(|t| t.verify_checksum(&src, &dst))
        }
        IpProtocol::Udp => {
            UdpPacket::new_checked(ip.payload()).is_ok_and(|u| u.verify_checksum(&src, &dst))
        }
        _ => true,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An Ethernet/IPv4/TCP frame with `payload`, checksums as smoltcp computes them.
    pub(crate) fn tcp_frame(payload: &[u8]) -> Vec<u8> {
        use smoltcp::phy::ChecksumCapabilities;
        use smoltcp::wire::{
            EthernetAddress, EthernetRepr, Ipv4Address, Ipv4Repr, TcpRepr, TcpSeqNumber,
        };
        let (src, dst) = (Ipv4Address::new(10, 0, 0, 2), Ipv4Address::new(10, 0, 0, 1));
        let tcp = TcpRepr {
            src_port: 40000,
            dst_port: 5201,
            control: smoltcp::wire::TcpControl::Psh,
            seq_number: TcpSeqNumber(7),
            ack_number: Some(TcpSeqNumber(9)),
            window_len: 1024,
            window_scale: None,
            max_seg_size: None,
            sack_permitted: false,
            sack_ranges: [None; 3],
            timestamp: None,
            payload,
        };
        let ip = Ipv4Repr {
            src_addr: src,
            dst_addr: dst,
            next_header: IpProtocol::Tcp,
            payload_len: tcp.buffer_len(),
            hop_limit: 64,
        };
        let mut buf = vec![0u8; 14 + 20 + tcp.buffer_len()];
        EthernetRepr {
            src_addr: EthernetAddress([2, 0, 0, 0, 0, 2]),
            dst_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
            ethertype: EthernetProtocol::Ipv4,
        }
        .emit(&mut EthernetFrame::new_unchecked(&mut buf[..]));
        let caps = ChecksumCapabilities::default();
        ip.emit(&mut Ipv4Packet::new_unchecked(&mut buf[14..]), &caps);
        tcp.emit(
            &mut TcpPacket::new_unchecked(&mut buf[34..]),
            &src.into(),
            &dst.into(),
            &caps,
        );
        buf
    }

    #[test]
    fn a_tcp_frame_asks_for_the_checksum_with_the_pseudo_header_in_its_field() {
        let good = tcp_frame(b"offload me");
        let mut frame = good.clone();
        let opts2 = tx_request(&mut frame);
        assert_eq!(opts2, TX_TCP_CS | TX_IPV4_CS | (34 << TX_TCPHO_SHIFT));
        // The chip's sum over the segment, field included, complemented, is the checksum.
        let chip = !checksum::data(&frame[34..]);
        assert_eq!(chip.to_be_bytes(), good[50..52]);
        // Anything else goes as it is.
        let mut arp = vec![0u8; 42];
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        let before = arp.clone();
        assert_eq!(tx_request(&mut arp), 0);
        assert_eq!(arp, before);
    }

    #[test]
    fn rx_status_follows_the_descriptor_and_software_checks_the_rest() {
        use RxChecksum::*;
        assert_eq!(RxChecksum::from_opts(RD_IPV4_CS | RD_TCP_CS, 0), Verified);
        assert_eq!(RxChecksum::from_opts(RD_IPV4_CS | RD_UDP_CS, 0), Verified);
        assert_eq!(
            RxChecksum::from_opts(RD_IPV4_CS | RD_TCP_CS, RX_TCPF),
            Failed
        );
        assert_eq!(
            RxChecksum::from_opts(RD_IPV4_CS | RD_UDP_CS, RX_UDPF),
            Failed
        );
        assert_eq!(RxChecksum::from_opts(RD_IPV4_CS, RX_IPF), Failed);
        assert_eq!(RxChecksum::from_opts(RD_IPV4_CS, 0), NotChecked);
        assert_eq!(RxChecksum::from_opts(0, RX_TCPF), NotChecked);
        let good = tcp_frame(b"abc");
        assert!(software_check(&good));
        let mut bad = good.clone();
        bad[55] ^= 1;
        assert!(!software_check(&bad));
        assert!(software_check(&[0u8; 10]));
    }
}
