//! The socket methods that move data: `send`, `sendall`, `recv`, `sendto`, `recvfrom`.
//!
//! They report a connection failure once and then behave as closed (`EBADF`), as modlwip's
//! `lwip_socket_check_connected` does; the stream methods (`read`, `write`...) do not.

use core::net::{Ipv4Addr, SocketAddrV4};

use netstack::api::SocketStack;

use crate::clock::Clock;
use crate::errno::{Errno, SocketError};
use crate::recv_flags::RecvFlags;
use crate::sockets::{Kind, Report, Socket, Sockets, TcpState};
use crate::timeout::Timeout;

impl<S: SocketStack, C: Clock, const N: usize> Sockets<S, C, N> {
    /// `socket.send(bytes)`: how many bytes were queued, which may be fewer than given (TCP);
    /// the whole datagram (UDP, to the connected peer).
    pub fn send(&mut self, socket: Socket, data: &[u8]) -> Result<usize, SocketError> {
        match self.entry(socket)?.kind {
            Kind::Tcp(_) => self.tcp_send_once(socket, data, Report::Once),
            Kind::Udp => self.udp_send(socket, data, None),
        }
    }

    /// `socket.recv(bufsize[, flags])` into `buf`: bytes read, 0 (`b''`) after an orderly
    /// close or a reported reset (TCP); one datagram, truncated to `buf` (UDP). `EAGAIN` when
    /// non-blocking (or `MSG_DONTWAIT`) and nothing is there; with `MSG_PEEK` the data stays
    /// queued.
    pub fn recv(
        &mut self,
        socket: Socket,
        buf: &mut [u8],
        flags: RecvFlags,
    ) -> Result<usize, SocketError> {
        match self.entry(socket)?.kind {
            Kind::Tcp(_) => self.tcp_recv_once(socket, buf, flags),
            Kind::Udp => self.udp_recv(socket, buf, flags).map(|(n, _)| n),
        }
    }

    /// `socket.sendto(bytes, address)`: one datagram to `to` (UDP). On TCP the address is
    /// ignored and this is `send`, as in modlwip.
    pub fn sendto(
        &mut self,
        socket: Socket,
        data: &[u8],
        to: SocketAddrV4,
    ) -> Result<usize, SocketError> {
        match self.entry(socket)?.kind {
            Kind::Tcp(_) => self.tcp_send_once(socket, data, Report::Once),
            Kind::Udp => self.udp_send(socket, data, Some(to)),
        }
    }

    /// `socket.recvfrom(bufsize[, flags])`: like `recv`, with the sender (UDP) or the peer
    /// (TCP; `0.0.0.0:0` if the stack does not know it).
    pub fn recvfrom(
        &mut self,
        socket: Socket,
        buf: &mut [u8],
        flags: RecvFlags,
    ) -> Result<(usize, SocketAddrV4), SocketError> {
        let entry = self.entry(socket)?;
        match entry.kind {
            Kind::Tcp(_) => {
                let unknown = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0);
                let peer = self
                    .stack
                    .peer_addr(entry.id)
                    .ok()
                    .flatten()
                    .unwrap_or(unknown);
                let n = self.tcp_recv_once(socket, buf, flags)?;
                Ok((n, peer))
            }
            Kind::Udp => self.udp_recv(socket, buf, flags),
        }
    }

    /// `socket.sendall(bytes)`: sends everything, each chunk waiting up to the timeout afresh
    /// (as modlwip). `NotImplementedError` on UDP.
    ///
    /// Non-blocking: modlwip raises `EAGAIN` without sending when the data does not fit the
    /// send buffer. The stack only says whether there is room at all, so here `EAGAIN` comes
    /// without sending when there is no room, and after a partial send when the room runs out
    /// (the manual calls `sendall` on non-blocking sockets undefined; use `write`).
    pub fn sendall(&mut self, socket: Socket, data: &[u8]) -> Result<(), SocketError> {
        let entry = self.current(socket)?;
        let state = match entry.kind {
            Kind::Udp => return Err(SocketError::NotImplemented),
            Kind::Tcp(TcpState::Failed(e)) => {
                return Err(self.report_failure(socket, e, Report::Once))
            }
            Kind::Tcp(TcpState::PeerReset) => return Err(Errno::EPIPE.into()),
            Kind::Tcp(state) => state,
        };
        let connected = matches!(state, TcpState::Connected | TcpState::PeerClosed);
        if entry.timeout == Timeout::NonBlocking
            && connected
            && !data.is_empty()
            && !self.stack.readiness(entry.id)?.writable
        {
            return Err(Errno::EAGAIN.into());
        }
        let mut rest = data;
        while !rest.is_empty() {
            let n = self.tcp_send_once(socket, rest, Report::Always)?;
            rest = &rest[n..];
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consts::{AF_INET, SOCK_DGRAM, SOCK_STREAM};
    use crate::mock::{fixture, fixture_with_time, MockSocketStack, Table};
    use mockall::predicate::eq;
    use netstack::api::{NetError, Readiness, SocketId, TcpPhase};

    fn addr() -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(192, 168, 4, 1), 7)
    }

    fn os(e: Errno) -> SocketError {
        SocketError::Os(e)
    }

    fn connected(t: &mut Table) -> Socket {
        t.stack_mut().expect_open().returning(|_| Ok(SocketId(1)));
        let s = t.socket(AF_INET, SOCK_STREAM, 0).unwrap();
        t.set_tcp_state(s.index(), TcpState::Connected);
        t.stack_mut()
            .expect_tcp_phase()
            .returning(|_| Ok(TcpPhase::Connected));
        s
    }

    fn udp(t: &mut Table) -> Socket {
        t.stack_mut().expect_open().returning(|_| Ok(SocketId(2)));
        t.socket(AF_INET, SOCK_DGRAM, 0).unwrap()
    }

    #[test]
    fn tcp_send_recv_and_sendto_ignores_the_address() {
        let mut t = fixture(MockSocketStack::new());
        let s = connected(&mut t);
        t.stack_mut()
            .expect_send()
            .times(2)
            .returning(|_, d| Ok(d.len()));
        assert_eq!(t.send(s, b"abc"), Ok(3));
        assert_eq!(t.sendto(s, b"de", addr()), Ok(2));
        t.stack_mut().expect_recv().times(1).returning(|_, b| {
            b[0] = b'z';
            Ok(1)
        });
        let mut buf = [0; 4];
        assert_eq!(t.recv(s, &mut buf, RecvFlags::NONE), Ok(1));
        assert_eq!(buf[0], b'z');
    }

    #[test]
    fn tcp_recvfrom_reports_the_peer() {
        let mut t = fixture(MockSocketStack::new());
        let s = connected(&mut t);
        t.stack_mut()
            .expect_peer_addr()
            .with(eq(SocketId(1)))
            .returning(|_| Ok(Some(addr())));
        t.stack_mut().expect_recv().returning(|_, _| Ok(0));
        assert_eq!(t.recvfrom(s, &mut [0; 4], RecvFlags::NONE), Ok((0, addr())));
    }

    #[test]
    fn udp_send_recv_sendto_recvfrom() {
        let mut t = fixture(MockSocketStack::new());
        let u = udp(&mut t);
        t.stack_mut()
            .expect_send_to()
            .withf(|_, _, to| to.is_none())
            .times(1)
            .returning(|_, d, _| Ok(d.len()));
        t.stack_mut()
            .expect_send_to()
            .withf(|_, _, to| *to == Some(addr()))
            .times(1)
            .returning(|_, d, _| Ok(d.len()));
        assert_eq!(t.send(u, b"one"), Ok(3));
        assert_eq!(t.sendto(u, b"three", addr()), Ok(5));
        t.stack_mut().expect_recv_from().returning(|_, b| {
            b[..2].copy_from_slice(b"hi");
            Ok((2, addr()))
        });
        assert_eq!(t.recv(u, &mut [0; 8], RecvFlags::NONE), Ok(2));
        assert_eq!(t.recvfrom(u, &mut [0; 8], RecvFlags::NONE), Ok((2, addr())));
    }

    #[test]
    fn sendall_loops_over_short_writes() {
        let mut t = fixture(MockSocketStack::new());
        let s = connected(&mut t);
        let sent = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = sent.clone();
        t.stack_mut().expect_send().returning(move |_, d| {
            let n = d.len().min(3);
            log.lock().unwrap().extend_from_slice(&d[..n]);
            Ok(n)
        });
        assert_eq!(t.sendall(s, b"0123456789"), Ok(()));
        assert_eq!(sent.lock().unwrap().as_slice(), b"0123456789");
    }

    #[test]
    fn sendall_on_udp_is_not_implemented() {
        let mut t = fixture(MockSocketStack::new());
        let u = udp(&mut t);
        assert_eq!(t.sendall(u, b"x"), Err(SocketError::NotImplemented));
    }

    #[test]
    fn sendall_non_blocking_without_room_sends_nothing() {
        let mut t = fixture(MockSocketStack::new());
        let s = connected(&mut t);
        t.set_timeout(s, Timeout::NonBlocking);
        t.stack_mut()
            .expect_readiness()
            .returning(|_| Ok(Readiness::default()));
        // No send expectation: nothing may be sent.
        assert_eq!(t.sendall(s, b"data"), Err(os(Errno::EAGAIN)));
    }

    #[test]
    fn sendall_with_timeout_restarts_per_chunk_and_times_out() {
        let (mut t, time) = fixture_with_time(MockSocketStack::new());
        let s = connected(&mut t);
        t.set_timeout(s, Timeout::After(10_000));
        let mut calls = 0;
        t.stack_mut().expect_send().returning(move |_, _| {
            calls += 1;
            if calls == 1 {
                Ok(2)
            } else {
                Err(NetError::WouldBlock)
            }
        });
        assert_eq!(t.sendall(s, b"abcd"), Err(os(Errno::ETIMEDOUT)));
        assert_eq!(time.now(), 10_000);
    }

    #[test]
    fn sendall_reports_a_failure_once() {
        let mut t = fixture(MockSocketStack::new());
        t.stack_mut().expect_open().returning(|_| Ok(SocketId(1)));
        let s = t.socket(AF_INET, SOCK_STREAM, 0).unwrap();
        t.set_tcp_state(s.index(), TcpState::Failed(Errno::ECONNABORTED));
        // No close expectation: the stack socket stays until the Python close (its unread
        // bytes may still be read).
        assert_eq!(t.sendall(s, b"x"), Err(os(Errno::ECONNABORTED)));
        assert_eq!(t.sendall(s, b"x"), Err(os(Errno::EBADF)));
        t.set_tcp_state(s.index(), TcpState::PeerReset);
        assert_eq!(t.sendall(s, b"x"), Err(os(Errno::EPIPE)));
    }

    #[test]
    fn closed_socket_methods_are_ebadf() {
        let mut t = fixture(MockSocketStack::new());
        let s = connected(&mut t);
        t.stack_mut().expect_close().return_const(());
        t.close(s);
        assert_eq!(t.send(s, b"x"), Err(os(Errno::EBADF)));
        assert_eq!(
            t.recv(s, &mut [0; 1], RecvFlags::NONE),
            Err(os(Errno::EBADF))
        );
        assert_eq!(t.sendto(s, b"x", addr()), Err(os(Errno::EBADF)));
        assert_eq!(
            t.recvfrom(s, &mut [0; 1], RecvFlags::NONE),
            Err(os(Errno::EBADF))
        );
        assert_eq!(t.sendall(s, b"x"), Err(os(Errno::EBADF)));
    }
}
