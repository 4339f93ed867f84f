//! The RTL8152's checksum engine as the model plays it, written from Linux
//! `drivers/net/usb/r8152.c` (`struct tx_desc`, `struct rx_desc`, `r8152_tx_csum`,
//! `r8152_rx_csum`), not from our driver:
//! - transmit: a descriptor whose opts2 has `TCP_CS` (bit 30) or `UDP_CS` (bit 31) with
//!   `IPV4_CS` (bit 29) has the checksum computed over the segment from the transport header
//!   offset in bits 27..17 to the end of the IPv4 datagram, the checksum field taken as it is
//!   (the sender put the pseudo-header's sum there, as Linux does for `CHECKSUM_PARTIAL`), and
//!   stored complemented (UDP: a 0 result as 0xffff). A request that does not match the frame
//!   (not IPv4, another protocol, a wrong offset) is a driver error.
//! - receive: for an IPv4 frame, opts2 `RD_IPV4_CS` (bit 19) and opts3 `IPF` (bit 23) when the
//!   header checksum is wrong; for a TCP or UDP datagram that is not a fragment, `RD_TCP_CS`
//!   (bit 22) or `RD_UDP_CS` (bit 23), and `TCPF` (bit 21) or `UDPF` (bit 22) when its checksum
//!   is wrong (a UDP checksum of 0 means none).

use smoltcp::wire::{
    checksum, EthernetFrame, EthernetProtocol, IpAddress, IpProtocol, Ipv4Packet, TcpPacket,
    UdpPacket,
};

const TX_UDP_CS: u32 = 1 << 31;
const TX_TCP_CS: u32 = 1 << 30;
const TX_IPV4_CS: u32 = 1 << 29;
const TX_TCPHO_SHIFT: u32 = 17;
const TX_TCPHO_MASK: u32 = 0x7ff;
const RD_UDP_CS: u32 = 1 << 23;
const RD_TCP_CS: u32 = 1 << 22;
const RD_IPV4_CS: u32 = 1 << 19;
const RX_IPF: u32 = 1 << 23;
const RX_UDPF: u32 = 1 << 22;
const RX_TCPF: u32 = 1 << 21;

/// Why a TX checksum request could not be carried out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxChecksumError {
    /// Checksum bits without `IPV4_CS`, or both TCP and UDP.
    BadFlags(u32),
    /// The frame is not an IPv4 datagram of the protocol asked for.
    NotMatching,
    /// The transport offset is not where the IPv4 header ends.
    WrongOffset(usize),
}

/// Carries out the checksum request of a TX descriptor's `opts2` on `frame`.
pub fn transmit(frame: &mut [u8], opts2: u32) -> Result<(), TxChecksumError> {
    let asked = opts2 & (TX_TCP_CS | TX_UDP_CS);
    if asked == 0 {
        return Ok(());
    }
    if asked == TX_TCP_CS | TX_UDP_CS || opts2 & TX_IPV4_CS == 0 {
        return Err(TxChecksumError::BadFlags(opts2));
    }
    let offset = ((opts2 >> TX_TCPHO_SHIFT) & TX_TCPHO_MASK) as usize;
    let (protocol, field) = if asked == TX_TCP_CS {
        (IpProtocol::Tcp, 16)
    } else {
        (IpProtocol::Udp, 6)
    };
    let end = {
        let eth = EthernetFrame::new_checked(&*frame).map_err(|_| TxChecksumError::NotMatching)?;
        if eth.ethertype() != EthernetProtocol::Ipv4 {
            return Err(TxChecksumError::NotMatching);
        }
        let ip =
            Ipv4Packet::new_checked(eth.payload()).map_err(|_| TxChecksumError::NotMatching)?;
        if ip.next_header() != protocol {
            return Err(TxChecksumError::NotMatching);
        }
        let header_end = EthernetFrame::<&[u8]>::header_len() + usize::from(ip.header_len());
        if offset != header_end {
            return Err(TxChecksumError::WrongOffset(offset));
        }
        EthernetFrame::<&[u8]>::header_len() + usize::from(ip.total_len())
    };
    if end < offset + field + 2 {
        return Err(TxChecksumError::NotMatching);
    }
    let mut sum = !checksum::data(&frame[offset..end]);
    if protocol == IpProtocol::Udp && sum == 0 {
        sum = 0xffff;
    }
    frame[offset + field..offset + field + 2].copy_from_slice(&sum.to_be_bytes());
    Ok(())
}

/// The RX descriptor's opts2 and opts3 for `frame` (without CRC).
pub fn receive(frame: &[u8]) -> (u32, u32) {
    let Ok(eth) = EthernetFrame::new_checked(frame) else {
        return (0, 0);
    };
    if eth.ethertype() != EthernetProtocol::Ipv4 {
        return (0, 0);
    }
    let Ok(ip) = Ipv4Packet::new_checked(eth.payload()) else {
        return (0, 0);
    };
    let mut opts2 = RD_IPV4_CS;
    let mut opts3 = if ip.verify_checksum() { 0 } else { RX_IPF };
    if ip.more_frags() || ip.frag_offset() != 0 {
        return (opts2, opts3);
    }
    let (src, dst) = (
        IpAddress::Ipv4(ip.src_addr()),
        IpAddress::Ipv4(ip.dst_addr()),
    );
    match ip.next_header() {
        IpProtocol::Tcp => {
            opts2 |= RD_TCP_CS;
            if !TcpPacket::new_checked(ip.payload()).is_ok_and(|t| t.verify_checksum(&src, &dst)) {
                opts3 |= RX_TCPF;
            }
        }
        IpProtocol::Udp => {
            opts2 |= RD_UDP_CS;
            if !UdpPacket::new_checked(ip.payload()).is_ok_and(|u| u.verify_checksum(&src, &dst)) {
                opts3 |= RX_UDPF;
            }
        }
        _ => {}
    }
    (opts2, opts3)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eth::rtl8152::offload::tests::tcp_frame;

    #[test]
    fn the_engine_completes_a_requested_tcp_checksum_and_refuses_a_wrong_request() {
        let good = tcp_frame(b"hello chip");
        let mut frame = good.clone();
        // The pseudo-header's sum in the field, as the sender leaves it.
        let len = (frame.len() - 34) as u32;
        let pseudo = checksum::pseudo_header_v4(
            &smoltcp::wire::Ipv4Address::new(10, 0, 0, 2),
            &smoltcp::wire::Ipv4Address::new(10, 0, 0, 1),
            IpProtocol::Tcp,
            len,
        );
        frame[50..52].copy_from_slice(&pseudo.to_be_bytes());
        let opts2 = TX_TCP_CS | TX_IPV4_CS | (34 << TX_TCPHO_SHIFT);
        transmit(&mut frame, opts2).unwrap();
        assert_eq!(frame, good);
        assert_eq!(receive(&frame), (RD_IPV4_CS | RD_TCP_CS, 0));
        assert_eq!(
            transmit(&mut frame, TX_UDP_CS | TX_IPV4_CS | (34 << TX_TCPHO_SHIFT)),
            Err(TxChecksumError::NotMatching)
        );
        assert_eq!(
            transmit(&mut frame, TX_TCP_CS | TX_IPV4_CS | (30 << TX_TCPHO_SHIFT)),
            Err(TxChecksumError::WrongOffset(30))
        );
        assert_eq!(
            transmit(&mut frame, TX_TCP_CS),
            Err(TxChecksumError::BadFlags(TX_TCP_CS))
        );
        assert_eq!(transmit(&mut frame, 0), Ok(()));
    }

    #[test]
    fn receive_flags_a_wrong_tcp_or_header_checksum() {
        let mut frame = tcp_frame(b"x");
        frame[54] ^= 0x10;
        assert_eq!(receive(&frame), (RD_IPV4_CS | RD_TCP_CS, RX_TCPF));
        let mut frame = tcp_frame(b"x");
        frame[24] ^= 0x01;
        assert_eq!(receive(&frame).1 & RX_IPF, RX_IPF);
        assert_eq!(receive(&[0u8; 60]), (0, 0));
    }
}
