//! Hand-made Ethernet frames (ARP requests, TCP SYNs, ICMP echo requests from any source) and a
//! packet socket to send them on one interface, for flood tests run inside a test-made network
//! namespace. Formats: RFC 826 (ARP), RFC 791 (IPv4 header and its checksum), RFC 793 (TCP
//! header, checksum over the pseudo-header), RFC 792 (ICMP echo).

use std::ffi::CString;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const ETH_P_ALL: u16 = 0x0003;
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_ARP: u16 = 0x0806;
const PROTO_ICMP: u8 = 1;
const PROTO_TCP: u8 = 6;

/// A raw `AF_PACKET` socket bound to one interface; open it on a thread inside the namespace
/// that holds the interface.
#[derive(Debug)]
pub struct PacketSocket {
    fd: OwnedFd,
}

impl PacketSocket {
    /// Opens a packet socket on interface `ifname`, receiving every protocol.
    pub fn open(ifname: &str) -> io::Result<Self> {
        let name = CString::new(ifname).map_err(io::Error::other)?;
        // SAFETY: `name` is a valid NUL-terminated string for the call.
        let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
        if index == 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: plain socket creation; the result is checked.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW,
                i32::from(ETH_P_ALL.to_be()),
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = ETH_P_ALL.to_be();
        addr.sll_ifindex = i32::try_from(index).map_err(io::Error::other)?;
        // SAFETY: `addr` is a valid sockaddr_ll of the given size, alive for the call.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self { fd })
    }

    /// Sends one whole frame.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        // SAFETY: the pointer and length describe `frame`, alive for the call.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Receives one frame into `buf` if one arrives within `timeout_ms`; its length.
    pub fn recv(&self, buf: &mut [u8], timeout_ms: i32) -> io::Result<Option<usize>> {
        let mut p = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: `p` is one valid pollfd for the duration of the call.
        if unsafe { libc::poll(&mut p, 1, timeout_ms) } <= 0 {
            return Ok(None);
        }
        // SAFETY: the pointer and length describe `buf`, alive for the call.
        let n = unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Some(n as usize))
    }
}

/// The Internet checksum (RFC 1071) of `data`, continuing from `sum`.
fn checksum(data: &[u8], mut sum: u32) -> u16 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn ethernet(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, id: u16, payload: &[u8]) -> Vec<u8> {
    let total = u16::try_from(20 + payload.len()).expect("datagram fits");
    let mut h = [0u8; 20];
    h[0] = 0x45;
    h[2..4].copy_from_slice(&total.to_be_bytes());
    h[4..6].copy_from_slice(&id.to_be_bytes());
    h[8] = 64;
    h[9] = protocol;
    h[12..16].copy_from_slice(&src.octets());
    h[16..20].copy_from_slice(&dst.octets());
    let sum = checksum(&h, 0);
    h[10..12].copy_from_slice(&sum.to_be_bytes());
    let mut p = h.to_vec();
    p.extend_from_slice(payload);
    p
}

/// A broadcast ARP request from `sender` (MAC, IP) asking who has `target`.
pub fn arp_request(sender_mac: [u8; 6], sender_ip: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let mut a = Vec::with_capacity(28);
    a.extend_from_slice(&1u16.to_be_bytes()); // Ethernet
    a.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    a.extend_from_slice(&[6, 4]);
    a.extend_from_slice(&1u16.to_be_bytes()); // request
    a.extend_from_slice(&sender_mac);
    a.extend_from_slice(&sender_ip.octets());
    a.extend_from_slice(&[0; 6]);
    a.extend_from_slice(&target.octets());
    ethernet([0xff; 6], sender_mac, ETHERTYPE_ARP, &a)
}

/// Whether `frame` is an ARP reply from `sender_ip`.
pub fn is_arp_reply_from(frame: &[u8], sender_ip: Ipv4Addr) -> bool {
    frame.len() >= 42
        && frame[12..14] == ETHERTYPE_ARP.to_be_bytes()
        && frame[20..22] == 2u16.to_be_bytes()
        && frame[28..32] == sender_ip.octets()
}

/// Whether `frame` is an ARP request from `sender_ip` asking for `target`.
pub fn is_arp_request(frame: &[u8], sender_ip: Ipv4Addr, target: Ipv4Addr) -> bool {
    frame.len() >= 42
        && frame[12..14] == ETHERTYPE_ARP.to_be_bytes()
        && frame[20..22] == 1u16.to_be_bytes()
        && frame[28..32] == sender_ip.octets()
        && frame[38..42] == target.octets()
}

/// Source and destination of an IPv4 segment or datagram.
#[derive(Clone, Copy, Debug)]
pub struct Endpoints {
    /// Source MAC.
    pub src_mac: [u8; 6],
    /// Destination MAC.
    pub dst_mac: [u8; 6],
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
}

/// A TCP SYN (MSS 1460) from `src_port` to `dst_port` with sequence number `seq`.
pub fn tcp_syn(e: Endpoints, src_port: u16, dst_port: u16, seq: u32) -> Vec<u8> {
    let mut t = [0u8; 24];
    t[0..2].copy_from_slice(&src_port.to_be_bytes());
    t[2..4].copy_from_slice(&dst_port.to_be_bytes());
    t[4..8].copy_from_slice(&seq.to_be_bytes());
    t[12] = 6 << 4; // 24-byte header
    t[13] = 0x02; // SYN
    t[14..16].copy_from_slice(&64240u16.to_be_bytes());
    t[20..24].copy_from_slice(&[2, 4, 0x05, 0xb4]); // MSS 1460
    let mut pseudo = Vec::with_capacity(12);
    pseudo.extend_from_slice(&e.src.octets());
    pseudo.extend_from_slice(&e.dst.octets());
    pseudo.extend_from_slice(&[0, PROTO_TCP]);
    pseudo.extend_from_slice(&(t.len() as u16).to_be_bytes());
    let partial = !checksum(&pseudo, 0);
    let sum = checksum(&t, u32::from(partial));
    t[16..18].copy_from_slice(&sum.to_be_bytes());
    let ip = ipv4(e.src, e.dst, PROTO_TCP, (seq >> 16) as u16, &t);
    ethernet(e.dst_mac, e.src_mac, ETHERTYPE_IPV4, &ip)
}

/// An ICMP echo request with identifier `id` and sequence number `seq`.
pub fn icmp_echo(e: Endpoints, id: u16, seq: u16) -> Vec<u8> {
    let mut m = vec![8, 0, 0, 0];
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(b"k230 arp pressure");
    let sum = checksum(&m, 0);
    m[2..4].copy_from_slice(&sum.to_be_bytes());
    let ip = ipv4(e.src, e.dst, PROTO_ICMP, seq, &m);
    ethernet(e.dst_mac, e.src_mac, ETHERTYPE_IPV4, &ip)
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::wire::{
        ArpOperation, ArpPacket, ArpRepr, EthernetFrame, Icmpv4Packet, IpAddress, Ipv4Packet,
        TcpPacket,
    };

    fn ends() -> Endpoints {
        Endpoints {
            src_mac: [2, 0, 0, 0, 0, 9],
            dst_mac: [2, 0, 0, 0, 0, 1],
            src: Ipv4Addr::new(10, 1, 2, 3),
            dst: Ipv4Addr::new(10, 1, 2, 4),
        }
    }

    #[test]
    fn syn_parses_with_valid_checksums() {
        let f = tcp_syn(ends(), 40000, 80, 0x1234_5678);
        let eth = EthernetFrame::new_checked(&f[..]).unwrap();
        let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
        assert!(ip.verify_checksum());
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        assert!(tcp.verify_checksum(&IpAddress::Ipv4(ends().src), &IpAddress::Ipv4(ends().dst)));
        assert!(tcp.syn() && !tcp.ack());
        assert_eq!((tcp.src_port(), tcp.dst_port()), (40000, 80));
    }

    #[test]
    fn echo_and_arp_parse() {
        let f = icmp_echo(ends(), 7, 9);
        let eth = EthernetFrame::new_checked(&f[..]).unwrap();
        let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
        let icmp = Icmpv4Packet::new_checked(ip.payload()).unwrap();
        assert!(icmp.verify_checksum());

        let a = arp_request([2, 0, 0, 0, 0, 9], ends().src, ends().dst);
        let eth = EthernetFrame::new_checked(&a[..]).unwrap();
        let arp = ArpRepr::parse(&ArpPacket::new_checked(eth.payload()).unwrap()).unwrap();
        let ArpRepr::EthernetIpv4 {
            operation,
            source_protocol_addr,
            target_protocol_addr,
            ..
        } = arp
        else {
            panic!("not Ethernet/IPv4 ARP");
        };
        assert_eq!(operation, ArpOperation::Request);
        assert_eq!(
            (source_protocol_addr, target_protocol_addr),
            (ends().src, ends().dst)
        );
        assert!(is_arp_request(&a, ends().src, ends().dst));
        assert!(!is_arp_reply_from(&a, ends().src));
    }
}
