//! A wire to the Linux kernel through a TAP device (`/dev/net/tun`,
//! `IFF_TAP | IFF_NO_PI | IFF_VNET_HDR`).
//!
//! Each `read` on the descriptor returns one Ethernet frame the kernel sent out of the
//! interface, each `write` injects one (Linux `Documentation/networking/tuntap.rst`). The
//! descriptor is non-blocking, so `recv` returns `None` instead of waiting.
//!
//! Every frame crosses the descriptor behind a `struct virtio_net_hdr` (Linux
//! `include/uapi/linux/virtio_net.h`), which is how a TAP's user offloads work to the kernel
//! as a virtio-net guest does: [`Wire::send_offloaded`] marks the TCP or UDP checksum as still
//! to be filled (`VIRTIO_NET_HDR_F_NEEDS_CSUM`, the pseudo-header sum in the checksum field)
//! and hands over a TCP frame of many segments whole (`VIRTIO_NET_HDR_GSO_TCPV4` with the
//! segment size): the kernel cuts it only if it must forward it, and a local receiver takes it
//! as one. The other way, the kernel sends whole frames unless asked ([`Wire::vouch_checksums`],
//! `TUNSETOFFLOAD` with `TUN_F_CSUM` only, never segmentation): then its own TCP and UDP frames
//! come with `VIRTIO_NET_HDR_F_NEEDS_CSUM` (the field holds the pseudo-header's sum) or
//! `VIRTIO_NET_HDR_F_DATA_VALID` (checked), which [`Wire::recv_vouched`] reports.

use super::Wire;
use crate::eth::rtl8152::offload;
use smoltcp::wire::{IpProtocol, TcpPacket};
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::num::NonZeroU16;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;

/// Bytes of the legacy `struct virtio_net_hdr` (no `num_buffers`), the TAP's default.
const VNET_HDR: usize = 10;
/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the checksum at `csum_start + csum_offset` is to be filled.
const NEEDS_CSUM: u8 = 1;
/// `VIRTIO_NET_HDR_F_DATA_VALID`: the kernel checked the frame's checksum.
const DATA_VALID: u8 = 2;
/// `VIRTIO_NET_HDR_GSO_TCPV4`: a TCP/IPv4 frame to cut into `gso_size`-byte segments.
const GSO_TCPV4: u8 = 1;
/// Bytes of a UDP header.
const UDP_HEADER: usize = 8;
/// The largest frame handed over whole: an IPv4 datagram of 65,535 bytes and its Ethernet header.
const OFFLOAD_MAX: usize = 14 + 65_535;

/// The `virtio_net_hdr` that offloads `frame`'s TCP or UDP checksum (and, with `mss`, its
/// segmentation), with the checksum field's offset and the pseudo-header sum to put there;
/// `None` for a frame that is not one whole TCP or UDP datagram over IPv4 (it goes with a zero
/// header). The field and the sum are those the RTL8152's checksum offload takes
/// ([`offload::segment`]): Linux's CHECKSUM_PARTIAL expects the same (`~tcp_v4_check(len,
/// saddr, daddr, 0)`). The legacy header is in the host's byte order
/// (`virtio_legacy_is_little_endian`, as tun uses it without `TUNSETVNETLE`).
fn offload_header(frame: &[u8], mss: Option<NonZeroU16>) -> Option<([u8; VNET_HDR], usize, u16)> {
    let s = offload::segment(frame)?;
    let header = match s.protocol {
        IpProtocol::Tcp => usize::from(
            TcpPacket::new_checked(&frame[s.start..s.end])
                .ok()?
                .header_len(),
        ),
        _ => UDP_HEADER,
    };
    let (gso_type, gso_size) = match mss {
        Some(mss) if s.protocol == IpProtocol::Tcp => (GSO_TCPV4, mss.get()),
        Some(_) => return None,
        None => (0, 0),
    };
    let mut hdr = [0u8; VNET_HDR];
    hdr[0] = NEEDS_CSUM;
    hdr[1] = gso_type;
    let fields = [
        s.start + header,
        usize::from(gso_size),
        s.start,
        s.field - s.start,
    ];
    for (at, field) in fields.iter().enumerate() {
        hdr[2 + 2 * at..4 + 2 * at].copy_from_slice(&(*field as u16).to_ne_bytes());
    }
    Some((hdr, s.field, s.pseudo))
}

/// `struct ifreq` as TUNSETIFF reads it: the name, then the flags in the 24-byte union.
#[repr(C)]
struct IfReq {
    name: [libc::c_char; libc::IFNAMSIZ],
    flags: libc::c_short,
    _union_rest: [u8; 22],
}

/// An open TAP interface; the interface disappears when this is dropped (unless it was made
/// persistent elsewhere).
#[derive(Debug)]
pub struct Tap {
    file: File,
    name: String,
    buf: Vec<u8>,
}

impl Tap {
    /// Creates (or attaches to) the TAP interface `name` (at most 15 bytes).
    pub fn open(name: &str) -> io::Result<Self> {
        if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains('\0') {
            return Err(io::ErrorKind::InvalidInput.into());
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open("/dev/net/tun")?;
        let mut req = IfReq {
            name: [0; libc::IFNAMSIZ],
            flags: (libc::IFF_TAP | libc::IFF_NO_PI | libc::IFF_VNET_HDR) as libc::c_short,
            _union_rest: [0; 22],
        };
        for (d, s) in req.name.iter_mut().zip(name.bytes()) {
            *d = s as libc::c_char;
        }
        // SAFETY: TUNSETIFF reads and writes a `struct ifreq`; `req` has its layout and size
        // (40 bytes) and lives across the call; the descriptor is open.
        let rc = unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, &mut req as *mut IfReq) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self {
            file,
            name: name.to_owned(),
            buf: vec![0; VNET_HDR + 65536],
        })
    }

    /// Creates the TAP interface `name` inside the network namespace bound at `netns` (e.g.
    /// `/run/netns/<name>` as `ip netns add` makes it). A helper thread enters the namespace
    /// (`setns` changes only the calling thread's namespace), creates the interface there and
    /// exits; the descriptor stays attached to the interface.
    pub fn open_in_netns(name: &str, netns: &std::path::Path) -> io::Result<Self> {
        let ns = File::open(netns)?;
        let name = name.to_owned();
        std::thread::spawn(move || {
            // SAFETY: setns takes an open namespace descriptor and a namespace type; it only
            // changes this short-lived thread's network namespace.
            if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } < 0 {
                return Err(io::Error::last_os_error());
            }
            Self::open(&name)
        })
        .join()
        .map_err(|_| io::Error::other("netns helper thread panicked"))?
    }

    /// The interface name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl AsRawFd for Tap {
    /// The descriptor, to wait on for frames (readable when one arrived).
    fn as_raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

impl Tap {
    /// Writes `parts` (at most four: a header and pieces of one frame) as one frame in one
    /// `writev`.
    fn write_parts(&mut self, parts: &[&[u8]]) -> io::Result<()> {
        let mut iov = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; 4];
        for (v, p) in iov.iter_mut().zip(parts) {
            *v = libc::iovec {
                iov_base: p.as_ptr() as *mut libc::c_void,
                iov_len: p.len(),
            };
        }
        let count = parts.len().min(iov.len());
        let total: usize = parts[..count].iter().map(|p| p.len()).sum();
        // SAFETY: the first `count` iovecs point at live slices of their lengths, which writev
        // only reads; the descriptor is open.
        let n = unsafe { libc::writev(self.file.as_raw_fd(), iov.as_ptr(), count as libc::c_int) };
        match usize::try_from(n) {
            Err(_) => Err(io::Error::last_os_error()),
            Ok(n) if n != total => Err(io::ErrorKind::WriteZero.into()),
            Ok(_) => Ok(()),
        }
    }
}

impl Wire for Tap {
    fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        self.write_parts(&[&[0; VNET_HDR], frame])
    }

    fn recv_into(&mut self, into: &mut Vec<u8>) -> io::Result<Option<usize>> {
        Ok(self.recv_vouched(into)?.map(|(n, _)| n))
    }

    fn vouch_checksums(&mut self) -> io::Result<bool> {
        // SAFETY: TUNSETOFFLOAD takes its flags by value; the descriptor is open.
        let rc = unsafe {
            libc::ioctl(
                self.file.as_raw_fd(),
                libc::TUNSETOFFLOAD,
                libc::TUN_F_CSUM as libc::c_ulong,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(true)
    }

    fn recv_vouched(&mut self, into: &mut Vec<u8>) -> io::Result<Option<(usize, bool)>> {
        match self.file.read(&mut self.buf) {
            Ok(n) if n < VNET_HDR => Err(io::ErrorKind::InvalidData.into()),
            Ok(n) => {
                into.extend_from_slice(&self.buf[VNET_HDR..n]);
                Ok(Some((
                    n - VNET_HDR,
                    self.buf[0] & (NEEDS_CSUM | DATA_VALID) != 0,
                )))
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn offloads(&self) -> Option<usize> {
        Some(OFFLOAD_MAX)
    }

    fn send_offloaded(&mut self, frame: &[u8], mss: Option<NonZeroU16>) -> io::Result<()> {
        match offload_header(frame, mss) {
            Some((hdr, at, pseudo)) => {
                self.write_parts(&[&hdr, &frame[..at], &pseudo.to_be_bytes(), &frame[at + 2..]])
            }
            None if mss.is_some() => Err(io::ErrorKind::InvalidInput.into()),
            None => self.send(frame),
        }
    }
}
