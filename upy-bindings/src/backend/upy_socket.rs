//! [`SocketApi`] and [`LanApi`] over upy-socket's [`Sockets`] table and the stack's
//! [`InterfaceControl`].

use core::net::SocketAddrV4;

use netstack::api::{Ipv4Config, NetError, SocketStack};
use netstack::InterfaceControl;
use upy_socket::{
    Clock, Errno, Hints, PollFlags, RecvFlags, Socket, SocketError, Sockets, Timeout,
};

use super::{Handle, IfConfig, LanApi, Lock, OptOutcome, SockError, SocketApi};

/// upy-socket's numbers (MicroPython's), the only source of errno values here.
const EAGAIN: i32 = Errno::EAGAIN.code();
const ENOMEM: i32 = Errno::ENOMEM.code();
const EOPNOTSUPP: i32 = Errno::EOPNOTSUPP.code();

impl From<SocketError> for SockError {
    fn from(e: SocketError) -> Self {
        match e {
            SocketError::Os(errno) => SockError::Os(errno.code()),
            SocketError::Value(msg) => SockError::Value(msg),
            SocketError::NotImplemented => SockError::NotImplemented,
            SocketError::Interrupted => SockError::Interrupted,
        }
    }
}

fn net_error(e: NetError) -> SockError {
    SockError::Os(Errno::from(e).code())
}

/// The `socket` module over a [`Sockets`] table behind lock `L`, with room for `H` Python
/// socket objects at once.
///
/// Python objects hold a [`Handle`], an index into this adapter's table of upy-socket
/// [`Socket`]s; the entry is freed when the object is closed.
pub struct UpySockets<L, const H: usize> {
    lock: L,
    handles: [Option<Socket>; H],
}

impl<L, const H: usize> UpySockets<L, H> {
    /// An adapter over the table behind `lock`.
    pub fn new(lock: L) -> Self {
        Self {
            lock,
            handles: [None; H],
        }
    }

    fn lookup(&self, handle: Handle) -> Result<Socket, SockError> {
        usize::try_from(handle.0)
            .ok()
            .and_then(|i| self.handles.get(i).copied().flatten())
            .ok_or(SockError::Os(Errno::EBADF.code()))
    }

    /// Records a new upy-socket socket; `None` when the table is full.
    fn insert(&mut self, socket: Socket) -> Option<Handle> {
        let free = self.handles.iter().position(Option::is_none)?;
        self.handles[free] = Some(socket);
        Some(Handle(free as u64))
    }
}

impl<L, S, C, const N: usize, const H: usize> UpySockets<L, H>
where
    L: Lock<Target = Sockets<S, C, N>>,
    S: SocketStack,
    C: Clock,
{
    fn call<T>(
        &mut self,
        handle: Handle,
        f: impl FnOnce(&mut Sockets<S, C, N>, Socket) -> Result<T, SocketError>,
    ) -> Result<T, SockError> {
        let socket = self.lookup(handle)?;
        self.lock.with(|s| f(s, socket)).map_err(SockError::from)
    }

    fn adopt(&mut self, socket: Socket) -> Result<Handle, SockError> {
        match self.insert(socket) {
            Some(handle) => Ok(handle),
            None => {
                self.lock.with(|s| s.close(socket));
                Err(SockError::Os(ENOMEM))
            }
        }
    }
}

impl<L, S, C, const N: usize, const H: usize> SocketApi for UpySockets<L, H>
where
    L: Lock<Target = Sockets<S, C, N>>,
    S: SocketStack,
    C: Clock,
{
    fn socket(&mut self, family: i32, socktype: i32, proto: i32) -> Result<Handle, SockError> {
        let socket = self.lock.with(|s| s.socket(family, socktype, proto))?;
        self.adopt(socket)
    }

    fn close(&mut self, handle: Handle) {
        if let Ok(socket) = self.lookup(handle) {
            self.lock.with(|s| s.close(socket));
            if let Some(slot) = usize::try_from(handle.0)
                .ok()
                .and_then(|i| self.handles.get_mut(i))
            {
                *slot = None;
            }
        }
    }

    fn bind(&mut self, handle: Handle, local: SocketAddrV4) -> Result<(), SockError> {
        self.call(handle, |s, k| s.bind(k, local))
    }

    fn listen(&mut self, handle: Handle, backlog: Option<i64>) -> Result<(), SockError> {
        self.call(handle, |s, k| s.listen(k, backlog))
    }

    fn accept(&mut self, handle: Handle) -> Result<(Handle, SocketAddrV4), SockError> {
        let (conn, peer) = self.call(handle, |s, k| s.accept(k))?;
        Ok((self.adopt(conn)?, peer))
    }

    fn connect(&mut self, handle: Handle, remote: SocketAddrV4) -> Result<(), SockError> {
        self.call(handle, |s, k| s.connect(k, remote))
    }

    fn send(&mut self, handle: Handle, data: &[u8]) -> Result<usize, SockError> {
        self.call(handle, |s, k| s.send(k, data))
    }

    fn sendall(&mut self, handle: Handle, data: &[u8]) -> Result<(), SockError> {
        self.call(handle, |s, k| s.sendall(k, data))
    }

    fn recv(
        &mut self,
        handle: Handle,
        buf: &mut [u8],
        flags: RecvFlags,
    ) -> Result<usize, SockError> {
        self.call(handle, |s, k| s.recv(k, buf, flags))
    }

    fn sendto(
        &mut self,
        handle: Handle,
        data: &[u8],
        to: SocketAddrV4,
    ) -> Result<usize, SockError> {
        self.call(handle, |s, k| s.sendto(k, data, to))
    }

    fn recvfrom(
        &mut self,
        handle: Handle,
        buf: &mut [u8],
        flags: RecvFlags,
    ) -> Result<(usize, SocketAddrV4), SockError> {
        self.call(handle, |s, k| s.recvfrom(k, buf, flags))
    }

    fn setsockopt(
        &mut self,
        handle: Handle,
        level: i32,
        name: i32,
        value: i64,
    ) -> Result<OptOutcome, SockError> {
        let outcome = self.call(handle, |s, k| s.setsockopt(k, level, name, value))?;
        Ok(match outcome {
            upy_socket::OptOutcome::Applied => OptOutcome::Applied,
            upy_socket::OptOutcome::NotImplemented => OptOutcome::NotImplemented,
        })
    }

    fn settimeout(&mut self, handle: Handle, secs: Option<f64>) -> Result<(), SockError> {
        let timeout = match secs {
            None => Timeout::Blocking,
            Some(secs) => Timeout::from_secs(secs)?,
        };
        self.call(handle, |s, k| {
            s.set_timeout(k, timeout);
            Ok(())
        })
    }

    fn setblocking(&mut self, handle: Handle, flag: bool) -> Result<(), SockError> {
        self.call(handle, |s, k| {
            s.set_timeout(k, Timeout::from_blocking(flag));
            Ok(())
        })
    }

    fn stream_read(&mut self, handle: Handle, buf: &mut [u8]) -> Result<usize, SockError> {
        self.call(handle, |s, k| s.read(k, buf))?
            .ok_or(SockError::Os(EAGAIN))
    }

    fn stream_write(&mut self, handle: Handle, data: &[u8]) -> Result<usize, SockError> {
        self.call(handle, |s, k| s.write(k, data))?
            .ok_or(SockError::Os(EAGAIN))
    }

    fn poll(&mut self, handle: Handle, flags: usize) -> usize {
        match self.lookup(handle) {
            Ok(socket) => self
                .lock
                .with(|s| s.ioctl_poll(socket, PollFlags::from_bits_truncate(flags)))
                .bits(),
            Err(_) => PollFlags::NVAL.bits(),
        }
    }

    fn getaddrinfo(
        &mut self,
        host: &str,
        port: u16,
        hints: [i64; 4],
    ) -> Result<SocketAddrV4, SockError> {
        let [family, socktype, proto, flags] = hints;
        let hints = Hints {
            family,
            socktype,
            proto,
            flags,
        };
        let info = self.lock.with(|s| s.getaddrinfo(host, port, &hints))?;
        Ok(info.addr)
    }
}

/// `network.LAN` over the stack's [`InterfaceControl`], reached through the socket table.
///
/// `active(False)` only records the wish: the stack has no administrative down state, so the
/// interface keeps running (documented difference from CanMV). The MAC address is the NIC's
/// and cannot be changed (`config(mac=...)` raises `OSError(EOPNOTSUPP)`).
pub struct UpyLan<L> {
    lock: L,
    active: bool,
}

impl<L> UpyLan<L> {
    /// The interface of the stack behind `lock`, active as on CanMV after boot.
    pub fn new(lock: L) -> Self {
        Self { lock, active: true }
    }
}

/// `status()` values: 0 link down, 1 link up without address, 2 link up with address
/// (the CanMV-K230 LAN driver reports the link state as a small integer).
pub mod status {
    /// No carrier.
    pub const LINK_DOWN: i32 = 0;
    /// Carrier, no IPv4 address yet.
    pub const LINK_UP: i32 = 1;
    /// Carrier and an IPv4 address.
    pub const GOT_IP: i32 = 2;
}

impl<L, S, C, const N: usize> LanApi for UpyLan<L>
where
    L: Lock<Target = Sockets<S, C, N>>,
    S: SocketStack + InterfaceControl,
    C: Clock,
{
    fn set_active(&mut self, active: bool) -> Result<(), SockError> {
        self.active = active;
        Ok(())
    }

    fn active(&self) -> bool {
        self.active
    }

    fn isconnected(&self) -> bool {
        self.status() == status::GOT_IP
    }

    fn status(&self) -> i32 {
        self.lock.with(|s| {
            let stack = s.stack();
            match (stack.link_up(), stack.config().is_some()) {
                (false, _) => status::LINK_DOWN,
                (true, false) => status::LINK_UP,
                (true, true) => status::GOT_IP,
            }
        })
    }

    fn ifconfig(&self) -> IfConfig {
        let config = self.lock.with(|s| s.stack().config());
        match config {
            Some(c) => IfConfig {
                address: c.address,
                netmask: c.netmask,
                gateway: c.gateway,
                dns: c.dns,
            },
            None => IfConfig {
                address: core::net::Ipv4Addr::UNSPECIFIED,
                netmask: core::net::Ipv4Addr::UNSPECIFIED,
                gateway: core::net::Ipv4Addr::UNSPECIFIED,
                dns: core::net::Ipv4Addr::UNSPECIFIED,
            },
        }
    }

    fn set_ifconfig(&mut self, config: IfConfig) -> Result<(), SockError> {
        let config = Ipv4Config {
            address: config.address,
            netmask: config.netmask,
            gateway: config.gateway,
            dns: config.dns,
        };
        self.lock
            .with(|s| s.stack_mut().set_static(config))
            .map_err(net_error)
    }

    fn set_dhcp(&mut self) -> Result<(), SockError> {
        self.lock.with(|s| s.stack_mut().start_dhcp());
        Ok(())
    }

    fn mac(&self) -> [u8; 6] {
        self.lock.with(|s| s.stack().mac())
    }

    fn set_mac(&mut self, _mac: [u8; 6]) -> Result<(), SockError> {
        Err(SockError::Os(EOPNOTSUPP))
    }
}

#[cfg(all(test, feature = "host"))]
mod tests {
    use std::sync::{Arc, Mutex};

    use netstack::phy::{wire, WireEnd};
    use netstack::{HeapStorage, Stack, StackConfig};
    use upy_socket::StdClock;

    use super::*;

    type Table = Sockets<Stack<'static, WireEnd>, StdClock, 4>;

    fn table() -> Arc<Mutex<Table>> {
        let (end, _other) = wire();
        let stack = Stack::new(
            end,
            StackConfig {
                mac: [2, 0, 0, 0, 0, 1],
                seed: netstack::Seed::reproducible(1),
            },
            HeapStorage::default().parts(),
            0,
        );
        Arc::new(Mutex::new(Sockets::new(stack, StdClock::new())))
    }

    #[test]
    fn handles_map_to_sockets_and_a_full_table_is_enomem() {
        let mut api = UpySockets::<_, 2>::new(table());
        let a = api.socket(2, 1, 0).expect("first");
        let b = api.socket(2, 2, 0).expect("second");
        assert_ne!(a, b);
        // The adapter's table (2) is full although upy-socket's (4) is not.
        assert_eq!(api.socket(2, 1, 0), Err(SockError::Os(ENOMEM)));
        api.close(a);
        let c = api.socket(2, 1, 0).expect("reuses the freed handle");
        assert_eq!(c, a);
        // A closed or unknown handle is EBADF, not someone else's socket.
        api.close(c);
        assert_eq!(api.listen(c, None), Err(SockError::Os(Errno::EBADF.code())));
        assert_eq!(
            api.listen(Handle(99), None),
            Err(SockError::Os(Errno::EBADF.code()))
        );
        assert_eq!(api.poll(Handle(99), 0x5), PollFlags::NVAL.bits());
    }

    #[test]
    fn upy_socket_errors_and_timeouts_map_through() {
        let mut api = UpySockets::<_, 4>::new(table());
        assert_eq!(
            api.socket(10, 1, 0),
            Err(SockError::Os(Errno::EAFNOSUPPORT.code()))
        );
        let udp = api.socket(2, 2, 0).expect("udp");
        assert_eq!(
            api.listen(udp, None),
            Err(SockError::Os(Errno::EOPNOTSUPP.code()))
        );
        assert_eq!(
            api.settimeout(udp, Some(-1.0)),
            Err(SockError::Value("Timeout value out of range"))
        );
        api.setblocking(udp, false).expect("non-blocking");
        let mut buf = [0u8; 8];
        assert_eq!(api.stream_read(udp, &mut buf), Err(SockError::Os(EAGAIN)));
        assert_eq!(
            api.getaddrinfo("10.1.2.3", 80, [0; 4]),
            Ok(SocketAddrV4::new(core::net::Ipv4Addr::new(10, 1, 2, 3), 80))
        );
    }
}
