//! `socket` and `network` calls with arbitrary argument objects, through the real MicroPython
//! (upy-bindings feature `host`) into the bindings, upy-socket and a netstack over loopback.
//!
//! The input decodes to a script: up to [`MAX_OPS`] calls, each a method of a socket the script
//! holds (or of `socket`, `network.LAN`), with arguments drawn from a pool of objects that
//! includes wrong types, huge and negative numbers, NaN, malformed addresses, buffers, and
//! objects whose `__int__`/`__float__`/`__bool__` run code while the binding converts them:
//! close a socket and open another (which may take the closed one's handle), resize the
//! bytearray another argument is, or raise. Sockets also meet in well-formed pairs over
//! 127.0.0.1, so that calls reach connected states.
//!
//! Failures: a Rust panic or a crash (the target runs under AddressSanitizer); an exception
//! other than `OSError` with one of MicroPython's socket errnos (or `EINTR` from a wait the
//! clock cut short), `TypeError`, `ValueError`, `OverflowError`, `MemoryError`, the planted
//! exception of a raising argument, `NotImplementedError` from `sendall` (a UDP socket, as
//! modlwip) or lwIP's negative codes from `getaddrinfo` (as modlwip); a call that works, or
//! fails otherwise than `EBADF`, on a socket an argument closed while it converted; and a leak: once the script has closed every socket it made and the stack's
//! closing connections have run out, every pool entry must be free and every slot of the
//! socket table must open again.
//!
//! Time is virtual: a wait sleeps straight to the stack's next timer (loopback frames move only
//! when the stack polls, so no idle bound is needed), and every wait is cut short
//! ([`Clock::interrupted`], `OSError(EINTR)`) once [`HORIZON`] of virtual time has passed, so a
//! blocking call nobody answers ends. The interpreter starts once per process.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use netstack::api::Micros;
use netstack::loopback::NoNic;
use netstack::{HeapStorage, PoolUsage, Seed, Stack};
use upy_bindings::backend::{UpyLan, UpySockets};
use upy_bindings::host::{have_library, Backends, Interpreter};
use upy_socket::consts::{AF_INET, SOCK_DGRAM, SOCK_STREAM};
use upy_socket::{Clock, Errno, Sockets};

/// Calls per script.
const MAX_OPS: usize = 40;
/// Sockets the table holds (as many as the pools).
const SLOTS: usize = TCP_POOL + UDP_POOL;
/// Python socket objects open at once.
const HANDLES: usize = 12;
/// The stack's pools.
const TCP_POOL: usize = 4;
const UDP_POOL: usize = 3;
/// Virtual time after which every wait is interrupted.
const HORIZON: Micros = 120_000_000;

type Table = Sockets<Stack<'static, NoNic>, VirtualClock, SLOTS>;

/// Virtual time: sleeps jump to their deadline (never past [`HORIZON`]).
#[derive(Clone)]
struct VirtualClock(Arc<AtomicU64>);

impl Clock for VirtualClock {
    fn now(&self) -> Micros {
        self.0.load(Ordering::SeqCst)
    }

    fn sleep_until(&mut self, deadline: Micros) {
        self.0.fetch_max(deadline.min(HORIZON), Ordering::SeqCst);
    }

    fn max_idle(&self) -> Option<Micros> {
        // Loopback is the only link: frames move only when the stack polls.
        None
    }

    fn interrupted(&self) -> bool {
        self.now() >= HORIZON
    }
}

/// The errnos a call may raise: MicroPython's socket errnos, and `EINTR` (a wait cut short).
fn errnos() -> String {
    let all = [
        Errno::EBADF,
        Errno::EAGAIN,
        Errno::ENOMEM,
        Errno::EACCES,
        Errno::ENODEV,
        Errno::EPIPE,
        Errno::EINVAL,
        Errno::EOPNOTSUPP,
        Errno::EAFNOSUPPORT,
        Errno::EADDRINUSE,
        Errno::ECONNABORTED,
        Errno::ECONNRESET,
        Errno::EISCONN,
        Errno::ENOTCONN,
        Errno::ETIMEDOUT,
        Errno::ECONNREFUSED,
        Errno::EHOSTUNREACH,
        Errno::EALREADY,
        Errno::EINPROGRESS,
    ];
    let mut out = String::from("{4");
    for e in all {
        let _ = write!(out, ", {}", e.code());
    }
    out.push('}');
    out
}

/// What every script starts with: the argument pool, the callback objects and the call
/// wrapper that checks what a call raised.
const PRELUDE: &str = r#"
import gc, network, socket
class Planted(Exception):
    pass
class Bad(Exception):
    pass
ALL = []
S = []
DURING = []
B = bytearray(b'abc')
def new(*args):
    s = socket.socket(*args)
    ALL.append(s)
    S.append(s)
    s.settimeout(0.2)
    return s
def pick(k):
    return S[k % len(S)] if S else None
class Closer:
    def __init__(self, k, v):
        self.k, self.v = k, v
    def __int__(self):
        s = pick(self.k)
        if s is not None:
            s.close()
            DURING.append(s)
        try:
            new()
        except OSError:
            pass
        return self.v
    __index__ = __int__
    def __float__(self):
        return float(self.__int__())
    def __bool__(self):
        return bool(self.__int__())
class Grower:
    def __init__(self, v):
        self.v = v
    def __int__(self):
        B[:] = bytes(range(256)) * 8 if len(B) < 256 else b'z'
        return self.v
    __index__ = __int__
    def __float__(self):
        return float(self.__int__())
    def __bool__(self):
        return bool(self.__int__())
class Raiser:
    def __int__(self):
        raise Planted()
    __index__ = __int__
    __float__ = __int__
    __bool__ = __int__
V = [0, 1, -1, 7, 2**31, 2**63, -2**63 - 1, 2**100, None, True, 1.5, float('nan'),
     float('inf'), -0.5, '', 'x', '127.0.0.1', '0.0.0.0', '256.1.1.1', b'', b'abc', B,
     memoryview(B), bytearray(8), ('127.0.0.1', 6001), ['127.0.0.1', 6002], ('127.0.0.1',),
     ('127.0.0.1', 1, 2), ('localhost', 80), ('127.0.0.1', -1), ('127.0.0.1', 70000),
     ('127.0.0.1', Closer(0, 6003)), ('127.0.0.1', Grower(6004)), ('127.0.0.1', Raiser()),
     ('', 6005), ('10.0.0.9', 80), Closer(0, 1), Closer(1, 64), Grower(3), Raiser(), (), [],
     {}, object(), 1, 2, 4, 32, 64, 1024, socket.SOL_SOCKET, socket.SOCK_DGRAM, b'\x7f\0\0\1' * 2]
def v(i):
    return V[i % len(V)]
def op(f, target=None, sendall=False, lookup=False):
    del DURING[:]
    try:
        f()
    except OSError as e:
        if e.errno not in ERRNOS and not (lookup and e.errno in DNS_ERRORS):
            raise Bad('OSError %r' % (e.args,))
        if target in DURING and e.errno != 9:
            raise Bad('OSError %r from a socket closed during the call' % (e.args,))
    except NotImplementedError:
        if not sendall:
            raise
    except (TypeError, ValueError, OverflowError, MemoryError, Planted):
        pass
    else:
        if target in DURING:
            raise Bad('the call worked on a socket closed during it')
def pair(port):
    srv = new()
    srv.bind(('127.0.0.1', port))
    srv.listen(2)
    c = new()
    c.connect(('127.0.0.1', port))
    a, _ = srv.accept()
    ALL.append(a)
    S.append(a)
    a.settimeout(0.2)
    c.send(b'ping\n')
def accept(s):
    a, _ = s.accept()
    ALL.append(a)
    S.append(a)
def udp(port):
    u = new(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(('127.0.0.1', port))
    u.sendto(b'hello', ('127.0.0.1', port))
"#;

/// What every script ends with: close everything it made.
const EPILOGUE: &str = r#"
for s in ALL:
    s.close()
"#;

/// The next byte of the input (0 once it is used up).
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn next(&mut self) -> u8 {
        let Some((&b, rest)) = self.0.split_first() else {
            return 0;
        };
        self.0 = rest;
        b
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The script `data` decodes to.
pub fn script(data: &[u8]) -> String {
    let mut input = Bytes(data);
    let mut out = String::from(PRELUDE);
    let _ = writeln!(out, "ERRNOS = {}", errnos());
    let _ = writeln!(
        out,
        "DNS_ERRORS = {{{}, {}, {}}}",
        Errno::DnsFailed.code(),
        Errno::DnsNoMemory.code(),
        Errno::DnsBadName.code()
    );
    for _ in 0..MAX_OPS {
        if input.is_empty() {
            break;
        }
        let code = input.next();
        let (k, a, b, c) = (input.next(), input.next(), input.next(), input.next());
        let s = format!("pick({k})");
        let call = match code % 28 {
            0 => "new()".to_owned(),
            1 => format!("new(v({a}), v({b}))"),
            2 => format!("new(v({a}), v({b}), v({c}))"),
            3 => format!("{s}.close()"),
            4 => format!("{s}.bind(v({a}))"),
            5 => format!("{s}.listen(v({a}))"),
            6 => format!("{s}.listen()"),
            7 => format!("accept({s})"),
            8 => format!("{s}.connect(v({a}))"),
            9 => format!("{s}.send(v({a}))"),
            10 => format!("{s}.sendall(v({a}))"),
            11 => format!("{s}.recv(v({a}))"),
            12 => format!("{s}.recv(v({a}), v({b}))"),
            13 => format!("{s}.sendto(v({a}), v({b}))"),
            14 => format!("{s}.recvfrom(v({a}), v({b}))"),
            15 => format!("{s}.setsockopt(v({a}), v({b}), v({c}))"),
            16 => format!("{s}.settimeout(v({a}))"),
            17 => format!("{s}.setblocking(v({a}))"),
            18 => format!("{s}.makefile(v({a}), v({b}))"),
            19 => format!("{s}.read(v({a}))"),
            20 => format!("{s}.readinto(v({a}))"),
            21 => format!("{s}.readline(v({a}))"),
            22 => format!("{s}.write(v({a}))"),
            23 => format!("socket.getaddrinfo(v({a}), v({b}))"),
            24 => match a % 5 {
                0 => format!("network.LAN().active(v({b}))"),
                1 => "network.LAN().isconnected()".to_owned(),
                2 => format!("network.LAN().ifconfig(v({b}))"),
                3 => format!("network.LAN().config(v({b}))"),
                _ => format!("network.LAN().config(mac=v({b}))"),
            },
            25 => format!("socket.socket.send(v({a}), v({b}))"),
            26 => format!("pair({})", 7000 + u16::from(a % 8)),
            _ => match a % 3 {
                0 => format!("udp({})", 7100 + u16::from(b % 4)),
                1 => "gc.collect()".to_owned(),
                _ => format!("{s}.settimeout(None)"),
            },
        };
        let op = code % 28;
        // `pick` is None without sockets: the call is then skipped. A socket closed while the
        // call converts its arguments must be EBADF, except for the calls that take any
        // socket, closed or not.
        let (guard, target) = if call.starts_with("pick(") || call.starts_with("accept(") {
            let any = matches!(op, 3 | 16 | 17 | 18) || code % 28 == 27;
            let target = if any { "None".to_owned() } else { s.clone() };
            (format!("if {s} is not None: "), target)
        } else {
            (String::new(), "None".to_owned())
        };
        let _ = writeln!(
            out,
            "{guard}op(lambda: {call}, {target}{})",
            match op {
                10 => ", sendall=True",
                23 => ", lookup=True",
                _ => "",
            }
        );
    }
    out.push_str(EPILOGUE);
    out
}

/// The interpreter, started once per process; `None` without the MicroPython library.
fn interpreter() -> Option<&'static Interpreter> {
    if !have_library("upy_calls") {
        return None;
    }
    match Interpreter::shared(&upy_bindings::MODULES) {
        Ok(interpreter) => Some(interpreter),
        Err(e) => panic!("the interpreter did not start: {e}"),
    }
}

/// Polls until `until`, jumping from one of the stack's timers to the next.
fn pass(table: &Mutex<Table>, clock: &VirtualClock, until: Micros) {
    let mut table = table.lock().unwrap_or_else(PoisonError::into_inner);
    loop {
        let now = clock.now();
        let outcome = table.poll();
        if now >= until {
            break;
        }
        let next = if outcome.progressed {
            now + 1
        } else {
            outcome.next_poll.unwrap_or(until)
        };
        clock.0.store(next.clamp(now + 1, until), Ordering::SeqCst);
    }
}

/// Runs the script `data` decodes to and checks nothing leaked.
pub fn run(data: &[u8]) {
    let Some(interpreter) = interpreter() else {
        return;
    };
    let clock = VirtualClock(Arc::new(AtomicU64::new(0)));
    let storage = HeapStorage {
        tcp_sockets: TCP_POOL,
        tcp_buffer: 2048,
        udp_sockets: UDP_POOL,
        udp_buffer: 2048,
    };
    let stack = Stack::without_nic(Seed::reproducible(0x0c411), storage.parts(), 0);
    let table = Arc::new(Mutex::new(Sockets::new(stack, clock.clone())));
    let backends = Backends {
        sockets: Some(Box::new(UpySockets::<_, HANDLES>::new(Arc::clone(&table)))),
        lan: Some(Box::new(UpyLan::new(Arc::clone(&table)))),
        board: None,
    };
    let source = script(data);
    let (result, backends) = interpreter.run_with(backends, "upy_calls.py", &source, &[]);
    drop(backends);
    if let Err(e) = result {
        panic!("{e}\nscript:\n{source}");
    }
    // Past the horizon and the stack's linger limit for closing connections.
    let end = HORIZON + netstack::stack::LINGER_LIMIT + 5_000_000;
    pass(
        &table,
        &clock,
        end.max(clock.now() + netstack::stack::LINGER_LIMIT),
    );
    let mut table = table.lock().unwrap_or_else(PoisonError::into_inner);
    let usage = table.stack().pool_usage();
    let free = PoolUsage {
        ids_total: usage.ids_total,
        tcp_total: usage.tcp_total,
        tcp_free: usage.tcp_total,
        udp_total: usage.udp_total,
        ..PoolUsage::default()
    };
    assert_eq!(
        usage, free,
        "not all free after the script closed all:\n{source}"
    );
    // And the socket table: every slot opens again.
    let mut opened = Vec::new();
    for socktype in [SOCK_STREAM, SOCK_DGRAM].into_iter().cycle().take(SLOTS) {
        match table.socket(AF_INET, socktype, 0) {
            Ok(s) => opened.push(s),
            Err(e) => panic!(
                "socket {} after the script closed all: {e:?}\n{source}",
                opened.len()
            ),
        }
    }
    for s in opened {
        table.close(s);
    }
}
