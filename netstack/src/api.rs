//! The socket-level contract between the network stack and the socket semantics above it.
//!
//! Everything here is non-blocking: an operation that cannot make progress now returns
//! [`NetError::WouldBlock`] and the caller polls the stack ([`SocketStack::poll`]) and waits until
//! [`PollOutcome::next_poll`] or new input, then retries. Blocking, timeouts and errno belong to
//! the layer above. No smoltcp type appears here.

use core::net::{Ipv4Addr, SocketAddrV4};

/// Microseconds on a monotonic clock shared by the stack and its caller.
pub type Micros = u64;

/// A socket owned by the stack, named by a small index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketId(pub u16);

/// A pending DNS query.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct QueryId(pub u16);

/// Transport of a socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// TCP stream.
    Tcp,
    /// UDP datagrams.
    Udp,
}

/// Why a stack operation did not succeed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetError {
    /// Nothing can be done now; poll and retry.
    WouldBlock,
    /// No free socket slot or buffer.
    NoMemory,
    /// The local address and port are in use (and reuse is not allowed).
    AddrInUse,
    /// The local address is not one of the interface's.
    AddrNotAvailable,
    /// No route to the destination (no address configured, no gateway).
    HostUnreachable,
    /// The peer answered the connection attempt with RST.
    ConnectionRefused,
    /// The peer reset an established connection.
    ConnectionReset,
    /// The connection was aborted locally (e.g. link lost, retransmissions exhausted).
    ConnectionAborted,
    /// The connection attempt or the connection itself timed out.
    TimedOut,
    /// The socket is not connected.
    NotConnected,
    /// The socket is already connected or connecting.
    AlreadyConnected,
    /// A connect is in progress and has not finished yet.
    InProgress,
    /// The operation is not valid in the socket's state, or an argument is invalid.
    Invalid,
    /// The socket id does not name an open socket.
    BadSocket,
    /// The datagram is larger than the socket's buffer can ever hold.
    MessageTooLong,
    /// The name could not be resolved.
    NameNotFound,
    /// Not allowed without an option: a UDP datagram to a broadcast address needs
    /// [`SocketOption::Broadcast`] (Linux answers `EACCES`).
    NotPermitted,
}

/// Where a TCP socket is in its life, as the socket layer needs to see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpPhase {
    /// Created, not listening or connected.
    Idle,
    /// Listening for connections.
    Listening,
    /// SYN sent, waiting for the peer.
    Connecting,
    /// Established: data flows both ways.
    Connected,
    /// The peer sent FIN: reads drain then return end of stream; writes still allowed.
    PeerClosed,
    /// We closed our sending side.
    Closing,
    /// The connection is over without an error.
    Closed,
    /// The connection failed; the error is reported once to the next operation.
    Failed(NetError),
}

/// What a socket can do right now; the socket layer maps it to poll flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Readiness {
    /// Bytes (TCP) or a datagram (UDP) can be read, or a connection accepted, or EOF reached.
    pub readable: bool,
    /// Bytes can be queued for sending.
    pub writable: bool,
    /// The connection is over (peer closed both ways, reset, or never connected).
    pub hangup: bool,
    /// The socket holds an error.
    pub error: bool,
}

/// A socket option the stack implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SocketOption {
    /// SO_REUSEADDR: allow binding a port another socket (in TIME-WAIT or listening) uses.
    ReuseAddr(bool),
    /// SO_BROADCAST: allow sending UDP to broadcast addresses.
    Broadcast(bool),
    /// SO_KEEPALIVE: send keep-alives on an idle TCP connection.
    KeepAlive(bool),
    /// TCP_NODELAY: disable Nagle's algorithm.
    NoDelay(bool),
}

/// The interface's IPv4 configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Config {
    /// The interface address.
    pub address: Ipv4Addr,
    /// The subnet mask.
    pub netmask: Ipv4Addr,
    /// The default gateway (0.0.0.0 for none).
    pub gateway: Ipv4Addr,
    /// The DNS server (0.0.0.0 for none).
    pub dns: Ipv4Addr,
}

/// What one [`SocketStack::poll`] did and when the next one is due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PollOutcome {
    /// Some socket's state may have changed (frames were processed or sent).
    pub progressed: bool,
    /// Latest time the stack wants to be polled again even without input, `None` for no timer.
    pub next_poll: Option<Micros>,
}

/// The stack as the socket layer sees it.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
pub trait SocketStack {
    /// Processes received frames and timers, sends what is due.
    fn poll(&mut self, now: Micros) -> PollOutcome;

    /// Opens a socket; fails with [`NetError::NoMemory`] when the pool is exhausted.
    fn open(&mut self, transport: Transport) -> Result<SocketId, NetError>;
    /// Closes a socket. TCP closes gracefully in the background; the id is invalid at once.
    fn close(&mut self, id: SocketId);

    /// Binds to a local address (0.0.0.0 for any, port 0 for an ephemeral one).
    fn bind(&mut self, id: SocketId, local: SocketAddrV4) -> Result<(), NetError>;
    /// The bound local address, if any.
    fn local_addr(&self, id: SocketId) -> Result<Option<SocketAddrV4>, NetError>;
    /// Starts listening with up to `backlog` (at least 1) connections pending.
    fn listen(&mut self, id: SocketId, backlog: usize) -> Result<(), NetError>;
    /// Takes one established connection from the backlog, if any (else `WouldBlock`).
    fn accept(&mut self, id: SocketId) -> Result<(SocketId, SocketAddrV4), NetError>;
    /// Starts a TCP connection (returns at once; watch [`SocketStack::tcp_phase`]), or sets the
    /// default peer of a UDP socket.
    fn connect(&mut self, id: SocketId, remote: SocketAddrV4) -> Result<(), NetError>;
    /// The peer of a connected socket.
    fn peer_addr(&self, id: SocketId) -> Result<Option<SocketAddrV4>, NetError>;
    /// The phase of a TCP socket; takes (reports once) a stored failure.
    fn tcp_phase(&mut self, id: SocketId) -> Result<TcpPhase, NetError>;

    /// Queues bytes on a TCP socket; returns how many fit (0 never: `WouldBlock` instead).
    fn send(&mut self, id: SocketId, data: &[u8]) -> Result<usize, NetError>;
    /// Reads queued TCP bytes; `Ok(0)` means end of stream, `WouldBlock` means none yet. Bytes
    /// that arrived before a reset are read before the reset is reported.
    fn recv(&mut self, id: SocketId, buf: &mut [u8]) -> Result<usize, NetError>;
    /// As [`SocketStack::recv`], but the bytes stay queued (`MSG_PEEK`).
    fn peek(&mut self, id: SocketId, buf: &mut [u8]) -> Result<usize, NetError>;
    /// Sends one UDP datagram (to the connected peer when `to` is `None`).
    fn send_to(
        &mut self,
        id: SocketId,
        data: &[u8],
        to: Option<SocketAddrV4>,
    ) -> Result<usize, NetError>;
    /// Receives one UDP datagram (truncated to `buf`), with its source.
    fn recv_from(
        &mut self,
        id: SocketId,
        buf: &mut [u8],
    ) -> Result<(usize, SocketAddrV4), NetError>;
    /// As [`SocketStack::recv_from`], but the datagram stays queued (`MSG_PEEK`).
    fn peek_from(
        &mut self,
        id: SocketId,
        buf: &mut [u8],
    ) -> Result<(usize, SocketAddrV4), NetError>;

    /// What the socket can do right now.
    fn readiness(&self, id: SocketId) -> Result<Readiness, NetError>;
    /// Sets a socket option.
    fn set_option(&mut self, id: SocketId, option: SocketOption) -> Result<(), NetError>;

    /// Starts resolving a host name to an IPv4 address.
    fn resolve_start(&mut self, name: &str) -> Result<QueryId, NetError>;
    /// The result of a query: `WouldBlock` while it runs; the query is freed on any other result.
    fn resolve_poll(&mut self, query: QueryId) -> Result<Ipv4Addr, NetError>;

    /// The current IPv4 configuration, `None` while the interface has no address.
    fn ipv4_config(&self) -> Option<Ipv4Config>;
}
