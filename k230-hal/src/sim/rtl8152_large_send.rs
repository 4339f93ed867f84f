//! The RTL8152's large send as the model plays it, written from Linux `drivers/net/usb/r8152.c`
//! (`struct tx_desc`, `r8152_tx_csum`) and what a TCP segmenter must do, not from our driver:
//! - a TX descriptor with opts1 `GTSENDV4` (bit 28) carries an IPv4 TCP frame whose transport
//!   header starts at the offset in opts1 bits 24..18 (`GTTCPHO_SHIFT`, at most 0x7f), to be
//!   sent in segments of at most the MSS in opts2 bits 27..17 (`MSS_SHIFT`, at most 0x7ff)
//!   payload bytes. Linux never sets checksum bits with it.
//! - each segment carries a copy of the Ethernet, IPv4 and TCP headers (options included) with
//!   its own IPv4 total length, an IPv4 identification one more than the previous segment's (as
//!   Linux's software segmentation does for frames without a fixed id), its own IPv4 header
//!   checksum, the sequence number advanced by the payload before it, FIN and PSH only on the
//!   last segment, CWR only on the first, and its own TCP checksum computed over the segment and
//!   its pseudo-header (whatever the field held: no one value there fits every segment).
//! - the frame's IPv4 total length is taken as given when it is the whole datagram (Linux) or 0
//!   (FreeBSD's and illumos' `ure` drivers for the same chip); the descriptor's length rules.
//! - a request the model cannot carry out (not IPv4 TCP, a fragment, an offset that is not where
//!   the TCP header starts, MSS 0, segments longer than a frame, checksum bits) is a driver error:
//!   the frame is not sent.

use smoltcp::wire::{
    EthernetFrame, EthernetProtocol, IpAddress, IpProtocol, Ipv4Packet, TcpPacket,
};

/// TX opts1: large send of an IPv4 TCP frame.
pub const TX_GTSENDV4: u32 = 1 << 28;
const TX_GTTCPHO_SHIFT: u32 = 18;
const TX_GTTCPHO_MASK: u32 = 0x7f;
const TX_MSS_SHIFT: u32 = 17;
const TX_MSS_MASK: u32 = 0x7ff;
/// opts2 checksum requests (UDP_CS, TCP_CS, IPV4_CS).
const TX_CHECKSUM_BITS: u32 = 0b111 << 29;
/// TCP flags cut from all segments but the last (FIN, PSH) and the first (CWR).
const TCP_FIN: u8 = 0x01;
const TCP_PSH: u8 = 0x08;
const TCP_CWR: u8 = 0x80;

/// Why a large send could not be carried out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LargeSendError {
    /// Checksum bits in opts2 as well.
    BadFlags(u32),
    /// The frame is not an IPv4 TCP datagram (or its headers are cut off).
    NotIpv4Tcp,
    /// The datagram is a fragment.
    Fragment,
    /// The IPv4 total length is neither the datagram's length nor 0.
    WrongTotalLength(u16),
    /// The transport offset is not where the IPv4 header ends.
    WrongOffset(usize),
    /// MSS 0.
    ZeroMss,
    /// Headers and MSS make a segment longer than the transmitter sends.
    SegmentTooLong(usize),
}

/// Cuts `frame`, described by a descriptor with `GTSENDV4` in `opts1`, into the segments the
/// chip sends, none longer than `max_frame`.
pub fn segment(
    frame: &[u8],
    opts1: u32,
    opts2: u32,
    max_frame: usize,
) -> Result<Vec<Vec<u8>>, LargeSendError> {
    if opts2 & TX_CHECKSUM_BITS != 0 {
        return Err(LargeSendError::BadFlags(opts2));
    }
    let offset = ((opts1 >> TX_GTTCPHO_SHIFT) & TX_GTTCPHO_MASK) as usize;
    let mss = ((opts2 >> TX_MSS_SHIFT) & TX_MSS_MASK) as usize;
    let eth = EthernetFrame::new_checked(frame).map_err(|_| LargeSendError::NotIpv4Tcp)?;
    if eth.ethertype() != EthernetProtocol::Ipv4 {
        return Err(LargeSendError::NotIpv4Tcp);
    }
    let ip_start = EthernetFrame::<&[u8]>::header_len();
    let datagram = &frame[ip_start..];
    // Checked by hand: `Ipv4Packet::new_checked` would insist on the total length.
    let ip = Ipv4Packet::new_unchecked(datagram);
    if datagram.len() < 20
        || ip.version() != 4
        || ip.header_len() < 20
        || usize::from(ip.header_len()) > datagram.len()
    {
        return Err(LargeSendError::NotIpv4Tcp);
    }
    let total = ip.total_len();
    if total != 0 && usize::from(total) != datagram.len() {
        return Err(LargeSendError::WrongTotalLength(total));
    }
    if ip.next_header() != IpProtocol::Tcp {
        return Err(LargeSendError::NotIpv4Tcp);
    }
    if ip.more_frags() || ip.frag_offset() != 0 {
        return Err(LargeSendError::Fragment);
    }
    let ip_header = usize::from(ip.header_len());
    if offset != ip_start + ip_header {
        return Err(LargeSendError::WrongOffset(offset));
    }
    let tcp = TcpPacket::new_checked(&frame[offset..]).map_err(|_| LargeSendError::NotIpv4Tcp)?;
    let headers = offset + usize::from(tcp.header_len());
    if mss == 0 {
        return Err(LargeSendError::ZeroMss);
    }
    if headers + mss > max_frame {
        return Err(LargeSendError::SegmentTooLong(headers + mss));
    }
    let (src, dst) = (
        IpAddress::Ipv4(ip.src_addr()),
        IpAddress::Ipv4(ip.dst_addr()),
    );
    let (ident, seq) = (ip.ident(), tcp.seq_number());
    let payload = &frame[headers..];
    let chunks = payload.len().div_ceil(mss).max(1);
    let mut segments = Vec::with_capacity(chunks);
    for i in 0..chunks {
        let chunk = &payload[(i * mss).min(payload.len())..((i + 1) * mss).min(payload.len())];
        let mut s = Vec::with_capacity(headers + chunk.len());
        s.extend_from_slice(&frame[..headers]);
        s.extend_from_slice(chunk);
        {
            let mut ip = Ipv4Packet::new_unchecked(&mut s[ip_start..]);
            ip.set_total_len((ip_header + headers - offset + chunk.len()) as u16);
            ip.set_ident(ident.wrapping_add(i as u16));
            ip.fill_checksum();
        }
        let flags_at = offset + 13;
        if i + 1 < chunks {
            s[flags_at] &= !(TCP_FIN | TCP_PSH);
        }
        if i > 0 {
            s[flags_at] &= !TCP_CWR;
        }
        let mut tcp = TcpPacket::new_unchecked(&mut s[offset..]);
        tcp.set_seq_number(seq + i * mss);
        tcp.fill_checksum(&src, &dst);
        segments.push(s);
    }
    Ok(segments)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eth::rtl8152::offload::tests::tcp_frame;
    use smoltcp::wire::TcpSeqNumber;

    const MAX: usize = 1514;

    fn opts(offset: usize, mss: usize) -> (u32, u32) {
        (
            TX_GTSENDV4 | ((offset as u32) << TX_GTTCPHO_SHIFT),
            (mss as u32) << TX_MSS_SHIFT,
        )
    }

    #[test]
    fn segments_carry_their_share_with_fixed_up_headers() {
        let payload: Vec<u8> = (0..2500u32).map(|i| (i * 7) as u8).collect();
        let mut frame = tcp_frame(&payload);
        // FIN and CWR besides the PSH the helper sets: FIN on the last only, CWR on the first.
        frame[47] |= TCP_FIN | TCP_CWR;
        Ipv4Packet::new_unchecked(&mut frame[14..]).set_ident(0xfffe);
        let (o1, o2) = opts(34, 1000);
        let segs = segment(&frame, o1, o2, MAX).unwrap();
        assert_eq!(segs.len(), 3);
        let mut joined = Vec::new();
        for (i, s) in segs.iter().enumerate() {
            let ip = Ipv4Packet::new_checked(&s[14..]).unwrap();
            assert!(ip.verify_checksum());
            assert_eq!(usize::from(ip.total_len()), s.len() - 14);
            assert_eq!(ip.ident(), 0xfffeu16.wrapping_add(i as u16));
            let (src, dst) = (ip.src_addr().into(), ip.dst_addr().into());
            let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
            assert!(tcp.verify_checksum(&src, &dst));
            assert_eq!(tcp.seq_number(), TcpSeqNumber(7 + 1000 * i as i32));
            assert_eq!(tcp.fin(), i == 2);
            assert_eq!(tcp.psh(), i == 2);
            assert_eq!(tcp.cwr(), i == 0);
            assert_eq!(tcp.payload().len(), [1000, 1000, 500][i]);
            joined.extend_from_slice(tcp.payload());
        }
        assert_eq!(joined, payload);
    }

    #[test]
    fn malformed_requests_are_refused() {
        let frame = tcp_frame(&[1; 3000]);
        let (o1, o2) = opts(34, 1400);
        assert!(segment(&frame, o1, o2, MAX).is_ok());
        assert_eq!(segment(&frame, o1, 0, MAX), Err(LargeSendError::ZeroMss));
        assert_eq!(
            segment(&frame, opts(30, 1400).0, o2, MAX),
            Err(LargeSendError::WrongOffset(30))
        );
        assert_eq!(
            segment(&frame, o1, opts(34, 1500).1, MAX),
            Err(LargeSendError::SegmentTooLong(1554))
        );
        assert_eq!(
            segment(&frame, o1, o2 | (1 << 30), MAX),
            Err(LargeSendError::BadFlags(o2 | (1 << 30)))
        );
        let mut udp = frame.clone();
        udp[23] = 17;
        assert_eq!(segment(&udp, o1, o2, MAX), Err(LargeSendError::NotIpv4Tcp));
        let mut arp = frame.clone();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(segment(&arp, o1, o2, MAX), Err(LargeSendError::NotIpv4Tcp));
        let mut frag = frame.clone();
        frag[20] |= 0x20;
        assert_eq!(segment(&frag, o1, o2, MAX), Err(LargeSendError::Fragment));
        let mut wrong = frame.clone();
        Ipv4Packet::new_unchecked(&mut wrong[14..]).set_total_len(100);
        assert_eq!(
            segment(&wrong, o1, o2, MAX),
            Err(LargeSendError::WrongTotalLength(100))
        );
        let mut zero = frame.clone();
        Ipv4Packet::new_unchecked(&mut zero[14..]).set_total_len(0);
        assert_eq!(segment(&zero, o1, o2, MAX).map(|s| s.len()), Ok(3));
        // Every truncation is refused or segmented, never a panic.
        for len in 0..frame.len() {
            let _ = segment(&frame[..len], o1, o2, MAX);
        }
    }
}
