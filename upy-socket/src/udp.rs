//! UDP: one datagram out, one datagram in (modlwip's `lwip_raw_udp_send`/`_receive`).

use core::net::SocketAddrV4;

use netstack::api::{NetError, SocketStack};

use crate::clock::Clock;
use crate::errno::SocketError;
use crate::recv_flags::RecvFlags;
use crate::sockets::{Socket, Sockets};
use crate::tcp::expired;
use crate::timeout::Timeout;
use crate::wait::Step;

impl<S: SocketStack, C: Clock, const N: usize> Sockets<S, C, N> {
    /// Sends `data` as one datagram to `to` (the connected peer when `None`); returns its length.
    ///
    /// When the stack has no room, a blocking socket waits (lwIP would fail at once with
    /// `ENOMEM`), a non-blocking one gets `EAGAIN`, a timed one `ETIMEDOUT`. After queueing, the
    /// stack is polled once so the datagram leaves now, as lwIP's `udp_sendto` sends at once (a
    /// `close` right after `sendto` must not lose it).
    pub(crate) fn udp_send(
        &mut self,
        socket: Socket,
        data: &[u8],
        to: Option<SocketAddrV4>,
    ) -> Result<usize, SocketError> {
        let entry = self.entry(socket)?;
        let outcome = self.wait_for(entry.timeout, |s| {
            match s.stack.send_to(entry.id, data, to) {
                Err(NetError::WouldBlock) => Step::Pending,
                result => Step::Done(result.map_err(SocketError::from)),
            }
        });
        let sent = outcome.map_err(expired)??;
        self.poll();
        Ok(sent)
    }

    /// Receives one datagram into `buf` (the rest of a longer one is lost; with `peek` all of
    /// it stays queued) and its source, waiting per the timeout: `EAGAIN` when non-blocking or
    /// `dont_wait`, `ETIMEDOUT` after a timeout.
    pub(crate) fn udp_recv(
        &mut self,
        socket: Socket,
        buf: &mut [u8],
        flags: RecvFlags,
    ) -> Result<(usize, SocketAddrV4), SocketError> {
        let entry = self.entry(socket)?;
        let timeout = if flags.dont_wait {
            Timeout::NonBlocking
        } else {
            entry.timeout
        };
        let outcome = self.wait_for(timeout, |s| {
            let received = if flags.peek {
                s.stack.peek_from(entry.id, buf)
            } else {
                s.stack.recv_from(entry.id, buf)
            };
            match received {
                Err(NetError::WouldBlock) => Step::Pending,
                result => Step::Done(result.map_err(SocketError::from)),
            }
        });
        outcome.map_err(expired)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consts::{AF_INET, SOCK_DGRAM};
    use crate::errno::Errno;
    use crate::mock::{fixture_with_time, MockSocketStack, Table};
    use crate::timeout::Timeout;
    use core::net::Ipv4Addr;
    use mockall::predicate::eq;
    use netstack::api::{SocketId, SocketOption};

    fn to() -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 3), 53)
    }

    fn udp(t: &mut Table) -> Socket {
        t.stack_mut().expect_open().returning(|_| Ok(SocketId(5)));
        t.socket(AF_INET, SOCK_DGRAM, 0).unwrap()
    }

    #[test]
    fn send_passes_destination_and_maps_errors() {
        let (mut t, _) = fixture_with_time(MockSocketStack::new());
        let u = udp(&mut t);
        t.stack_mut()
            .expect_send_to()
            .withf(|id, data, dest| *id == SocketId(5) && data == b"ping" && *dest == Some(to()))
            .times(1)
            .returning(|_, d, _| Ok(d.len()));
        assert_eq!(t.udp_send(u, b"ping", Some(to())), Ok(4));
        t.stack_mut()
            .expect_send_to()
            .times(1)
            .returning(|_, _, _| Err(NetError::NotConnected));
        assert_eq!(
            t.udp_send(u, b"ping", None),
            Err(SocketError::Os(Errno::ENOTCONN))
        );
        t.stack_mut()
            .expect_send_to()
            .times(1)
            .returning(|_, _, _| Err(NetError::MessageTooLong));
        assert_eq!(
            t.udp_send(u, b"ping", None),
            Err(SocketError::Os(Errno::ENOMEM))
        );
    }

    #[test]
    fn a_sent_datagram_is_pushed_out_by_a_poll() {
        let mut stack = MockSocketStack::new();
        stack.expect_open().returning(|_| Ok(SocketId(5)));
        stack
            .expect_set_option()
            .with(eq(SocketId(5)), eq(SocketOption::Broadcast(true)))
            .times(1)
            .returning(|_, _| Ok(()));
        let mut seq = mockall::Sequence::new();
        // The wait's own poll, the send, then one more poll to transmit.
        stack
            .expect_poll()
            .times(1)
            .in_sequence(&mut seq)
            .returning(crate::mock::idle);
        stack
            .expect_send_to()
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, d, _| Ok(d.len()));
        stack
            .expect_poll()
            .times(1)
            .in_sequence(&mut seq)
            .returning(crate::mock::idle);
        let time = crate::mock::VirtualTime::default();
        let mut t = crate::sockets::Sockets::<_, _, 1>::new(stack, time.clock());
        let u = t.socket(AF_INET, SOCK_DGRAM, 0).unwrap();
        assert_eq!(t.udp_send(u, b"x", Some(to())), Ok(1));
    }

    #[test]
    fn send_without_room_waits_or_fails_per_timeout() {
        let (mut t, time) = fixture_with_time(MockSocketStack::new());
        let u = udp(&mut t);
        t.stack_mut()
            .expect_send_to()
            .returning(|_, _, _| Err(NetError::WouldBlock));
        t.set_timeout(u, Timeout::NonBlocking);
        assert_eq!(
            t.udp_send(u, b"x", None),
            Err(SocketError::Os(Errno::EAGAIN))
        );
        t.set_timeout(u, Timeout::After(3_000));
        assert_eq!(
            t.udp_send(u, b"x", None),
            Err(SocketError::Os(Errno::ETIMEDOUT))
        );
        assert_eq!(time.now(), 3_000);
    }

    #[test]
    fn recv_returns_one_datagram_with_its_source() {
        let (mut t, time) = fixture_with_time(MockSocketStack::new());
        let u = udp(&mut t);
        let mut calls = 0;
        t.stack_mut()
            .expect_recv_from()
            .with(eq(SocketId(5)), mockall::predicate::always())
            .returning(move |_, buf| {
                calls += 1;
                if calls < 3 {
                    return Err(NetError::WouldBlock);
                }
                buf[..3].copy_from_slice(b"abc");
                Ok((3, to()))
            });
        let mut buf = [0; 8];
        assert_eq!(t.udp_recv(u, &mut buf, RecvFlags::NONE), Ok((3, to())));
        assert_eq!(&buf[..3], b"abc");
        assert_eq!(time.sleeps(), 2);
    }

    #[test]
    fn recv_non_blocking_and_timeout() {
        let (mut t, time) = fixture_with_time(MockSocketStack::new());
        let u = udp(&mut t);
        t.stack_mut()
            .expect_recv_from()
            .returning(|_, _| Err(NetError::WouldBlock));
        t.set_timeout(u, Timeout::NonBlocking);
        assert_eq!(
            t.udp_recv(u, &mut [0; 4], RecvFlags::NONE),
            Err(SocketError::Os(Errno::EAGAIN))
        );
        t.set_timeout(u, Timeout::After(1_000_000));
        assert_eq!(
            t.udp_recv(u, &mut [0; 4], RecvFlags::NONE),
            Err(SocketError::Os(Errno::ETIMEDOUT))
        );
        assert_eq!(time.now(), 1_000_000);
    }

    #[test]
    fn udp_sockets_may_broadcast_and_so_broadcast_changes_nothing() {
        let mut stack = MockSocketStack::new();
        stack.expect_open().returning(|_| Ok(SocketId(5)));
        stack
            .expect_set_option()
            .with(eq(SocketId(5)), eq(SocketOption::Broadcast(true)))
            .times(1)
            .returning(|_, _| Ok(()));
        stack.expect_poll().returning(crate::mock::idle);
        let time = crate::mock::VirtualTime::default();
        let mut t = crate::sockets::Sockets::<_, _, 1>::new(stack, time.clock());
        let u = t.socket(AF_INET, SOCK_DGRAM, 0).unwrap();
        // Clearing it reaches no stack (a call would fail the `times(1)` above).
        assert_eq!(
            t.setsockopt(u, crate::consts::SOL_SOCKET, crate::consts::SO_BROADCAST, 0),
            Ok(crate::sockets::OptOutcome::Applied)
        );
    }

    #[test]
    fn a_refused_broadcast_permission_closes_the_new_socket() {
        let mut stack = MockSocketStack::new();
        stack.expect_open().returning(|_| Ok(SocketId(5)));
        stack
            .expect_set_option()
            .returning(|_, _| Err(NetError::BadSocket));
        stack
            .expect_close()
            .with(eq(SocketId(5)))
            .times(1)
            .return_const(());
        let time = crate::mock::VirtualTime::default();
        let mut t = crate::sockets::Sockets::<_, _, 1>::new(stack, time.clock());
        assert_eq!(
            t.socket(AF_INET, SOCK_DGRAM, 0),
            Err(SocketError::Os(Errno::EBADF))
        );
        assert_eq!(t.handles_in_use(), 0);
    }

    #[test]
    fn peek_leaves_the_datagram_and_dont_wait_never_waits() {
        let (mut t, time) = fixture_with_time(MockSocketStack::new());
        let u = udp(&mut t);
        // No recv_from expectation: a peek must not take the datagram.
        t.stack_mut()
            .expect_peek_from()
            .times(2)
            .returning(|_, buf| {
                let n = buf.len().min(4);
                buf[..n].copy_from_slice(&b"abcd"[..n]);
                Ok((n, to()))
            });
        let peek = RecvFlags {
            peek: true,
            dont_wait: false,
        };
        let mut buf = [0; 8];
        assert_eq!(t.udp_recv(u, &mut buf, peek), Ok((4, to())));
        assert_eq!(t.udp_recv(u, &mut buf[..2], peek), Ok((2, to())));
        t.stack_mut().checkpoint();
        t.stack_mut().expect_poll().returning(crate::mock::idle);
        t.stack_mut()
            .expect_recv_from()
            .times(1)
            .returning(|_, _| Err(NetError::WouldBlock));
        let dont_wait = RecvFlags {
            peek: false,
            dont_wait: true,
        };
        assert_eq!(
            t.udp_recv(u, &mut buf, dont_wait),
            Err(SocketError::Os(Errno::EAGAIN))
        );
        assert_eq!(time.sleeps(), 0);
    }
}
