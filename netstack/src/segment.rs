//! TCP segmentation of a large frame, as a NIC with segmentation offload does it.
//!
//! With smoltcp's `segmentation-offload`, a TCP socket hands the link one frame of up to the
//! size the link advertised, with the segment size in its `PacketMeta`; a NIC that offloads
//! segmentation sends it whole. Where a large frame cannot go out whole (the loopback path, or
//! a NIC that does not offload it), the link cuts it here: every segment gets the frame's
//! Ethernet, IPv4 and TCP headers with its own IPv4 length and header checksum, the sequence
//! number of its first byte, FIN and PSH only on the last segment and CWR only on the first
//! (as Linux's `tcp_gso_segment` and RFC 3168 6.1.2 for CWR). The TCP checksum is left to the
//! caller ([`crate::checksum::fill`] or the NIC).

use smoltcp::phy::{DeviceCapabilities, PacketMeta};
use smoltcp::wire::{EthernetFrame, EthernetProtocol, IpProtocol, Ipv4Packet, TcpPacket};

/// The segment size smoltcp asks a large frame to be cut into (always `None` without feature
/// `large-send`).
pub(crate) fn requested(meta: &PacketMeta) -> Option<usize> {
    #[cfg(feature = "large-send")]
    return meta.segmentation_offload_size.map(|m| usize::from(m.get()));
    #[cfg(not(feature = "large-send"))]
    {
        let _ = meta;
        None
    }
}

/// The largest frame a device with `caps` cuts into TCP segments (always `None` without
/// feature `large-send`).
pub(crate) fn offered(caps: &DeviceCapabilities) -> Option<usize> {
    #[cfg(feature = "large-send")]
    return caps.segmentation.tcpv4.map(usize::from);
    #[cfg(not(feature = "large-send"))]
    {
        let _ = caps;
        None
    }
}

/// Tells smoltcp, in `caps`, the largest frame the link takes to cut (nothing without feature
/// `large-send`).
pub(crate) fn offer(caps: &mut DeviceCapabilities, large: Option<usize>) {
    #[cfg(feature = "large-send")]
    {
        caps.segmentation.tcpv4 = large.and_then(core::num::NonZeroUsize::new);
    }
    #[cfg(not(feature = "large-send"))]
    let _ = (caps, large);
}

/// Ethernet header bytes.
const ETHERNET: usize = 14;

/// A large TCP/IPv4 frame to be sent as segments of at most `mss` payload bytes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Large<'f> {
    frame: &'f [u8],
    /// Ethernet, IPv4 and TCP header bytes.
    headers: usize,
    mss: usize,
}

impl<'f> Large<'f> {
    /// `frame` cut into segments of `mss` payload bytes; `None` unless it is a well-formed
    /// TCP/IPv4 frame (as smoltcp builds them) and `mss` is not zero.
    pub(crate) fn new(frame: &'f [u8], mss: usize) -> Option<Self> {
        let eth = EthernetFrame::new_checked(frame).ok()?;
        if eth.ethertype() != EthernetProtocol::Ipv4 || mss == 0 {
            return None;
        }
        let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
        if ip.next_header() != IpProtocol::Tcp
            || usize::from(ip.total_len()) != frame.len() - ETHERNET
        {
            return None;
        }
        let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
        let headers = ETHERNET + usize::from(ip.header_len()) + usize::from(tcp.header_len());
        Some(Self {
            frame,
            headers,
            mss,
        })
    }

    /// TCP payload bytes.
    fn payload(&self) -> usize {
        self.frame.len() - self.headers
    }

    /// How many segments the frame makes (one for a frame without payload).
    pub(crate) fn count(&self) -> usize {
        self.payload().div_ceil(self.mss).max(1)
    }

    /// The length of segment `index` (below [`Self::count`]), headers included.
    pub(crate) fn len(&self, index: usize) -> usize {
        let start = index * self.mss;
        self.headers + self.mss.min(self.payload().saturating_sub(start))
    }

    /// Writes segment `index` into `out`, which is [`Self::len`] bytes long; its TCP checksum
    /// field is zero.
    pub(crate) fn write(&self, index: usize, out: &mut [u8]) {
        let start = self.headers + index * self.mss;
        let (headers, payload) = out.split_at_mut(self.headers);
        headers.copy_from_slice(&self.frame[..self.headers]);
        payload.copy_from_slice(&self.frame[start..start + payload.len()]);
        let last = index + 1 == self.count();
        // The lengths fit: a segment is smaller than the frame, whose length the IPv4 header holds.
        let ip_len = u16::try_from(out.len() - ETHERNET).unwrap_or(u16::MAX);
        let mut ip = Ipv4Packet::new_unchecked(&mut out[ETHERNET..]);
        ip.set_total_len(ip_len);
        ip.fill_checksum();
        let ip_header = usize::from(ip.header_len());
        let mut tcp = TcpPacket::new_unchecked(&mut out[ETHERNET + ip_header..]);
        tcp.set_seq_number(tcp.seq_number() + index * self.mss);
        if !last {
            tcp.set_fin(false);
            tcp.set_psh(false);
        }
        if index > 0 {
            tcp.set_cwr(false);
        }
        tcp.set_checksum(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{checksum, testframe};
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::{
        IpAddress, Ipv4Address, TcpControl, TcpRepr, TcpSeqNumber, TcpTimestampRepr,
    };

    const SRC: Ipv4Address = Ipv4Address::new(10, 0, 0, 1);
    const DST: Ipv4Address = Ipv4Address::new(10, 0, 0, 2);

    /// A TCP/IPv4 frame from `SRC` to `DST` with `payload`, `control` and a timestamp option,
    /// its sequence number about to wrap.
    fn frame(payload: &[u8], control: TcpControl) -> Vec<u8> {
        let tcp = TcpRepr {
            timestamp: Some(TcpTimestampRepr::new(5, 6)),
            ..testframe::segment(control, 0xffff_fff0, Some(77), payload)
        };
        testframe::tcp_frame(SRC, DST, &tcp)
    }

    /// The segments of `large`, each with its checksum filled as the link does.
    fn cut(large: &Large<'_>) -> Vec<Vec<u8>> {
        (0..large.count())
            .map(|i| {
                let mut out = vec![0xee; large.len(i)];
                large.write(i, &mut out);
                checksum::fill(&mut out, &ChecksumCapabilities::default());
                out
            })
            .collect()
    }

    #[test]
    fn segments_carry_the_payload_in_order_with_their_own_lengths_sequence_and_checksums() {
        let payload: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
        let big = frame(&payload, TcpControl::Psh);
        let large = Large::new(&big, 1448).unwrap();
        assert_eq!(large.count(), 4);
        let mut joined = Vec::new();
        for (i, seg) in cut(&large).iter().enumerate() {
            let eth = EthernetFrame::new_checked(&seg[..]).unwrap();
            let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
            assert!(ip.verify_checksum());
            assert_eq!(usize::from(ip.total_len()), seg.len() - ETHERNET);
            let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
            assert!(tcp.verify_checksum(&IpAddress::Ipv4(SRC), &IpAddress::Ipv4(DST)));
            // The sequence number wraps across the segments.
            assert_eq!(
                tcp.seq_number(),
                TcpSeqNumber(0xffff_fff0_u32 as i32) + i * 1448
            );
            assert_eq!(tcp.psh(), i == 3, "PSH on the last segment only");
            assert_eq!(tcp.ack_number(), TcpSeqNumber(77));
            assert_eq!(
                tcp.options(),
                TcpPacket::new_checked(&big[34..]).unwrap().options()
            );
            assert_eq!(
                tcp.payload().len(),
                if i < 3 { 1448 } else { 5000 - 3 * 1448 }
            );
            joined.extend_from_slice(tcp.payload());
        }
        assert_eq!(joined, payload);
    }

    #[test]
    fn fin_goes_on_the_last_segment_only_and_an_exact_multiple_makes_no_empty_segment() {
        let big = frame(&[1u8; 2000], TcpControl::Fin);
        let segs = cut(&Large::new(&big, 1000).unwrap());
        assert_eq!(segs.len(), 2);
        let fin = |s: &Vec<u8>| TcpPacket::new_checked(&s[34..]).unwrap().fin();
        assert!(!fin(&segs[0]));
        assert!(fin(&segs[1]));
        // A frame without payload is one segment, itself.
        let ack = frame(&[], TcpControl::None);
        let large = Large::new(&ack, 1000).unwrap();
        assert_eq!(large.count(), 1);
        assert_eq!(cut(&large), vec![ack]);
    }

    #[test]
    fn what_is_not_a_whole_tcp_ipv4_frame_is_refused_without_panicking() {
        let big = frame(&[9u8; 3000], TcpControl::None);
        assert!(Large::new(&big, 0).is_none());
        for len in 0..big.len() {
            // A cut frame disagrees with its IPv4 length (or does not parse).
            assert!(Large::new(&big[..len], 1000).is_none(), "{len}");
        }
        let mut udp = big.clone();
        udp[23] = u8::from(IpProtocol::Udp);
        assert!(Large::new(&udp, 1000).is_none());
    }
}
