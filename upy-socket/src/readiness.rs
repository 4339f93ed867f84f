//! `ioctl(MP_STREAM_POLL)`: what `select.poll` and asyncio see, state by state, as modlwip's
//! `lwip_socket_ioctl` reports it.

use netstack::api::{Readiness, SocketStack};

use crate::clock::Clock;
use crate::errno::Errno;
use crate::poll_flags::PollFlags;
use crate::sockets::{Kind, Socket, Sockets, TcpState};

impl<S: SocketStack, C: Clock, const N: usize> Sockets<S, C, N> {
    /// The readiness of `socket` for the requested `flags` (`RD`/`WR`); `ERR`, `HUP` and `NVAL`
    /// are reported whether requested or not. Polls the stack first.
    ///
    /// | state | reported |
    /// |---|---|
    /// | closed | `NVAL` |
    /// | UDP | `WR`; `RD` if a datagram is queued |
    /// | TCP new (not listening or connecting) | `WR` (lwIP has send room); `HUP` |
    /// | listening | `RD` if a connection is pending |
    /// | connecting | nothing (`WR` comes with the connection) |
    /// | connected | `RD` if data is queued; `WR` if there is send room |
    /// | peer closed (FIN) | `RD` and `WR` as requested (read gives EOF, write an error) |
    /// | reset or refused (lwIP's `ERR_RST`), not yet reported | `RD` and `WR` as requested; `ERR`; `HUP` |
    /// | reset reported by a receive (`STATE_PEER_RST_HANDLED`) | `RD` as requested (EOF); `HUP` |
    /// | failure reported by a send (`_ERR_BADF`) | `NVAL`; `RD` if bytes are still queued |
    /// | any other failure | `ERR`; `RD` if bytes are still queued |
    pub fn ioctl_poll(&mut self, socket: Socket, flags: PollFlags) -> PollFlags {
        self.poll();
        let Ok(entry) = self.refreshed(socket) else {
            return PollFlags::NVAL;
        };
        let rd_wr = flags & (PollFlags::RD | PollFlags::WR);
        let ready = || {
            let r = self
                .stack
                .readiness(entry.id)
                .unwrap_or(Readiness::default());
            let mut out = PollFlags::NONE;
            if r.readable {
                out |= PollFlags::RD;
            }
            if r.writable {
                out |= PollFlags::WR;
            }
            out & flags
        };
        match entry.kind {
            Kind::Udp => (ready() & PollFlags::RD) | (flags & PollFlags::WR),
            Kind::Tcp(TcpState::New) => (flags & PollFlags::WR) | PollFlags::HUP,
            Kind::Tcp(TcpState::Listening) => ready() & PollFlags::RD,
            Kind::Tcp(TcpState::Connecting) => PollFlags::NONE,
            Kind::Tcp(TcpState::Connected) => ready(),
            Kind::Tcp(TcpState::PeerClosed) => rd_wr,
            Kind::Tcp(TcpState::Failed(Errno::ECONNRESET | Errno::ECONNREFUSED)) => {
                rd_wr | PollFlags::ERR | PollFlags::HUP
            }
            Kind::Tcp(TcpState::PeerReset) => (flags & PollFlags::RD) | PollFlags::HUP,
            Kind::Tcp(TcpState::Failed(errno)) => {
                let mut out = if errno == Errno::EBADF {
                    PollFlags::NVAL
                } else {
                    PollFlags::ERR
                };
                if self.has_queued_bytes(entry.id) {
                    out |= flags & PollFlags::RD;
                }
                out
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consts::{AF_INET, SOCK_DGRAM, SOCK_STREAM};
    use crate::mock::{fixture, MockSocketStack, Table};
    use netstack::api::{NetError, SocketId, TcpPhase};

    const RD: PollFlags = PollFlags::RD;
    const WR: PollFlags = PollFlags::WR;
    const ERR: PollFlags = PollFlags::ERR;
    const HUP: PollFlags = PollFlags::HUP;
    const NVAL: PollFlags = PollFlags::NVAL;
    const NONE: PollFlags = PollFlags::NONE;

    fn table(readable: bool, writable: bool, phase: Result<TcpPhase, NetError>) -> Table {
        let mut stack = MockSocketStack::new();
        stack.expect_open().returning(|_| Ok(SocketId(1)));
        stack.expect_readiness().returning(move |_| {
            Ok(Readiness {
                readable,
                writable,
                hangup: false,
                error: false,
            })
        });
        stack.expect_tcp_phase().returning(move |_| phase);
        // `readable` also means received bytes are queued.
        stack.expect_peek().returning(move |_, buf| {
            if readable {
                buf[0] = b'x';
                Ok(1)
            } else {
                Err(NetError::WouldBlock)
            }
        });
        fixture(stack)
    }

    fn tcp_in(t: &mut Table, state: TcpState) -> Socket {
        let s = t.socket(AF_INET, SOCK_STREAM, 0).unwrap();
        t.set_tcp_state(s.index(), state);
        s
    }

    #[test]
    fn new_tcp_socket_is_hup_and_writable() {
        let mut t = table(false, false, Ok(TcpPhase::Idle));
        let s = tcp_in(&mut t, TcpState::New);
        assert_eq!(t.ioctl_poll(s, RD | WR), WR | HUP);
        assert_eq!(t.ioctl_poll(s, RD), HUP);
        assert_eq!(t.ioctl_poll(s, NONE), HUP);
    }

    #[test]
    fn listening_socket_is_readable_with_a_pending_connection() {
        let mut t = table(true, true, Ok(TcpPhase::Listening));
        let s = tcp_in(&mut t, TcpState::Listening);
        assert_eq!(t.ioctl_poll(s, RD | WR), RD);
        assert_eq!(t.ioctl_poll(s, WR), NONE);
        let mut t = table(false, false, Ok(TcpPhase::Listening));
        let s = tcp_in(&mut t, TcpState::Listening);
        assert_eq!(t.ioctl_poll(s, RD | WR), NONE);
    }

    #[test]
    fn connecting_socket_reports_nothing_until_connected() {
        let mut t = table(false, true, Ok(TcpPhase::Connecting));
        let s = tcp_in(&mut t, TcpState::Connecting);
        assert_eq!(t.ioctl_poll(s, RD | WR), NONE);
        let mut t = table(false, true, Ok(TcpPhase::Connected));
        let s = tcp_in(&mut t, TcpState::Connecting);
        assert_eq!(t.ioctl_poll(s, RD | WR), WR);
    }

    #[test]
    fn connected_socket_follows_the_stack_and_the_request() {
        for (readable, writable) in [(false, false), (true, false), (false, true), (true, true)] {
            let mut t = table(readable, writable, Ok(TcpPhase::Connected));
            let s = tcp_in(&mut t, TcpState::Connected);
            let mut expected = NONE;
            if readable {
                expected |= RD;
            }
            if writable {
                expected |= WR;
            }
            assert_eq!(t.ioctl_poll(s, RD | WR), expected);
            assert_eq!(t.ioctl_poll(s, RD), expected & RD);
            assert_eq!(t.ioctl_poll(s, WR), expected & WR);
        }
    }

    #[test]
    fn peer_closed_socket_is_readable_and_writable() {
        let mut t = table(false, false, Ok(TcpPhase::PeerClosed));
        let s = tcp_in(&mut t, TcpState::Connected);
        assert_eq!(t.ioctl_poll(s, RD | WR), RD | WR);
        assert_eq!(t.ioctl_poll(s, RD), RD);
    }

    #[test]
    fn reset_socket_is_readable_writable_err_and_hup_until_reported() {
        let mut t = table(true, true, Ok(TcpPhase::Failed(NetError::ConnectionReset)));
        let s = tcp_in(&mut t, TcpState::Connected);
        assert_eq!(t.ioctl_poll(s, RD | WR), RD | WR | ERR | HUP);
        assert_eq!(t.ioctl_poll(s, RD), RD | ERR | HUP);
        assert_eq!(t.ioctl_poll(s, NONE), ERR | HUP);
        let mut t = table(
            false,
            false,
            Ok(TcpPhase::Failed(NetError::ConnectionRefused)),
        );
        let s = tcp_in(&mut t, TcpState::Connecting);
        assert_eq!(t.ioctl_poll(s, RD | WR), RD | WR | ERR | HUP);
    }

    #[test]
    fn a_reported_reset_is_readable_and_hup() {
        let mut t = table(false, false, Ok(TcpPhase::Closed));
        let s = tcp_in(&mut t, TcpState::PeerReset);
        assert_eq!(t.ioctl_poll(s, RD | WR), RD | HUP);
        assert_eq!(t.ioctl_poll(s, WR), HUP);
    }

    #[test]
    fn other_failures_are_err_and_readable_while_bytes_remain() {
        let mut t = table(
            false,
            false,
            Ok(TcpPhase::Failed(NetError::ConnectionAborted)),
        );
        let s = tcp_in(&mut t, TcpState::Connected);
        assert_eq!(t.ioctl_poll(s, RD | WR), ERR);
        assert_eq!(t.ioctl_poll(s, NONE), ERR);
        let mut t = table(true, false, Ok(TcpPhase::Closed));
        let s = tcp_in(&mut t, TcpState::Failed(Errno::ECONNABORTED));
        assert_eq!(t.ioctl_poll(s, RD | WR), RD | ERR);
    }

    #[test]
    fn closed_socket_is_nval_also_after_a_reported_failure() {
        let mut t = table(false, true, Ok(TcpPhase::Connected));
        t.stack_mut().expect_close().return_const(());
        let s = tcp_in(&mut t, TcpState::Connected);
        t.close(s);
        assert_eq!(t.ioctl_poll(s, RD | WR), NVAL);
        let f = tcp_in(&mut t, TcpState::Failed(Errno::ECONNABORTED));
        assert_eq!(
            t.send(f, b"x"),
            Err(crate::SocketError::Os(Errno::ECONNABORTED))
        );
        assert_eq!(t.ioctl_poll(f, RD | WR), NVAL);
        // Bytes that arrived before the failure are still readable (modlwip's pbuf).
        let mut t = table(true, true, Ok(TcpPhase::Closed));
        let f = tcp_in(&mut t, TcpState::Failed(Errno::EBADF));
        assert_eq!(t.ioctl_poll(f, RD | WR), RD | NVAL);
    }

    #[test]
    fn udp_is_always_writable_and_readable_with_a_datagram() {
        let mut t = table(true, false, Ok(TcpPhase::Idle));
        let u = t.socket(AF_INET, SOCK_DGRAM, 0).unwrap();
        assert_eq!(t.ioctl_poll(u, RD | WR), RD | WR);
        let mut t = table(false, false, Ok(TcpPhase::Idle));
        let u = t.socket(AF_INET, SOCK_DGRAM, 0).unwrap();
        assert_eq!(t.ioctl_poll(u, RD | WR), WR);
        assert_eq!(t.ioctl_poll(u, RD), NONE);
    }
}
