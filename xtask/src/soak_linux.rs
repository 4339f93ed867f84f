//! The soak's Linux side: threads in the rig's namespace (kernel TCP and UDP sockets) serving
//! and loading the board, each checking every byte it receives against the pattern it expects.
//!
//! - sink: takes board→Linux bulk transfers, acknowledges each whole one with its length;
//! - source: sends Linux→board bulk transfers the board asks for, waits for the board's
//!   acknowledgement;
//! - echo: echoes the board's short connections;
//! - churn: opens short connections to the board's echo listener, one after another;
//! - flood: sends datagrams to the board at line rate during the flood's bursts;
//! - datagram sink: receives the board's flood.
//!
//! A connection that fails is acceptable only if the board's USB NIC was unplugged since it
//! started ([`Shared::explained`]); anything else is recorded as a failure.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use k230_testkit::netns::Netns;

use crate::soak::{Pacer, Shared};
use crate::soak_protocol::{
    board, check_datagram, datagram, peer, Header, Pattern, Seen, BOARD_ECHO_PORT, BOARD_UDP_PORT,
    CHURN_MESSAGE, DATAGRAM, ECHO_PORT, PEER_UDP_PORT, SINK_PORT, SOURCE_PORT,
};

/// How long one blocking read or write waits before the thread looks at the run's flags.
const TICK: Duration = Duration::from_millis(200);
/// Longest a connection may go without progress before Linux calls it stalled.
const STALL_LIMIT: Duration = Duration::from_secs(60);
/// Keepalive: idle seconds, interval, probes (a connection the board forgot ends in ~5 s).
const KEEPALIVE: (i32, i32, i32) = (2, 1, 3);
/// Milliseconds unacknowledged data may wait before Linux gives up on the connection.
const USER_TIMEOUT_MS: u32 = 10_000;
/// Longest a churn connection attempt waits for the handshake.
const CONNECT_LIMIT: Duration = Duration::from_secs(10);

/// What Linux saw of one board→Linux transfer attempt.
#[derive(Clone, Copy, Debug, Default)]
pub struct Received {
    /// Data bytes received (all matched the pattern).
    pub bytes: u64,
    /// All of it arrived and was acknowledged.
    pub complete: bool,
}

/// What Linux saw of one Linux→board transfer attempt.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sent {
    /// Data bytes the kernel took.
    pub bytes: u64,
    /// The board acknowledged all of it.
    pub acked: bool,
}

/// Everything the Linux side counted.
#[derive(Debug, Default)]
pub struct Tally {
    /// Board→Linux attempts by id.
    pub sink: HashMap<u64, Received>,
    /// Linux→board attempts by id.
    pub source: HashMap<u64, Sent>,
    /// Bulk connections cut before their header arrived.
    pub headerless: u64,
    /// The board's short connections echoed to their end.
    pub echoed: u64,
    /// Linux's short connections to the board that completed byte-exact.
    pub churn_ok: u64,
    /// Linux's short connections cut by an unplug.
    pub churn_cut: u64,
    /// Flood datagrams the kernel accepted for the board.
    pub flood_sent: u64,
    /// Flood datagrams sendto refused (the kernel's queue was full).
    pub flood_refused: u64,
    /// The board's flood datagrams received byte-exact.
    pub datagrams_received: u64,
}

/// The Linux side's threads.
pub struct Linux {
    threads: Vec<JoinHandle<()>>,
    /// What they counted.
    pub tally: Arc<Mutex<Tally>>,
}

impl Linux {
    /// Starts every peer in `ns`.
    pub fn start(ns: &Netns, shared: &Arc<Shared>) -> Result<Self> {
        let tally = Arc::new(Mutex::new(Tally::default()));
        let mut threads = Vec::new();
        for (port, handler) in [
            (SINK_PORT, sink as Handler),
            (SOURCE_PORT, source as Handler),
            (ECHO_PORT, echo as Handler),
        ] {
            let (shared, tally) = (Arc::clone(shared), Arc::clone(&tally));
            threads.push(ns.serve(peer(port), move |listener| {
                serve(&listener, &shared, &tally, handler)
            })?);
        }
        let (s, t) = (Arc::clone(shared), Arc::clone(&tally));
        threads.push(ns.spawn(move || churn(&s, &t))?);
        let udp = |port| -> Result<UdpSocket> {
            ns.spawn(move || UdpSocket::bind(peer(port)))?
                .join()
                .map_err(|_| anyhow!("binding UDP in the namespace panicked"))?
                .map_err(Into::into)
        };
        let (flood_socket, sink_socket) = (udp(0)?, udp(PEER_UDP_PORT)?);
        let (s, t) = (Arc::clone(shared), Arc::clone(&tally));
        threads.push(thread::spawn(move || flood(&flood_socket, &s, &t)));
        let (s, t) = (Arc::clone(shared), Arc::clone(&tally));
        threads.push(thread::spawn(move || datagram_sink(&sink_socket, &s, &t)));
        Ok(Self { threads, tally })
    }

    /// Waits for every thread (they end once [`Shared::over`] is set).
    pub fn join(self) -> Arc<Mutex<Tally>> {
        for t in self.threads {
            if t.join().is_err() {
                eprintln!("soak: a Linux peer thread panicked");
            }
        }
        self.tally
    }
}

type Handler = fn(TcpStream, &Shared, &Mutex<Tally>);

/// Accepts connections until the run is over, each served on a thread of its own.
fn serve(listener: &TcpListener, shared: &Arc<Shared>, tally: &Arc<Mutex<Tally>>, f: Handler) {
    if let Err(e) = listener.set_nonblocking(true) {
        return shared.fail(format!("Linux listener: {e}"));
    }
    let mut connections = Vec::new();
    while !shared.over.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                let (s, t) = (Arc::clone(shared), Arc::clone(tally));
                shared.linux_busy.fetch_add(1, Ordering::SeqCst);
                connections.push(thread::spawn(move || {
                    match configure(&stream) {
                        Ok(()) => f(stream, &s, &t),
                        Err(e) => s.fail(format!("Linux: configuring a connection: {e}")),
                    }
                    s.linux_busy.fetch_sub(1, Ordering::SeqCst);
                }));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(5))
            }
            Err(e) => shared.fail(format!("Linux accept: {e}")),
        }
        connections.retain(|c| !c.is_finished());
    }
    for c in connections {
        let _ = c.join();
    }
}

/// Blocking with [`TICK`] timeouts, keepalive and a user timeout, so that a connection the
/// board lost with its NIC ends on Linux too.
fn configure(stream: &TcpStream) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(TICK))?;
    stream.set_write_timeout(Some(TICK))?;
    stream.set_nodelay(true)?;
    let fd = stream.as_raw_fd();
    let (idle, interval, count) = KEEPALIVE;
    for (level, name, value) in [
        (libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1),
        (libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, idle),
        (libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, interval),
        (libc::IPPROTO_TCP, libc::TCP_KEEPCNT, count),
        (
            libc::IPPROTO_TCP,
            libc::TCP_USER_TIMEOUT,
            USER_TIMEOUT_MS as i32,
        ),
    ] {
        // SAFETY: setsockopt reads an int of the given size from a live local; `fd` is the
        // stream's, open while `stream` is borrowed.
        let rc = unsafe {
            libc::setsockopt(
                fd,
                level,
                name,
                (&value as *const i32).cast(),
                std::mem::size_of::<i32>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// How a blocking call on a connection ended.
enum Io {
    /// Bytes moved.
    Moved(usize),
    /// End of stream.
    Eof,
    /// The connection failed.
    Failed(io::Error),
}

/// Reads or writes once, retrying timeouts until something happens, the connection stalls
/// ([`STALL_LIMIT`]) or the run is over.
fn once(shared: &Shared, mut op: impl FnMut() -> io::Result<usize>) -> Io {
    let start = Instant::now();
    loop {
        match op() {
            Ok(0) => return Io::Eof,
            Ok(n) => return Io::Moved(n),
            // A read or write timeout (EAGAIN); ETIMEDOUT, the keepalive's or the user
            // timeout's verdict, is a failure.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if shared.over.load(Ordering::Relaxed) || start.elapsed() > STALL_LIMIT {
                    return Io::Failed(io::Error::other("stalled"));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Io::Failed(e),
        }
    }
}

/// Reads exactly `buf.len()` bytes; `Err` with what ended it.
fn read_exact(stream: &mut TcpStream, shared: &Shared, buf: &mut [u8]) -> Result<(), String> {
    let mut got = 0;
    while got < buf.len() {
        match once(shared, || stream.read(&mut buf[got..])) {
            Io::Moved(n) => got += n,
            Io::Eof => return Err(format!("end of stream after {got} of {} bytes", buf.len())),
            Io::Failed(e) => return Err(e.to_string()),
        }
    }
    Ok(())
}

/// Writes all of `data`; `Err` with what ended it.
fn write_all(stream: &mut TcpStream, shared: &Shared, data: &[u8]) -> Result<(), String> {
    let mut sent = 0;
    while sent < data.len() {
        match once(shared, || stream.write(&data[sent..])) {
            Io::Moved(n) => sent += n,
            Io::Eof => return Err("the connection took nothing".into()),
            Io::Failed(e) => return Err(e.to_string()),
        }
    }
    Ok(())
}

/// Why a transfer or connection did not complete.
enum Broken {
    /// A byte differed from what was sent: always a failure.
    Corrupt(String),
    /// It ended early (end of stream, reset, timeout): fine if an unplug explains it.
    Cut(String),
}

impl From<String> for Broken {
    /// What `read_exact` and `write_all` report: the connection ended.
    fn from(why: String) -> Self {
        Broken::Cut(why)
    }
}

/// `what` did not complete: a failure if it was corrupt, else a [`cut`]; true when it counts as
/// a cut an unplug explains.
fn broken(shared: &Shared, since: u64, what: &str, how: Broken) -> bool {
    match how {
        Broken::Corrupt(why) => {
            shared.fail(format!("Linux: {what}: {why}"));
            false
        }
        Broken::Cut(why) => cut(shared, since, what, &why),
    }
}

/// A connection ended early: fine if an unplug explains it, else a failure.
fn cut(shared: &Shared, since: u64, what: &str, why: &str) -> bool {
    if shared.explained(since) {
        return true;
    }
    shared.fail(format!(
        "Linux: {what}: {why}, with no unplug to explain it"
    ));
    false
}

fn tally(tally: &Mutex<Tally>) -> std::sync::MutexGuard<'_, Tally> {
    tally.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The header the board sends first on a `direction` transfer; `None` (a cut, counted as
/// headerless) when the connection ends before it.
fn read_header(
    stream: &mut TcpStream,
    shared: &Shared,
    t: &Mutex<Tally>,
    since: u64,
    direction: &str,
) -> Option<Header> {
    let mut raw = [0u8; Header::LEN];
    if let Err(why) = read_exact(stream, shared, &mut raw) {
        cut(
            shared,
            since,
            &format!("{direction} transfer before its header"),
            &why,
        );
        tally(t).headerless += 1;
        return None;
    }
    Some(Header::decode(&raw))
}

/// Board→Linux: the header, the data checked byte by byte, then the acknowledgement.
fn sink(mut stream: TcpStream, shared: &Shared, t: &Mutex<Tally>) {
    let since = shared.epoch();
    let Some(h) = read_header(&mut stream, shared, t, since, "board→Linux") else {
        return;
    };
    let pattern = Pattern(h.seed);
    let mut record = Received::default();
    let mut buf = vec![0u8; 64 * 1024];
    let outcome = loop {
        if record.bytes == h.len {
            break write_all(&mut stream, shared, &h.len.to_le_bytes())
                .map(|()| true)
                .map_err(Broken::from);
        }
        let want = buf.len().min((h.len - record.bytes) as usize);
        match once(shared, || stream.read(&mut buf[..want])) {
            Io::Moved(n) => {
                if let Some(at) = pattern.mismatch(record.bytes, &buf[..n]) {
                    break Err(Broken::Corrupt(format!(
                        "wrong byte at offset {} (not a prefix of what the board sent)",
                        record.bytes + at as u64
                    )));
                }
                record.bytes += n as u64;
            }
            Io::Eof => {
                break Err(Broken::Cut(format!(
                    "end of stream after {} bytes",
                    record.bytes
                )))
            }
            Io::Failed(e) => break Err(Broken::Cut(e.to_string())),
        }
    };
    match outcome {
        Ok(complete) => record.complete = complete,
        Err(how) => {
            broken(
                shared,
                since,
                &format!("board→Linux transfer {}", h.id),
                how,
            );
        }
    }
    if tally(t).sink.insert(h.id, record).is_some() {
        shared.fail(format!(
            "Linux: board→Linux transfer id {} seen twice",
            h.id
        ));
    }
}

/// Linux→board: the board's header, the data, then the board's acknowledgement.
fn source(mut stream: TcpStream, shared: &Shared, t: &Mutex<Tally>) {
    let since = shared.epoch();
    let Some(h) = read_header(&mut stream, shared, t, since, "Linux→board") else {
        return;
    };
    let pattern = Pattern(h.seed);
    let mut record = Sent::default();
    let mut buf = vec![0u8; 64 * 1024];
    let outcome = loop {
        if record.bytes == h.len {
            let mut ack = [0u8; 8];
            break match read_exact(&mut stream, shared, &mut ack) {
                Err(why) => Err(Broken::Cut(why)),
                Ok(()) if u64::from_le_bytes(ack) == h.len => Ok(()),
                Ok(()) => Err(Broken::Corrupt(format!(
                    "wrong byte in the acknowledgement {ack:?}"
                ))),
            };
        }
        let n = buf.len().min((h.len - record.bytes) as usize);
        pattern.fill(record.bytes, &mut buf[..n]);
        match once(shared, || stream.write(&buf[..n])) {
            Io::Moved(n) => record.bytes += n as u64,
            Io::Eof => break Err(Broken::Cut("the connection took nothing".into())),
            Io::Failed(e) => break Err(Broken::Cut(e.to_string())),
        }
    };
    match outcome {
        Ok(()) => record.acked = true,
        Err(how) => {
            broken(
                shared,
                since,
                &format!("Linux→board transfer {}", h.id),
                how,
            );
        }
    }
    if tally(t).source.insert(h.id, record).is_some() {
        shared.fail(format!(
            "Linux: Linux→board transfer id {} seen twice",
            h.id
        ));
    }
}

/// Echoes until the board closes.
fn echo(mut stream: TcpStream, shared: &Shared, t: &Mutex<Tally>) {
    let since = shared.epoch();
    let mut buf = [0u8; 2 * CHURN_MESSAGE];
    loop {
        match once(shared, || stream.read(&mut buf)) {
            Io::Moved(n) => {
                if let Err(why) = write_all(&mut stream, shared, &buf[..n]) {
                    cut(shared, since, "echoing the board", &why);
                    return;
                }
            }
            Io::Eof => break,
            Io::Failed(e) => {
                cut(shared, since, "echoing the board", &e.to_string());
                return;
            }
        }
    }
    tally(t).echoed += 1;
}

/// Short connections to the board's echo listener until the run stops.
fn churn(shared: &Shared, t: &Mutex<Tally>) {
    let mut id = 0u64;
    while !shared.stop.load(Ordering::Relaxed) {
        id += 1;
        let since = shared.epoch();
        match churn_once(shared, id) {
            Ok(()) => tally(t).churn_ok += 1,
            Err(how) => {
                let corrupt = matches!(how, Broken::Corrupt(_));
                if broken(shared, since, &format!("connection {id} to the board"), how) {
                    tally(t).churn_cut += 1;
                }
                if !corrupt {
                    thread::sleep(Duration::from_millis(50));
                }
            }
        }
    }
    shared.churn_done.store(true, Ordering::SeqCst);
}

/// One short connection: a message out, its echo back checked, close.
fn churn_once(shared: &Shared, id: u64) -> Result<(), Broken> {
    let mut stream = TcpStream::connect_timeout(&board(BOARD_ECHO_PORT).into(), CONNECT_LIMIT)
        .map_err(|e| Broken::Cut(format!("connect: {e}")))?;
    configure(&stream).map_err(|e| Broken::Cut(e.to_string()))?;
    let pattern = Pattern(id | 1 << 63);
    let mut message = [0u8; CHURN_MESSAGE];
    pattern.fill(0, &mut message);
    write_all(&mut stream, shared, &message)?;
    let mut back = [0u8; CHURN_MESSAGE];
    read_exact(&mut stream, shared, &mut back)?;
    match pattern.mismatch(0, &back) {
        Some(at) => Err(Broken::Corrupt(format!(
            "wrong byte at offset {at} of the echo"
        ))),
        None => Ok(()),
    }
}

/// Line-rate datagrams to the board during the flood's bursts until the run stops.
fn flood(socket: &UdpSocket, shared: &Shared, t: &Mutex<Tally>) {
    let pattern = Pattern(crate::soak::FLOOD_TO_BOARD);
    let mut pacer = Pacer::new();
    let mut buf = [0u8; DATAGRAM];
    let (mut sent, mut refused) = (0u64, 0u64);
    let to: SocketAddrV4 = board(BOARD_UDP_PORT);
    while !shared.stop.load(Ordering::Relaxed) {
        let due = pacer.due();
        if due == 0 {
            thread::sleep(Duration::from_micros(500));
            continue;
        }
        for _ in 0..due {
            datagram(pattern, sent, &mut buf);
            match socket.send_to(&buf, to) {
                Ok(_) => sent += 1,
                Err(_) => refused += 1,
            }
            pacer.sent(1);
        }
    }
    let mut t = tally(t);
    t.flood_sent = sent;
    t.flood_refused = refused;
}

/// Receives the board's flood, checking every datagram, until the run is over.
fn datagram_sink(socket: &UdpSocket, shared: &Shared, t: &Mutex<Tally>) {
    if let Err(e) = socket.set_read_timeout(Some(TICK)) {
        return shared.fail(format!("Linux UDP sink: {e}"));
    }
    let pattern = Pattern(crate::soak::FLOOD_TO_LINUX);
    let mut seen = Seen::default();
    let mut buf = [0u8; DATAGRAM + 1];
    let mut received = 0u64;
    while !shared.over.load(Ordering::Relaxed) {
        match socket.recv(&mut buf) {
            Ok(n) => match check_datagram(pattern, &buf[..n]) {
                Some(seq) if seen.insert(seq) => received += 1,
                Some(seq) => shared.fail(format!("Linux: board datagram {seq} arrived twice")),
                None => shared.fail(format!("Linux: a board datagram of {n} bytes is damaged")),
            },
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => shared.fail(format!("Linux UDP sink: {e}")),
        }
    }
    tally(t).datagrams_received = received;
}
