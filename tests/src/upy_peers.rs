//! The Linux peers of the scripts in `tests/upy/`, written once for every board that runs them
//! (the simulated board in `upy-bindings/tests/`, the firmware on QEMU raspi3b in
//! `tests/tests/firmware_upy_scripts.rs`). Each peer is std sockets on a thread inside the peer's
//! network namespace, at the addresses of `cargo xtask sim`, and returns a summary of what it saw
//! that a test compares.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use k230_testkit::netns::{accept_within, Netns};

use crate::peer::reset;

/// The Linux peer (gateway, DNS server).
pub const PEER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 2);
/// The board.
pub const BOARD_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 15);
/// The peer's DNS name.
pub const PEER_NAME: &str = "peer.k230.sim";
/// A name the peer's DNS knows not to exist.
pub const UNKNOWN_NAME: &str = "nonexistent.k230.sim";
/// Longest a script or a peer may take.
pub const LIMIT: Duration = Duration::from_secs(30);

/// dnsmasq's arguments for the peer's DNS: [`PEER_NAME`] resolves to [`PEER_IP`], and it is
/// authoritative for the test domain, so that unknown names get NXDOMAIN at once.
pub fn dns_args() -> Vec<String> {
    vec![
        format!("--address=/{PEER_NAME}/{PEER_IP}"),
        "--local=/k230.sim/".to_owned(),
    ]
}

/// dnsmasq's arguments for DHCP leasing only [`BOARD_IP`], the peer as router and DNS server.
pub fn dhcp_args() -> Vec<String> {
    vec![
        format!("--dhcp-range={BOARD_IP},{BOARD_IP},255.255.255.0,1h"),
        format!("--dhcp-option=option:router,{PEER_IP}"),
        format!("--dhcp-option=option:dns-server,{PEER_IP}"),
    ]
}

/// What a peer thread gets: tell `ready` once it listens; stop when `stop` is set.
pub struct PeerCtx {
    ready: mpsc::Sender<()>,
    stop: Arc<AtomicBool>,
}

/// A peer: runs in the peer namespace, returns its summary.
pub type PeerFn = fn(PeerCtx) -> String;

/// A peer started in a namespace, ready for the board.
pub struct Running {
    thread: JoinHandle<String>,
    stop: Arc<AtomicBool>,
}

impl Running {
    /// Starts `peer` in `ns` and waits until it is ready.
    pub fn start(ns: &Netns, peer: PeerFn) -> Self {
        let (ready, listening) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let ctx = PeerCtx {
            ready,
            stop: Arc::clone(&stop),
        };
        let thread = ns.spawn(move || peer(ctx)).expect("peer thread");
        listening.recv_timeout(LIMIT).expect("peer ready");
        Self { thread, stop }
    }

    /// Tells the peer the script has ended and returns its summary.
    pub fn finish(self) -> String {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .join()
            .unwrap_or_else(|_| "peer panicked".to_owned())
    }
}

/// What one run of a script against its peer gave.
#[derive(Debug)]
pub struct Outcome {
    /// Whether the script ended well (no exception, exit status 0), else why not.
    pub result: Result<(), String>,
    /// Its standard output.
    pub out: String,
    /// The peer's summary (empty without a peer).
    pub peer: String,
}

/// Runs a script with `run` (which returns whether it ended well and its output) while `peer`,
/// if any, runs in `ns`.
pub fn run_with(
    ns: &Netns,
    peer: Option<PeerFn>,
    run: impl FnOnce() -> (Result<(), String>, String),
) -> Outcome {
    let peer = peer.map(|peer| Running::start(ns, peer));
    let (result, out) = run();
    let peer = peer.map(Running::finish).unwrap_or_default();
    Outcome { result, out, peer }
}

fn listen(port: u16) -> TcpListener {
    let listener = TcpListener::bind(SocketAddrV4::new(PEER_IP, port)).expect("peer bind");
    listener.set_nonblocking(true).expect("nonblocking");
    listener
}

/// Accepts one connection within [`LIMIT`].
fn accept_one(listener: &TcpListener) -> TcpStream {
    accept_within(listener, LIMIT).expect("peer accept")
}

/// Connects to the board, retrying while it does not listen yet.
fn connect_board(port: u16) -> TcpStream {
    let start = Instant::now();
    loop {
        match TcpStream::connect_timeout(&SocketAddrV4::new(BOARD_IP, port).into(), LIMIT) {
            Ok(stream) => {
                stream.set_read_timeout(Some(LIMIT)).expect("timeout");
                return stream;
            }
            Err(_) if start.elapsed() < LIMIT => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("peer connect: {e}"),
        }
    }
}

/// The seed manual's server (`tests/upy/seed_client.py`, port 60000): everything one client
/// sends, as text.
pub fn seed_server(ctx: PeerCtx) -> String {
    let listener = listen(60000);
    ctx.ready.send(()).ok();
    let mut received = String::new();
    accept_one(&listener)
        .read_to_string(&mut received)
        .expect("read");
    received
}

/// What `tests/upy/seed_client.py` sends: ten lines.
pub fn seed_client_lines() -> String {
    (0..10)
        .map(|i| format!("K230 TCP 客户端发送测试 {i} \r\n"))
        .collect()
}

/// A TCP echo server for one connection; summary: the byte count.
pub fn echo(ctx: PeerCtx, port: u16) -> String {
    let listener = listen(port);
    ctx.ready.send(()).ok();
    let mut stream = accept_one(&listener);
    let mut total = 0;
    let mut buf = [0u8; 2048];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                stream.write_all(&buf[..n]).expect("echo");
                total += n;
            }
        }
    }
    format!("echoed {total} bytes")
}

/// A client of the board's server: sends `hello board`, reads the reply to its end.
pub fn request_reply(ctx: PeerCtx, port: u16) -> String {
    ctx.ready.send(()).ok();
    let mut stream = connect_board(port);
    stream.write_all(b"hello board").expect("request");
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).expect("reply");
    format!("reply {}", String::from_utf8_lossy(&reply))
}

/// Answers `datagrams` datagrams, each with `reply` followed by the datagram when `echo`.
fn udp_answer(ctx: PeerCtx, port: u16, datagrams: usize, reply: &[u8], echo: bool) -> String {
    let socket = UdpSocket::bind(SocketAddrV4::new(PEER_IP, port)).expect("udp bind");
    socket.set_read_timeout(Some(LIMIT)).expect("timeout");
    ctx.ready.send(()).ok();
    let mut seen = Vec::new();
    let mut buf = [0u8; 2048];
    for _ in 0..datagrams {
        let (n, from) = socket.recv_from(&mut buf).expect("udp recv");
        let answer = [reply, if echo { &buf[..n] } else { &[] }].concat();
        socket.send_to(&answer, from).expect("udp send");
        seen.push(format!("{n} bytes from {}", from.ip()));
    }
    seen.join(", ")
}

/// UDP echo with a `pong:` prefix, for three datagrams (two to the unconnected socket of
/// `reference/udp.py`, one to its connected one).
pub fn udp_echo(ctx: PeerCtx, port: u16) -> String {
    udp_answer(ctx, port, 3, b"pong:", true)
}

/// Answers one datagram with `pong` (`udp_client.py`).
pub fn udp_pong(ctx: PeerCtx, port: u16) -> String {
    udp_answer(ctx, port, 1, b"pong", false)
}

/// Accepts and holds connections, never sending, until the script ends.
pub fn mute(ctx: PeerCtx, port: u16) -> String {
    let listener = listen(port);
    ctx.ready.send(()).ok();
    // The non-blocking connect's connection (which the board closes), then the timed one.
    let mut held = Vec::new();
    while !ctx.stop.load(Ordering::Relaxed) {
        if let Ok((stream, _)) = listener.accept() {
            held.push(stream);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    // Only the timed connection is certain to arrive: the non-blocking one may be closed by
    // the board before its handshake ends.
    format!("held the timed connection: {}", !held.is_empty())
}

/// Waits for `go` on one connection, sends two lines and a tail, closes.
pub fn lines(ctx: PeerCtx, port: u16) -> String {
    let listener = listen(port);
    ctx.ready.send(()).ok();
    let mut stream = accept_one(&listener);
    let mut go = [0u8; 3];
    stream.read_exact(&mut go).expect("go");
    stream
        .write_all(b"alpha\nbeta\n0123456789ABCDEFGHIJ")
        .expect("lines");
    drop(stream);
    format!("got {:?}", String::from_utf8_lossy(&go))
}

/// `reference/poll.py`'s partner: connects, waits for `go`, sends `data`, waits for `bye`.
pub fn poll_partner(ctx: PeerCtx, port: u16) -> String {
    ctx.ready.send(()).ok();
    // Let the board poll its idle listener first.
    std::thread::sleep(Duration::from_millis(200));
    let mut stream = connect_board(port);
    let mut word = [0u8; 2];
    stream.read_exact(&mut word).expect("go");
    stream.write_all(b"data").expect("data");
    let mut bye = [0u8; 3];
    stream.read_exact(&mut bye).expect("bye");
    drop(stream);
    format!(
        "got {} {}",
        String::from_utf8_lossy(&word),
        String::from_utf8_lossy(&bye)
    )
}

/// `clients` clients at once of the board's asyncio server: a line, its echo, a tail, shutdown.
pub fn async_clients(ctx: PeerCtx, port: u16, clients: usize) -> String {
    ctx.ready.send(()).ok();
    let threads: Vec<_> = (0..clients)
        .map(|i| {
            std::thread::spawn(move || {
                let mut stream = connect_board(port);
                stream
                    .write_all(format!("client {i}\n").as_bytes())
                    .expect("line");
                let mut echo = [0u8; 14];
                stream.read_exact(&mut echo).expect("echo");
                stream.write_all(b"tail").expect("tail");
                stream
                    .shutdown(std::net::Shutdown::Write)
                    .expect("shutdown");
                let mut rest = Vec::new();
                stream.read_to_end(&mut rest).expect("end");
                String::from_utf8_lossy(&echo).into_owned()
            })
        })
        .collect();
    let mut echoes: Vec<String> = threads
        .into_iter()
        .map(|t| t.join().expect("client"))
        .collect();
    echoes.sort();
    format!("{echoes:?}")
}

/// The request `send_then_reset` sends before resetting.
const RESET_REQUEST: &[u8] = b"GET / HTTP/1.0\r\n\r\n";

/// Three connections to the board (`port`, `port + 1`, `port + 2`), each sent
/// [`RESET_REQUEST`] and then reset.
pub fn send_then_reset(ctx: PeerCtx, port: u16) -> String {
    ctx.ready.send(()).ok();
    // Two rounds where the board reads after the reset, one where it waits in recv meanwhile.
    for round in 0..3 {
        let mut stream = connect_board(port + round);
        if round == 2 {
            std::thread::sleep(Duration::from_millis(300));
        }
        stream.write_all(RESET_REQUEST).expect("request");
        std::thread::sleep(Duration::from_millis(300));
        reset(stream);
    }
    format!(
        "reset 3 connections after {} bytes each",
        RESET_REQUEST.len()
    )
}

/// `reference/recv_flags.py`'s partner: TCP sends `abcdefgh` and waits for `done`; UDP answers
/// one datagram with two.
pub fn flags_partner(ctx: PeerCtx, tcp_port: u16, udp_port: u16) -> String {
    let listener = listen(tcp_port);
    let udp = UdpSocket::bind(SocketAddrV4::new(PEER_IP, udp_port)).expect("udp bind");
    udp.set_read_timeout(Some(LIMIT)).expect("timeout");
    ctx.ready.send(()).ok();
    let mut stream = accept_one(&listener);
    stream.write_all(b"abcdefgh").expect("data");
    let mut done = [0u8; 4];
    stream.read_exact(&mut done).expect("done");
    drop(stream);
    let mut buf = [0u8; 64];
    let (n, from) = udp.recv_from(&mut buf).expect("udp recv");
    for prefix in [&b"one:"[..], b"two:"] {
        let reply = [prefix, &buf[..n]].concat();
        udp.send_to(&reply, from).expect("udp send");
    }
    format!(
        "got {:?}, then a {n}-byte datagram",
        String::from_utf8_lossy(&done)
    )
}

/// A listener whose backlog takes connections that are never accepted, until the script ends.
pub fn backlog_only(ctx: PeerCtx, port: u16) -> String {
    let listener = listen(port);
    ctx.ready.send(()).ok();
    while !ctx.stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(listener);
    "listened".to_owned()
}
