//! Errors exactly as MicroPython raises them from its lwIP socket module.
//!
//! Numbers are MicroPython's own (`py/mperrno.h` with `MICROPY_USE_INTERNAL_ERRNO`, which follows
//! Linux), not the host's. `getaddrinfo` in `extmod/modlwip.c` raises raw negative lwIP codes
//! instead of errnos; those are variants here too so that one `OSError(code)` path serves both.

use netstack::api::NetError;

/// An `OSError` argument as MicroPython's lwIP socket module raises it.
// The C names are kept on purpose: they are what Python code and the errno module print.
#[allow(clippy::upper_case_acronyms)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Errno {
    /// Bad file number (9): the socket is closed or its error was already reported.
    EBADF,
    /// Try again (11): a non-blocking operation cannot proceed now.
    EAGAIN,
    /// Out of memory (12): no free socket, buffer or datagram space.
    ENOMEM,
    /// Permission denied (13): a broadcast send the stack refused.
    EACCES,
    /// No such device (19): no network behind the module (the bindings' backend is not
    /// installed, or no board to act on).
    ENODEV,
    /// Broken pipe (32): sending on a connection whose reset `recv` already reported.
    EPIPE,
    /// Invalid argument (22).
    EINVAL,
    /// Operation not supported (95): e.g. `listen`/`accept` on a UDP socket.
    EOPNOTSUPP,
    /// Address family not supported (97): only `AF_INET` exists.
    EAFNOSUPPORT,
    /// Address already in use (98).
    EADDRINUSE,
    /// Connection aborted (103): the stack gave up on the connection (lwIP `ERR_ABRT`).
    ECONNABORTED,
    /// Connection reset by peer (104).
    ECONNRESET,
    /// Already connected (106).
    EISCONN,
    /// Not connected (107).
    ENOTCONN,
    /// Timed out (110): a socket timeout set with `settimeout` expired.
    ETIMEDOUT,
    /// Connection refused (111).
    ECONNREFUSED,
    /// No route to host (113).
    EHOSTUNREACH,
    /// Operation already in progress (114): `connect` while connecting.
    EALREADY,
    /// Operation now in progress (115): non-blocking `connect` started.
    EINPROGRESS,
    /// `getaddrinfo`: the lookup failed or timed out (modlwip raises `OSError(-2)`).
    DnsFailed,
    /// `getaddrinfo`: no room for another query (lwIP `ERR_MEM`, -1).
    DnsNoMemory,
    /// `getaddrinfo`: empty or over-long host name (lwIP `ERR_ARG`, -16).
    DnsBadName,
}

impl Errno {
    /// The number Python sees in `OSError.errno` (`e.args[0]`).
    pub const fn code(self) -> i32 {
        match self {
            Errno::EBADF => 9,
            Errno::EAGAIN => 11,
            Errno::ENOMEM => 12,
            Errno::EACCES => 13,
            Errno::ENODEV => 19,
            Errno::EPIPE => 32,
            Errno::EINVAL => 22,
            Errno::EOPNOTSUPP => 95,
            Errno::EAFNOSUPPORT => 97,
            Errno::EADDRINUSE => 98,
            Errno::ECONNABORTED => 103,
            Errno::ECONNRESET => 104,
            Errno::EISCONN => 106,
            Errno::ENOTCONN => 107,
            Errno::ETIMEDOUT => 110,
            Errno::ECONNREFUSED => 111,
            Errno::EHOSTUNREACH => 113,
            Errno::EALREADY => 114,
            Errno::EINPROGRESS => 115,
            Errno::DnsFailed => -2,
            Errno::DnsNoMemory => -1,
            Errno::DnsBadName => -16,
        }
    }

    /// The symbolic name MicroPython prints (`OSError: [Errno 11] EAGAIN`); `None` for the raw
    /// negative lwIP codes, which MicroPython prints as bare numbers.
    pub const fn name(self) -> Option<&'static str> {
        Some(match self {
            Errno::EBADF => "EBADF",
            Errno::EAGAIN => "EAGAIN",
            Errno::ENOMEM => "ENOMEM",
            Errno::EACCES => "EACCES",
            Errno::ENODEV => "ENODEV",
            Errno::EPIPE => "EPIPE",
            Errno::EINVAL => "EINVAL",
            Errno::EOPNOTSUPP => "EOPNOTSUPP",
            Errno::EAFNOSUPPORT => "EAFNOSUPPORT",
            Errno::EADDRINUSE => "EADDRINUSE",
            Errno::ECONNABORTED => "ECONNABORTED",
            Errno::ECONNRESET => "ECONNRESET",
            Errno::EISCONN => "EISCONN",
            Errno::ENOTCONN => "ENOTCONN",
            Errno::ETIMEDOUT => "ETIMEDOUT",
            Errno::ECONNREFUSED => "ECONNREFUSED",
            Errno::EHOSTUNREACH => "EHOSTUNREACH",
            Errno::EALREADY => "EALREADY",
            Errno::EINPROGRESS => "EINPROGRESS",
            Errno::DnsFailed | Errno::DnsNoMemory | Errno::DnsBadName => return None,
        })
    }
}

impl From<NetError> for Errno {
    /// The errno a stack error surfaces as, following modlwip's lwIP error table where lwIP has
    /// the same condition (e.g. a stack-side timeout is lwIP's `ERR_ABRT`, hence `ECONNABORTED`;
    /// a too-large datagram fails lwIP's `pbuf_alloc`, hence `ENOMEM`).
    fn from(e: NetError) -> Self {
        match e {
            NetError::WouldBlock => Errno::EAGAIN,
            NetError::NoMemory | NetError::MessageTooLong => Errno::ENOMEM,
            NetError::AddrInUse => Errno::EADDRINUSE,
            // MicroPython has no EADDRNOTAVAIL; lwIP reports bad bind arguments as ERR_VAL.
            NetError::AddrNotAvailable | NetError::Invalid => Errno::EINVAL,
            NetError::HostUnreachable => Errno::EHOSTUNREACH,
            NetError::ConnectionRefused => Errno::ECONNREFUSED,
            NetError::ConnectionReset => Errno::ECONNRESET,
            NetError::ConnectionAborted | NetError::TimedOut => Errno::ECONNABORTED,
            NetError::NotConnected => Errno::ENOTCONN,
            NetError::AlreadyConnected => Errno::EISCONN,
            NetError::InProgress => Errno::EINPROGRESS,
            NetError::BadSocket => Errno::EBADF,
            NetError::NameNotFound => Errno::DnsFailed,
            // Unreachable through `Sockets`, which allows broadcast on every UDP socket as
            // MicroPython's lwIP does; Linux's number for anyone else.
            NetError::NotPermitted => Errno::EACCES,
        }
    }
}

/// Why a socket operation failed, by the Python exception class the bindings must raise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SocketError {
    /// `OSError(errno.code())`.
    Os(Errno),
    /// `ValueError(message)`: an address string that is not an IPv4 address (modlwip's
    /// "invalid arguments"), or a negative or non-finite timeout.
    Value(&'static str),
    /// `NotImplementedError`: `sendall` on a UDP socket, as modlwip.
    NotImplemented,
    /// A wait was interrupted ([`crate::Clock::interrupted`]): the bindings raise the pending
    /// exception (`KeyboardInterrupt`). The socket is as the wait left it, still usable.
    Interrupted,
}

impl From<Errno> for SocketError {
    fn from(e: Errno) -> Self {
        SocketError::Os(e)
    }
}

impl From<NetError> for SocketError {
    fn from(e: NetError) -> Self {
        SocketError::Os(e.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_micropythons() {
        // py/mperrno.h (MICROPY_USE_INTERNAL_ERRNO).
        let table = [
            (Errno::EBADF, 9),
            (Errno::EAGAIN, 11),
            (Errno::ENOMEM, 12),
            (Errno::EACCES, 13),
            (Errno::ENODEV, 19),
            (Errno::EPIPE, 32),
            (Errno::EINVAL, 22),
            (Errno::EOPNOTSUPP, 95),
            (Errno::EAFNOSUPPORT, 97),
            (Errno::EADDRINUSE, 98),
            (Errno::ECONNABORTED, 103),
            (Errno::ECONNRESET, 104),
            (Errno::EISCONN, 106),
            (Errno::ENOTCONN, 107),
            (Errno::ETIMEDOUT, 110),
            (Errno::ECONNREFUSED, 111),
            (Errno::EHOSTUNREACH, 113),
            (Errno::EALREADY, 114),
            (Errno::EINPROGRESS, 115),
            (Errno::DnsFailed, -2),
            (Errno::DnsNoMemory, -1),
            (Errno::DnsBadName, -16),
        ];
        for (e, code) in table {
            assert_eq!(e.code(), code, "{e:?}");
        }
    }

    #[test]
    fn names_match_variants_and_dns_codes_are_bare() {
        assert_eq!(Errno::EAGAIN.name(), Some("EAGAIN"));
        assert_eq!(Errno::EINPROGRESS.name(), Some("EINPROGRESS"));
        assert_eq!(Errno::DnsFailed.name(), None);
        assert_eq!(
            format!("{:?}", Errno::ECONNRESET),
            Errno::ECONNRESET.name().unwrap()
        );
    }

    #[test]
    fn stack_errors_map_like_lwip() {
        assert_eq!(Errno::from(NetError::WouldBlock), Errno::EAGAIN);
        assert_eq!(Errno::from(NetError::NoMemory), Errno::ENOMEM);
        assert_eq!(Errno::from(NetError::MessageTooLong), Errno::ENOMEM);
        assert_eq!(Errno::from(NetError::AddrInUse), Errno::EADDRINUSE);
        assert_eq!(Errno::from(NetError::AddrNotAvailable), Errno::EINVAL);
        assert_eq!(Errno::from(NetError::HostUnreachable), Errno::EHOSTUNREACH);
        assert_eq!(
            Errno::from(NetError::ConnectionRefused),
            Errno::ECONNREFUSED
        );
        assert_eq!(Errno::from(NetError::ConnectionReset), Errno::ECONNRESET);
        assert_eq!(
            Errno::from(NetError::ConnectionAborted),
            Errno::ECONNABORTED
        );
        assert_eq!(Errno::from(NetError::TimedOut), Errno::ECONNABORTED);
        assert_eq!(Errno::from(NetError::NotConnected), Errno::ENOTCONN);
        assert_eq!(Errno::from(NetError::AlreadyConnected), Errno::EISCONN);
        assert_eq!(Errno::from(NetError::InProgress), Errno::EINPROGRESS);
        assert_eq!(Errno::from(NetError::Invalid), Errno::EINVAL);
        assert_eq!(Errno::from(NetError::BadSocket), Errno::EBADF);
        assert_eq!(Errno::from(NetError::NameNotFound), Errno::DnsFailed);
        assert_eq!(Errno::from(NetError::NotPermitted), Errno::EACCES);
        assert_eq!(
            SocketError::from(NetError::ConnectionReset),
            SocketError::Os(Errno::ECONNRESET)
        );
    }
}
