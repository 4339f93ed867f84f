//! The TCP and UDP checksums of IPv4 frames, computed by the stack instead of smoltcp (RFC 1071,
//! RFC 793, RFC 768).
//!
//! smoltcp sums 16-bit words into a 32-bit accumulator (about 1.9 instructions per byte on
//! x86-64 in `cargo xtask bench`'s profile); [`sum`] adds 32-bit words into a 64-bit one, which
//! needs no carry handling for any frame and which compilers vectorise. The stack tells smoltcp
//! that TCP and UDP checksums are not its job ([`crate::loopback`]'s link), then fills them in
//! each frame it sends ([`fill`]) and checks them in each frame it receives ([`verify`]), unless
//! the NIC does (its `ChecksumCapabilities`).

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{EthernetFrame, EthernetProtocol, IpProtocol, Ipv4Packet};

/// The one's complement sum of `data` as 16-bit big-endian words (an odd last byte padded with
/// zero), folded to 16 bits; not complemented.
pub fn sum(data: &[u8]) -> u16 {
    // RFC 1071 2(B): the sum is independent of byte order when taken in the machine's order and
    // swapped at the end, and of the word size when the carries are added back in: 64-bit words
    // (eight per loop) into a 128-bit sum (an add and an add-with-carry each), no carry lost below 2^64 words.
    let blocks = data.chunks_exact(64);
    let rest = blocks.remainder();
    let (mut a, mut b) = (0u128, 0u128);
    for block in blocks {
        // A 64-byte array: the words below are read without bounds checks.
        let Ok(block) = <&[u8; 64]>::try_from(block) else {
            continue;
        };
        a += word(block, 0) + word(block, 8) + word(block, 16) + word(block, 24);
        b += word(block, 32) + word(block, 40) + word(block, 48) + word(block, 56);
    }
    let words = rest.chunks_exact(8);
    let rest = words.remainder();
    for w in words {
        if let Ok(w) = <&[u8; 8]>::try_from(w) {
            a += word(w, 0);
        }
    }
    let pairs = rest.chunks_exact(2);
    if let [last] = pairs.remainder() {
        b += u128::from(u16::from_ne_bytes([*last, 0]));
    }
    for pair in pairs {
        b += u128::from(u16::from_ne_bytes([pair[0], pair[1]]));
    }
    // 2^64 = 1 modulo 2^16 - 1: the high half adds to the low one.
    let total = a + b;
    let (low, high) = (total as u64, (total >> 64) as u64);
    let mut acc = u64::from(fold_wide(low)) + u64::from(fold_wide(high));
    acc = u64::from(fold(acc));
    u16::from_be(acc as u16)
}

/// The machine-order 64-bit word at `at` of `bytes`.
fn word<const N: usize>(bytes: &[u8; N], at: usize) -> u128 {
    let w = [
        bytes[at],
        bytes[at + 1],
        bytes[at + 2],
        bytes[at + 3],
        bytes[at + 4],
        bytes[at + 5],
        bytes[at + 6],
        bytes[at + 7],
    ];
    u128::from(u64::from_ne_bytes(w))
}

/// A 64-bit sum of 16-bit words folded to 16 bits (its four words added with carries).
fn fold_wide(word: u64) -> u16 {
    fold((word & 0xffff_ffff) + (word >> 32))
}

/// Folds a sum of 16-bit words to 16 bits with end-around carries.
fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// The L4 part of an IPv4 frame: where the segment starts and ends, its protocol, and the
/// offset of its checksum field within it; `None` for anything else (ARP, ICMP, options beyond
/// the frame, fragments' later pieces are still TCP or UDP and are summed as they are).
struct Segment {
    start: usize,
    end: usize,
    protocol: IpProtocol,
    pseudo: u16,
}

/// Offsets of the checksum field in a TCP and a UDP header.
const TCP_CHECKSUM: usize = 16;
const UDP_CHECKSUM: usize = 6;

fn segment(frame: &[u8]) -> Option<Segment> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != EthernetProtocol::Ipv4 {
        return None;
    }
    let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
    let protocol = ip.next_header();
    let field = match protocol {
        IpProtocol::Tcp => TCP_CHECKSUM,
        IpProtocol::Udp => UDP_CHECKSUM,
        _ => return None,
    };
    let start = EthernetFrame::<&[u8]>::header_len() + usize::from(ip.header_len());
    let end = EthernetFrame::<&[u8]>::header_len() + usize::from(ip.total_len());
    if end < start + field + 2 {
        return None;
    }
    let len = (end - start) as u64;
    let pseudo = fold(
        u64::from(sum(&ip.src_addr().octets()))
            + u64::from(sum(&ip.dst_addr().octets()))
            + u64::from(u8::from(protocol))
            + len,
    );
    Some(Segment {
        start,
        end,
        protocol,
        pseudo,
    })
}

impl Segment {
    /// The checksum field's offset in the frame.
    fn field(&self) -> usize {
        self.start
            + match self.protocol {
                IpProtocol::Tcp => TCP_CHECKSUM,
                _ => UDP_CHECKSUM,
            }
    }

    /// Whether `caps` leave this protocol's checksum to software on the way out (`tx`) or in.
    fn ours(&self, caps: &ChecksumCapabilities, tx: bool) -> bool {
        let checksum = match self.protocol {
            IpProtocol::Tcp => &caps.tcp,
            _ => &caps.udp,
        };
        if tx {
            checksum.tx()
        } else {
            checksum.rx()
        }
    }
}

/// Fills in the TCP or UDP checksum of an IPv4 frame when `caps` (the NIC's) leave it to
/// software; any other frame is left as it is.
pub fn fill(frame: &mut [u8], caps: &ChecksumCapabilities) {
    let Some(s) = segment(frame) else { return };
    if !s.ours(caps, true) {
        return;
    }
    let field = s.field();
    frame[field..field + 2].fill(0);
    let mut check = !fold(u64::from(s.pseudo) + u64::from(sum(&frame[s.start..s.end])));
    // UDP: a computed 0 is sent as all ones, 0 meaning "no checksum" (RFC 768).
    if s.protocol == IpProtocol::Udp && check == 0 {
        check = 0xffff;
    }
    frame[field..field + 2].copy_from_slice(&check.to_be_bytes());
}

/// Whether the TCP or UDP checksum of an IPv4 frame is right, when `caps` (the NIC's) leave
/// checking it to software; true for any other frame and for UDP sent without checksum.
pub fn verify(frame: &[u8], caps: &ChecksumCapabilities) -> bool {
    let Some(s) = segment(frame) else {
        return true;
    };
    if !s.ours(caps, false) {
        return true;
    }
    let field = s.field();
    if s.protocol == IpProtocol::Udp && frame[field..field + 2] == [0, 0] {
        return true;
    }
    fold(u64::from(s.pseudo) + u64::from(sum(&frame[s.start..s.end]))) == 0xffff
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::phy::Checksum;
    use smoltcp::wire::{
        EthernetAddress, EthernetRepr, IpAddress, Ipv4Address, Ipv4Repr, TcpPacket, UdpPacket,
        UdpRepr,
    };

    const SRC: Ipv4Address = Ipv4Address::new(10, 0, 0, 1);
    const DST: Ipv4Address = Ipv4Address::new(192, 168, 77, 254);

    /// An Ethernet/IPv4 frame of `protocol` carrying `payload`, its checksums by smoltcp.
    fn frame(protocol: IpProtocol, payload: &[u8]) -> Vec<u8> {
        let caps = ChecksumCapabilities::default();
        let l4_len = match protocol {
            IpProtocol::Tcp => 20 + payload.len(),
            _ => 8 + payload.len(),
        };
        let ip = Ipv4Repr {
            src_addr: SRC,
            dst_addr: DST,
            next_header: protocol,
            payload_len: l4_len,
            hop_limit: 64,
        };
        let eth = EthernetRepr {
            src_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
            dst_addr: EthernetAddress([2, 0, 0, 0, 0, 2]),
            ethertype: EthernetProtocol::Ipv4,
        };
        let mut buf = vec![0u8; 14 + 20 + l4_len];
        eth.emit(&mut EthernetFrame::new_unchecked(&mut buf[..]));
        ip.emit(&mut Ipv4Packet::new_unchecked(&mut buf[14..]), &caps);
        let (src, dst) = (IpAddress::Ipv4(SRC), IpAddress::Ipv4(DST));
        match protocol {
            IpProtocol::Tcp => {
                let repr = crate::testframe::segment(
                    smoltcp::wire::TcpControl::Psh,
                    0x1234_5678,
                    Some(0x0bad_cafe),
                    payload,
                );
                repr.emit(
                    &mut TcpPacket::new_unchecked(&mut buf[34..]),
                    &src,
                    &dst,
                    &caps,
                );
            }
            _ => UdpRepr {
                src_port: 53,
                dst_port: 40000,
            }
            .emit(
                &mut UdpPacket::new_unchecked(&mut buf[34..]),
                &src,
                &dst,
                payload.len(),
                |p| p.copy_from_slice(payload),
                &caps,
            ),
        }
        buf
    }

    fn payload(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + len) as u8 ^ 0xa5).collect()
    }

    #[test]
    fn fill_matches_smoltcp_for_every_length_and_verify_accepts_it() {
        let caps = ChecksumCapabilities::default();
        for protocol in [IpProtocol::Tcp, IpProtocol::Udp] {
            for len in (0..=64).chain([255, 1024, 1459, 1460, 1472]) {
                if protocol == IpProtocol::Tcp && len > 1460 {
                    continue;
                }
                let theirs = frame(protocol, &payload(len));
                assert!(verify(&theirs, &caps), "{protocol} {len}");
                let mut ours = theirs.clone();
                let field = if protocol == IpProtocol::Tcp {
                    34 + 16
                } else {
                    34 + 6
                };
                ours[field..field + 2].copy_from_slice(&[0x55, 0xaa]);
                fill(&mut ours, &caps);
                assert_eq!(ours, theirs, "{protocol} {len}");
            }
        }
    }

    #[test]
    fn verify_rejects_any_flipped_bit_of_the_segment() {
        let caps = ChecksumCapabilities::default();
        for protocol in [IpProtocol::Tcp, IpProtocol::Udp] {
            let good = frame(protocol, &payload(33));
            for at in 34..good.len() {
                for bit in [0, 3, 7] {
                    let mut bad = good.clone();
                    bad[at] ^= 1 << bit;
                    let field = if protocol == IpProtocol::Tcp {
                        34 + 16
                    } else {
                        34 + 6
                    };
                    if protocol == IpProtocol::Udp && bad[field..field + 2] == [0, 0] {
                        continue;
                    }
                    assert!(!verify(&bad, &caps), "{protocol} byte {at} bit {bit}");
                }
            }
        }
    }

    #[test]
    fn udp_zero_means_no_checksum_and_a_computed_zero_is_sent_as_ones() {
        let caps = ChecksumCapabilities::default();
        let mut f = frame(IpProtocol::Udp, &payload(10));
        f[40..42].fill(0);
        assert!(verify(&f, &caps));
        // Find a payload whose checksum computes to zero: the field's value is added to the
        // segment sum, so adjust two payload bytes until the complement is 0.
        let mut f = frame(IpProtocol::Udp, &[0, 0]);
        let check = u16::from_be_bytes([f[40], f[41]]);
        // Adding `check` to the payload word makes the sum 0xffff, so the checksum 0.
        f[42..44].copy_from_slice(&check.to_be_bytes());
        fill(&mut f, &caps);
        assert_eq!(&f[40..42], &[0xff, 0xff]);
        assert!(verify(&f, &caps));
    }

    #[test]
    fn what_the_nic_does_is_left_alone_and_other_frames_pass() {
        let mut offloaded = ChecksumCapabilities::default();
        offloaded.tcp = Checksum::None;
        let mut f = frame(IpProtocol::Tcp, &payload(20));
        f[50..52].fill(0);
        fill(&mut f, &offloaded);
        assert_eq!(&f[50..52], &[0, 0]);
        assert!(verify(&f, &offloaded));
        assert!(!verify(&f, &ChecksumCapabilities::default()));
        // Truncated and non-IPv4 frames are not ours to judge.
        for len in 0..54 {
            let mut cut = frame(IpProtocol::Tcp, &[]);
            cut.truncate(len);
            assert!(verify(&cut, &ChecksumCapabilities::default()));
            fill(&mut cut, &ChecksumCapabilities::default());
        }
    }

    /// RFC 1071's definition, 16-bit words one at a time.
    fn reference(data: &[u8]) -> u16 {
        let mut acc = 0u64;
        for pair in data.chunks(2) {
            acc += u64::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]));
        }
        fold(acc)
    }

    #[test]
    fn sum_matches_the_definition_for_every_length_and_alignment() {
        // All ones make every 64-bit lane carry; the pattern exercises every byte position.
        for fill in [0xffu8, 0x00, 0x5a] {
            let data: Vec<u8> = (0..1600u32)
                .map(|i| {
                    if fill == 0x5a {
                        (i * 131 + 7) as u8
                    } else {
                        fill
                    }
                })
                .collect();
            for start in 0..8 {
                for len in (0..200).chain([1459, 1460, 1480, 1500, 1592]) {
                    let part = &data[start..start + len];
                    assert_eq!(
                        sum(part),
                        reference(part),
                        "fill {fill} at {start} len {len}"
                    );
                }
            }
        }
    }

    #[test]
    fn sum_of_odd_lengths_pads_with_zero() {
        assert_eq!(sum(&[]), 0);
        assert_eq!(sum(&[0x12]), 0x1200);
        assert_eq!(sum(&[0x12, 0x34, 0x56]), 0x1234 + 0x5600);
        assert_eq!(sum(&[0xff; 9]), fold(4 * 0xffff + 0xff00));
    }
}
