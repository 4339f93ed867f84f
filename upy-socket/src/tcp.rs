//! TCP: connecting, accepting, and the single send/receive steps modlwip's `lwip_tcp_send` and
//! `lwip_tcp_receive` perform.

use core::net::SocketAddrV4;

use netstack::api::{NetError, SocketId, SocketStack};

use crate::clock::Clock;
use crate::errno::{Errno, SocketError};
use crate::recv_flags::RecvFlags;
use crate::sockets::{Entry, Kind, Report, Socket, Sockets, TcpState};
use crate::timeout::Timeout;
use crate::wait::{Expired, Step};

/// The error for an expired or interrupted wait of a send, receive or accept.
pub(crate) fn expired(e: Expired) -> SocketError {
    match e {
        Expired::NonBlocking => Errno::EAGAIN.into(),
        Expired::Timeout => Errno::ETIMEDOUT.into(),
        Expired::Interrupted => SocketError::Interrupted,
    }
}

/// Whether a stack error ends the connection (and is kept on the socket until reported).
fn is_connection_failure(e: NetError) -> bool {
    matches!(
        e,
        NetError::ConnectionReset
            | NetError::ConnectionRefused
            | NetError::ConnectionAborted
            | NetError::TimedOut
    )
}

/// The TCP state of an entry (UDP entries never reach the TCP paths).
fn tcp_state(entry: &Entry) -> TcpState {
    match entry.kind {
        Kind::Tcp(state) => state,
        Kind::Udp => TcpState::Connected,
    }
}

impl<S: SocketStack, C: Clock, const N: usize> Sockets<S, C, N> {
    /// The socket after a stack poll, with its state up to date.
    pub(crate) fn current(&mut self, socket: Socket) -> Result<Entry, SocketError> {
        self.poll();
        self.refreshed(socket)
    }

    /// `socket.connect((host, port))`.
    ///
    /// UDP: sets the default peer. TCP: `EBADF` on a failed socket, `EISCONN` when connected,
    /// `EALREADY` while connecting (or listening); otherwise starts the connection (errors such
    /// as `EHOSTUNREACH` come at once) and waits: `EINPROGRESS` on a non-blocking socket,
    /// `ETIMEDOUT` when a `settimeout` timeout passes (the attempt goes on; a later connect
    /// gives `EALREADY`), `ECONNREFUSED`/`ECONNABORTED` when the attempt fails.
    pub fn connect(&mut self, socket: Socket, remote: SocketAddrV4) -> Result<(), SocketError> {
        let entry = self.current(socket)?;
        match entry.kind {
            Kind::Udp => return Ok(self.stack.connect(entry.id, remote)?),
            Kind::Tcp(TcpState::New) => {}
            Kind::Tcp(state) if state.is_over() => return Err(Errno::EBADF.into()),
            Kind::Tcp(TcpState::Connected) => return Err(Errno::EISCONN.into()),
            Kind::Tcp(_) => return Err(Errno::EALREADY.into()),
        }
        self.stack.connect(entry.id, remote)?;
        self.set_tcp_state(socket.index(), TcpState::Connecting);
        log::debug!("socket {}: connecting to {remote}", socket.index());
        let outcome = self.wait_for(entry.timeout, |s| match s.refreshed(socket) {
            Err(e) => Step::Done(Err(e)),
            Ok(e) => match tcp_state(&e) {
                TcpState::Connecting => Step::Pending,
                // The failure stays on the socket (modlwip keeps its negative state).
                TcpState::Failed(errno) => Step::Done(Err(errno.into())),
                _ => Step::Done(Ok(())),
            },
        });
        match outcome {
            Ok(result) => result,
            Err(Expired::NonBlocking) => Err(Errno::EINPROGRESS.into()),
            Err(Expired::Timeout) => Err(Errno::ETIMEDOUT.into()),
            // The handshake goes on, as after a non-blocking connect: the socket stays usable.
            Err(Expired::Interrupted) => Err(SocketError::Interrupted),
        }
    }

    /// `socket.accept()`: the next connection and its peer's address. The new socket inherits
    /// the listener's timeout.
    ///
    /// `EOPNOTSUPP` on UDP, `EBADF` on a failed socket, `EINVAL` unless listening; with nothing
    /// pending `EAGAIN` (non-blocking) or `ETIMEDOUT` (timeout); `ENOMEM` when the table is full.
    pub fn accept(&mut self, socket: Socket) -> Result<(Socket, SocketAddrV4), SocketError> {
        let entry = self.entry(socket)?;
        match entry.kind {
            Kind::Udp => return Err(Errno::EOPNOTSUPP.into()),
            Kind::Tcp(state) if state.is_over() => return Err(Errno::EBADF.into()),
            Kind::Tcp(TcpState::Listening) => {}
            Kind::Tcp(_) => return Err(Errno::EINVAL.into()),
        }
        // Like modlwip, which allocates the new socket object before waiting.
        let index = self.free_slot()?;
        let outcome = self.wait_for(entry.timeout, |s| match s.stack.accept(entry.id) {
            Ok(conn) => Step::Done(Ok(conn)),
            Err(NetError::WouldBlock) => Step::Pending,
            Err(e) => Step::Done(Err(SocketError::from(e))),
        });
        let (id, peer) = outcome.map_err(expired)??;
        let kind = Kind::Tcp(TcpState::Connected);
        let new = self.install(
            index,
            Entry {
                id,
                timeout: entry.timeout,
                kind,
            },
        );
        log::debug!(
            "socket {}: accepted {peer} as socket {}",
            socket.index(),
            new.index()
        );
        Ok((new, peer))
    }

    /// One `lwip_tcp_send`: queues as much of `data` as fits (maybe less than all), waiting per
    /// the timeout while there is no room. `ENOTCONN` before a connection; a connecting socket
    /// has no room yet (lwIP would queue the data; our stack cannot before the handshake).
    pub(crate) fn tcp_send_once(
        &mut self,
        socket: Socket,
        data: &[u8],
        report: Report,
    ) -> Result<usize, SocketError> {
        let timeout = self.entry(socket)?.timeout;
        // A failure already there when the call starts is reported per `report`; one that
        // arrives while waiting is only returned (modlwip's two checks).
        let mut first = true;
        let outcome = self.wait_for(timeout, |s| {
            let entry = match s.refreshed(socket) {
                Ok(entry) => entry,
                Err(e) => return Step::Done(Err(e)),
            };
            let report = if core::mem::take(&mut first) {
                report
            } else {
                Report::Always
            };
            match tcp_state(&entry) {
                TcpState::Failed(e) => return Step::Done(Err(s.report_failure(socket, e, report))),
                // lwIP leaves this undefined (modlwip reads outside its error table); Linux's
                // answer.
                TcpState::PeerReset => return Step::Done(Err(Errno::EPIPE.into())),
                TcpState::New | TcpState::Listening => {
                    return Step::Done(Err(Errno::ENOTCONN.into()))
                }
                _ if data.is_empty() => return Step::Done(Ok(0)),
                TcpState::Connecting => return Step::Pending,
                TcpState::Connected | TcpState::PeerClosed => {}
            }
            match s.stack.send(entry.id, data) {
                // The stack never reports 0 bytes queued; if it did, treat it as no room.
                Ok(0) | Err(NetError::WouldBlock) => Step::Pending,
                Ok(n) => Step::Done(Ok(n)),
                Err(e) => Step::Done(Err(s.note_failure(socket, e))),
            }
        });
        outcome.map_err(expired)?
    }

    /// The error for a stack error from `send`/`recv`; a connection failure is also kept on the
    /// socket, as if `tcp_phase` had reported it.
    fn note_failure(&mut self, socket: Socket, e: NetError) -> SocketError {
        let errno = Errno::from(e);
        if is_connection_failure(e) {
            self.set_tcp_state(socket.index(), TcpState::Failed(errno));
        }
        errno.into()
    }

    /// One `lwip_tcp_receive`: returns what is queued (maybe less than `buf`; with `peek` it
    /// stays queued), 0 at end of stream, waiting per the timeout (not at all with
    /// `dont_wait`) while nothing is queued.
    ///
    /// Bytes received before a failure are read first; then the failure is reported once: a
    /// reset reads as end of stream after that, anything else as a closed socket (`EBADF`).
    /// `ENOTCONN` on a listening socket; before a connection `EAGAIN` when not waiting, else
    /// `ENOTCONN` (modlwip's quirk). An empty `buf` waits for data or EOF like modlwip, then
    /// returns 0.
    pub(crate) fn tcp_recv_once(
        &mut self,
        socket: Socket,
        buf: &mut [u8],
        flags: RecvFlags,
    ) -> Result<usize, SocketError> {
        let timeout = if flags.dont_wait {
            Timeout::NonBlocking
        } else {
            self.entry(socket)?.timeout
        };
        let outcome = self.wait_for(timeout, |s| {
            let entry = match s.refreshed(socket) {
                Ok(entry) => entry,
                Err(e) => return Step::Done(Err(e)),
            };
            match tcp_state(&entry) {
                TcpState::Listening => return Step::Done(Err(Errno::ENOTCONN.into())),
                TcpState::New | TcpState::Connecting => {
                    return Step::Done(Err(match timeout {
                        Timeout::NonBlocking => Errno::EAGAIN.into(),
                        Timeout::Blocking | Timeout::After(_) => Errno::ENOTCONN.into(),
                    }));
                }
                TcpState::Connected
                | TcpState::PeerClosed
                | TcpState::Failed(_)
                | TcpState::PeerReset => {}
            }
            let queued = match s.tcp_read(entry.id, buf, flags.peek) {
                Ok(Queued::Bytes(n)) => return Step::Done(Ok(n)),
                Ok(queued) => queued,
                Err(e) if is_connection_failure(e) => {
                    s.note_failure(socket, e);
                    Queued::Nothing
                }
                Err(e) => return Step::Done(Err(e.into())),
            };
            // Nothing to read: the state (maybe just updated by `note_failure`) decides.
            let state = match s.entry(socket) {
                Ok(entry) => tcp_state(&entry),
                Err(e) => return Step::Done(Err(e)),
            };
            match state {
                TcpState::Failed(e) => Step::Done(Err(s.report_recv_failure(socket, e))),
                TcpState::PeerClosed | TcpState::PeerReset => Step::Done(Ok(0)),
                _ if queued == Queued::End => Step::Done(Ok(0)),
                _ => Step::Pending,
            }
        });
        outcome.map_err(expired)?
    }

    /// Whether stack socket `id` has received bytes not read yet.
    pub(crate) fn has_queued_bytes(&mut self, id: SocketId) -> bool {
        matches!(self.tcp_read(id, &mut [], true), Ok(Queued::Bytes(_)))
    }

    /// Reads (or with `peek` copies) queued bytes of stack socket `id` into `buf`. An empty
    /// `buf` only learns whether a byte is queued ([`Queued::Bytes`] of 0).
    fn tcp_read(&mut self, id: SocketId, buf: &mut [u8], peek: bool) -> Result<Queued, NetError> {
        let probing = buf.is_empty();
        let mut probe = [0u8; 1];
        let target = if probing { &mut probe[..] } else { buf };
        let read = if peek || probing {
            self.stack.peek(id, target)
        } else {
            self.stack.recv(id, target)
        };
        match read {
            Ok(0) => Ok(Queued::End),
            Ok(_) if probing => Ok(Queued::Bytes(0)),
            Ok(n) => Ok(Queued::Bytes(n)),
            Err(NetError::WouldBlock) => Ok(Queued::Nothing),
            Err(e) => Err(e),
        }
    }
}

/// What a TCP socket has for a reader right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Queued {
    /// This many bytes were read (or peeked).
    Bytes(usize),
    /// Nothing yet.
    Nothing,
    /// End of stream.
    End,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consts::{AF_INET, SOCK_DGRAM, SOCK_STREAM};
    use crate::mock::{fixture, fixture_with_time, MockSocketStack, Table};
    use core::net::Ipv4Addr;
    use mockall::predicate::eq;
    use netstack::api::{SocketId, TcpPhase};
    use std::sync::{Arc, Mutex};

    fn peer() -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 5000)
    }

    fn tcp(t: &mut Table, id: u16) -> Socket {
        t.stack_mut()
            .expect_open()
            .times(1)
            .returning(move |_| Ok(SocketId(id)));
        t.socket(AF_INET, SOCK_STREAM, 0).unwrap()
    }

    fn os(e: Errno) -> SocketError {
        SocketError::Os(e)
    }

    /// A stack whose `tcp_phase` answers from a shared script (the last entry repeats).
    fn phases(stack: &mut MockSocketStack, script: &[Result<TcpPhase, NetError>]) {
        let script = Arc::new(Mutex::new(script.to_vec()));
        stack.expect_tcp_phase().returning(move |_| {
            let mut s = script.lock().unwrap();
            if s.len() > 1 {
                s.remove(0)
            } else {
                s[0]
            }
        });
    }

    fn connected(t: &mut Table, id: u16) -> Socket {
        let s = tcp(t, id);
        t.set_tcp_state(s.index(), TcpState::Connected);
        s
    }

    /// A connected socket whose stack connection stays established.
    fn established(t: &mut Table, id: u16) -> Socket {
        t.stack_mut()
            .expect_tcp_phase()
            .returning(|_| Ok(TcpPhase::Connected));
        connected(t, id)
    }

    #[test]
    fn blocking_connect_waits_for_the_handshake() {
        let mut stack = MockSocketStack::new();
        stack.expect_open().returning(|_| Ok(SocketId(1)));
        stack
            .expect_connect()
            .with(eq(SocketId(1)), eq(peer()))
            .times(1)
            .returning(|_, _| Ok(()));
        phases(
            &mut stack,
            &[
                Ok(TcpPhase::Connecting),
                Ok(TcpPhase::Connecting),
                Ok(TcpPhase::Connected),
            ],
        );
        let (mut t, time) = fixture_with_time(stack);
        let s = t.socket(AF_INET, SOCK_STREAM, 0).unwrap();
        assert_eq!(t.connect(s, peer()), Ok(()));
        assert!(time.sleeps() >= 1);
        assert_eq!(t.connect(s, peer()), Err(os(Errno::EISCONN)));
    }

    #[test]
    fn non_blocking_connect_is_einprogress_then_ealready_then_eisconn() {
        let mut stack = MockSocketStack::new();
        stack.expect_open().returning(|_| Ok(SocketId(1)));
        stack.expect_connect().times(1).returning(|_, _| Ok(()));
        phases(
            &mut stack,
            &[
                Ok(TcpPhase::Connecting),
                Ok(TcpPhase::Connecting),
                Ok(TcpPhase::Connected),
            ],
        );
        let (mut t, time) = fixture_with_time(stack);
        let s = t.socket(AF_INET, SOCK_STREAM, 0).unwrap();
        t.set_timeout(s, Timeout::NonBlocking);
        assert_eq!(t.connect(s, peer()), Err(os(Errno::EINPROGRESS)));
        assert_eq!(t.connect(s, peer()), Err(os(Errno::EALREADY)));
        assert_eq!(t.connect(s, peer()), Err(os(Errno::EISCONN)));
        assert_eq!(time.sleeps(), 0);
    }

    #[test]
    fn connect_timeout_is_etimedout_and_measured_by_the_clock() {
        let mut stack = MockSocketStack::new();
        stack.expect_open().returning(|_| Ok(SocketId(1)));
        stack.expect_connect().times(1).returning(|_, _| Ok(()));
        phases(&mut stack, &[Ok(TcpPhase::Connecting)]);
        let (mut t, time) = fixture_with_time(stack);
        let s = t.socket(AF_INET, SOCK_STREAM, 0).unwrap();
        t.set_timeout(s, Timeout::After(250_000));
        assert_eq!(t.connect(s, peer()), Err(os(Errno::ETIMEDOUT)));
        assert_eq!(time.now(), 250_000);
        assert!(time.longest_sleep() <= crate::wait::MAX_IDLE_SLEEP);
        // Still connecting: a second connect is EALREADY, as modlwip.
        assert_eq!(t.connect(s, peer()), Err(os(Errno::EALREADY)));
    }

    #[test]
    fn refused_connect_is_econnrefused_then_ebadf() {
        let mut stack = MockSocketStack::new();
        stack.expect_open().returning(|_| Ok(SocketId(1)));
        stack.expect_connect().times(1).returning(|_, _| Ok(()));
        phases(
            &mut stack,
            &[
                Ok(TcpPhase::Connecting),
                Ok(TcpPhase::Failed(NetError::ConnectionRefused)),
                Ok(TcpPhase::Closed),
            ],
        );
        let mut t = fixture(stack);
        let s = t.socket(AF_INET, SOCK_STREAM, 0).unwrap();
        assert_eq!(t.connect(s, peer()), Err(os(Errno::ECONNREFUSED)));
        assert_eq!(t.connect(s, peer()), Err(os(Errno::EBADF)));
    }

    #[test]
    fn rst_without_stack_error_counts_as_refused() {
        let mut stack = MockSocketStack::new();
        stack.expect_open().returning(|_| Ok(SocketId(1)));
        stack.expect_connect().times(1).returning(|_, _| Ok(()));
        phases(
            &mut stack,
            &[Ok(TcpPhase::Connecting), Ok(TcpPhase::Closed)],
        );
        let mut t = fixture(stack);
        let s = t.socket(AF_INET, SOCK_STREAM, 0).unwrap();
        assert_eq!(t.connect(s, peer()), Err(os(Errno::ECONNREFUSED)));
    }

    #[test]
    fn connect_errors_from_the_stack_come_at_once_and_leave_the_socket_new() {
        let mut t = fixture(MockSocketStack::new());
        let s = tcp(&mut t, 1);
        t.stack_mut()
            .expect_connect()
            .times(1)
            .returning(|_, _| Err(NetError::HostUnreachable));
        assert_eq!(t.connect(s, peer()), Err(os(Errno::EHOSTUNREACH)));
        assert_eq!(t.entry(s).unwrap().kind, Kind::Tcp(TcpState::New));
    }

    #[test]
    fn connect_on_listening_socket_is_ealready_and_on_closed_ebadf() {
        let mut t = fixture(MockSocketStack::new());
        let s = tcp(&mut t, 1);
        t.set_tcp_state(s.index(), TcpState::Listening);
        assert_eq!(t.connect(s, peer()), Err(os(Errno::EALREADY)));
        t.stack_mut().expect_close().return_const(());
        t.close(s);
        assert_eq!(t.connect(s, peer()), Err(os(Errno::EBADF)));
    }

    #[test]
    fn udp_connect_sets_the_default_peer() {
        let mut t = fixture(MockSocketStack::new());
        t.stack_mut().expect_open().returning(|_| Ok(SocketId(3)));
        let u = t.socket(AF_INET, SOCK_DGRAM, 0).unwrap();
        t.stack_mut()
            .expect_connect()
            .with(eq(SocketId(3)), eq(peer()))
            .times(1)
            .returning(|_, _| Ok(()));
        assert_eq!(t.connect(u, peer()), Ok(()));
    }

    fn listener(t: &mut Table) -> Socket {
        let s = tcp(t, 1);
        t.stack_mut().expect_listen().returning(|_, _| Ok(()));
        t.listen(s, None).unwrap();
        s
    }

    #[test]
    fn accept_returns_a_connected_socket_inheriting_the_timeout() {
        let mut t = fixture(MockSocketStack::new());
        let l = listener(&mut t);
        t.set_timeout(l, Timeout::After(3_000_000));
        t.stack_mut()
            .expect_accept()
            .with(eq(SocketId(1)))
            .times(1)
            .returning(|_| Ok((SocketId(9), peer())));
        let (c, from) = t.accept(l).unwrap();
        assert_eq!(from, peer());
        let e = t.entry(c).unwrap();
        assert_eq!(
            (e.id, e.timeout, e.kind),
            (
                SocketId(9),
                Timeout::After(3_000_000),
                Kind::Tcp(TcpState::Connected)
            )
        );
    }

    #[test]
    fn accept_non_blocking_with_nothing_pending_is_eagain() {
        let (mut t, time) = fixture_with_time(MockSocketStack::new());
        let l = listener(&mut t);
        t.set_timeout(l, Timeout::NonBlocking);
        t.stack_mut()
            .expect_accept()
            .times(1)
            .returning(|_| Err(NetError::WouldBlock));
        assert_eq!(t.accept(l), Err(os(Errno::EAGAIN)));
        assert_eq!(time.sleeps(), 0);
    }

    #[test]
    fn accept_timeout_is_etimedout() {
        let (mut t, time) = fixture_with_time(MockSocketStack::new());
        let l = listener(&mut t);
        t.set_timeout(l, Timeout::After(20_000));
        t.stack_mut()
            .expect_accept()
            .returning(|_| Err(NetError::WouldBlock));
        assert_eq!(t.accept(l), Err(os(Errno::ETIMEDOUT)));
        assert_eq!(time.now(), 20_000);
    }

    #[test]
    fn blocking_accept_waits() {
        let (mut t, time) = fixture_with_time(MockSocketStack::new());
        let l = listener(&mut t);
        let mut calls = 0;
        t.stack_mut().expect_accept().times(4).returning(move |_| {
            calls += 1;
            if calls < 4 {
                Err(NetError::WouldBlock)
            } else {
                Ok((SocketId(2), peer()))
            }
        });
        assert!(t.accept(l).is_ok());
        assert_eq!(time.sleeps(), 3);
    }

    #[test]
    fn accept_errors() {
        let mut t = fixture(MockSocketStack::new());
        t.stack_mut().expect_open().returning(|_| Ok(SocketId(1)));
        let u = t.socket(AF_INET, SOCK_DGRAM, 0).unwrap();
        assert_eq!(t.accept(u), Err(os(Errno::EOPNOTSUPP)));
        let s = t.socket(AF_INET, SOCK_STREAM, 0).unwrap();
        assert_eq!(t.accept(s), Err(os(Errno::EINVAL)));
        t.set_tcp_state(s.index(), TcpState::Failed(Errno::ECONNABORTED));
        assert_eq!(t.accept(s), Err(os(Errno::EBADF)));
        // A full table: ENOMEM without taking the connection from the stack.
        let l = t.socket(AF_INET, SOCK_STREAM, 0).unwrap();
        t.stack_mut().expect_listen().returning(|_, _| Ok(()));
        t.listen(l, None).unwrap();
        t.socket(AF_INET, SOCK_STREAM, 0).unwrap();
        assert_eq!(t.accept(l), Err(os(Errno::ENOMEM)));
    }

    #[test]
    fn send_may_be_short_and_waits_for_room() {
        let (mut t, time) = fixture_with_time(MockSocketStack::new());
        let s = established(&mut t, 1);
        let mut calls = 0;
        t.stack_mut().expect_send().returning(move |_, data| {
            calls += 1;
            if calls < 3 {
                Err(NetError::WouldBlock)
            } else {
                Ok(data.len().min(4))
            }
        });
        assert_eq!(t.tcp_send_once(s, b"0123456789", Report::Once), Ok(4));
        assert_eq!(time.sleeps(), 2);
    }

    #[test]
    fn send_non_blocking_full_is_eagain_and_timeout_etimedout() {
        let (mut t, time) = fixture_with_time(MockSocketStack::new());
        let s = established(&mut t, 1);
        t.stack_mut()
            .expect_send()
            .returning(|_, _| Err(NetError::WouldBlock));
        t.set_timeout(s, Timeout::NonBlocking);
        assert_eq!(
            t.tcp_send_once(s, b"x", Report::Once),
            Err(os(Errno::EAGAIN))
        );
        t.set_timeout(s, Timeout::After(5_000));
        assert_eq!(
            t.tcp_send_once(s, b"x", Report::Once),
            Err(os(Errno::ETIMEDOUT))
        );
        assert_eq!(time.now(), 5_000);
    }

    #[test]
    fn send_before_connecting_is_enotconn_and_empty_send_is_zero() {
        let mut t = fixture(MockSocketStack::new());
        let s = tcp(&mut t, 1);
        assert_eq!(
            t.tcp_send_once(s, b"x", Report::Once),
            Err(os(Errno::ENOTCONN))
        );
        t.set_tcp_state(s.index(), TcpState::Connected);
        t.stack_mut()
            .expect_tcp_phase()
            .returning(|_| Ok(TcpPhase::Connected));
        assert_eq!(t.tcp_send_once(s, b"", Report::Once), Ok(0));
    }

    #[test]
    fn one_step_costs_one_stack_poll() {
        let mut stack = MockSocketStack::new();
        stack.expect_open().returning(|_| Ok(SocketId(1)));
        stack.expect_poll().times(2).returning(crate::mock::idle);
        stack
            .expect_tcp_phase()
            .returning(|_| Ok(TcpPhase::Connected));
        stack
            .expect_recv()
            .times(1)
            .returning(|_, _| Err(NetError::WouldBlock));
        stack.expect_send().times(1).returning(|_, d| Ok(d.len()));
        let time = crate::mock::VirtualTime::default();
        let mut t = Sockets::<_, _, 1>::new(stack, time.clock());
        let s = t.socket(AF_INET, SOCK_STREAM, 0).unwrap();
        t.set_tcp_state(s.index(), TcpState::Connected);
        t.set_timeout(s, Timeout::NonBlocking);
        assert_eq!(
            t.tcp_recv_once(s, &mut [0; 4], RecvFlags::NONE),
            Err(os(Errno::EAGAIN))
        );
        assert_eq!(t.tcp_send_once(s, b"abc", Report::Once), Ok(3));
    }

    #[test]
    fn recv_partial_reads_and_eof() {
        let mut t = fixture(MockSocketStack::new());
        let s = connected(&mut t, 1);
        phases(
            t.stack_mut(),
            &[Ok(TcpPhase::Connected), Ok(TcpPhase::PeerClosed)],
        );
        let mut chunks = vec![Ok(b"hello".to_vec()), Ok(vec![])];
        t.stack_mut().expect_recv().returning(move |_, buf| {
            let chunk: Result<Vec<u8>, NetError> = chunks.remove(0);
            chunk.map(|c| {
                buf[..c.len()].copy_from_slice(&c);
                c.len()
            })
        });
        let mut buf = [0; 16];
        assert_eq!(t.tcp_recv_once(s, &mut buf, RecvFlags::NONE), Ok(5));
        assert_eq!(&buf[..5], b"hello");
        assert_eq!(t.tcp_recv_once(s, &mut buf, RecvFlags::NONE), Ok(0));
    }

    #[test]
    fn recv_after_peer_close_with_nothing_queued_is_eof_even_non_blocking() {
        let mut t = fixture(MockSocketStack::new());
        let s = connected(&mut t, 1);
        t.set_tcp_state(s.index(), TcpState::PeerClosed);
        t.set_timeout(s, Timeout::NonBlocking);
        t.stack_mut()
            .expect_tcp_phase()
            .returning(|_| Ok(TcpPhase::PeerClosed));
        t.stack_mut()
            .expect_recv()
            .returning(|_, _| Err(NetError::WouldBlock));
        assert_eq!(t.tcp_recv_once(s, &mut [0; 4], RecvFlags::NONE), Ok(0));
    }

    #[test]
    fn recv_timeouts() {
        let (mut t, time) = fixture_with_time(MockSocketStack::new());
        let s = established(&mut t, 1);
        t.stack_mut()
            .expect_recv()
            .returning(|_, _| Err(NetError::WouldBlock));
        t.set_timeout(s, Timeout::NonBlocking);
        assert_eq!(
            t.tcp_recv_once(s, &mut [0; 4], RecvFlags::NONE),
            Err(os(Errno::EAGAIN))
        );
        t.set_timeout(s, Timeout::After(2_000_000));
        assert_eq!(
            t.tcp_recv_once(s, &mut [0; 4], RecvFlags::NONE),
            Err(os(Errno::ETIMEDOUT))
        );
        assert_eq!(time.now(), 2_000_000);
    }

    #[test]
    fn recv_of_zero_bytes_waits_for_data_without_taking_it() {
        let (mut t, time) = fixture_with_time(MockSocketStack::new());
        let s = established(&mut t, 1);
        let mut calls = 0;
        // Only peeks: a zero-byte recv takes nothing.
        t.stack_mut().expect_peek().returning(move |_, buf| {
            calls += 1;
            if calls > 2 {
                buf[0] = b'x';
                Ok(1)
            } else {
                Err(NetError::WouldBlock)
            }
        });
        assert_eq!(t.tcp_recv_once(s, &mut [], RecvFlags::NONE), Ok(0));
        assert_eq!(time.sleeps(), 2);
    }

    const PEEK: RecvFlags = RecvFlags {
        peek: true,
        dont_wait: false,
    };
    const DONTWAIT: RecvFlags = RecvFlags {
        peek: false,
        dont_wait: true,
    };

    /// A connected socket whose stack reports `failure` once at the next phase query (then
    /// `Closed`) and still holds `queued` bytes, served by `recv` in 4-byte reads and copied by
    /// `peek`; `Ok(0)` (the failure taken) once empty.
    fn failed_with_bytes(t: &mut Table, failure: NetError, queued: &[u8]) -> Socket {
        let s = connected(t, 1);
        phases(
            t.stack_mut(),
            &[Ok(TcpPhase::Failed(failure)), Ok(TcpPhase::Closed)],
        );
        let bytes = Arc::new(Mutex::new(queued.to_vec()));
        let taken = Arc::clone(&bytes);
        t.stack_mut().expect_recv().returning(move |_, buf| {
            let mut q = taken.lock().unwrap();
            let n = q.len().min(buf.len()).min(4);
            buf[..n].copy_from_slice(&q[..n]);
            q.drain(..n);
            Ok(n)
        });
        t.stack_mut().expect_peek().returning(move |_, buf| {
            let q = bytes.lock().unwrap();
            let n = q.len().min(buf.len());
            buf[..n].copy_from_slice(&q[..n]);
            Ok(n)
        });
        s
    }

    fn read_all(t: &mut Table, s: Socket) -> (Vec<u8>, Result<usize, SocketError>) {
        let mut got = Vec::new();
        for _ in 0..100 {
            let mut buf = [0; 16];
            match t.tcp_recv_once(s, &mut buf, RecvFlags::NONE) {
                Ok(n) if n > 0 => got.extend_from_slice(&buf[..n]),
                other => return (got, other),
            }
        }
        panic!("no end after 100 reads");
    }

    #[test]
    fn a_reset_keeps_the_bytes_then_is_reported_once_then_reads_as_eof() {
        let mut t = fixture(MockSocketStack::new());
        let s = failed_with_bytes(&mut t, NetError::ConnectionReset, b"GET / HTTP/1.0\r\n\r\n");
        t.set_timeout(s, Timeout::NonBlocking);
        let (got, end) = read_all(&mut t, s);
        assert_eq!(got, b"GET / HTTP/1.0\r\n\r\n");
        assert_eq!(end, Err(os(Errno::ECONNRESET)));
        assert_eq!(t.entry(s).unwrap().kind, Kind::Tcp(TcpState::PeerReset));
        assert_eq!(t.tcp_recv_once(s, &mut [0; 4], RecvFlags::NONE), Ok(0));
        t.set_timeout(s, Timeout::Blocking);
        assert_eq!(t.tcp_recv_once(s, &mut [0; 4], RecvFlags::NONE), Ok(0));
        // Sending on it is Linux's EPIPE, every time; the socket stays open (no close).
        assert_eq!(
            t.tcp_send_once(s, b"x", Report::Once),
            Err(os(Errno::EPIPE))
        );
        assert_eq!(
            t.tcp_send_once(s, b"x", Report::Always),
            Err(os(Errno::EPIPE))
        );
        assert_eq!(t.connect(s, peer()), Err(os(Errno::EBADF)));
    }

    #[test]
    fn a_refused_connection_reads_like_a_reset() {
        let mut t = fixture(MockSocketStack::new());
        let s = failed_with_bytes(&mut t, NetError::ConnectionRefused, b"");
        assert_eq!(
            t.tcp_recv_once(s, &mut [0; 4], RecvFlags::NONE),
            Err(os(Errno::ECONNREFUSED))
        );
        assert_eq!(t.tcp_recv_once(s, &mut [0; 4], RecvFlags::NONE), Ok(0));
    }

    #[test]
    fn other_failures_keep_the_bytes_then_read_as_closed() {
        let mut t = fixture(MockSocketStack::new());
        let s = failed_with_bytes(&mut t, NetError::ConnectionAborted, b"0123456789");
        let (got, end) = read_all(&mut t, s);
        assert_eq!(got, b"0123456789");
        assert_eq!(end, Err(os(Errno::ECONNABORTED)));
        assert_eq!(
            t.tcp_recv_once(s, &mut [0; 4], RecvFlags::NONE),
            Err(os(Errno::EBADF))
        );
        assert_eq!(
            t.tcp_recv_once(s, &mut [0; 4], RecvFlags::NONE),
            Err(os(Errno::EBADF))
        );
    }

    #[test]
    fn a_failure_reported_by_send_closes_the_socket_but_keeps_its_bytes() {
        let mut t = fixture(MockSocketStack::new());
        let s = failed_with_bytes(&mut t, NetError::ConnectionReset, b"late");
        // The stream write reports it without closing, `send` once and closes.
        assert_eq!(
            t.tcp_send_once(s, b"x", Report::Always),
            Err(os(Errno::ECONNRESET))
        );
        assert_eq!(
            t.tcp_send_once(s, b"x", Report::Once),
            Err(os(Errno::ECONNRESET))
        );
        assert_eq!(
            t.tcp_send_once(s, b"x", Report::Once),
            Err(os(Errno::EBADF))
        );
        // Nothing was closed: the bytes are still read (modlwip keeps its pbuf), then EBADF.
        let (got, end) = read_all(&mut t, s);
        assert_eq!(got, b"late");
        assert_eq!(end, Err(os(Errno::EBADF)));
    }

    #[test]
    fn a_failure_arriving_during_a_blocking_recv_is_reported_once() {
        let (mut t, time) = fixture_with_time(MockSocketStack::new());
        let s = connected(&mut t, 1);
        phases(
            t.stack_mut(),
            &[
                Ok(TcpPhase::Connected),
                Ok(TcpPhase::Connected),
                Ok(TcpPhase::Failed(NetError::ConnectionReset)),
                Ok(TcpPhase::Closed),
            ],
        );
        let mut calls = 0;
        t.stack_mut().expect_recv().returning(move |_, _| {
            calls += 1;
            if calls < 3 {
                Err(NetError::WouldBlock)
            } else {
                Ok(0)
            }
        });
        assert_eq!(
            t.tcp_recv_once(s, &mut [0; 4], RecvFlags::NONE),
            Err(os(Errno::ECONNRESET))
        );
        assert_eq!(time.sleeps(), 2);
        assert_eq!(t.tcp_recv_once(s, &mut [0; 4], RecvFlags::NONE), Ok(0));
    }

    #[test]
    fn a_failure_returned_by_recv_is_reported_like_one_seen_by_the_phase() {
        let mut t = fixture(MockSocketStack::new());
        let s = established(&mut t, 1);
        t.stack_mut()
            .expect_recv()
            .returning(|_, _| Err(NetError::ConnectionReset));
        assert_eq!(
            t.tcp_recv_once(s, &mut [0; 4], RecvFlags::NONE),
            Err(os(Errno::ECONNRESET))
        );
        assert_eq!(t.entry(s).unwrap().kind, Kind::Tcp(TcpState::PeerReset));
    }

    #[test]
    fn other_stack_errors_of_recv_are_reported_and_not_kept() {
        let mut t = fixture(MockSocketStack::new());
        let s = established(&mut t, 2);
        t.stack_mut()
            .expect_send()
            .times(1)
            .returning(|_, _| Err(NetError::NotConnected));
        t.stack_mut()
            .expect_recv()
            .times(1)
            .returning(|_, _| Err(NetError::BadSocket));
        assert_eq!(
            t.tcp_send_once(s, b"x", Report::Always),
            Err(os(Errno::ENOTCONN))
        );
        assert_eq!(
            t.tcp_recv_once(s, &mut [0; 4], RecvFlags::NONE),
            Err(os(Errno::EBADF))
        );
        assert_eq!(t.entry(s).unwrap().kind, Kind::Tcp(TcpState::Connected));
    }

    #[test]
    fn recv_on_a_listening_socket_is_enotconn_whatever_the_timeout() {
        let mut t = fixture(MockSocketStack::new());
        let l = listener(&mut t);
        t.stack_mut()
            .expect_tcp_phase()
            .returning(|_| Ok(TcpPhase::Listening));
        for timeout in [
            Timeout::Blocking,
            Timeout::NonBlocking,
            Timeout::After(1_000),
        ] {
            t.set_timeout(l, timeout);
            for flags in [RecvFlags::NONE, DONTWAIT] {
                assert_eq!(
                    t.tcp_recv_once(l, &mut [0; 4], flags),
                    Err(os(Errno::ENOTCONN)),
                    "{timeout:?} {flags:?}"
                );
            }
        }
    }

    #[test]
    fn recv_before_connection_is_eagain_without_waiting_else_enotconn() {
        let mut t = fixture(MockSocketStack::new());
        let s = tcp(&mut t, 1);
        assert_eq!(
            t.tcp_recv_once(s, &mut [0; 4], RecvFlags::NONE),
            Err(os(Errno::ENOTCONN))
        );
        assert_eq!(
            t.tcp_recv_once(s, &mut [0; 4], DONTWAIT),
            Err(os(Errno::EAGAIN))
        );
        t.set_timeout(s, Timeout::NonBlocking);
        assert_eq!(
            t.tcp_recv_once(s, &mut [0; 4], RecvFlags::NONE),
            Err(os(Errno::EAGAIN))
        );
    }

    #[test]
    fn dont_wait_makes_one_try_on_a_blocking_socket() {
        let (mut t, time) = fixture_with_time(MockSocketStack::new());
        let s = connected(&mut t, 1);
        phases(
            t.stack_mut(),
            &[Ok(TcpPhase::Connected), Ok(TcpPhase::PeerClosed)],
        );
        t.stack_mut()
            .expect_recv()
            .returning(|_, _| Err(NetError::WouldBlock));
        t.set_timeout(s, Timeout::After(5_000_000));
        assert_eq!(
            t.tcp_recv_once(s, &mut [0; 4], DONTWAIT),
            Err(os(Errno::EAGAIN))
        );
        // After the peer's FIN: EOF, also without waiting.
        assert_eq!(t.tcp_recv_once(s, &mut [0; 4], DONTWAIT), Ok(0));
        assert_eq!((time.sleeps(), time.now()), (0, 0));
    }

    #[test]
    fn peek_copies_without_taking() {
        let mut t = fixture(MockSocketStack::new());
        let s = established(&mut t, 1);
        // No recv expectation: a peek must not take bytes.
        t.stack_mut().expect_peek().times(2).returning(|_, buf| {
            let n = buf.len().min(3);
            buf[..n].copy_from_slice(&b"abc"[..n]);
            Ok(n)
        });
        let mut buf = [0; 8];
        assert_eq!(t.tcp_recv_once(s, &mut buf, PEEK), Ok(3));
        assert_eq!(t.tcp_recv_once(s, &mut buf[..2], PEEK), Ok(2));
        assert_eq!(&buf[..3], b"abc");
    }
}
