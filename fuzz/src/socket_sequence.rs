//! Socket-call sequences on `upy_socket::Sockets` over a real netstack `Stack`, wired by an
//! in-memory Ethernet wire to a second stack that runs an echo peer (as
//! `tests/tests/socket_stack.rs` wires two boards, but in one thread on a virtual clock: a
//! sleep of the socket layer runs the peer from timer to timer and ends as soon as the peer has
//! sent something, so waits need no idle bound ([`Clock::max_idle`] is `None`) and virtual time
//! jumps from event to event instead of ticking).
//!
//! The input decodes (with `arbitrary`) to calls with arbitrary arguments, on handles that may
//! be closed or in the wrong state. Timeouts are bounded: `Blocking` (and `setblocking(True)`)
//! becomes a 250 ms timeout, since a blocking call nobody answers rightly never returns.
//!
//! Invariants: no panic; every error is an `OSError` with one of MicroPython's socket errnos
//! (never a DNS code, a `ValueError`, or `NotImplementedError` except from `sendall` on UDP);
//! `EAFNOSUPPORT` only from `socket()`; any call on a handle this harness closed is `EBADF`
//! (poll: `NVAL`); after closing everything and letting background closes finish, the table
//! and the stack's socket pools are entirely free again.

use std::cell::{Cell, RefCell};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::rc::Rc;

use arbitrary::{Arbitrary, Unstructured};
use netstack::api::{Ipv4Config, Micros, SocketId, SocketStack, Transport};
use netstack::phy::{wire, WireEnd};
use netstack::{HeapStorage, InterfaceControl, Seed, Stack, StackConfig};
use upy_socket::consts::{
    AF_INET, AF_INET6, IPPROTO_TCP, IPPROTO_UDP, IP_ADD_MEMBERSHIP, SOCK_DGRAM, SOCK_STREAM,
    SOL_SOCKET, SO_BROADCAST, SO_KEEPALIVE, SO_REUSEADDR, TCP_NODELAY,
};
use upy_socket::{Clock, Errno, PollFlags, RecvFlags, Socket, SocketError, Sockets, Timeout};

const A_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
const B_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
/// The peer's echo port (TCP and UDP); other peer ports are closed.
const ECHO: u16 = 7;
/// Sockets in the table under test.
const SLOTS: usize = 8;
/// The stack's pools under test (the table has room for all of them at once).
const TCP_POOL: usize = 4;
const UDP_POOL: usize = 4;
/// What stands in for "block forever" (long enough for the peer to answer many times over).
const BLOCKING: Micros = 250_000;
/// Calls per input.
const MAX_CALLS: usize = 48;
/// Longest payload a call sends.
const MAX_DATA: usize = 8192;
/// Bytes per line of what the calls send.
const LINE: usize = 128;
/// Connections the peer serves at once.
const PEER_CONNS: usize = 4;

/// The echo peer: a second stack with a TCP echo listener and a UDP echo socket, plus clients
/// it opens to the table's stack on request.
struct Peer {
    stack: Stack<'static, WireEnd>,
    listener: SocketId,
    udp: SocketId,
    conns: Vec<SocketId>,
    /// The stack's next timer, as its last poll said.
    next: Option<Micros>,
}

impl Peer {
    fn new(end: WireEnd) -> Self {
        let mut stack = stack(end, 2, B_IP, 4, 2);
        let any = |port| SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port);
        let listener = stack.open(Transport::Tcp).expect("peer socket");
        stack.bind(listener, any(ECHO)).expect("peer bind");
        stack.listen(listener, 2).expect("peer listen");
        let udp = stack.open(Transport::Udp).expect("peer socket");
        stack.bind(udp, any(ECHO)).expect("peer bind");
        Self {
            stack,
            listener,
            udp,
            conns: Vec::new(),
            next: None,
        }
    }

    /// Polls the stack, runs the echo service once and sends what it queued.
    fn poll(&mut self, now: Micros) {
        self.next = self.stack.poll(now).next_poll;
        let mut served = false;
        while self.conns.len() < PEER_CONNS {
            let Ok((conn, _)) = self.stack.accept(self.listener) else {
                break;
            };
            self.conns.push(conn);
        }
        let mut buf = [0u8; 2048];
        let stack = &mut self.stack;
        self.conns.retain(|&conn| match stack.recv(conn, &mut buf) {
            Ok(0) => {
                stack.close(conn);
                served = true;
                false
            }
            Ok(n) => {
                served |= stack.send(conn, &buf[..n]).is_ok();
                true
            }
            Err(netstack::api::NetError::WouldBlock) => true,
            Err(_) => {
                stack.close(conn);
                served = true;
                false
            }
        });
        for _ in 0..4 {
            let Ok((n, from)) = self.stack.recv_from(self.udp, &mut buf) else {
                break;
            };
            served |= self.stack.send_to(self.udp, &buf[..n], Some(from)).is_ok();
        }
        if served {
            self.next = self.stack.poll(now).next_poll;
        }
    }

    /// Whether frames are on the wire in either direction.
    fn wire_busy(&self) -> bool {
        let end = self.stack.device();
        end.pending() > 0 || end.in_flight() > 0
    }

    /// Opens a connection to the table's stack.
    fn connect(&mut self, port: u16) {
        if self.conns.len() >= PEER_CONNS {
            return;
        }
        if let Ok(conn) = self.stack.open(Transport::Tcp) {
            match self.stack.connect(conn, SocketAddrV4::new(A_IP, port)) {
                Ok(()) => {
                    let _ = self.stack.send(conn, b"hello from the peer\n");
                    self.conns.push(conn);
                }
                Err(_) => self.stack.close(conn),
            }
        }
    }

    fn close_all(&mut self) {
        for conn in self.conns.drain(..) {
            self.stack.close(conn);
        }
    }
}

/// A virtual clock: sleeping runs the peer from one of its timers to the next and wakes the
/// sleeper as soon as the peer sent a frame (or at the deadline).
struct SimClock {
    now: Rc<Cell<Micros>>,
    peer: Rc<RefCell<Peer>>,
}

impl Clock for SimClock {
    fn now(&self) -> Micros {
        self.now.get()
    }

    fn sleep_until(&mut self, deadline: Micros) {
        let start = self.now.get();
        // At least a microsecond, so that a wait always moves time.
        let end = deadline.max(start + 1);
        let mut peer = self.peer.borrow_mut();
        let mut at = start;
        loop {
            peer.poll(at);
            if at >= end || peer.stack.device().in_flight() > 0 {
                break;
            }
            at = peer.next.map_or(end, |t| t.clamp(at + 1, end));
        }
        self.now.set(at.max(start + 1));
    }

    fn max_idle(&self) -> Option<Micros> {
        // Sleeps end when the peer sends; nothing else puts frames on the wire.
        None
    }
}

fn stack(end: WireEnd, last: u8, ip: Ipv4Addr, tcp: usize, udp: usize) -> Stack<'static, WireEnd> {
    let storage = HeapStorage {
        tcp_sockets: tcp,
        tcp_buffer: 4096,
        udp_sockets: udp,
        udp_buffer: 4096,
    };
    let config = StackConfig {
        mac: [0x02, 0, 0, 0, 0x77, last],
        seed: Seed::reproducible(u64::from(last) * 104_729),
    };
    let mut stack = Stack::new(end, config, storage.parts(), 0);
    let config = Ipv4Config {
        address: ip,
        netmask: Ipv4Addr::new(255, 255, 255, 0),
        gateway: Ipv4Addr::UNSPECIFIED,
        dns: Ipv4Addr::UNSPECIFIED,
    };
    stack.set_static(config).expect("valid configuration");
    stack
}

type Table = Sockets<Stack<'static, WireEnd>, SimClock, SLOTS>;

/// A destination or local address.
#[derive(Arbitrary, Clone, Copy, Debug)]
enum Addr {
    PeerEcho,
    Peer(u16),
    Own(u16),
    Any(u16),
    /// On the subnet, nobody answers ARP.
    Absent(u16),
    /// Off the subnet without a gateway.
    OffNet(u16),
    Broadcast(u16),
    Raw([u8; 4], u16),
}

impl Addr {
    fn get(self) -> SocketAddrV4 {
        let (ip, port) = match self {
            Addr::PeerEcho => (B_IP, ECHO),
            Addr::Peer(p) => (B_IP, p),
            Addr::Own(p) => (A_IP, p),
            Addr::Any(p) => (Ipv4Addr::UNSPECIFIED, p),
            Addr::Absent(p) => (Ipv4Addr::new(10, 77, 0, 99), p),
            Addr::OffNet(p) => (Ipv4Addr::new(192, 0, 2, 1), p),
            Addr::Broadcast(p) => (Ipv4Addr::new(10, 77, 0, 255), p),
            Addr::Raw(ip, p) => (Ipv4Addr::from(ip), p),
        };
        SocketAddrV4::new(ip, port)
    }
}

#[derive(Arbitrary, Clone, Copy, Debug)]
enum Family {
    Inet,
    Inet6,
    Other(i32),
}

#[derive(Arbitrary, Clone, Copy, Debug)]
enum Type {
    Stream,
    Dgram,
    Other(i32),
}

#[derive(Arbitrary, Clone, Copy, Debug)]
enum Proto {
    Zero,
    Tcp,
    Udp,
    Other(i32),
}

/// The size and flags of a `recv`/`recvfrom`: the low 14 bits of `len` (at most `room`), and
/// its top two bits as `MSG_PEEK`/`MSG_DONTWAIT` (the call keeps its shape, so the committed
/// corpus still decodes into the same calls).
fn recv_args(len: u16, room: usize) -> (usize, RecvFlags) {
    (
        usize::from(len & 0x3fff).min(room),
        RecvFlags::from_bits(i64::from(len >> 14)),
    )
}

#[derive(Arbitrary, Clone, Copy, Debug)]
enum OptName {
    ReuseAddr,
    Broadcast,
    KeepAlive,
    NoDelay,
    AddMembership,
    Other(i32),
}

#[derive(Arbitrary, Clone, Copy, Debug)]
enum TimeoutSel {
    Blocking,
    NonBlocking,
    /// Milliseconds.
    Ms(u8),
}

/// One socket call; `h` picks a handle from every handle seen so far (closed ones included).
#[derive(Arbitrary, Clone, Copy, Debug)]
enum Call {
    Socket(Family, Type, Proto),
    Close {
        h: u8,
    },
    Bind {
        h: u8,
        addr: Addr,
    },
    Listen {
        h: u8,
        backlog: Option<i8>,
    },
    Accept {
        h: u8,
    },
    Connect {
        h: u8,
        addr: Addr,
    },
    Send {
        h: u8,
        len: u16,
    },
    SendAll {
        h: u8,
        len: u16,
    },
    Recv {
        h: u8,
        len: u16,
    },
    SendTo {
        h: u8,
        len: u16,
        addr: Addr,
    },
    RecvFrom {
        h: u8,
        len: u16,
    },
    Read {
        h: u8,
        len: u16,
    },
    Readline {
        h: u8,
        max: Option<u8>,
    },
    Write {
        h: u8,
        len: u16,
    },
    SetSockOpt {
        h: u8,
        name: OptName,
        value: i8,
    },
    SetTimeout {
        h: u8,
        timeout: TimeoutSel,
    },
    SetBlocking {
        h: u8,
        flag: bool,
    },
    Poll {
        h: u8,
        flags: u8,
    },
    /// Let virtual time pass (tens of milliseconds), polling both stacks.
    Wait {
        centis: u8,
    },
    /// The peer connects to this port of the table's stack.
    PeerConnect {
        port: u16,
    },
    /// The peer closes its connections.
    PeerClose,
}

impl Call {
    /// Whether the call raises `EBADF` on a closed handle. The stream methods with nothing to
    /// move return at once without looking at the socket, as MicroPython's `mp_stream_rw` does
    /// (`s.read(0)` on a closed socket is `b''`).
    fn checks_handle(self) -> bool {
        let empty_stream = match self {
            Call::Read { len, .. } => len == 0,
            Call::Write { len, .. } => usize::from(len) % MAX_DATA == 0,
            Call::Readline { max, .. } => max == Some(0),
            _ => false,
        };
        !empty_stream
            && !matches!(
                self,
                Call::Socket(..)
                    | Call::Close { .. }
                    | Call::SetTimeout { .. }
                    | Call::SetBlocking { .. }
                    | Call::Poll { .. }
                    | Call::Wait { .. }
                    | Call::PeerConnect { .. }
                    | Call::PeerClose
            )
    }

    fn handle(self) -> Option<u8> {
        match self {
            Call::Close { h }
            | Call::Bind { h, .. }
            | Call::Listen { h, .. }
            | Call::Accept { h }
            | Call::Connect { h, .. }
            | Call::Send { h, .. }
            | Call::SendAll { h, .. }
            | Call::Recv { h, .. }
            | Call::SendTo { h, .. }
            | Call::RecvFrom { h, .. }
            | Call::Read { h, .. }
            | Call::Readline { h, .. }
            | Call::Write { h, .. }
            | Call::SetSockOpt { h, .. }
            | Call::SetTimeout { h, .. }
            | Call::SetBlocking { h, .. }
            | Call::Poll { h, .. } => Some(h),
            _ => None,
        }
    }
}

fn timeout(sel: TimeoutSel) -> Timeout {
    match sel {
        TimeoutSel::Blocking => Timeout::After(BLOCKING),
        TimeoutSel::NonBlocking => Timeout::NonBlocking,
        TimeoutSel::Ms(0) => Timeout::NonBlocking,
        TimeoutSel::Ms(ms) => Timeout::After(u64::from(ms) * 1_000),
    }
}

/// `len` bytes to send: lines of [`LINE`] bytes, so that the echo of a long send does not make
/// `readline` (a stack poll per byte, as MicroPython's unbuffered readline) read it all.
fn payload(len: usize) -> Vec<u8> {
    (1..=len)
        .map(|i| if i % LINE == 0 { b'\n' } else { b'B' })
        .collect()
}

/// The table, the peer and the clock they share.
struct World {
    table: Table,
    peer: Rc<RefCell<Peer>>,
    now: Rc<Cell<Micros>>,
    /// Every handle returned so far, with whether this harness closed it.
    handles: Vec<(Socket, bool)>,
    /// Where calls receive.
    buf: Vec<u8>,
}

impl World {
    fn new() -> Self {
        let (a, b) = wire();
        let now = Rc::new(Cell::new(0));
        let peer = Rc::new(RefCell::new(Peer::new(b)));
        let clock = SimClock {
            now: now.clone(),
            peer: peer.clone(),
        };
        let table = Sockets::new(stack(a, 1, A_IP, TCP_POOL, UDP_POOL), clock);
        Self {
            table,
            peer,
            now,
            handles: Vec::new(),
            buf: vec![0; 4096],
        }
    }

    /// Lets `us` of virtual time pass, polling both sides whenever either has a timer due or
    /// frames are on the wire (a microsecond apart while they are).
    fn pass(&mut self, us: Micros) {
        let end = self.now.get() + us;
        loop {
            let now = self.now.get();
            let table = self.table.poll();
            let mut peer = self.peer.borrow_mut();
            peer.poll(now);
            if now >= end {
                break;
            }
            let next = if table.progressed || peer.wire_busy() {
                now + 1
            } else {
                [table.next_poll, peer.next]
                    .into_iter()
                    .flatten()
                    .min()
                    .unwrap_or(end)
            };
            self.now.set(next.clamp(now + 1, end));
        }
    }

    /// A new socket starts with a bounded timeout (the default blocks forever).
    fn adopt(&mut self, s: Socket) {
        self.table.set_timeout(s, Timeout::After(BLOCKING));
        self.handles.push((s, false));
    }

    fn call(&mut self, call: Call) {
        let picked = call.handle().and_then(|h| {
            self.handles
                .get(usize::from(h) % self.handles.len().max(1))
                .copied()
        });
        if call.handle().is_some() && picked.is_none() {
            return;
        }
        let (s, closed) = picked.map_or((None, false), |(s, c)| (Some(s), c));
        let s = || s.expect("calls with a handle have one");
        let data = |len: u16| payload(usize::from(len) % MAX_DATA);
        let result: Result<(), SocketError> = match call {
            Call::Socket(family, socktype, proto) => {
                let family = match family {
                    Family::Inet => AF_INET,
                    Family::Inet6 => AF_INET6,
                    Family::Other(f) => f,
                };
                let socktype = match socktype {
                    Type::Stream => SOCK_STREAM,
                    Type::Dgram => SOCK_DGRAM,
                    Type::Other(t) => t,
                };
                let proto = match proto {
                    Proto::Zero => 0,
                    Proto::Tcp => IPPROTO_TCP,
                    Proto::Udp => IPPROTO_UDP,
                    Proto::Other(p) => p,
                };
                let r = self.table.socket(family, socktype, proto);
                if let Err(SocketError::Os(Errno::EAFNOSUPPORT)) = r {
                    assert_ne!(family, AF_INET);
                }
                r.map(|sock| self.adopt(sock))
            }
            Call::Close { .. } => {
                self.table.close(s());
                for h in self.handles.iter_mut().filter(|(h, _)| *h == s()) {
                    h.1 = true;
                }
                Ok(())
            }
            Call::Bind { addr, .. } => self.table.bind(s(), addr.get()),
            Call::Listen { backlog, .. } => self.table.listen(s(), backlog.map(i64::from)),
            Call::Accept { .. } => self.table.accept(s()).map(|(conn, _)| self.adopt(conn)),
            Call::Connect { addr, .. } => self.table.connect(s(), addr.get()),
            Call::Send { len, .. } => self
                .table
                .send(s(), &data(len))
                .map(|n| assert!(n <= usize::from(len))),
            Call::SendAll { len, .. } => {
                let r = self.table.sendall(s(), &data(len));
                if r == Err(SocketError::NotImplemented) {
                    // Only UDP sockets say so; a UDP socket accepts a datagram.
                    let udp = self.table.sendto(s(), b"x", Addr::PeerEcho.get());
                    assert_ne!(udp, Err(SocketError::Os(Errno::ENOTCONN)), "sendall: {r:?}");
                    return;
                }
                r
            }
            Call::Recv { len, .. } => {
                let (n, flags) = recv_args(len, self.buf.len());
                self.table
                    .recv(s(), &mut self.buf[..n], flags)
                    .map(|got| assert!(got <= n))
            }
            Call::SendTo { len, addr, .. } => self
                .table
                .sendto(s(), &data(len), addr.get())
                .map(|n| assert!(n <= usize::from(len))),
            Call::RecvFrom { len, .. } => {
                let (n, flags) = recv_args(len, self.buf.len());
                self.table
                    .recvfrom(s(), &mut self.buf[..n], flags)
                    .map(|(got, _)| assert!(got <= n))
            }
            Call::Read { len, .. } => {
                let n = usize::from(len).min(self.buf.len());
                self.table
                    .read(s(), &mut self.buf[..n])
                    .map(|got| assert!(got.unwrap_or(0) <= n))
            }
            Call::Readline { max, .. } => {
                let mut count = 0;
                let r = self
                    .table
                    .readline(s(), max.map(usize::from), |_| count += 1);
                r.map(|got| {
                    assert_eq!(got.unwrap_or(0), count);
                    if let Some(m) = max {
                        assert!(count <= usize::from(m));
                    }
                })
            }
            Call::Write { len, .. } => self
                .table
                .write(s(), &data(len))
                .map(|n| assert!(n.unwrap_or(0) <= usize::from(len))),
            Call::SetSockOpt { name, value, .. } => {
                let name = match name {
                    OptName::ReuseAddr => SO_REUSEADDR,
                    OptName::Broadcast => SO_BROADCAST,
                    OptName::KeepAlive => SO_KEEPALIVE,
                    OptName::NoDelay => TCP_NODELAY,
                    OptName::AddMembership => IP_ADD_MEMBERSHIP,
                    OptName::Other(n) => n,
                };
                self.table
                    .setsockopt(s(), SOL_SOCKET, name, i64::from(value))
                    .map(|_| ())
            }
            Call::SetTimeout { timeout: t, .. } => {
                self.table.set_timeout(s(), timeout(t));
                Ok(())
            }
            Call::SetBlocking { flag, .. } => {
                let t = if flag {
                    Timeout::After(BLOCKING)
                } else {
                    Timeout::NonBlocking
                };
                self.table.set_timeout(s(), t);
                Ok(())
            }
            Call::Poll { flags, .. } => {
                let got = self
                    .table
                    .ioctl_poll(s(), PollFlags::from_bits_truncate(usize::from(flags)));
                if closed {
                    assert_eq!(got, PollFlags::NVAL, "poll on a closed socket");
                }
                Ok(())
            }
            Call::Wait { centis } => {
                self.pass(u64::from(centis) * 10_000);
                Ok(())
            }
            Call::PeerConnect { port } => {
                self.peer.borrow_mut().connect(port);
                Ok(())
            }
            Call::PeerClose => {
                self.peer.borrow_mut().close_all();
                Ok(())
            }
        };
        let Err(e) = result else {
            assert!(
                !(closed && call.checks_handle()),
                "{call:?} succeeded on a closed socket"
            );
            return;
        };
        match e {
            SocketError::Os(errno) => {
                assert!(
                    errno.name().is_some(),
                    "{call:?}: {errno:?} is not a socket errno"
                );
                if errno == Errno::EAFNOSUPPORT {
                    assert!(matches!(call, Call::Socket(..)), "{call:?}: EAFNOSUPPORT");
                }
                if closed && call.checks_handle() {
                    assert_eq!(errno, Errno::EBADF, "{call:?} on a closed socket");
                }
            }
            SocketError::Value(msg) => panic!("{call:?}: ValueError({msg})"),
            SocketError::NotImplemented => panic!("{call:?}: NotImplementedError"),
            // The fuzzed clock never interrupts.
            SocketError::Interrupted => panic!("{call:?}: interrupted"),
        }
    }

    /// Closes everything, lets background closes run out, and checks every slot is free.
    fn finish(mut self) {
        for (s, _) in std::mem::take(&mut self.handles) {
            self.table.close(s);
        }
        self.peer.borrow_mut().close_all();
        // Longer than the stack's linger limit for closing connections.
        self.pass(netstack::stack::LINGER_LIMIT + 5_000_000);
        let mut opened = Vec::new();
        for (socktype, pool) in [(SOCK_STREAM, TCP_POOL), (SOCK_DGRAM, UDP_POOL)] {
            for i in 0..pool {
                match self.table.socket(AF_INET, socktype, 0) {
                    Ok(s) => opened.push(s),
                    Err(e) => panic!("socket {i} of type {socktype} after closing all: {e:?}"),
                }
            }
        }
        assert_eq!(
            self.table.socket(AF_INET, SOCK_DGRAM, 0),
            Err(SocketError::Os(Errno::ENOMEM)),
            "the table holds {SLOTS} sockets"
        );
        for s in opened {
            self.table.close(s);
        }
    }
}

/// Runs the call sequence `data` decodes to.
pub fn run(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let mut world = World::new();
    for _ in 0..MAX_CALLS {
        let Ok(call) = Call::arbitrary(&mut u) else {
            break;
        };
        world.call(call);
        if u.is_empty() {
            break;
        }
    }
    world.finish();
}
