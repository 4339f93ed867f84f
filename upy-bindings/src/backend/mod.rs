//! What the bindings need from the layers below, and where the running system installs it.
//!
//! The `socket` and `network` objects call these traits; the board (or the host simulator)
//! installs one implementation before MicroPython runs scripts. Blocking, timeouts and errno
//! are the implementation's (upy-socket's) business: the bindings only convert objects.

use core::net::{Ipv4Addr, SocketAddrV4};

use ::upy_socket::RecvFlags;

use crate::statics::Static;

mod lock;
mod upy_socket;

pub use lock::Lock;
pub use upy_socket::{UpyLan, UpySockets};

/// An open socket as the implementation names it (opaque to the bindings).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Handle(pub u64);

/// Why a socket operation failed, by the Python exception it becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SockError {
    /// `OSError(errno)` with MicroPython's errno value (or lwIP's negative DNS codes).
    Os(i32),
    /// `ValueError(message)`.
    Value(&'static str),
    /// `NotImplementedError`.
    NotImplemented,
    /// The wait was interrupted: raise the interpreter's pending exception (Ctrl-C's
    /// `KeyboardInterrupt`).
    Interrupted,
}

/// MicroPython's `EBADF` (`py/mperrno.h`): the operation on a closed socket.
pub const EBADF: i32 = 9;
/// MicroPython's `ENOMEM`.
pub const ENOMEM: i32 = 12;
/// MicroPython's `EINVAL`.
pub const EINVAL: i32 = 22;

/// What `setsockopt` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptOutcome {
    /// Applied.
    Applied,
    /// Unknown option: modlwip prints a warning and returns `None`.
    NotImplemented,
}

/// The socket calls of MicroPython's `socket` module, with modlwip's semantics.
#[cfg_attr(test, mockall::automock)]
pub trait SocketApi {
    /// `socket.socket(af, type, proto)`.
    fn socket(&mut self, family: i32, socktype: i32, proto: i32) -> Result<Handle, SockError>;
    /// `close()`; closing twice is allowed.
    fn close(&mut self, socket: Handle);
    /// `bind(addr)`.
    fn bind(&mut self, socket: Handle, local: SocketAddrV4) -> Result<(), SockError>;
    /// `listen([backlog])`.
    fn listen(&mut self, socket: Handle, backlog: Option<i64>) -> Result<(), SockError>;
    /// `accept()`.
    fn accept(&mut self, socket: Handle) -> Result<(Handle, SocketAddrV4), SockError>;
    /// `connect(addr)`.
    fn connect(&mut self, socket: Handle, remote: SocketAddrV4) -> Result<(), SockError>;
    /// `send(bytes)`.
    fn send(&mut self, socket: Handle, data: &[u8]) -> Result<usize, SockError>;
    /// `sendall(bytes)`.
    fn sendall(&mut self, socket: Handle, data: &[u8]) -> Result<(), SockError>;
    /// `recv(n[, flags])`: bytes read into `buf` (0 at end of stream).
    fn recv(
        &mut self,
        socket: Handle,
        buf: &mut [u8],
        flags: RecvFlags,
    ) -> Result<usize, SockError>;
    /// `sendto(bytes, addr)`.
    fn sendto(&mut self, socket: Handle, data: &[u8], to: SocketAddrV4)
        -> Result<usize, SockError>;
    /// `recvfrom(n[, flags])`.
    fn recvfrom(
        &mut self,
        socket: Handle,
        buf: &mut [u8],
        flags: RecvFlags,
    ) -> Result<(usize, SocketAddrV4), SockError>;
    /// `setsockopt(level, name, value)` with an integer value.
    fn setsockopt(
        &mut self,
        socket: Handle,
        level: i32,
        name: i32,
        value: i64,
    ) -> Result<OptOutcome, SockError>;
    /// `settimeout(secs)` (`None`: blocking).
    fn settimeout(&mut self, socket: Handle, secs: Option<f64>) -> Result<(), SockError>;
    /// `setblocking(flag)`.
    fn setblocking(&mut self, socket: Handle, flag: bool) -> Result<(), SockError>;
    /// Stream read (`read`, `readinto`, `readline`).
    fn stream_read(&mut self, socket: Handle, buf: &mut [u8]) -> Result<usize, SockError>;
    /// Stream write (`write`).
    fn stream_write(&mut self, socket: Handle, data: &[u8]) -> Result<usize, SockError>;
    /// `ioctl(MP_STREAM_POLL, flags)`: which of `flags` (plus ERR/HUP/NVAL) hold now.
    fn poll(&mut self, socket: Handle, flags: usize) -> usize;
    /// `getaddrinfo(host, port, af, type, proto, flags)`: the first IPv4 address; `hints` are
    /// the last four arguments (0 when absent).
    fn getaddrinfo(
        &mut self,
        host: &str,
        port: u16,
        hints: [i64; 4],
    ) -> Result<SocketAddrV4, SockError>;
}

/// The interface settings `network.LAN.ifconfig()` shows and sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IfConfig {
    /// Address.
    pub address: Ipv4Addr,
    /// Netmask.
    pub netmask: Ipv4Addr,
    /// Gateway.
    pub gateway: Ipv4Addr,
    /// DNS server.
    pub dns: Ipv4Addr,
}

/// The calls of `network.LAN`, as on CanMV-K230.
#[cfg_attr(test, mockall::automock)]
pub trait LanApi {
    /// Brings the interface up or down.
    fn set_active(&mut self, active: bool) -> Result<(), SockError>;
    /// Whether the interface is up.
    fn active(&self) -> bool;
    /// Whether the link is up and an address is configured.
    fn isconnected(&self) -> bool;
    /// The link status number `status()` returns.
    fn status(&self) -> i32;
    /// The current settings (all zero while unconfigured).
    fn ifconfig(&self) -> IfConfig;
    /// Sets static settings.
    fn set_ifconfig(&mut self, config: IfConfig) -> Result<(), SockError>;
    /// Starts DHCP.
    fn set_dhcp(&mut self) -> Result<(), SockError>;
    /// The MAC address.
    fn mac(&self) -> [u8; 6];
    /// Sets the MAC address.
    fn set_mac(&mut self, mac: [u8; 6]) -> Result<(), SockError>;
}

static SOCKETS: Static<Option<&'static mut dyn SocketApi>> = Static::new(None);
static LAN: Static<Option<&'static mut dyn LanApi>> = Static::new(None);

/// Installs (or with `None` removes) the implementation the `socket` module calls.
///
/// # Safety
/// Must be called on the interpreter thread while no binding function runs (before scripts
/// start, or between them); the reference must stay valid until it is replaced.
pub unsafe fn set_sockets(sockets: Option<&'static mut dyn SocketApi>) {
    // SAFETY: the caller guarantees no binding holds the previous reference.
    unsafe { *SOCKETS.get() = sockets };
}

/// Installs (or with `None` removes) the implementation `network.LAN` calls.
///
/// # Safety
/// As [`set_sockets`].
pub unsafe fn set_lan(lan: Option<&'static mut dyn LanApi>) {
    // SAFETY: the caller guarantees no binding holds the previous reference.
    unsafe { *LAN.get() = lan };
}

/// Runs `f` with the installed socket implementation; `OSError(ENODEV)` when there is none.
pub(crate) fn with<T>(
    f: impl FnOnce(&mut dyn SocketApi) -> Result<T, SockError>,
) -> Result<T, SockError> {
    // SAFETY: binding functions run one at a time on the interpreter thread and never call
    // MicroPython while they hold this reference (so no finaliser can re-enter), so it is the
    // only live one.
    match unsafe { &mut *SOCKETS.get() } {
        Some(sockets) => f(&mut **sockets),
        None => Err(SockError::Os(ENODEV)),
    }
}

/// Runs `f` with the installed LAN implementation; `OSError(ENODEV)` when there is none.
pub(crate) fn with_lan<T>(
    f: impl FnOnce(&mut dyn LanApi) -> Result<T, SockError>,
) -> Result<T, SockError> {
    // SAFETY: as in `with`.
    match unsafe { &mut *LAN.get() } {
        Some(lan) => f(&mut **lan),
        None => Err(SockError::Os(ENODEV)),
    }
}

/// MicroPython's `ENODEV` (upy-socket's number): no implementation installed.
pub const ENODEV: i32 = ::upy_socket::Errno::ENODEV.code();
