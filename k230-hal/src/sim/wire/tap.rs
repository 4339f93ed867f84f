//! A wire to the Linux kernel through a TAP device (`/dev/net/tun`, `IFF_TAP | IFF_NO_PI`).
//!
//! Each `read` on the descriptor returns one Ethernet frame the kernel sent out of the
//! interface, each `write` injects one (Linux `Documentation/networking/tuntap.rst`). The
//! descriptor is non-blocking, so `recv` returns `None` instead of waiting.

use super::Wire;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;

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
            flags: (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short,
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
            buf: vec![0; 65536],
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

impl Wire for Tap {
    fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        let n = self.file.write(frame)?;
        if n != frame.len() {
            return Err(io::ErrorKind::WriteZero.into());
        }
        Ok(())
    }

    fn recv_into(&mut self, into: &mut Vec<u8>) -> io::Result<Option<usize>> {
        match self.file.read(&mut self.buf) {
            Ok(n) => {
                into.extend_from_slice(&self.buf[..n]);
                Ok(Some(n))
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }
}
