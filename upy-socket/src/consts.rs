//! The numeric constants of MicroPython's `socket` module, as `extmod/modlwip.c` exports them.
//!
//! Option numbers are lwIP's (`SOF_*` in `lwip/ip.h`, `TF_NODELAY` in `lwip/tcp.h`): modlwip
//! passes them straight to lwIP and ignores the `level` argument of `setsockopt`.

/// `socket.AF_INET`.
pub const AF_INET: i32 = 2;
/// `socket.AF_INET6` (exported by modlwip; [`crate::Sockets::socket`] refuses it).
pub const AF_INET6: i32 = 10;

/// `socket.SOCK_STREAM`.
pub const SOCK_STREAM: i32 = 1;
/// `socket.SOCK_DGRAM`.
pub const SOCK_DGRAM: i32 = 2;

/// `socket.SOL_SOCKET`.
pub const SOL_SOCKET: i32 = 1;
/// `socket.SO_REUSEADDR` (lwIP `SOF_REUSEADDR`).
pub const SO_REUSEADDR: i32 = 0x04;
/// `socket.SO_KEEPALIVE` (lwIP `SOF_KEEPALIVE`; modlwip has no such constant, we add it).
pub const SO_KEEPALIVE: i32 = 0x08;
/// `socket.SO_BROADCAST` (lwIP `SOF_BROADCAST`).
pub const SO_BROADCAST: i32 = 0x20;

/// `socket.IPPROTO_IP`.
pub const IPPROTO_IP: i32 = 0;
/// `socket.IPPROTO_TCP` (lwIP `IP_PROTO_TCP`).
pub const IPPROTO_TCP: i32 = 6;
/// `socket.IPPROTO_UDP` (lwIP `IP_PROTO_UDP`; accepted as the `proto` of a datagram socket).
pub const IPPROTO_UDP: i32 = 17;
/// `socket.TCP_NODELAY` (lwIP `TF_NODELAY`).
pub const TCP_NODELAY: i32 = 0x40;

/// `socket.IP_ADD_MEMBERSHIP` (modlwip's own number; not supported here, see `setsockopt`).
pub const IP_ADD_MEMBERSHIP: i32 = 0x400;
/// `socket.IP_DROP_MEMBERSHIP` (modlwip's own number; not supported here, see `setsockopt`).
pub const IP_DROP_MEMBERSHIP: i32 = 0x401;

/// `socket.MSG_PEEK` (modlwip's own number): `recv`/`recvfrom` leave the data queued.
pub const MSG_PEEK: i32 = 0x01;
/// `socket.MSG_DONTWAIT` (modlwip's own number): `recv`/`recvfrom` do not wait, whatever the
/// socket's timeout.
pub const MSG_DONTWAIT: i32 = 0x02;

/// modlwip's private `setsockopt` option that installs a Python callback run on socket events.
/// It holds a Python object, so the bindings handle it and never pass it down.
pub const SO_CALLBACK: i32 = 20;

/// `listen()` backlog when the argument is omitted (`MICROPY_PY_SOCKET_LISTEN_BACKLOG_DEFAULT`).
pub const LISTEN_BACKLOG_DEFAULT: i32 = 2;
