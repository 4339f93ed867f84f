//! The soak's board side: the workloads a program on the board runs, as non-blocking sockets of
//! upy-socket's table (what MicroPython's `socket` objects hold), stepped in turn from one
//! thread while the table's poller keeps the stack running.
//!
//! - bulk out: board→Linux transfers (header, data, Linux's acknowledgement);
//! - bulk in: Linux→board transfers (header, data checked byte by byte, the acknowledgement);
//!   a transfer cut by an unplug restarts from its start as a new attempt;
//! - churn out: short connections to Linux's echo server, one after another;
//! - churn in: an echo listener for Linux's short connections;
//! - datagrams: the board's line-rate flood to Linux, and a receiver of Linux's.
//!
//! A socket call that fails is acceptable only if the USB NIC was unplugged since the
//! connection started ([`Shared::explained`]), and an established connection must then fail
//! with `ECONNABORTED` (the board's address policy); anything else is recorded as a failure.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k230_hal::sim::board::SimBoard;
use upy_bindings::host::net::Table;
use upy_socket::consts::{AF_INET, SOCK_DGRAM, SOCK_STREAM};
use upy_socket::{Errno, RecvFlags, Socket, SocketError, Timeout};

use crate::soak::{Pacer, Shared, FLOOD_TO_BOARD, FLOOD_TO_LINUX};
use crate::soak_protocol::{
    any, check_datagram, datagram, peer, Header, Pattern, Seen, BOARD_ECHO_PORT, BOARD_UDP_PORT,
    CHURN_MESSAGE, DATAGRAM, ECHO_PORT, PEER_UDP_PORT, SINK_PORT, SOURCE_PORT,
};

/// The board's socket table.
type T = Table<SimBoard>;

/// Longest a connection may go without progress before the board calls it stalled.
const STALL_LIMIT: Duration = Duration::from_secs(60);
/// Pause after a connection failed before the next attempt.
const RETRY_PAUSE: Duration = Duration::from_millis(100);
/// Bytes moved per socket call.
const CHUNK: usize = 16 * 1024;
/// Socket calls per workload per step (so that one workload cannot starve the others).
const CALLS_PER_STEP: usize = 8;
/// Connections the echo listener serves at once.
const ECHO_CONNECTIONS: usize = 3;
/// Bulk transfer lengths: from 64 KiB to this.
const MAX_TRANSFER: u64 = 4 << 20;

/// One bulk transfer attempt as the board saw it.
#[derive(Clone, Copy, Debug)]
pub struct Attempt {
    /// Its header.
    pub header: Header,
    /// Data bytes: queued into the stack (out) or received and checked (in).
    pub bytes: u64,
    /// The other side acknowledged the whole transfer (out), or the board received all of it
    /// and the end of stream after its acknowledgement (in).
    pub complete: bool,
}

/// Everything the board counted.
#[derive(Debug, Default)]
pub struct Tally {
    /// Board→Linux attempts, in order.
    pub out: Vec<Attempt>,
    /// Linux→board attempts, in order.
    pub inbound: Vec<Attempt>,
    /// Short connections to Linux that completed byte-exact.
    pub churn_out_ok: u64,
    /// Short connections to Linux cut by an unplug.
    pub churn_out_cut: u64,
    /// Linux's short connections echoed to their end.
    pub churn_in_ok: u64,
    /// Linux's short connections cut by an unplug.
    pub churn_in_cut: u64,
    /// Flood datagrams the stack took.
    pub flood_sent: u64,
    /// Flood datagrams the stack refused, by errno (no buffer room, no address).
    pub flood_refused: BTreeMap<&'static str, u64>,
    /// Linux's flood datagrams received byte-exact.
    pub datagrams_received: u64,
    /// Connection failures an unplug explained, by errno.
    pub cuts: BTreeMap<&'static str, u64>,
}

/// What one non-blocking call did.
enum Op {
    Moved(usize),
    Wait,
    Eof,
    Failed(Errno),
}

fn op(result: Result<usize, SocketError>) -> Op {
    match result {
        Ok(0) => Op::Eof,
        Ok(n) => Op::Moved(n),
        Err(SocketError::Os(Errno::EAGAIN)) => Op::Wait,
        Err(SocketError::Os(e)) => Op::Failed(e),
        Err(_) => Op::Failed(Errno::EINVAL),
    }
}

fn send(t: &mut T, s: Socket, data: &[u8]) -> Op {
    match op(t.send(s, data)) {
        Op::Eof => Op::Wait,
        other => other,
    }
}

fn recv(t: &mut T, s: Socket, buf: &mut [u8]) -> Op {
    op(t.recv(s, buf, RecvFlags::NONE))
}

/// A non-blocking TCP connection to `to` being opened.
fn connect(t: &mut T, to: std::net::SocketAddrV4) -> Result<Socket, Errno> {
    let s = t.socket(AF_INET, SOCK_STREAM, 0).map_err(errno)?;
    t.set_timeout(s, Timeout::NonBlocking);
    match t.connect(s, to) {
        Ok(()) | Err(SocketError::Os(Errno::EINPROGRESS)) => Ok(s),
        Err(e) => {
            t.close(s);
            Err(errno(e))
        }
    }
}

fn errno(e: SocketError) -> Errno {
    match e {
        SocketError::Os(e) => e,
        _ => Errno::EINVAL,
    }
}

fn name(e: Errno) -> &'static str {
    match e {
        Errno::ECONNABORTED => "ECONNABORTED",
        Errno::ECONNRESET => "ECONNRESET",
        Errno::EHOSTUNREACH => "EHOSTUNREACH",
        Errno::ETIMEDOUT => "ETIMEDOUT",
        Errno::ECONNREFUSED => "ECONNREFUSED",
        Errno::ENOMEM => "ENOMEM",
        Errno::EBADF => "EBADF",
        Errno::ENOTCONN => "ENOTCONN",
        Errno::EPIPE => "EPIPE",
        Errno::EINVAL => "EINVAL",
        _ => "other",
    }
}

/// A connection failed: counted as a cut if an unplug explains it (an established connection
/// must fail with `ECONNABORTED`), else a failure.
fn cut(shared: &Shared, tally: &mut Tally, since: u64, established: bool, what: &str, e: Errno) {
    let policy = !established || e == Errno::ECONNABORTED;
    if shared.explained(since) && policy {
        *tally.cuts.entry(name(e)).or_default() += 1;
    } else {
        shared.fail(format!(
            "board: {what}: {e:?}{}",
            if policy {
                " with no unplug to explain it"
            } else {
                " (an unplug aborts with ECONNABORTED)"
            }
        ));
    }
}

/// Where a bulk transfer attempt is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Header,
    Data,
    Ack,
    End,
}

/// A bulk transfer attempt in progress.
struct Live {
    socket: Socket,
    record: Attempt,
    since: u64,
    phase: Phase,
    /// Bytes of the header or acknowledgement moved.
    small: usize,
    ack: [u8; 8],
    established: bool,
    progress: Instant,
}

/// Bulk transfers one way, one attempt at a time; a cut one restarts.
struct Bulk {
    /// Board→Linux (else Linux→board).
    out: bool,
    /// The transfer being done: (seed, length), kept across its attempts.
    current: Option<(u64, u64)>,
    live: Option<Live>,
    not_before: Instant,
    buf: Vec<u8>,
}

impl Bulk {
    fn new(out: bool) -> Self {
        Self {
            out,
            current: None,
            live: None,
            not_before: Instant::now(),
            buf: vec![0; CHUNK],
        }
    }

    fn what(&self) -> &'static str {
        if self.out {
            "board→Linux transfer"
        } else {
            "Linux→board transfer"
        }
    }

    fn step(&mut self, t: &mut T, shared: &Shared, tally: &mut Tally) -> bool {
        let Some(mut live) = self.live.take() else {
            return self.start(t, shared, tally);
        };
        let mut progressed = false;
        let mut outcome = None;
        for _ in 0..CALLS_PER_STEP {
            match self.call(t, &mut live) {
                Ok(true) => progressed = true,
                Ok(false) => break,
                Err(end) => {
                    outcome = Some(end);
                    break;
                }
            }
        }
        let now = Instant::now();
        if progressed {
            live.progress = now;
        } else if outcome.is_none() && now - live.progress > STALL_LIMIT {
            outcome = Some(Err(Errno::ETIMEDOUT));
        }
        match outcome {
            None => self.live = Some(live),
            Some(end) => {
                t.close(live.socket);
                match end {
                    Ok(()) => {
                        live.record.complete = true;
                        self.current = None;
                    }
                    Err(e) => {
                        let what = format!("{} {}", self.what(), live.record.header.id);
                        if e == Errno::EINVAL {
                            shared.fail(format!(
                                "board: {what}: wrong byte after {} bytes, or more bytes than sent",
                                live.record.bytes
                            ));
                        } else {
                            cut(shared, tally, live.since, live.established, &what, e);
                        }
                        self.not_before = now + RETRY_PAUSE;
                    }
                }
                let list = if self.out {
                    &mut tally.out
                } else {
                    &mut tally.inbound
                };
                list.push(live.record);
            }
        }
        progressed || outcome.is_some()
    }

    /// Opens the next attempt (the current transfer again, or a new one).
    fn start(&mut self, t: &mut T, shared: &Shared, tally: &mut Tally) -> bool {
        if shared.stopping() || Instant::now() < self.not_before {
            return false;
        }
        let (seed, len) = *self
            .current
            .get_or_insert_with(|| (shared.draw(), 64 * 1024 + shared.draw() % MAX_TRANSFER));
        let since = shared.epoch();
        let port = if self.out { SINK_PORT } else { SOURCE_PORT };
        match connect(t, peer(port)) {
            Ok(socket) => {
                self.live = Some(Live {
                    socket,
                    record: Attempt {
                        header: Header {
                            id: shared.next_id(),
                            seed,
                            len,
                        },
                        bytes: 0,
                        complete: false,
                    },
                    since,
                    phase: Phase::Header,
                    small: 0,
                    ack: [0; 8],
                    established: false,
                    progress: Instant::now(),
                });
            }
            Err(e) => {
                cut(
                    shared,
                    tally,
                    since,
                    false,
                    &format!("{} connect", self.what()),
                    e,
                );
                self.not_before = Instant::now() + RETRY_PAUSE;
            }
        }
        true
    }

    /// One socket call of the attempt: `Ok(true)` if it moved bytes, `Ok(false)` if it must
    /// wait, `Err` when the attempt is over (`Ok(())` complete).
    fn call(&mut self, t: &mut T, live: &mut Live) -> Result<bool, Result<(), Errno>> {
        let h = live.record.header;
        let pattern = Pattern(h.seed);
        let result = match (live.phase, self.out) {
            (Phase::Header, _) => send(t, live.socket, &h.encode()[live.small..]),
            (Phase::Data, true) => {
                let n = CHUNK.min((h.len - live.record.bytes) as usize);
                pattern.fill(live.record.bytes, &mut self.buf[..n]);
                send(t, live.socket, &self.buf[..n])
            }
            (Phase::Data, false) => {
                let n = CHUNK.min((h.len - live.record.bytes) as usize);
                recv(t, live.socket, &mut self.buf[..n])
            }
            (Phase::Ack, true) => recv(t, live.socket, &mut live.ack[live.small..]),
            (Phase::Ack, false) => send(t, live.socket, &h.len.to_le_bytes()[live.small..]),
            (Phase::End, _) => recv(t, live.socket, &mut self.buf[..1]),
        };
        let n = match result {
            Op::Moved(n) => n,
            Op::Wait => return Ok(false),
            Op::Eof if live.phase == Phase::End => return Err(Ok(())),
            Op::Eof => return Err(Err(Errno::ENOTCONN)),
            Op::Failed(e) => return Err(Err(e)),
        };
        live.established = true;
        match live.phase {
            Phase::Header | Phase::Ack => {
                live.small += n;
                let whole = if live.phase == Phase::Header {
                    Header::LEN
                } else {
                    8
                };
                if live.small == whole {
                    live.small = 0;
                    live.phase = match live.phase {
                        Phase::Header if h.len == 0 => Phase::Ack,
                        Phase::Header => Phase::Data,
                        _ if self.out => {
                            if u64::from_le_bytes(live.ack) != h.len {
                                return Err(Err(Errno::EINVAL));
                            }
                            return Err(Ok(()));
                        }
                        _ => Phase::End,
                    };
                }
            }
            Phase::Data => {
                if !self.out {
                    if let Some(at) = pattern.mismatch(live.record.bytes, &self.buf[..n]) {
                        live.record.bytes += at as u64;
                        return Err(Err(Errno::EINVAL));
                    }
                }
                live.record.bytes += n as u64;
                if live.record.bytes == h.len {
                    live.phase = Phase::Ack;
                }
            }
            // Bytes after the acknowledgement: more than the transfer's length.
            Phase::End => return Err(Err(Errno::EINVAL)),
        }
        Ok(true)
    }
}

/// Short connections to Linux's echo server, one after another.
struct ChurnOut {
    live: Option<(Socket, u64, u64, usize, usize, bool)>,
    not_before: Instant,
}

impl ChurnOut {
    fn step(&mut self, t: &mut T, shared: &Shared, tally: &mut Tally) -> bool {
        let Some((s, id, since, mut sent, mut got, mut established)) = self.live.take() else {
            if shared.stopping() || Instant::now() < self.not_before {
                return false;
            }
            let since = shared.epoch();
            match connect(t, peer(ECHO_PORT)) {
                Ok(s) => self.live = Some((s, shared.next_id(), since, 0, 0, false)),
                Err(e) => {
                    cut(shared, tally, since, false, "connect to Linux's echo", e);
                    self.not_before = Instant::now() + RETRY_PAUSE;
                }
            }
            return true;
        };
        let pattern = Pattern(id);
        let mut message = [0u8; CHURN_MESSAGE];
        pattern.fill(0, &mut message);
        let mut back = [0u8; CHURN_MESSAGE];
        let result = if sent < CHURN_MESSAGE {
            send(t, s, &message[sent..])
        } else {
            recv(t, s, &mut back[..CHURN_MESSAGE - got])
        };
        let end = match result {
            Op::Wait => {
                self.live = Some((s, id, since, sent, got, established));
                return false;
            }
            Op::Moved(n) if sent < CHURN_MESSAGE => {
                sent += n;
                established = true;
                None
            }
            Op::Moved(n) => match pattern.mismatch(got as u64, &back[..n]) {
                Some(_) => Some(Err(Errno::EINVAL)),
                None => {
                    got += n;
                    (got == CHURN_MESSAGE).then_some(Ok(()))
                }
            },
            Op::Eof => Some(Err(Errno::ENOTCONN)),
            Op::Failed(e) => Some(Err(e)),
        };
        match end {
            None => self.live = Some((s, id, since, sent, got, established)),
            Some(end) => {
                t.close(s);
                match end {
                    Ok(()) => tally.churn_out_ok += 1,
                    Err(Errno::EINVAL) => shared.fail(format!("board: echo {id}: wrong byte")),
                    Err(e) => {
                        cut(
                            shared,
                            tally,
                            since,
                            established,
                            "connection to Linux's echo",
                            e,
                        );
                        tally.churn_out_cut += 1;
                        self.not_before = Instant::now() + RETRY_PAUSE;
                    }
                }
            }
        }
        true
    }
}

/// An accepted connection being echoed: its socket, epoch, bytes waiting to go back.
struct Echo {
    socket: Socket,
    since: u64,
    pending: Vec<u8>,
    echoed: usize,
}

/// The echo listener and the connections it accepted.
struct ChurnIn {
    /// The listener and the epoch it was opened in.
    listener: Option<(Socket, u64)>,
    connections: Vec<Echo>,
}

impl ChurnIn {
    fn step(&mut self, t: &mut T, shared: &Shared, tally: &mut Tally) -> bool {
        let mut progressed = false;
        let (listener, opened) = match self.listener {
            Some(l) => l,
            None => match listen(t) {
                Ok(l) => *self.listener.insert((l, shared.epoch())),
                Err(e) => {
                    shared.fail(format!("board: echo listener: {e:?}"));
                    return false;
                }
            },
        };
        while self.connections.len() < ECHO_CONNECTIONS {
            match t.accept(listener) {
                Ok((socket, _)) => {
                    self.connections.push(Echo {
                        socket,
                        since: shared.epoch(),
                        pending: Vec::new(),
                        echoed: 0,
                    });
                    progressed = true;
                }
                Err(SocketError::Os(Errno::EAGAIN)) => break,
                Err(e) => {
                    // The listener failed (e.g. with the address on an unplug): a new one.
                    cut(shared, tally, opened, false, "echo listener", errno(e));
                    t.close(listener);
                    self.listener = None;
                    return true;
                }
            }
        }
        let mut buf = [0u8; 2 * CHURN_MESSAGE];
        self.connections.retain_mut(|c| {
            let result = if c.pending.is_empty() {
                recv(t, c.socket, &mut buf)
            } else {
                send(t, c.socket, &c.pending)
            };
            let end = match result {
                Op::Wait => return true,
                Op::Moved(n) if c.pending.is_empty() => {
                    c.pending.extend_from_slice(&buf[..n]);
                    None
                }
                Op::Moved(n) => {
                    c.pending.drain(..n);
                    c.echoed += n;
                    None
                }
                Op::Eof => Some(Ok(())),
                Op::Failed(e) => Some(Err(e)),
            };
            progressed = true;
            let Some(end) = end else { return true };
            t.close(c.socket);
            match end {
                Ok(()) if c.echoed == CHURN_MESSAGE => tally.churn_in_ok += 1,
                Ok(()) => shared.fail(format!(
                    "board: a connection from Linux ended after {} echoed bytes",
                    c.echoed
                )),
                Err(e) => {
                    cut(shared, tally, c.since, true, "connection from Linux", e);
                    tally.churn_in_cut += 1;
                }
            }
            false
        });
        progressed
    }
}

fn listen(t: &mut T) -> Result<Socket, Errno> {
    let s = t.socket(AF_INET, SOCK_STREAM, 0).map_err(errno)?;
    t.set_timeout(s, Timeout::NonBlocking);
    let bound = t
        .bind(s, any(BOARD_ECHO_PORT))
        .and_then(|()| t.listen(s, Some(ECHO_CONNECTIONS as i64)));
    match bound {
        Ok(()) => Ok(s),
        Err(e) => {
            t.close(s);
            Err(errno(e))
        }
    }
}

/// The board's flood to Linux and its receiver of Linux's flood.
struct Datagrams {
    socket: Option<Socket>,
    pacer: Pacer,
    seen: Seen,
    buf: [u8; DATAGRAM + 1],
}

impl Datagrams {
    fn step(&mut self, t: &mut T, shared: &Shared, tally: &mut Tally) -> bool {
        let s = match self.socket {
            Some(s) => s,
            None => {
                let opened = t.socket(AF_INET, SOCK_DGRAM, 0).and_then(|s| {
                    t.set_timeout(s, Timeout::NonBlocking);
                    t.bind(s, any(BOARD_UDP_PORT)).map(|()| s)
                });
                match opened {
                    Ok(s) => *self.socket.insert(s),
                    Err(e) => {
                        shared.fail(format!("board: UDP socket: {e:?}"));
                        return false;
                    }
                }
            }
        };
        let mut progressed = false;
        for _ in 0..4 * CALLS_PER_STEP {
            match t.recv(s, &mut self.buf, RecvFlags::NONE) {
                Ok(n) => {
                    progressed = true;
                    match check_datagram(Pattern(FLOOD_TO_BOARD), &self.buf[..n]) {
                        Some(seq) if self.seen.insert(seq) => tally.datagrams_received += 1,
                        Some(seq) => shared.fail(format!("board: datagram {seq} arrived twice")),
                        None => shared.fail(format!("board: a datagram of {n} bytes is damaged")),
                    }
                }
                Err(SocketError::Os(Errno::EAGAIN)) => break,
                Err(e) => {
                    shared.fail(format!("board: UDP receive: {e:?}"));
                    break;
                }
            }
        }
        if shared.stopping() {
            return progressed;
        }
        let mut out = [0u8; DATAGRAM];
        for _ in 0..self.pacer.due().min(CALLS_PER_STEP as u64) {
            datagram(Pattern(FLOOD_TO_LINUX), tally.flood_sent, &mut out);
            match t.sendto(s, &out, peer(PEER_UDP_PORT)) {
                Ok(_) => {
                    tally.flood_sent += 1;
                    self.pacer.sent(1);
                    progressed = true;
                }
                Err(e) => {
                    let e = errno(e);
                    if e != Errno::EAGAIN && !shared.explained(shared.epoch()) {
                        shared.fail(format!("board: UDP send: {e:?}"));
                    }
                    *tally.flood_refused.entry(name(e)).or_default() += 1;
                    self.pacer.sent(1);
                    break;
                }
            }
        }
        progressed
    }
}

/// Every workload of the board.
pub struct Board {
    out: Bulk,
    inbound: Bulk,
    churn_out: ChurnOut,
    churn_in: ChurnIn,
    datagrams: Datagrams,
    /// What they counted.
    pub tally: Tally,
}

impl Board {
    /// Nothing started yet.
    pub fn new() -> Self {
        Self {
            out: Bulk::new(true),
            inbound: Bulk::new(false),
            churn_out: ChurnOut {
                live: None,
                not_before: Instant::now(),
            },
            churn_in: ChurnIn {
                listener: None,
                connections: Vec::new(),
            },
            datagrams: Datagrams {
                socket: None,
                pacer: Pacer::new(),
                seen: Seen::default(),
                buf: [0; DATAGRAM + 1],
            },
            tally: Tally::default(),
        }
    }

    /// One step of each workload; whether any made progress.
    pub fn step(&mut self, t: &mut T, shared: &Shared) -> bool {
        let tally = &mut self.tally;
        let a = self.out.step(t, shared, tally);
        let b = self.inbound.step(t, shared, tally);
        let c = self.churn_out.step(t, shared, tally);
        let d = self.churn_in.step(t, shared, tally);
        let e = self.datagrams.step(t, shared, tally);
        a || b || c || d || e
    }

    /// Whether no transfer or connection is under way (the listener and the datagram socket
    /// stay open).
    pub fn idle(&self) -> bool {
        self.out.live.is_none()
            && self.inbound.live.is_none()
            && self.churn_out.live.is_none()
            && self.churn_in.connections.is_empty()
    }
}
