//! The stack's bookkeeping beside smoltcp's sockets: which socket id names what, and what each
//! smoltcp TCP/UDP socket is used for.
//!
//! Every smoltcp socket is created once, at start, with its buffers; the tables only track
//! its use, so nothing is allocated or freed while the stack runs.

use core::net::{Ipv4Addr, SocketAddrV4};

use smoltcp::iface::SocketHandle;
use smoltcp::socket::dns::QueryHandle;
use smoltcp::socket::tcp;

use crate::api::{Micros, NetError};

/// What a socket id names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IdSlot {
    /// Not open.
    Free,
    /// A TCP socket (idle, connecting or connected): index into the TCP table.
    Tcp(u16),
    /// A TCP listener; its members are the TCP entries pooled under this id.
    Listener(Listener),
    /// A UDP socket: index into the UDP table.
    Udp(u16),
}

/// A listening TCP socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Listener {
    /// The address it listens on (unspecified = any).
    pub local: SocketAddrV4,
    /// Most members (pending connections) at once.
    pub backlog: u16,
    /// Options its accepted connections inherit.
    pub options: TcpOptions,
}

/// TCP options a socket carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct TcpOptions {
    /// SO_REUSEADDR.
    pub reuse: bool,
    /// TCP_NODELAY.
    pub nodelay: bool,
    /// SO_KEEPALIVE.
    pub keepalive: bool,
}

/// What a smoltcp TCP socket is used for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TcpUse {
    /// Unused.
    Free,
    /// Named by a socket id.
    Owned,
    /// A member of the listener with this id; `arrival` orders established connections.
    Pooled {
        /// Id of the listener.
        listener: u16,
        /// Arrival number once established, `None` while listening or handshaking.
        arrival: Option<u32>,
    },
    /// Closed by its owner, finishing the FIN handshake until `deadline`.
    Lingering {
        /// When it is aborted if still not closed.
        deadline: Micros,
    },
}

/// One smoltcp TCP socket and its use.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TcpEntry {
    /// The smoltcp socket (set once at start).
    pub handle: Option<SocketHandle>,
    /// What it is used for.
    pub usage: TcpUse,
    /// Bound or listening local address.
    pub local: Option<SocketAddrV4>,
    /// The peer once connecting or connected.
    pub remote: Option<SocketAddrV4>,
    /// Options.
    pub options: TcpOptions,
    /// `connect` was called or the connection was accepted.
    pub started: bool,
    /// A failure not yet reported.
    pub failure: Option<NetError>,
    /// A failure was reported (the socket then stays `Closed`).
    pub failed: bool,
    /// The smoltcp state seen at the last scan.
    pub last_state: tcp::State,
    /// When `last_state` was first seen.
    pub changed_at: Micros,
}

impl TcpEntry {
    /// An unused entry.
    pub const EMPTY: Self = Self {
        handle: None,
        usage: TcpUse::Free,
        local: None,
        remote: None,
        options: TcpOptions {
            reuse: false,
            nodelay: false,
            keepalive: false,
        },
        started: false,
        failure: None,
        failed: false,
        last_state: tcp::State::Closed,
        changed_at: 0,
    };

    /// The entry reset for a new use, keeping its socket.
    pub fn reused(&self, usage: TcpUse) -> Self {
        Self {
            handle: self.handle,
            usage,
            ..Self::EMPTY
        }
    }
}

/// One smoltcp UDP socket and its use.
#[derive(Clone, Copy, Debug)]
pub(crate) struct UdpEntry {
    /// The smoltcp socket (set once at start).
    pub handle: Option<SocketHandle>,
    /// Named by a socket id.
    pub in_use: bool,
    /// Bound local address.
    pub local: Option<SocketAddrV4>,
    /// Default peer (`connect`).
    pub peer: Option<SocketAddrV4>,
    /// SO_REUSEADDR.
    pub reuse: bool,
    /// SO_BROADCAST.
    pub broadcast: bool,
    /// Closed with datagrams still queued: flushing them until this time (not `in_use`).
    pub draining: Option<Micros>,
}

impl UdpEntry {
    /// An unused entry.
    pub const EMPTY: Self = Self {
        handle: None,
        in_use: false,
        local: None,
        peer: None,
        reuse: false,
        broadcast: false,
        draining: None,
    };
}

/// A name query.
#[derive(Clone, Copy)]
pub(crate) enum DnsEntry {
    /// Not in use.
    Free,
    /// A numeric address: answered without DNS.
    Numeric(Ipv4Addr),
    /// Running in smoltcp's DNS socket since `started`.
    Pending {
        /// smoltcp's query.
        handle: QueryHandle,
        /// When it was started.
        started: Micros,
    },
}
