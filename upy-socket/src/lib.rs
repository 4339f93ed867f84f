//! MicroPython's socket semantics, generic over a network stack and a clock.
//!
//! [`Sockets`] owns a [`netstack::api::SocketStack`] and a [`Clock`] and gives each Python
//! socket object a [`Socket`] handle. Its methods behave like MicroPython's lwIP bindings
//! (`extmod/modlwip.c`): the same state machine, timeouts, errno numbers (`py/mperrno.h`) and
//! poll flags (`py/stream.h`), in types `upy-bindings` turns into Python objects. Nothing here
//! allocates; buffers are the caller's.
//!
//! Timeouts: `None` blocks, `0` never waits, `t > 0` waits up to `t` seconds (truncated to
//! milliseconds, as modlwip). Waiting polls the stack and sleeps until its next timer, the
//! deadline, or at most [`wait::MAX_IDLE_SLEEP`] (a clock may allow more: [`Clock::max_idle`]).
//!
//! # Behaviour table
//!
//! "Non-blocking" means timeout 0, "timeout" means `t > 0`. `OSError` numbers are
//! MicroPython's. Any method on a closed socket raises `EBADF` unless the row says otherwise.
//!
//! | method | behaviour | errors |
//! |---|---|---|
//! | `socket(af, type, proto)` | TCP or UDP socket, blocking | `EAFNOSUPPORT` af ≠ `AF_INET`; `EINVAL` other type or proto ≠ 0/own; `ENOMEM` no free socket |
//! | `close()` | closes (TCP: FIN in the background); idempotent | never |
//! | `bind(addr)` | binds; `''` is any address; `127.0.0.1` the loopback address (the stack's loopback path; `connect`/`sendto` from it reach only the board itself, else `EINVAL`) | `EINVAL` TCP not new, or not a local address; `EADDRINUSE`; `ValueError` bad IP text |
//! | `listen([backlog])` | default 2, negative → 0, stack gets 1..=255 | `EOPNOTSUPP` UDP; `EBADF` failed; `ENOTCONN` not new |
//! | `accept()` | `(socket, (ip, port))`, new socket inherits the timeout | `EOPNOTSUPP` UDP; `EINVAL` not listening; `EAGAIN` non-blocking; `ETIMEDOUT`; `ENOMEM` |
//! | `connect(addr)` | TCP: waits for the handshake; UDP: sets the peer | `EINPROGRESS` non-blocking; `ETIMEDOUT`; `EALREADY` connecting; `EISCONN` connected; `ECONNREFUSED`; `EHOSTUNREACH`; `EBADF` failed |
//! | `send(b)` | bytes queued, may be short; UDP: one datagram | `EAGAIN` non-blocking and full; `ETIMEDOUT`; `ENOTCONN` not connected; a connection error once, then `EBADF`; `EPIPE` after `recv` reported a reset |
//! | `sendall(b)` | sends all, timeout per chunk | `NotImplementedError` UDP; `EAGAIN` non-blocking without room; as `send` |
//! | `recv(n[, flags])` | ≥1 bytes, `b''` after orderly close; UDP: one datagram (truncated). Bytes received before a reset or other failure are read first. `flags`: `MSG_PEEK` leaves the data queued, `MSG_DONTWAIT` makes this call non-blocking, other bits are ignored | `EAGAIN` non-blocking and empty; `ETIMEDOUT`; `ENOTCONN` listening; before connecting `EAGAIN` (non-blocking) or `ENOTCONN`; a connection error once, then `b''` after a reset, `EBADF` after anything else |
//! | `sendto(b, addr)` | UDP: datagram to `addr`; TCP: `send` (address ignored) | as `send` |
//! | `recvfrom(n[, flags])` | `(bytes, (ip, port))` of the sender (TCP: the peer) | as `recv` |
//! | `setsockopt(level, opt, v)` | `SO_REUSEADDR`, `SO_KEEPALIVE`, `TCP_NODELAY`; `SO_BROADCAST` accepted without effect (UDP may always broadcast, as lwIP built without `IP_SOF_BROADCAST`); level ignored | unknown option: no error, modlwip's warning ([`OptOutcome::NotImplemented`]) |
//! | `settimeout(t)` / `setblocking(f)` | see above; also on a closed socket | `ValueError` negative/non-finite `t` |
//! | `makefile(...)` | the socket itself (it has the stream methods) | never |
//! | `read([n])`, `readinto(buf[, n])` | until `n` bytes or EOF (`read()`: until EOF) | `None` non-blocking with nothing; partial data on would-block; a connection error as `recv` |
//! | `readline([n])` | up to and including `\n`, across segments | as `read` |
//! | `write(b)` | writes all; non-blocking may be partial | `None` non-blocking with no room; a connection error on every call |
//! | `getaddrinfo(host, port, ...)` | `[(AF_INET, SOCK_STREAM, 0, '', (ip, port))]`; numeric hosts without DNS | `OSError(-2)` lookup failed/timed out; `-16` bad name; `-1` no query slot |
//! | `ioctl(MP_STREAM_POLL)` | see [`Sockets::ioctl_poll`] | never (closed: `NVAL`) |
//!
//! The reference is `extmod/modlwip.c` with lwIP 2 as in MicroPython v1.28: its error table and
//! poll handler, the `recv` flags (v1.26), and TCP data kept on a peer's reset (v1.27: a reset
//! socket polls `RD|ERR|HUP`, reads its data, raises `ECONNRESET` once, then reads as EOF and
//! polls `RD|HUP`); also the rules that a timed-out `connect` is `ETIMEDOUT` (only a
//! non-blocking one is `EINPROGRESS`, micropython PR #15223) and that a connecting socket does
//! not poll writable.
//!
//! # Where this differs from modlwip, and why
//!
//! - A refused connect is `ECONNREFUSED` (lwIP has no such code and says `ECONNRESET`).
//! - `AF_INET6`/other families and mismatched `proto` are refused instead of being ignored.
//! - A connecting TCP socket has no send room (lwIP queues data during the handshake; the
//!   stack cannot), so `send` then waits or gives `EAGAIN`.
//! - UDP send with no buffer room waits per the timeout (lwIP fails with `ENOMEM`).
//! - Stack-side timeouts (retransmissions exhausted) are `ECONNABORTED`, as lwIP's `ERR_ABRT`.
//! - `recvfrom` on TCP returns the stack's peer address (modlwip only knows it after `connect`).
//! - Multicast membership options are not implemented (no IGMP in the stack).
//! - `listen` clamps the backlog to 255 where lwIP truncates it to a `u8`.
//! - A failure that arrives while a blocking `recv` waits is raised once, as one found when the
//!   call starts (modlwip raises it without recording that, so the next `recv` raises it again),
//!   and never ahead of bytes received before it (modlwip can, when both arrive in one poll).
//! - `send` after `recv` reported a reset raises `EPIPE`, as Linux (modlwip reads outside its
//!   error table there).
//! - TCP `recv(n)`, also with `MSG_PEEK`, returns everything queued up to `n` bytes; lwIP returns
//!   at most one received segment (pbuf) per call.
//! - `getaddrinfo` gives up after a DNS timeout ([`Sockets::set_dns_timeout`], default
//!   [`DEFAULT_DNS_TIMEOUT`]) where modlwip waits for lwIP; a given-up query keeps its stack slot
//!   until the stack's own DNS timeout and is polled until then.

#![cfg_attr(not(any(feature = "std", test)), no_std)]

pub mod addr;
pub mod clock;
pub mod consts;
pub mod dns;
pub mod errno;
pub mod poll_flags;
mod readiness;
pub mod recv_flags;
pub mod sockets;
mod stream;
mod tcp;
pub mod timeout;
mod transfer;
mod udp;
pub mod wait;

#[cfg(any(test, feature = "mock"))]
pub mod mock;

pub use addr::{parse_inet_addr, parse_ipv4};
pub use clock::Clock;
#[cfg(feature = "std")]
pub use clock::StdClock;
pub use dns::{AddrInfo, Hints};
pub use errno::{Errno, SocketError};
pub use poll_flags::PollFlags;
pub use recv_flags::RecvFlags;
pub use sockets::{OptOutcome, Socket, Sockets, DEFAULT_DNS_TIMEOUT};
pub use timeout::Timeout;
