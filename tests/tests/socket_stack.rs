//! `upy-socket` over the real netstack `Stack`: two stacks joined by an in-memory Ethernet wire,
//! each driven by its own thread and clock, as two boards on one cable would be. In-process, no
//! root. TCP echo (blocking and non-blocking), readline across segments, refused connects,
//! timeouts, UDP echo, listen backlog, and closes racing the peer.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use netstack::api::Ipv4Config;
use netstack::phy::{wire, WireEnd};
use netstack::{HeapStorage, InterfaceControl, Seed, Stack, StackConfig};
use upy_socket::consts::{
    AF_INET, IPPROTO_TCP, SOCK_DGRAM, SOCK_STREAM, SOL_SOCKET, SO_BROADCAST, SO_KEEPALIVE,
    SO_REUSEADDR, TCP_NODELAY,
};
use upy_socket::{
    parse_inet_addr, Errno, Hints, OptOutcome, PollFlags, RecvFlags, Socket, SocketError, Sockets,
    StdClock, Timeout,
};

const A_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
const B_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
/// Upper bound for anything a test waits for (never reached when things work).
const LIMIT: Duration = Duration::from_secs(30);

type Table = Sockets<Stack<'static, WireEnd>, StdClock, 16>;

fn stack(end: WireEnd, last: u8, ip: Ipv4Addr) -> Table {
    stack_with_dns(end, last, ip, Ipv4Addr::UNSPECIFIED)
}

fn stack_with_dns(end: WireEnd, last: u8, ip: Ipv4Addr, dns: Ipv4Addr) -> Table {
    let storage = HeapStorage {
        tcp_sockets: 8,
        tcp_buffer: 16 * 1024,
        udp_sockets: 4,
        udp_buffer: 8 * 1024,
    };
    let config = StackConfig {
        mac: [0x02, 0, 0, 0, 0x77, last],
        seed: Seed::reproducible(u64::from(last) * 104_729),
    };
    let mut stack = Stack::new(end, config, storage.parts(), 0);
    stack
        .set_static(Ipv4Config {
            address: ip,
            netmask: Ipv4Addr::new(255, 255, 255, 0),
            gateway: Ipv4Addr::UNSPECIFIED,
            dns,
        })
        .expect("valid config");
    Sockets::new(stack, StdClock::new())
}

/// Boards A (10.77.0.1) and B (10.77.0.2) on one wire.
///
/// A board's stack only runs when its own thread polls it. A's first SYN to B waits for B's ARP
/// answer, which B sends on its first poll; every server here polls first in `accept`, after
/// `listen`, so a client never races the server's `listen`.
fn boards() -> (Table, Table) {
    let (ea, eb) = wire();
    (stack(ea, 1, A_IP), stack(eb, 2, B_IP))
}

fn b_addr(port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(B_IP, port)
}

fn os(e: Errno) -> SocketError {
    SocketError::Os(e)
}

/// A board running `work` in its own thread, then polling its stack (so closes finish and the
/// peer is answered) until joined. Dropping it stops the thread.
struct Board<R> {
    result: mpsc::Receiver<R>,
    stop: mpsc::Sender<()>,
    thread: Option<thread::JoinHandle<()>>,
}

impl<R: Send + 'static> Board<R> {
    fn spawn(mut table: Table, work: impl FnOnce(&mut Table) -> R + Send + 'static) -> Self {
        let (result_tx, result) = mpsc::channel();
        let (stop, stop_rx) = mpsc::channel::<()>();
        let thread = thread::spawn(move || {
            let r = work(&mut table);
            let _ = result_tx.send(r);
            let end = Instant::now() + LIMIT;
            while stop_rx.try_recv() == Err(mpsc::TryRecvError::Empty) && Instant::now() < end {
                table.poll();
                thread::sleep(Duration::from_millis(1));
            }
        });
        Self {
            result,
            stop,
            thread: Some(thread),
        }
    }

    /// The thread's result, polling `own` meanwhile so this side keeps answering.
    fn join(mut self, own: &mut Table) -> R {
        let end = Instant::now() + LIMIT;
        loop {
            own.poll();
            match self.result.try_recv() {
                Ok(r) => {
                    self.stop_thread();
                    return r;
                }
                Err(mpsc::TryRecvError::Disconnected) => panic!("board thread panicked"),
                Err(mpsc::TryRecvError::Empty) => {}
            }
            assert!(Instant::now() < end, "board thread did not finish");
            thread::sleep(Duration::from_millis(1));
        }
    }

    fn stop_thread(&mut self) {
        let _ = self.stop.send(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl<R> Drop for Board<R> {
    fn drop(&mut self) {
        let _ = self.stop.send(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Polls `own` for `ms` milliseconds.
fn settle(own: &mut Table, ms: u64) {
    let end = Instant::now() + Duration::from_millis(ms);
    while Instant::now() < end {
        own.poll();
        thread::sleep(Duration::from_millis(1));
    }
}

/// Waits for a signal from the test, polling `own` meanwhile.
fn wait_signal(own: &mut Table, rx: &mpsc::Receiver<()>) {
    let end = Instant::now() + LIMIT;
    while rx.try_recv().is_err() {
        assert!(Instant::now() < end, "no signal");
        own.poll();
        thread::sleep(Duration::from_millis(1));
    }
}

/// Polls `own` until `socket` reports any of `want`, at most `LIMIT`.
fn poll_until(own: &mut Table, socket: Socket, want: PollFlags) -> PollFlags {
    let end = Instant::now() + LIMIT;
    loop {
        let got = own.ioctl_poll(socket, PollFlags::RD | PollFlags::WR);
        if got.bits() & want.bits() != 0 {
            return got;
        }
        assert!(Instant::now() < end, "socket never became {want:?}");
        thread::sleep(Duration::from_millis(1));
    }
}

/// A listening TCP socket on `port` with a 10 s timeout.
fn listener(t: &mut Table, port: u16, backlog: Option<i64>) -> Socket {
    let l = t.socket(AF_INET, SOCK_STREAM, 0).unwrap();
    assert_eq!(
        t.setsockopt(l, SOL_SOCKET, SO_REUSEADDR, 1),
        Ok(OptOutcome::Applied)
    );
    t.bind(l, parse_inet_addr("", port).unwrap()).unwrap();
    t.listen(l, backlog).unwrap();
    t.set_timeout(l, Timeout::After(10_000_000));
    l
}

/// Deterministic test data.
fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).max(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// An echo server: accepts one connection, echoes until EOF, returns the byte count.
fn echo_server(t: &mut Table, port: u16) -> usize {
    let l = listener(t, port, None);
    let (c, _) = t.accept(l).unwrap();
    let mut total = 0;
    let mut buf = [0u8; 1500];
    loop {
        let n = t.recv(c, &mut buf, RecvFlags::NONE).unwrap();
        if n == 0 {
            break;
        }
        t.sendall(c, &buf[..n]).unwrap();
        total += n;
    }
    t.close(c);
    t.close(l);
    total
}

#[test]
fn tcp_echo_blocking() {
    let (mut a, b) = boards();
    let server = Board::spawn(b, |t| echo_server(t, 7000));
    let info = a.getaddrinfo("10.77.0.2", 7000, &Hints::default()).unwrap();
    assert_eq!(
        (info.family, info.socktype, info.proto, info.canonname),
        (2, 1, 0, "")
    );
    let s = a.socket(AF_INET, SOCK_STREAM, 0).unwrap();
    a.set_timeout(s, Timeout::After(10_000_000));
    a.connect(s, info.addr).unwrap();
    assert_eq!(a.connect(s, info.addr), Err(os(Errno::EISCONN)));
    let data = pattern(96 * 1024, 1);
    let mut echoed = vec![0u8; data.len()];
    for (chunk, back) in data.chunks(3000).zip(echoed.chunks_mut(3000)) {
        a.sendall(s, chunk).unwrap();
        assert_eq!(a.readinto(s, back, None), Ok(Some(chunk.len())));
    }
    assert!(echoed == data, "echo differs");
    a.close(s);
    assert_eq!(server.join(&mut a), data.len());
    assert_eq!(a.send(s, b"x"), Err(os(Errno::EBADF)));
    assert_eq!(a.ioctl_poll(s, PollFlags::RD), PollFlags::NVAL);
}

#[test]
fn tcp_non_blocking_connect_short_writes_and_eagain() {
    let (mut a, b) = boards();
    let (go, go_rx) = mpsc::channel::<()>();
    let server = Board::spawn(b, move |t| {
        let l = listener(t, 7001, Some(1));
        let (c, _) = t.accept(l).unwrap();
        // Read nothing until told, so the client's buffers fill up.
        wait_signal(t, &go_rx);
        t.set_timeout(c, Timeout::After(10_000_000));
        let mut got = Vec::new();
        t.read_all(c, |b| got.extend_from_slice(b)).unwrap();
        got
    });
    let s = a.socket(AF_INET, SOCK_STREAM, 0).unwrap();
    a.set_timeout(s, Timeout::NonBlocking);
    assert_eq!(
        a.ioctl_poll(s, PollFlags::RD | PollFlags::WR),
        PollFlags::WR | PollFlags::HUP
    );
    assert_eq!(a.connect(s, b_addr(7001)), Err(os(Errno::EINPROGRESS)));
    let ready = poll_until(&mut a, s, PollFlags::WR);
    assert_eq!(ready, PollFlags::WR);
    assert_eq!(a.connect(s, b_addr(7001)), Err(os(Errno::EISCONN)));
    // Nothing to read yet.
    assert_eq!(
        a.recv(s, &mut [0; 8], RecvFlags::NONE),
        Err(os(Errno::EAGAIN))
    );
    assert_eq!(a.read(s, &mut [0; 8]), Ok(None));
    // A write bigger than all buffers is short, then nothing fits.
    let data = pattern(512 * 1024, 2);
    let first = a.write(s, &data).unwrap().expect("some bytes fit");
    assert!(first > 0 && first < data.len(), "wrote {first}");
    let mut sent = first;
    settle(&mut a, 50);
    while let Some(n) = a.write(s, &data[sent..]).unwrap() {
        sent += n;
    }
    assert_eq!(a.write(s, &data[sent..]), Ok(None));
    assert_eq!(a.send(s, &data[sent..]), Err(os(Errno::EAGAIN)));
    // Let the server read; send the rest blocking, then close for EOF.
    go.send(()).unwrap();
    a.set_timeout(s, Timeout::After(20_000_000));
    a.sendall(s, &data[sent..]).unwrap();
    a.close(s);
    let got = server.join(&mut a);
    assert_eq!(got.len(), data.len());
    assert!(got == data, "data differs");
}

#[test]
fn tcp_readline_across_segments_then_eof() {
    let (mut a, b) = boards();
    let server = Board::spawn(b, |t| {
        let l = listener(t, 7002, None);
        let (c, peer) = t.accept(l).unwrap();
        for piece in [&b"alpha\nbe"[..], b"ta\ngam", b"ma\nno newline"] {
            t.sendall(c, piece).unwrap();
            settle(t, 20);
        }
        t.close(c);
        t.close(l);
        peer
    });
    let s = a.socket(AF_INET, SOCK_STREAM, 0).unwrap();
    a.set_timeout(s, Timeout::After(10_000_000));
    a.connect(s, b_addr(7002)).unwrap();
    let f = a.makefile(s);
    let mut lines = Vec::new();
    loop {
        let mut line = Vec::new();
        match a.readline(f, None, |b| line.push(b)).unwrap() {
            Some(0) => break,
            Some(n) => assert_eq!(n, line.len()),
            None => unreachable!("blocking"),
        }
        lines.push(line);
    }
    assert_eq!(
        lines,
        [&b"alpha\n"[..], b"beta\n", b"gamma\n", b"no newline"]
    );
    assert_eq!(a.recv(s, &mut [0; 4], RecvFlags::NONE), Ok(0));
    assert_eq!(
        a.ioctl_poll(s, PollFlags::RD | PollFlags::WR),
        PollFlags::RD | PollFlags::WR
    );
    let peer = server.join(&mut a);
    assert_eq!(*peer.ip(), A_IP);
    a.close(s);
}

#[test]
fn tcp_refused_connect_is_econnrefused_then_ebadf() {
    let (mut a, b) = boards();
    let idle = Board::spawn(b, |_| ());
    let s = a.socket(AF_INET, SOCK_STREAM, 0).unwrap();
    a.set_timeout(s, Timeout::After(10_000_000));
    assert_eq!(a.connect(s, b_addr(7999)), Err(os(Errno::ECONNREFUSED)));
    assert_eq!(a.connect(s, b_addr(7999)), Err(os(Errno::EBADF)));
    // Unroutable: at once, the socket stays new.
    let s2 = a.socket(AF_INET, SOCK_STREAM, 0).unwrap();
    let far = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 80);
    assert_eq!(a.connect(s2, far), Err(os(Errno::EHOSTUNREACH)));
    idle.join(&mut a);
}

#[test]
fn timeouts_on_accept_recv_and_connect() {
    let (mut a, b) = boards();
    // Accept with nothing pending.
    let l = listener(&mut a, 7003, None);
    a.set_timeout(l, Timeout::NonBlocking);
    assert_eq!(a.accept(l), Err(os(Errno::EAGAIN)));
    a.set_timeout(l, Timeout::from_secs(0.05).unwrap());
    let start = Instant::now();
    assert_eq!(a.accept(l), Err(os(Errno::ETIMEDOUT)));
    assert!(start.elapsed() >= Duration::from_millis(50));
    // A connection whose peer sends nothing.
    let server = Board::spawn(b, |t| {
        let l = listener(t, 7004, None);
        let (c, _) = t.accept(l).unwrap();
        let mut buf = [0; 4];
        // Wait for the client to finish its timeout tests, then see its close.
        t.set_timeout(c, Timeout::After(10_000_000));
        t.recv(c, &mut buf, RecvFlags::NONE)
    });
    let s = a.socket(AF_INET, SOCK_STREAM, 0).unwrap();
    a.set_timeout(s, Timeout::After(10_000_000));
    a.connect(s, b_addr(7004)).unwrap();
    a.set_timeout(s, Timeout::from_secs(0.1).unwrap());
    let start = Instant::now();
    assert_eq!(
        a.recv(s, &mut [0; 4], RecvFlags::NONE),
        Err(os(Errno::ETIMEDOUT))
    );
    assert!(start.elapsed() >= Duration::from_millis(100));
    a.close(s);
    assert_eq!(server.join(&mut a), Ok(0));
}

#[test]
fn udp_echo_with_sendto_recvfrom_and_connect() {
    let (mut a, b) = boards();
    let server = Board::spawn(b, |t| {
        let u = t.socket(AF_INET, SOCK_DGRAM, 0).unwrap();
        t.bind(u, parse_inet_addr("", 9000).unwrap()).unwrap();
        t.set_timeout(u, Timeout::After(10_000_000));
        let mut sources = Vec::new();
        for _ in 0..3 {
            let mut buf = [0u8; 2048];
            let (n, from) = t.recvfrom(u, &mut buf, RecvFlags::NONE).unwrap();
            assert_eq!(t.sendto(u, &buf[..n], from), Ok(n));
            sources.push(from);
        }
        // Closing right after sendto must not lose the reply.
        t.close(u);
        sources
    });
    let u = a.socket(AF_INET, SOCK_DGRAM, 0).unwrap();
    a.set_timeout(u, Timeout::NonBlocking);
    assert_eq!(
        a.recv(u, &mut [0; 8], RecvFlags::NONE),
        Err(os(Errno::EAGAIN))
    );
    assert_eq!(
        a.ioctl_poll(u, PollFlags::RD | PollFlags::WR),
        PollFlags::WR
    );
    a.set_timeout(u, Timeout::After(5_000_000));
    let mut buf = [0u8; 2048];
    for (i, size) in [1usize, 1400].into_iter().enumerate() {
        let msg = pattern(size, 10 + i as u32);
        assert_eq!(a.sendto(u, &msg, b_addr(9000)), Ok(size));
        let (n, from) = a.recvfrom(u, &mut buf, RecvFlags::NONE).unwrap();
        assert_eq!(from, b_addr(9000));
        assert_eq!(&buf[..n], &msg[..]);
    }
    // Connected: send/recv and the stream methods.
    a.connect(u, b_addr(9000)).unwrap();
    assert_eq!(a.write(u, b"third"), Ok(Some(5)));
    let mut five = [0u8; 5];
    assert_eq!(a.read(u, &mut five), Ok(Some(5)));
    assert_eq!(&five, b"third");
    let sources = server.join(&mut a);
    assert!(sources
        .iter()
        .all(|s| *s.ip() == A_IP && s.port() == sources[0].port()));
    // The server is gone: nothing comes back, the timeout fires.
    a.set_timeout(u, Timeout::from_secs(0.05).unwrap());
    assert_eq!(a.send(u, b"lost"), Ok(4));
    assert_eq!(
        a.recv(u, &mut buf, RecvFlags::NONE),
        Err(os(Errno::ETIMEDOUT))
    );
    assert_eq!(a.sendall(u, b"x"), Err(SocketError::NotImplemented));
}

#[test]
fn backlog_holds_connections_until_accepted() {
    let (mut a, b) = boards();
    let (go, go_rx) = mpsc::channel::<()>();
    let (listening, listening_rx) = mpsc::channel::<()>();
    let server = Board::spawn(b, move |t| {
        let l = listener(t, 7005, Some(2));
        listening.send(()).unwrap();
        wait_signal(t, &go_rx);
        t.set_timeout(l, Timeout::After(25_000_000));
        let mut peers = Vec::new();
        for _ in 0..4 {
            let (c, peer) = t.accept(l).unwrap();
            assert_eq!(t.sendall(c, b"hi"), Ok(()));
            peers.push((c, peer));
        }
        let ports: Vec<u16> = peers.iter().map(|(_, p)| p.port()).collect();
        // Keep the connections until the client has read its greeting.
        settle(t, 200);
        for (c, _) in peers {
            t.close(c);
        }
        ports
    });
    listening_rx.recv_timeout(LIMIT).unwrap();
    let clients: Vec<Socket> = (0..4)
        .map(|_| {
            let s = a.socket(AF_INET, SOCK_STREAM, 0).unwrap();
            a.set_timeout(s, Timeout::NonBlocking);
            assert_eq!(a.connect(s, b_addr(7005)), Err(os(Errno::EINPROGRESS)));
            s
        })
        .collect();
    // Nothing is accepted yet: the backlog of 2 takes two connections, the others wait
    // (their SYNs are not answered, so they keep trying instead of being reset).
    settle(&mut a, 500);
    let connected = clients
        .iter()
        .filter(|&&s| a.ioctl_poll(s, PollFlags::WR) == PollFlags::WR)
        .count();
    assert_eq!(connected, 2);
    go.send(()).unwrap();
    for &s in &clients {
        // A connecting socket cannot be read yet (ENOTCONN, as modlwip): wait for it.
        assert!(poll_until(&mut a, s, PollFlags::WR).contains(PollFlags::WR));
        a.set_timeout(s, Timeout::After(25_000_000));
        let mut hi = [0u8; 2];
        assert_eq!(a.read(s, &mut hi), Ok(Some(2)));
        assert_eq!(&hi, b"hi");
    }
    let mut ports = server.join(&mut a);
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), 4);
    for s in clients {
        a.close(s);
    }
}

#[test]
fn peer_close_while_blocked_in_recv_gives_eof() {
    let (mut a, b) = boards();
    let server = Board::spawn(b, |t| {
        let l = listener(t, 7006, None);
        let (c, _) = t.accept(l).unwrap();
        t.set_timeout(c, Timeout::After(10_000_000));
        let started = Instant::now();
        let r = t.recv(c, &mut [0; 16], RecvFlags::NONE);
        (r, started.elapsed())
    });
    let s = a.socket(AF_INET, SOCK_STREAM, 0).unwrap();
    a.set_timeout(s, Timeout::After(10_000_000));
    a.connect(s, b_addr(7006)).unwrap();
    settle(&mut a, 100);
    a.close(s);
    let (r, waited) = server.join(&mut a);
    assert_eq!(r, Ok(0));
    assert!(
        waited >= Duration::from_millis(50),
        "recv returned before the close"
    );
}

#[test]
fn close_with_unsent_data_still_delivers_it() {
    let (mut a, b) = boards();
    let server = Board::spawn(b, |t| {
        let l = listener(t, 7007, None);
        let (c, _) = t.accept(l).unwrap();
        t.set_timeout(c, Timeout::After(10_000_000));
        let mut got = Vec::new();
        t.read_all(c, |b| got.extend_from_slice(b)).unwrap();
        got
    });
    let s = a.socket(AF_INET, SOCK_STREAM, 0).unwrap();
    a.set_timeout(s, Timeout::After(10_000_000));
    a.connect(s, b_addr(7007)).unwrap();
    let data = pattern(14 * 1024, 3);
    // Fits the 16 KiB send buffer: queued, not yet acknowledged when we close.
    assert_eq!(a.write(s, &data), Ok(Some(data.len())));
    a.close(s);
    let got = server.join(&mut a);
    assert_eq!(got.len(), data.len());
    assert!(got == data);
}

#[test]
fn closing_a_listener_resets_its_pending_connections() {
    let (mut a, b) = boards();
    let (go, go_rx) = mpsc::channel::<()>();
    let server = Board::spawn(b, move |t| {
        let l = listener(t, 7008, Some(1));
        wait_signal(t, &go_rx);
        t.close(l);
        t.accept(l)
    });
    let s = a.socket(AF_INET, SOCK_STREAM, 0).unwrap();
    a.set_timeout(s, Timeout::After(10_000_000));
    a.connect(s, b_addr(7008)).unwrap();
    go.send(()).unwrap();
    let flags = poll_until(&mut a, s, PollFlags::HUP);
    assert_eq!(
        flags,
        PollFlags::RD | PollFlags::WR | PollFlags::ERR | PollFlags::HUP
    );
    assert_eq!(
        a.recv(s, &mut [0; 4], RecvFlags::NONE),
        Err(os(Errno::ECONNRESET))
    );
    // Reported once; then the reset socket reads as end of stream (modlwip v1.27+).
    assert_eq!(a.recv(s, &mut [0; 4], RecvFlags::NONE), Ok(0));
    assert_eq!(
        a.ioctl_poll(s, PollFlags::RD | PollFlags::WR),
        PollFlags::RD | PollFlags::HUP
    );
    assert_eq!(server.join(&mut a), Err(os(Errno::EBADF)));
    a.close(s);
    a.close(s);
}

#[test]
fn sockets_are_reusable_after_close_and_handles_stay_dead() {
    let (mut a, _b) = boards();
    let mut old = Vec::new();
    // More sockets over time than the stack's pool (8 TCP) or the table (16) holds at once.
    for round in 0..40 {
        let s = a.socket(AF_INET, SOCK_STREAM, 0).unwrap();
        let u = a.socket(AF_INET, SOCK_DGRAM, 0).unwrap();
        a.bind(u, parse_inet_addr("", 20_000 + round).unwrap())
            .unwrap();
        a.close(s);
        a.close(u);
        old.push(s);
    }
    for s in old {
        assert_eq!(a.listen(s, None), Err(os(Errno::EBADF)));
    }
}

/// The address the test DNS server gives `board.test`.
const BOARD_TEST: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 99);

/// The answer of a tiny DNS server to `query`: `board.test` is [`BOARD_TEST`], other names do
/// not exist. `None` for anything that is not a one-question query.
fn dns_answer(query: &[u8]) -> Option<Vec<u8>> {
    if query.len() < 12 || query[4..6] != [0, 1] {
        return None;
    }
    // The question: labels up to the root, then type and class.
    let mut end = 12;
    let mut name = Vec::new();
    loop {
        let len = usize::from(*query.get(end)?);
        end += 1;
        if len == 0 {
            break;
        }
        name.push(
            std::str::from_utf8(query.get(end..end + len)?)
                .ok()?
                .to_owned(),
        );
        end += len;
    }
    end += 4;
    let question = query.get(12..end)?;
    let found = name.join(".") == "board.test";
    let mut reply = Vec::new();
    reply.extend_from_slice(&query[0..2]);
    // QR, RD, RA; rcode 0 or 3 (NXDOMAIN).
    reply.extend_from_slice(&[0x81, if found { 0x80 } else { 0x83 }]);
    reply.extend_from_slice(&[0, 1, 0, u8::from(found), 0, 0, 0, 0]);
    reply.extend_from_slice(question);
    if found {
        // Pointer to the question's name, type A, class IN, TTL 60, 4 bytes.
        reply.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
        reply.extend_from_slice(&BOARD_TEST.octets());
    }
    Some(reply)
}

#[test]
fn getaddrinfo_resolves_names_through_the_stacks_dns() {
    let (ea, eb) = wire();
    let mut a = stack_with_dns(ea, 1, A_IP, B_IP);
    let b = stack(eb, 2, B_IP);
    let (done, done_rx) = mpsc::channel::<()>();
    let server = Board::spawn(b, move |t| {
        let u = t.socket(AF_INET, SOCK_DGRAM, 0).unwrap();
        t.bind(u, parse_inet_addr("", 53).unwrap()).unwrap();
        t.set_timeout(u, Timeout::from_secs(0.01).unwrap());
        let mut answered = 0;
        let end = Instant::now() + LIMIT;
        while done_rx.try_recv().is_err() && Instant::now() < end {
            let mut buf = [0u8; 512];
            match t.recvfrom(u, &mut buf, RecvFlags::NONE) {
                Ok((n, from)) => {
                    let reply = dns_answer(&buf[..n]).expect("a DNS query");
                    t.sendto(u, &reply, from).unwrap();
                    answered += 1;
                }
                Err(e) => assert_eq!(e, os(Errno::ETIMEDOUT)),
            }
        }
        t.close(u);
        answered
    });
    let info = a
        .getaddrinfo("board.test", 8080, &Hints::default())
        .unwrap();
    assert_eq!(info.addr, SocketAddrV4::new(BOARD_TEST, 8080));
    assert_eq!(
        (info.family, info.socktype, info.proto, info.canonname),
        (AF_INET, SOCK_STREAM, 0, "")
    );
    let missing = a.getaddrinfo("missing.test", 80, &Hints::default());
    assert_eq!(missing, Err(os(Errno::DnsFailed)));
    assert_eq!(Errno::DnsFailed.code(), -2);
    done.send(()).unwrap();
    assert!(server.join(&mut a) >= 2);
}

#[test]
fn getaddrinfo_times_out_without_an_answer_and_recovers() {
    let (ea, eb) = wire();
    let mut a = stack_with_dns(ea, 1, A_IP, B_IP);
    // B is up but serves no DNS.
    let idle = Board::spawn(stack(eb, 2, B_IP), |_| ());
    a.set_dns_timeout(200_000);
    let start = Instant::now();
    assert_eq!(
        a.getaddrinfo("silent.test", 80, &Hints::default()),
        Err(os(Errno::DnsFailed))
    );
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(200) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    // Given-up queries keep their stack slot until the stack's own DNS timeout (10 s): three
    // more fill the stack's 4 slots, then a name gets lwIP's ERR_MEM (-1) like a full lwIP DNS
    // table. Numeric hosts need no slot.
    for _ in 0..3 {
        assert_eq!(
            a.getaddrinfo("silent.test", 80, &Hints::default()),
            Err(os(Errno::DnsFailed))
        );
    }
    assert_eq!(
        a.getaddrinfo("silent.test", 80, &Hints::default()),
        Err(os(Errno::DnsNoMemory))
    );
    assert_eq!(
        a.getaddrinfo("10.77.0.2", 80, &Hints::default())
            .map(|i| i.addr),
        Ok(b_addr(80))
    );
    // Polling frees the slots once the stack gives up; names can be looked up again.
    let end = Instant::now() + LIMIT;
    loop {
        settle(&mut a, 100);
        match a.getaddrinfo("silent.test", 80, &Hints::default()) {
            Err(e) if e == os(Errno::DnsNoMemory) => {
                assert!(Instant::now() < end, "slots never freed");
            }
            other => {
                assert_eq!(other, Err(os(Errno::DnsFailed)));
                break;
            }
        }
    }
    idle.join(&mut a);
}

#[test]
fn non_blocking_server_flow_with_poll_flags() {
    let (mut a, b) = boards();
    let l = listener(&mut a, 7010, Some(2));
    a.set_timeout(l, Timeout::NonBlocking);
    assert_eq!(
        a.ioctl_poll(l, PollFlags::RD | PollFlags::WR),
        PollFlags::NONE
    );
    let client = Board::spawn(b, |t| {
        let s = t.socket(AF_INET, SOCK_STREAM, 0).unwrap();
        t.set_timeout(s, Timeout::After(10_000_000));
        t.connect(s, SocketAddrV4::new(A_IP, 7010)).unwrap();
        t.sendall(s, b"ping\n").unwrap();
        let mut line = Vec::new();
        t.readline(s, None, |b| line.push(b)).unwrap();
        t.close(s);
        line
    });
    // asyncio's pattern: wait for RD on the listener, accept, then wait for RD on the socket.
    assert_eq!(poll_until(&mut a, l, PollFlags::RD), PollFlags::RD);
    let (c, peer) = a.accept(l).unwrap();
    assert_eq!(*peer.ip(), B_IP);
    assert_eq!(a.accept(l), Err(os(Errno::EAGAIN)));
    let flags = poll_until(&mut a, c, PollFlags::RD);
    assert_eq!(flags, PollFlags::RD | PollFlags::WR);
    let mut buf = [0u8; 16];
    assert_eq!(a.recv(c, &mut buf, RecvFlags::NONE), Ok(5));
    assert_eq!(&buf[..5], b"ping\n");
    assert_eq!(a.recv(c, &mut buf, RecvFlags::NONE), Err(os(Errno::EAGAIN)));
    assert_eq!(a.write(c, b"pong\n"), Ok(Some(5)));
    assert_eq!(client.join(&mut a), b"pong\n");
    // The client closed: EOF, and poll reports both directions.
    assert_eq!(
        poll_until(&mut a, c, PollFlags::RD),
        PollFlags::RD | PollFlags::WR
    );
    assert_eq!(a.recv(c, &mut buf, RecvFlags::NONE), Ok(0));
    a.close(c);
    a.close(l);
}

#[test]
fn socket_options_on_the_stack() {
    let (mut a, b) = boards();
    let t = a.socket(AF_INET, SOCK_STREAM, 0).unwrap();
    for opt in [SO_REUSEADDR, SO_KEEPALIVE, TCP_NODELAY] {
        assert_eq!(a.setsockopt(t, SOL_SOCKET, opt, 1), Ok(OptOutcome::Applied));
    }
    assert_eq!(
        a.setsockopt(t, SOL_SOCKET, 0x7777, 1),
        Ok(OptOutcome::NotImplemented)
    );
    let u = a.socket(AF_INET, SOCK_DGRAM, 0).unwrap();
    assert_eq!(
        a.setsockopt(u, IPPROTO_TCP, TCP_NODELAY, 1),
        Err(os(Errno::EINVAL))
    );
    // Broadcast needs no SO_BROADCAST (MicroPython's lwIP is built without IP_SOF_BROADCAST);
    // setting it is accepted.
    let everyone = SocketAddrV4::new(Ipv4Addr::new(10, 77, 0, 255), 9100);
    let receiver = Board::spawn(b, |t| {
        let u = t.socket(AF_INET, SOCK_DGRAM, 0).unwrap();
        t.bind(u, parse_inet_addr("", 9100).unwrap()).unwrap();
        t.set_timeout(u, Timeout::After(10_000_000));
        let mut buf = [0u8; 16];
        let (n, from) = t.recvfrom(u, &mut buf, RecvFlags::NONE).unwrap();
        (buf[..n].to_vec(), from)
    });
    settle(&mut a, 50);
    assert_eq!(
        a.setsockopt(u, SOL_SOCKET, SO_BROADCAST, 0),
        Ok(OptOutcome::Applied)
    );
    assert_eq!(a.sendto(u, b"all", everyone), Ok(3));
    let (got, from) = receiver.join(&mut a);
    assert_eq!(got, b"all");
    assert_eq!(*from.ip(), A_IP);
}

/// Polls `stack` once and sleeps like `upy-socket`'s waits do (until the next timer, at most
/// 1 ms, not after progress): the raw baseline of the throughput benchmark.
fn raw_wait<S: netstack::api::SocketStack>(stack: &mut S, clock: &StdClock) {
    use upy_socket::Clock;
    let now = clock.now();
    let out = stack.poll(now);
    if !out.progressed {
        let wake = out.next_poll.unwrap_or(u64::MAX).min(now + 1_000);
        if wake > now {
            thread::sleep(Duration::from_micros(wake - now));
        }
    }
}

/// Bytes moved A→B through `upy-socket` and through the bare `SocketStack`, same wire, same
/// wait policy; prints both rates and their ratio (run with `--ignored --nocapture`).
#[test]
#[ignore = "benchmark"]
fn bench_tcp_throughput_ratio() {
    use netstack::api::{NetError, SocketStack, TcpPhase, Transport};
    const TOTAL: usize = 16 * 1024 * 1024;
    let data = pattern(64 * 1024, 9);

    // Through upy-socket.
    let (mut a, b) = boards();
    let server = Board::spawn(b, |t| {
        let l = listener(t, 7100, None);
        let (c, _) = t.accept(l).unwrap();
        t.set_timeout(c, Timeout::After(20_000_000));
        let mut buf = vec![0u8; 16 * 1024];
        let mut n = 0;
        while let Ok(Some(k)) = t.read(c, &mut buf) {
            if k == 0 {
                break;
            }
            n += k;
        }
        n
    });
    let s = a.socket(AF_INET, SOCK_STREAM, 0).unwrap();
    a.set_timeout(s, Timeout::After(20_000_000));
    a.connect(s, b_addr(7100)).unwrap();
    let start = Instant::now();
    let mut sent = 0;
    while sent < TOTAL {
        a.sendall(s, &data).unwrap();
        sent += data.len();
    }
    a.close(s);
    assert_eq!(server.join(&mut a), TOTAL);
    let upy = TOTAL as f64 / start.elapsed().as_secs_f64() / 1e6;

    // The bare stack.
    let (ea, eb) = wire();
    let mut sa = stack(ea, 1, A_IP);
    let sb = stack(eb, 2, B_IP);
    let receiver = thread::spawn(move || {
        let mut t = sb;
        let clock = StdClock::new();
        let st = t.stack_mut();
        let l = st.open(Transport::Tcp).unwrap();
        st.bind(l, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 7101))
            .unwrap();
        st.listen(l, 1).unwrap();
        let c = loop {
            match st.accept(l) {
                Ok((c, _)) => break c,
                Err(NetError::WouldBlock) => raw_wait(st, &clock),
                Err(e) => panic!("{e:?}"),
            }
        };
        let mut buf = vec![0u8; 16 * 1024];
        let mut n = 0;
        let end = Instant::now() + LIMIT;
        while Instant::now() < end {
            match st.recv(c, &mut buf) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(NetError::WouldBlock) => raw_wait(st, &clock),
                Err(e) => panic!("{e:?}"),
            }
        }
        n
    });
    let clock = StdClock::new();
    let st = sa.stack_mut();
    let c = st.open(Transport::Tcp).unwrap();
    st.connect(c, b_addr(7101)).unwrap();
    while st.tcp_phase(c) != Ok(TcpPhase::Connected) {
        raw_wait(st, &clock);
    }
    let start = Instant::now();
    let mut sent = 0;
    while sent < TOTAL {
        let chunk = &data[sent % data.len()..];
        let chunk = &chunk[..chunk.len().min(TOTAL - sent)];
        match st.send(c, chunk) {
            Ok(k) => sent += k,
            Err(NetError::WouldBlock) => raw_wait(st, &clock),
            Err(e) => panic!("{e:?}"),
        }
    }
    st.close(c);
    while !receiver.is_finished() {
        raw_wait(st, &clock);
    }
    assert_eq!(receiver.join().unwrap(), TOTAL);
    let raw = TOTAL as f64 / start.elapsed().as_secs_f64() / 1e6;
    println!(
        "TCP A->B over the in-memory wire: upy-socket {upy:.1} MB/s, bare SocketStack {raw:.1} MB/s, ratio {:.2}",
        upy / raw
    );
}

#[test]
fn server_restart_on_the_same_port_while_old_connections_close() {
    let (mut a, b) = boards();
    let (next, next_rx) = mpsc::channel::<()>();
    let server = Board::spawn(b, move |t| {
        let mut served = Vec::new();
        for _ in 0..2 {
            // listener() sets SO_REUSEADDR, so the port is free again at once.
            let l = listener(t, 7020, Some(1));
            next.send(()).unwrap();
            let (c, _) = t.accept(l).unwrap();
            t.set_timeout(c, Timeout::After(10_000_000));
            let mut buf = [0u8; 8];
            let n = t.read(c, &mut buf[..5]).unwrap().unwrap();
            t.sendall(c, &buf[..n]).unwrap();
            served.push(buf[..n].to_vec());
            // Both ends close at about the same time.
            t.close(c);
            t.close(l);
        }
        served
    });
    for msg in [b"first", b"again"] {
        // Wait until the server listens (again).
        wait_signal(&mut a, &next_rx);
        let s = a.socket(AF_INET, SOCK_STREAM, 0).unwrap();
        a.set_timeout(s, Timeout::After(10_000_000));
        a.connect(s, b_addr(7020)).unwrap();
        a.sendall(s, msg).unwrap();
        let mut back = [0u8; 5];
        assert_eq!(a.read(s, &mut back), Ok(Some(5)));
        assert_eq!(&back, msg);
        a.close(s);
    }
    assert_eq!(server.join(&mut a), [b"first".to_vec(), b"again".to_vec()]);
}
