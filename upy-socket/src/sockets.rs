//! The socket table: the stack, the clock and every open socket's state, and the calls that
//! create, configure and close sockets.

use core::net::SocketAddrV4;

use netstack::api::{
    Micros, NetError, PollOutcome, QueryId, SocketId, SocketOption, SocketStack, TcpPhase,
    Transport,
};

use crate::clock::Clock;
use crate::consts::{
    AF_INET, IPPROTO_TCP, IPPROTO_UDP, LISTEN_BACKLOG_DEFAULT, SOCK_DGRAM, SOCK_STREAM,
    SO_BROADCAST, SO_KEEPALIVE, SO_REUSEADDR, TCP_NODELAY,
};
use crate::errno::{Errno, SocketError};
use crate::timeout::Timeout;

/// How long `getaddrinfo` waits for a DNS answer by default (lwIP's own retries end after
/// roughly this long).
pub const DEFAULT_DNS_TIMEOUT: Micros = 15_000_000;

/// DNS queries given up by `getaddrinfo` that are still polled until the stack frees them.
const ABANDONED_QUERIES: usize = 4;

/// A socket as the Python object holds it: an index into the table plus the generation of the
/// slot, so a handle to a closed socket stays invalid (`EBADF`) after the slot is reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Socket {
    index: usize,
    generation: u32,
}

impl Socket {
    /// The slot this handle names.
    pub(crate) fn index(self) -> usize {
        self.index
    }
}

/// What a TCP socket is doing, as modlwip's `state` field tracks it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TcpState {
    /// Created (maybe bound), not listening or connected (`STATE_NEW`).
    New,
    /// Listening (`STATE_LISTENING`).
    Listening,
    /// SYN sent (`STATE_CONNECTING`).
    Connecting,
    /// Established (`STATE_CONNECTED`).
    Connected,
    /// The peer sent FIN (`STATE_PEER_CLOSED`): reads drain, then return EOF.
    PeerClosed,
    /// The connection failed (modlwip's negative state, `pcb == NULL`). Once the error has been
    /// reported by a send, the socket is `Failed(EBADF)` (modlwip's `_ERR_BADF`): closed,
    /// except that bytes received before the failure can still be read.
    Failed(Errno),
    /// The peer reset the connection and `recv` reported it (`STATE_PEER_RST_HANDLED`): reads
    /// return end of stream, sends `EPIPE`.
    PeerReset,
}

impl TcpState {
    /// Whether the connection is gone (lwIP freed the pcb): `connect`/`listen`/`accept` give
    /// `EBADF`.
    pub(crate) fn is_over(self) -> bool {
        matches!(self, TcpState::Failed(_) | TcpState::PeerReset)
    }
}

/// The transport of an open socket with its transport-specific state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A TCP socket.
    Tcp(TcpState),
    /// A UDP socket (`STATE_ACTIVE_UDP`).
    Udp,
}

/// An open socket.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Entry {
    /// The stack's socket.
    pub(crate) id: SocketId,
    /// The timeout mode.
    pub(crate) timeout: Timeout,
    /// Transport and state.
    pub(crate) kind: Kind,
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    generation: u32,
    entry: Option<Entry>,
}

/// Whether a failure found before a send is reported once and turns the socket into a closed
/// one (modlwip's `lwip_socket_check_connected`, used by `send`/`sendto`/`sendall`), or
/// reported again on every call (the stream method `write`). Receives follow their own rule
/// ([`Sockets::report_recv_failure`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Report {
    /// Report and close (later calls get `EBADF`).
    Once,
    /// Report and keep the error.
    Always,
}

/// What `setsockopt` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptOutcome {
    /// The option was applied.
    Applied,
    /// The option is unknown: modlwip prints `Warning: lwip.setsockopt() not implemented` and
    /// returns `None`; the bindings print the same.
    NotImplemented,
}

/// MicroPython sockets over a [`SocketStack`], timed by a [`Clock`], with room for `N` sockets.
pub struct Sockets<S, C, const N: usize> {
    pub(crate) stack: S,
    pub(crate) clock: C,
    slots: [Slot; N],
    pub(crate) dns_timeout: Micros,
    abandoned: [Option<QueryId>; ABANDONED_QUERIES],
}

impl<S: SocketStack, C: Clock, const N: usize> Sockets<S, C, N> {
    /// A table with no sockets over `stack`, timed by `clock`.
    pub fn new(stack: S, clock: C) -> Self {
        Self {
            stack,
            clock,
            slots: [Slot {
                generation: 0,
                entry: None,
            }; N],
            dns_timeout: DEFAULT_DNS_TIMEOUT,
            abandoned: [None; ABANDONED_QUERIES],
        }
    }

    /// The stack.
    pub fn stack(&self) -> &S {
        &self.stack
    }

    /// The stack, mutably (configuration, or polling from an interrupt-driven hook).
    pub fn stack_mut(&mut self) -> &mut S {
        &mut self.stack
    }

    /// The clock, mutably.
    pub fn clock_mut(&mut self) -> &mut C {
        &mut self.clock
    }

    /// Sets how long `getaddrinfo` waits for a DNS answer.
    pub fn set_dns_timeout(&mut self, timeout: Micros) {
        self.dns_timeout = timeout;
    }

    /// Polls the stack once (MicroPython's event poll hook calls this between bytecodes) and
    /// finishes DNS queries that `getaddrinfo` gave up on.
    pub fn poll(&mut self) -> PollOutcome {
        let now = self.clock.now();
        let outcome = self.stack.poll(now);
        for slot in self.abandoned.iter_mut() {
            if let Some(query) = *slot {
                if self.stack.resolve_poll(query) != Err(NetError::WouldBlock) {
                    *slot = None;
                }
            }
        }
        outcome
    }

    /// Keeps polling a DNS query until the stack frees it.
    pub(crate) fn abandon_query(&mut self, query: QueryId) {
        match self.abandoned.iter_mut().find(|q| q.is_none()) {
            Some(slot) => *slot = Some(query),
            None => log::warn!("dns: no room to track abandoned query {query:?}; it leaks"),
        }
    }

    /// `socket.socket(af, type, proto)`.
    ///
    /// Only `AF_INET` (else `EAFNOSUPPORT`), `SOCK_STREAM` or `SOCK_DGRAM` (else `EINVAL`, as
    /// modlwip) and `proto` 0 or the type's own protocol (else `EINVAL`). `ENOMEM` when the
    /// table or the stack's socket pool is full.
    pub fn socket(
        &mut self,
        family: i32,
        socktype: i32,
        proto: i32,
    ) -> Result<Socket, SocketError> {
        if family != AF_INET {
            return Err(Errno::EAFNOSUPPORT.into());
        }
        let (transport, kind, own_proto) = match socktype {
            SOCK_STREAM => (Transport::Tcp, Kind::Tcp(TcpState::New), IPPROTO_TCP),
            SOCK_DGRAM => (Transport::Udp, Kind::Udp, IPPROTO_UDP),
            _ => return Err(Errno::EINVAL.into()),
        };
        if proto != 0 && proto != own_proto {
            return Err(Errno::EINVAL.into());
        }
        let index = self.free_slot()?;
        let id = self.stack.open(transport)?;
        if transport == Transport::Udp {
            // lwIP as MicroPython builds it (IP_SOF_BROADCAST 0, the opt.h default that
            // lwipopts_common.h keeps) sends to broadcast addresses from any UDP socket.
            if let Err(e) = self.stack.set_option(id, SocketOption::Broadcast(true)) {
                self.stack.close(id);
                return Err(e.into());
            }
        }
        let slot = &mut self.slots[index];
        slot.entry = Some(Entry {
            id,
            timeout: Timeout::Blocking,
            kind,
        });
        log::debug!("socket {index}: open {transport:?} as {id:?}");
        Ok(Socket {
            index,
            generation: slot.generation,
        })
    }

    /// `socket.close()`: closes the stack's socket (TCP closes gracefully in the background).
    /// Idempotent; every later operation on the socket fails with `EBADF`.
    pub fn close(&mut self, socket: Socket) {
        if self.entry(socket).is_ok() {
            self.release(socket.index);
        }
    }

    /// Closes every open socket, as the end of a process closes its descriptors (TCP closes
    /// gracefully in the background; see [`Sockets::close`]).
    pub fn close_all(&mut self) {
        for index in 0..N {
            self.release(index);
        }
    }

    /// `socket.bind((host, port))`.
    ///
    /// A TCP socket can only be bound before `listen`/`connect` (else `EINVAL`, lwIP's
    /// `tcp_bind` rule); `EADDRINUSE` when the port is taken.
    pub fn bind(&mut self, socket: Socket, local: SocketAddrV4) -> Result<(), SocketError> {
        let entry = self.entry(socket)?;
        if matches!(entry.kind, Kind::Tcp(state) if state != TcpState::New) {
            return Err(Errno::EINVAL.into());
        }
        Ok(self.stack.bind(entry.id, local)?)
    }

    /// `socket.listen([backlog])`: `None` is modlwip's default (2), negative is 0, and the stack
    /// gets at least 1 (lwIP's minimum) and at most 255 (lwIP keeps it in a `u8`).
    ///
    /// `EBADF` on a failed socket, `EOPNOTSUPP` on UDP, `ENOTCONN` unless the socket is new
    /// (lwIP's `tcp_listen` answers `ERR_CLSD`).
    pub fn listen(&mut self, socket: Socket, backlog: Option<i64>) -> Result<(), SocketError> {
        let entry = self.entry(socket)?;
        let state = match entry.kind {
            Kind::Tcp(state) if state.is_over() => return Err(Errno::EBADF.into()),
            Kind::Udp => return Err(Errno::EOPNOTSUPP.into()),
            Kind::Tcp(state) => state,
        };
        if state != TcpState::New {
            return Err(Errno::ENOTCONN.into());
        }
        let backlog = backlog
            .unwrap_or(LISTEN_BACKLOG_DEFAULT.into())
            .clamp(1, 255);
        // The clamp makes the conversion lossless.
        self.stack.listen(entry.id, backlog as usize)?;
        self.set_tcp_state(socket.index, TcpState::Listening);
        Ok(())
    }

    /// `socket.settimeout(t)` / `socket.setblocking(flag)` (see [`Timeout`]). Like modlwip this
    /// never fails, not even on a closed socket.
    pub fn set_timeout(&mut self, socket: Socket, timeout: Timeout) {
        if let Ok(entry) = self.entry_mut(socket) {
            entry.timeout = timeout;
        }
    }

    /// `socket.setsockopt(level, optname, value)` for integer values.
    ///
    /// `level` is ignored, as modlwip does. `SO_REUSEADDR`, `SO_BROADCAST`, `SO_KEEPALIVE` and
    /// `TCP_NODELAY` go to the stack (any non-zero value is true); anything else (including the
    /// multicast membership options, which need IGMP) is [`OptOutcome::NotImplemented`]. The
    /// bindings handle modlwip's callback option ([`crate::consts::SO_CALLBACK`]) themselves.
    pub fn setsockopt(
        &mut self,
        socket: Socket,
        _level: i32,
        name: i32,
        value: i64,
    ) -> Result<OptOutcome, SocketError> {
        let entry = self.entry(socket)?;
        let on = value != 0;
        let option = match name {
            SO_REUSEADDR => SocketOption::ReuseAddr(on),
            // Accepted without effect, as lwIP built without IP_SOF_BROADCAST does: UDP sockets
            // may always send to broadcast addresses (see `socket`).
            SO_BROADCAST => return Ok(OptOutcome::Applied),
            SO_KEEPALIVE => SocketOption::KeepAlive(on),
            TCP_NODELAY => SocketOption::NoDelay(on),
            _ => {
                log::warn!("setsockopt: option {name:#x} not implemented");
                return Ok(OptOutcome::NotImplemented);
            }
        };
        self.stack.set_option(entry.id, option)?;
        Ok(OptOutcome::Applied)
    }

    /// Sockets open in the table (handles in use), out of `N`.
    pub fn handles_in_use(&self) -> usize {
        self.slots.iter().filter(|s| s.entry.is_some()).count()
    }

    /// `socket.makefile(mode='rb', buffering=0)`: in MicroPython the socket is its own file
    /// object (it has `read`/`readline`/`write`), so this returns the same socket; the
    /// arguments are ignored.
    pub fn makefile(&self, socket: Socket) -> Socket {
        socket
    }

    /// The open socket a handle names, or `EBADF`.
    pub(crate) fn entry(&self, socket: Socket) -> Result<Entry, SocketError> {
        match self.slots.get(socket.index) {
            Some(Slot {
                generation,
                entry: Some(entry),
            }) if *generation == socket.generation => Ok(*entry),
            _ => Err(Errno::EBADF.into()),
        }
    }

    fn entry_mut(&mut self, socket: Socket) -> Result<&mut Entry, SocketError> {
        match self.slots.get_mut(socket.index) {
            Some(Slot {
                generation,
                entry: Some(entry),
            }) if *generation == socket.generation => Ok(entry),
            _ => Err(Errno::EBADF.into()),
        }
    }

    /// A slot with no socket, or `ENOMEM`.
    pub(crate) fn free_slot(&self) -> Result<usize, SocketError> {
        self.slots
            .iter()
            .position(|s| s.entry.is_none())
            .ok_or(SocketError::Os(Errno::ENOMEM))
    }

    /// Puts a socket the stack already opened (an accepted connection) into slot `index`.
    pub(crate) fn install(&mut self, index: usize, entry: Entry) -> Socket {
        let slot = &mut self.slots[index];
        slot.entry = Some(entry);
        Socket {
            index,
            generation: slot.generation,
        }
    }

    /// Closes the stack's socket and frees the slot; old handles become `EBADF`.
    pub(crate) fn release(&mut self, index: usize) {
        let slot = &mut self.slots[index];
        if let Some(entry) = slot.entry.take() {
            self.stack.close(entry.id);
            slot.generation = slot.generation.wrapping_add(1);
            log::debug!("socket {index}: closed {:?}", entry.id);
        }
    }

    pub(crate) fn set_tcp_state(&mut self, index: usize, state: TcpState) {
        if let Some(Entry {
            kind: Kind::Tcp(s), ..
        }) = self.slots[index].entry.as_mut()
        {
            *s = state;
        }
    }

    /// The socket with its TCP state brought up to date from the stack (modlwip learns the same
    /// through lwIP callbacks). A failure the stack reports is kept until it is reported.
    pub(crate) fn refreshed(&mut self, socket: Socket) -> Result<Entry, SocketError> {
        let entry = self.entry(socket)?;
        let Kind::Tcp(state) = entry.kind else {
            return Ok(entry);
        };
        if !matches!(
            state,
            TcpState::Connecting | TcpState::Connected | TcpState::PeerClosed
        ) {
            return Ok(entry);
        }
        let next = match self.stack.tcp_phase(entry.id) {
            Ok(TcpPhase::Connected | TcpPhase::Closing) if state == TcpState::Connecting => {
                TcpState::Connected
            }
            Ok(TcpPhase::PeerClosed) => TcpState::PeerClosed,
            // A connection attempt that ends without an error was answered with RST.
            Ok(TcpPhase::Idle | TcpPhase::Closed) if state == TcpState::Connecting => {
                TcpState::Failed(Errno::ECONNREFUSED)
            }
            Ok(TcpPhase::Idle | TcpPhase::Closed) => TcpState::PeerClosed,
            Ok(TcpPhase::Failed(e)) | Err(e) => TcpState::Failed(e.into()),
            Ok(
                TcpPhase::Connecting
                | TcpPhase::Connected
                | TcpPhase::Closing
                | TcpPhase::Listening,
            ) => state,
        };
        if next != state {
            log::debug!("socket {}: {state:?} -> {next:?}", socket.index);
            self.set_tcp_state(socket.index, next);
        }
        Ok(Entry {
            kind: Kind::Tcp(next),
            ..entry
        })
    }

    /// Reports a failure found before a send. With [`Report::Once`] the socket then counts as
    /// closed (`Failed(EBADF)`, modlwip's `_ERR_BADF`); it keeps its stack socket so that bytes
    /// received before the failure are not lost to a later `recv`.
    pub(crate) fn report_failure(
        &mut self,
        socket: Socket,
        errno: Errno,
        report: Report,
    ) -> SocketError {
        if report == Report::Once {
            self.set_tcp_state(socket.index, TcpState::Failed(Errno::EBADF));
        }
        errno.into()
    }

    /// Reports a failure to a receive with nothing left to read: a reset (or refused
    /// connection, lwIP's same `ERR_RST`) then reads as end of stream ([`TcpState::PeerReset`]),
    /// anything else as a closed socket (`Failed(EBADF)`), as modlwip's `lwip_tcp_receive`.
    pub(crate) fn report_recv_failure(&mut self, socket: Socket, errno: Errno) -> SocketError {
        let next = match errno {
            Errno::ECONNRESET | Errno::ECONNREFUSED => TcpState::PeerReset,
            _ => TcpState::Failed(Errno::EBADF),
        };
        self.set_tcp_state(socket.index, next);
        errno.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consts::{AF_INET6, IP_ADD_MEMBERSHIP, SOL_SOCKET};
    use crate::mock::{fixture, MockSocketStack, Table};
    use core::net::Ipv4Addr;
    use mockall::predicate::eq;

    fn addr(port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), port)
    }

    fn open(t: &mut Table, socktype: i32, id: u16) -> Socket {
        let transport = if socktype == SOCK_STREAM {
            Transport::Tcp
        } else {
            Transport::Udp
        };
        t.stack_mut()
            .expect_open()
            .with(eq(transport))
            .times(1)
            .returning(move |_| Ok(SocketId(id)));
        t.socket(AF_INET, socktype, 0).unwrap()
    }

    #[test]
    fn socket_checks_family_type_and_proto() {
        let mut t = fixture(MockSocketStack::new());
        assert_eq!(
            t.socket(AF_INET6, SOCK_STREAM, 0),
            Err(SocketError::Os(Errno::EAFNOSUPPORT))
        );
        assert_eq!(t.socket(AF_INET, 3, 0), Err(SocketError::Os(Errno::EINVAL)));
        assert_eq!(
            t.socket(AF_INET, SOCK_STREAM, IPPROTO_UDP),
            Err(SocketError::Os(Errno::EINVAL))
        );
        assert_eq!(
            t.socket(AF_INET, SOCK_DGRAM, IPPROTO_TCP),
            Err(SocketError::Os(Errno::EINVAL))
        );
        t.stack_mut()
            .expect_open()
            .times(2)
            .returning(|_| Ok(SocketId(1)));
        assert!(t.socket(AF_INET, SOCK_STREAM, IPPROTO_TCP).is_ok());
        assert!(t.socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP).is_ok());
    }

    #[test]
    fn socket_enomem_when_table_or_pool_is_full() {
        let mut t = fixture(MockSocketStack::new());
        t.stack_mut()
            .expect_open()
            .times(1)
            .returning(|_| Err(NetError::NoMemory));
        assert_eq!(
            t.socket(AF_INET, SOCK_STREAM, 0),
            Err(SocketError::Os(Errno::ENOMEM))
        );
        for i in 0..4 {
            open(&mut t, SOCK_DGRAM, i);
        }
        // The table (4 slots) is full: the stack is not asked.
        assert_eq!(
            t.socket(AF_INET, SOCK_DGRAM, 0),
            Err(SocketError::Os(Errno::ENOMEM))
        );
    }

    #[test]
    fn close_is_idempotent_and_later_ops_are_ebadf() {
        let mut t = fixture(MockSocketStack::new());
        let s = open(&mut t, SOCK_STREAM, 7);
        t.stack_mut()
            .expect_close()
            .with(eq(SocketId(7)))
            .times(1)
            .return_const(());
        t.close(s);
        t.close(s);
        assert_eq!(t.bind(s, addr(1)), Err(SocketError::Os(Errno::EBADF)));
        assert_eq!(t.listen(s, None), Err(SocketError::Os(Errno::EBADF)));
        assert_eq!(
            t.setsockopt(s, SOL_SOCKET, SO_REUSEADDR, 1),
            Err(SocketError::Os(Errno::EBADF))
        );
        // settimeout on a closed socket is silently accepted, as in modlwip.
        t.set_timeout(s, Timeout::NonBlocking);
    }

    #[test]
    fn a_reused_slot_does_not_revive_an_old_handle() {
        let mut t = fixture(MockSocketStack::new());
        let old = open(&mut t, SOCK_STREAM, 1);
        t.stack_mut().expect_close().times(1).return_const(());
        t.close(old);
        let new = open(&mut t, SOCK_STREAM, 2);
        assert_ne!(old, new);
        assert_eq!(t.entry(old).unwrap_err(), SocketError::Os(Errno::EBADF));
        assert_eq!(t.entry(new).unwrap().id, SocketId(2));
    }

    #[test]
    fn bind_passes_address_and_maps_errors() {
        let mut t = fixture(MockSocketStack::new());
        let s = open(&mut t, SOCK_STREAM, 1);
        t.stack_mut()
            .expect_bind()
            .with(eq(SocketId(1)), eq(addr(80)))
            .times(1)
            .returning(|_, _| Ok(()));
        t.stack_mut()
            .expect_bind()
            .times(1)
            .returning(|_, _| Err(NetError::AddrInUse));
        assert_eq!(t.bind(s, addr(80)), Ok(()));
        assert_eq!(t.bind(s, addr(81)), Err(SocketError::Os(Errno::EADDRINUSE)));
    }

    #[test]
    fn bind_after_listen_is_einval() {
        let mut t = fixture(MockSocketStack::new());
        let s = open(&mut t, SOCK_STREAM, 1);
        t.stack_mut().expect_listen().returning(|_, _| Ok(()));
        t.listen(s, None).unwrap();
        assert_eq!(t.bind(s, addr(80)), Err(SocketError::Os(Errno::EINVAL)));
    }

    #[test]
    fn listen_backlog_rules() {
        let mut t = fixture(MockSocketStack::new());
        for (arg, expected) in [
            (None, 2),
            (Some(-5), 1),
            (Some(0), 1),
            (Some(1), 1),
            (Some(5), 5),
            (Some(1000), 255),
        ] {
            let s = open(&mut t, SOCK_STREAM, 1);
            t.stack_mut()
                .expect_listen()
                .with(eq(SocketId(1)), eq(expected))
                .times(1)
                .returning(|_, _| Ok(()));
            assert_eq!(t.listen(s, arg), Ok(()), "{arg:?}");
            t.stack_mut().expect_close().times(1).return_const(());
            t.close(s);
            t.stack_mut().checkpoint();
        }
    }

    #[test]
    fn listen_errors() {
        let mut t = fixture(MockSocketStack::new());
        let u = open(&mut t, SOCK_DGRAM, 1);
        assert_eq!(
            t.listen(u, Some(1)),
            Err(SocketError::Os(Errno::EOPNOTSUPP))
        );
        let s = open(&mut t, SOCK_STREAM, 2);
        t.stack_mut()
            .expect_listen()
            .times(1)
            .returning(|_, _| Err(NetError::Invalid));
        assert_eq!(t.listen(s, Some(1)), Err(SocketError::Os(Errno::EINVAL)));
        t.stack_mut()
            .expect_listen()
            .times(1)
            .returning(|_, _| Ok(()));
        t.listen(s, Some(1)).unwrap();
        assert_eq!(t.listen(s, Some(1)), Err(SocketError::Os(Errno::ENOTCONN)));
        let f = open(&mut t, SOCK_STREAM, 3);
        t.set_tcp_state(f.index, TcpState::Failed(Errno::ECONNRESET));
        assert_eq!(t.listen(f, None), Err(SocketError::Os(Errno::EBADF)));
    }

    #[test]
    fn setsockopt_known_options_reach_the_stack() {
        let mut t = fixture(MockSocketStack::new());
        let s = open(&mut t, SOCK_STREAM, 4);
        let cases = [
            (SO_REUSEADDR, 1, SocketOption::ReuseAddr(true)),
            (SO_KEEPALIVE, 7, SocketOption::KeepAlive(true)),
            (TCP_NODELAY, -1, SocketOption::NoDelay(true)),
        ];
        for (name, value, option) in cases {
            t.stack_mut()
                .expect_set_option()
                .with(eq(SocketId(4)), eq(option))
                .times(1)
                .returning(|_, _| Ok(()));
            assert_eq!(
                t.setsockopt(s, SOL_SOCKET, name, value),
                Ok(OptOutcome::Applied)
            );
        }
        t.stack_mut()
            .expect_set_option()
            .times(1)
            .returning(|_, _| Err(NetError::Invalid));
        assert_eq!(
            t.setsockopt(s, SOL_SOCKET, TCP_NODELAY, 1),
            Err(SocketError::Os(Errno::EINVAL))
        );
    }

    #[test]
    fn setsockopt_unknown_option_is_a_warning_not_an_error() {
        let mut t = fixture(MockSocketStack::new());
        let s = open(&mut t, SOCK_STREAM, 4);
        // No set_option expectation: the stack must not be called.
        assert_eq!(
            t.setsockopt(s, SOL_SOCKET, 0x1234, 1),
            Ok(OptOutcome::NotImplemented)
        );
        assert_eq!(
            t.setsockopt(s, 0, IP_ADD_MEMBERSHIP, 1),
            Ok(OptOutcome::NotImplemented)
        );
    }

    #[test]
    fn makefile_returns_the_socket_itself() {
        let mut t = fixture(MockSocketStack::new());
        let s = open(&mut t, SOCK_STREAM, 4);
        assert_eq!(t.makefile(s), s);
    }

    #[test]
    fn settimeout_is_remembered() {
        let mut t = fixture(MockSocketStack::new());
        let s = open(&mut t, SOCK_STREAM, 4);
        assert_eq!(t.entry(s).unwrap().timeout, Timeout::Blocking);
        t.set_timeout(s, Timeout::After(5));
        assert_eq!(t.entry(s).unwrap().timeout, Timeout::After(5));
    }

    #[test]
    fn refresh_follows_the_stack_and_keeps_failures() {
        let mut t = fixture(MockSocketStack::new());
        let s = open(&mut t, SOCK_STREAM, 4);
        t.set_tcp_state(s.index, TcpState::Connecting);
        let phases = [
            (
                TcpState::Connecting,
                Ok(TcpPhase::Connecting),
                TcpState::Connecting,
            ),
            (
                TcpState::Connecting,
                Ok(TcpPhase::Connected),
                TcpState::Connected,
            ),
            (
                TcpState::Connecting,
                Ok(TcpPhase::Closed),
                TcpState::Failed(Errno::ECONNREFUSED),
            ),
            (
                TcpState::Connecting,
                Ok(TcpPhase::PeerClosed),
                TcpState::PeerClosed,
            ),
            (
                TcpState::Connected,
                Ok(TcpPhase::Closed),
                TcpState::PeerClosed,
            ),
            (
                TcpState::Connected,
                Ok(TcpPhase::Connected),
                TcpState::Connected,
            ),
            (
                TcpState::Connected,
                Ok(TcpPhase::Failed(NetError::ConnectionReset)),
                TcpState::Failed(Errno::ECONNRESET),
            ),
            (
                TcpState::PeerClosed,
                Err(NetError::BadSocket),
                TcpState::Failed(Errno::EBADF),
            ),
        ];
        for (from, phase, to) in phases {
            t.set_tcp_state(s.index, from);
            t.stack_mut()
                .expect_tcp_phase()
                .times(1)
                .returning(move |_| phase);
            assert_eq!(
                t.refreshed(s).unwrap().kind,
                Kind::Tcp(to),
                "{from:?} + {phase:?}"
            );
            assert_eq!(t.entry(s).unwrap().kind, Kind::Tcp(to));
            t.stack_mut().checkpoint();
        }
        // Failed and new sockets do not ask the stack again.
        t.set_tcp_state(s.index, TcpState::Failed(Errno::ECONNRESET));
        assert_eq!(
            t.refreshed(s).unwrap().kind,
            Kind::Tcp(TcpState::Failed(Errno::ECONNRESET))
        );
    }

    #[test]
    fn poll_finishes_abandoned_queries() {
        let mut t = fixture(MockSocketStack::new());
        t.abandon_query(QueryId(3));
        t.stack_mut()
            .expect_resolve_poll()
            .with(eq(QueryId(3)))
            .times(2)
            .returning({
                let mut n = 0;
                move |_| {
                    n += 1;
                    if n == 1 {
                        Err(NetError::WouldBlock)
                    } else {
                        Err(NetError::NameNotFound)
                    }
                }
            });
        t.poll();
        t.poll();
        // Freed: the third poll does not ask again (times(2) would fail).
        t.poll();
    }

    #[test]
    fn handles_in_use_counts_open_sockets() {
        let mut t = fixture(MockSocketStack::new());
        assert_eq!(t.handles_in_use(), 0);
        let a = open(&mut t, SOCK_STREAM, 1);
        let _b = open(&mut t, SOCK_DGRAM, 2);
        assert_eq!(t.handles_in_use(), 2);
        t.stack_mut().expect_close().times(1).return_const(());
        t.close(a);
        t.close(a);
        assert_eq!(t.handles_in_use(), 1);
    }

    #[test]
    fn close_all_closes_every_open_socket_once() {
        let mut t = fixture(MockSocketStack::new());
        let a = open(&mut t, SOCK_STREAM, 1);
        let b = open(&mut t, SOCK_DGRAM, 2);
        // `a` once by its own close, `b` by close_all; `a` not again.
        t.stack_mut().expect_close().times(2).return_const(());
        t.close(a);
        t.close_all();
        assert_eq!(t.handles_in_use(), 0);
        assert_eq!(
            t.bind(b, "0.0.0.0:1".parse().unwrap()),
            Err(Errno::EBADF.into())
        );
    }
}
