//! Reliability against real Linux peers, on the real driver path (netstack over the RTL8152
//! driver over the DWC2 host driver over the DWC2 model, cabled to a TAP in a namespace the
//! test creates): connection churn both ways through `upy-socket` with exact pool counts
//! afterwards, a spoofed SYN flood during a transfer, UDP floods during transfers (at the
//! board's line rate, and unpaced: as fast as Linux's TAP takes datagrams, where Linux drops
//! most frames before the board sees them and TCP mostly waits for the flood to end), and ARP
//! pressure from hundreds of addresses. Root only. Every test ends by checking that neither
//! hardware model saw a driver error.
//!
//! The churn tests run the full 10,000 cycles in CI: each takes about a second of churn plus
//! smoltcp's 10 s TIME-WAIT while the pool settles (measured at the dev profile).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use integration_tests::rawframe::{self, Endpoints, PacketSocket};
use integration_tests::tap::TapPeer;
use k230_hal::sim::board::SimBoard;
use k230_testkit::netns::Netns;
use k230_testkit::require::have_root;
use netstack::api::Ipv4Config;
use netstack::{HeapStorage, InterfaceControl, PoolUsage, Seed, Stack};
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};
use upy_socket::consts::{AF_INET, SOCK_DGRAM, SOCK_STREAM};
use upy_socket::{RecvFlags, Socket, SocketError, Sockets, StdClock, Timeout};

/// Connect/send/close cycles of each churn test.
const CHURN_CYCLES: usize = 10_000;
/// Bytes each churn cycle sends and gets echoed.
const MESSAGE: usize = 64;
/// Handles in the socket table.
const HANDLES: usize = 16;
/// Upper bound for any one wait (never reached when things work).
const LIMIT: Duration = Duration::from_secs(30);
const MIB: usize = 1024 * 1024;

type Table = Sockets<Stack<'static, SimBoard>, StdClock, HANDLES>;

/// A board running `upy-socket` over netstack on the simulated board, cabled to a TAP whose
/// other end is in its own namespace with address `.1` of `10.78.<subnet>.0/24`.
struct Rig {
    table: Table,
    ns: Netns,
    tap: String,
    linux_ip: Ipv4Addr,
    board_ip: Ipv4Addr,
    board_mac: [u8; 6],
}

impl Rig {
    fn new(subnet: u8) -> Self {
        let linux_ip = Ipv4Addr::new(10, 78, subnet, 1);
        let board_ip = Ipv4Addr::new(10, 78, subnet, 2);
        let (TapPeer { ns, ifname: tap }, wire) =
            TapPeer::new("k230r", linux_ip, 24).expect("TAP in a netns");
        let board =
            SimBoard::new(wire, [0x00, 0xe0, 0x4c, 0x52, 0x78, subnet]).expect("simulated board");
        let clock = StdClock::new();
        // The board's stack: the one assembly (supervised NIC, one address policy).
        let mut stack = k230_board::supervised(
            board,
            Seed::from_os().expect("OS entropy"),
            HeapStorage::default().parts(),
            upy_socket::Clock::now(&clock),
        );
        let board_mac = stack.mac();
        stack
            .set_static(Ipv4Config {
                address: board_ip,
                netmask: Ipv4Addr::new(255, 255, 255, 0),
                gateway: linux_ip,
                dns: Ipv4Addr::UNSPECIFIED,
            })
            .expect("valid config");
        Rig {
            table: Sockets::new(stack, clock),
            ns,
            tap,
            linux_ip,
            board_ip,
            board_mac,
        }
    }

    fn stack(&self) -> &Stack<'static, SimBoard> {
        self.table.stack()
    }

    /// Polls the board until `done` holds or `limit` passes; naps 200 us when idle.
    fn pump_until(&mut self, limit: Duration, mut done: impl FnMut(&mut Table) -> bool) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            if done(&mut self.table) {
                return true;
            }
            if !self.table.poll().progressed {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        done(&mut self.table)
    }

    /// Polls until every socket is free again (closes and TIME-WAIT finish; smoltcp's
    /// TIME-WAIT is 10 s), at most `limit`.
    fn settle(&mut self, limit: Duration) -> PoolUsage {
        self.pump_until(limit, |t| all_free(&t.stack().pool_usage()));
        self.stack().pool_usage()
    }

    /// Frames Linux's TAP dropped because the board had not read its queue yet
    /// (`tx_dropped` of the TAP in the namespace).
    fn tap_tx_dropped(&self) -> u64 {
        let path = format!("/sys/class/net/{}/statistics/tx_dropped", self.tap);
        let out = self
            .ns
            .command("cat")
            .arg(&path)
            .output()
            .expect("read TAP statistics");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn check_models(&mut self) {
        let board = self.table.stack_mut().device_mut();
        assert_eq!(board.nic_report().errors, vec![], "RTL8152 model errors");
        assert_eq!(
            board.usb_violations(),
            Vec::<String>::new(),
            "DWC2 model violations"
        );
    }
}

/// Whether nothing is in use: every socket id, TCP and UDP socket and DNS query free and every
/// buffer empty.
fn all_free(u: &PoolUsage) -> bool {
    u.ids_in_use == 0
        && u.tcp_free == u.tcp_total
        && u.tcp_owned + u.tcp_pooled + u.tcp_lingering + u.tcp_time_wait == 0
        && u.udp_in_use + u.udp_draining == 0
        && u.dns_in_use == 0
        && u.bytes_buffered == 0
}

/// Asserts exact counts of a fully free pool.
fn assert_all_free(u: &PoolUsage, table: &Table) {
    let free = PoolUsage {
        ids_total: u.ids_total,
        tcp_total: u.tcp_total,
        tcp_free: u.tcp_total,
        udp_total: u.udp_total,
        ..PoolUsage::default()
    };
    assert_eq!(*u, free, "pool after churn");
    assert_eq!(table.handles_in_use(), 0, "socket handles after churn");
}

/// The message of cycle `i`: its number, then a pattern derived from it.
fn message(i: usize) -> [u8; MESSAGE] {
    let mut m = [0u8; MESSAGE];
    m[..8].copy_from_slice(&(i as u64).to_le_bytes());
    for (k, b) in m[8..].iter_mut().enumerate() {
        *b = (i.wrapping_mul(31) ^ k.wrapping_mul(7)) as u8;
    }
    m
}

/// Waits up to `ms` for `fd` to be readable.
fn readable(fd: i32, ms: i32) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `p` is one valid pollfd for the duration of the call.
    unsafe { libc::poll(&mut p, 1, ms) > 0 }
}

/// Reads exactly `buf.len()` bytes through `upy-socket`.
fn recv_exact(t: &mut Table, s: Socket, buf: &mut [u8]) -> Result<(), SocketError> {
    let mut got = 0;
    while got < buf.len() {
        let n = t.recv(s, &mut buf[got..], RecvFlags::NONE)?;
        if n == 0 {
            return Err(SocketError::Value("early end of stream"));
        }
        got += n;
    }
    Ok(())
}

/// A Linux echo server in `ns` on `addr`: echoes each connection's bytes until EOF, checks they
/// are the message of the cycle they name, and returns how many connections were verified.
fn linux_echo_server(ns: &Netns, addr: SocketAddrV4, stop: Arc<AtomicBool>) -> JoinHandle<usize> {
    let ready = Arc::new(std::sync::Barrier::new(2));
    let ready_peer = ready.clone();
    let handle = ns
        .spawn(move || {
            let listener = TcpListener::bind(addr).expect("bind in netns");
            ready_peer.wait();
            let mut verified = 0;
            while !stop.load(Ordering::Relaxed) {
                if !readable(listener.as_raw_fd(), 100) {
                    continue;
                }
                let (mut conn, _) = listener.accept().expect("accept");
                conn.set_read_timeout(Some(Duration::from_secs(10)))
                    .unwrap();
                let mut all = Vec::new();
                let mut buf = [0u8; MESSAGE];
                loop {
                    match conn.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            conn.write_all(&buf[..n]).expect("echo");
                            all.extend_from_slice(&buf[..n]);
                        }
                        Err(e) => panic!("server read: {e}"),
                    }
                }
                let cycle = u64::from_le_bytes(all[..8].try_into().unwrap()) as usize;
                assert_eq!(all, message(cycle), "cycle {cycle} as the server got it");
                verified += 1;
            }
            verified
        })
        .expect("spawn server");
    ready.wait();
    handle
}

/// Board connects, sends, reads the echo, closes: `n` times through `upy-socket`.
fn churn_board_to_linux(n: usize, subnet: u8) {
    let mut rig = Rig::new(subnet);
    let server = SocketAddrV4::new(rig.linux_ip, 7100);
    let stop = Arc::new(AtomicBool::new(false));
    let echo = linux_echo_server(&rig.ns, server, stop.clone());
    let before = rig.stack().pool_usage();
    assert!(all_free(&before), "{before:?}");
    let start = Instant::now();
    let mut most_lingering = 0;
    for i in 0..n {
        let t = &mut rig.table;
        let s = t.socket(AF_INET, SOCK_STREAM, 0).expect("socket");
        t.set_timeout(s, Timeout::After(10_000_000));
        t.connect(s, server)
            .unwrap_or_else(|e| panic!("cycle {i}: connect: {e:?}"));
        let m = message(i);
        t.sendall(s, &m)
            .unwrap_or_else(|e| panic!("cycle {i}: sendall: {e:?}"));
        let mut back = [0u8; MESSAGE];
        recv_exact(t, s, &mut back).unwrap_or_else(|e| panic!("cycle {i}: recv: {e:?}"));
        assert_eq!(back, m, "cycle {i}: echo");
        t.close(s);
        most_lingering = most_lingering.max(t.stack().pool_usage().tcp_lingering);
    }
    let elapsed = start.elapsed();
    let during = rig.stack().pool_usage();
    let after = rig.settle(Duration::from_secs(20));
    stop.store(true, Ordering::Relaxed);
    let verified = echo.join().expect("server thread");
    println!(
        "churn board->linux: {n} cycles in {:.2} s ({:.0} cycles/s); most lingering {most_lingering}; \
         right after: {during:?}; after settling: {after:?}; drops {:?}",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        rig.stack().drops()
    );
    assert_eq!(verified, n, "connections the server verified");
    assert_all_free(&after, &rig.table);
    rig.check_models();
}

/// Linux connects, sends, reads the echo, reads EOF: `n` times; the board accepts, receives,
/// echoes and closes through `upy-socket`.
fn churn_linux_to_board(n: usize, subnet: u8) {
    let mut rig = Rig::new(subnet);
    let board = SocketAddrV4::new(rig.board_ip, 7200);
    let t = &mut rig.table;
    let listener = t.socket(AF_INET, SOCK_STREAM, 0).unwrap();
    t.bind(listener, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 7200))
        .unwrap();
    t.listen(listener, Some(4)).unwrap();
    t.set_timeout(listener, Timeout::After(10_000_000));
    let client = rig
        .ns
        .spawn(move || {
            for i in 0..n {
                let mut conn = TcpStream::connect_timeout(&board.into(), Duration::from_secs(10))
                    .unwrap_or_else(|e| panic!("cycle {i}: connect: {e}"));
                conn.set_read_timeout(Some(Duration::from_secs(10)))
                    .unwrap();
                let m = message(i);
                conn.write_all(&m).expect("write");
                let mut back = [0u8; MESSAGE];
                conn.read_exact(&mut back).expect("read echo");
                assert_eq!(back, m, "cycle {i}: echo as Linux got it");
                let mut rest = Vec::new();
                conn.read_to_end(&mut rest).expect("read EOF");
                assert!(rest.is_empty(), "cycle {i}: bytes after the echo");
            }
        })
        .unwrap();
    let start = Instant::now();
    for i in 0..n {
        let t = &mut rig.table;
        let (c, _) = t
            .accept(listener)
            .unwrap_or_else(|e| panic!("cycle {i}: accept: {e:?}"));
        t.set_timeout(c, Timeout::After(10_000_000));
        let mut m = [0u8; MESSAGE];
        recv_exact(t, c, &mut m).unwrap_or_else(|e| panic!("cycle {i}: recv: {e:?}"));
        assert_eq!(m, message(i), "cycle {i}: as the board got it");
        t.sendall(c, &m)
            .unwrap_or_else(|e| panic!("cycle {i}: sendall: {e:?}"));
        t.close(c);
    }
    let elapsed = start.elapsed();
    assert!(rig.pump_until(LIMIT, |_| client.is_finished()));
    client.join().expect("client thread");
    rig.table.close(listener);
    let after = rig.settle(Duration::from_secs(20));
    println!(
        "churn linux->board: {n} cycles in {:.2} s ({:.0} cycles/s); after settling: {after:?}",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64()
    );
    assert_all_free(&after, &rig.table);
    rig.check_models();
}

#[test]
fn churn_board_connects_to_linux_and_frees_everything() {
    if !have_root("churn_board_connects_to_linux_and_frees_everything") {
        return;
    }
    churn_board_to_linux(CHURN_CYCLES, 1);
}

#[test]
fn churn_linux_connects_to_the_board_and_frees_everything() {
    if !have_root("churn_linux_connects_to_the_board_and_frees_everything") {
        return;
    }
    churn_linux_to_board(CHURN_CYCLES, 2);
}

fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..len).map(|_| rng.gen()).collect()
}

fn sha(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// A Linux client in `ns` that connects to `to` (retrying refused or timed-out attempts for up
/// to 60 s, as an application would), sends `data`, shuts down its side and waits for the
/// board to close; returns how long it took from the first attempt.
fn linux_sender(ns: &Netns, to: SocketAddrV4, data: Vec<u8>) -> JoinHandle<Duration> {
    ns.spawn(move || {
        let start = Instant::now();
        let mut conn = loop {
            match TcpStream::connect_timeout(&to.into(), Duration::from_secs(20)) {
                Ok(c) => break c,
                Err(e) if start.elapsed() < Duration::from_secs(60) => {
                    eprintln!("sender: connect: {e}; retrying");
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("sender: connect: {e}"),
            }
        };
        conn.write_all(&data).expect("write");
        conn.shutdown(std::net::Shutdown::Write).expect("shutdown");
        let mut rest = Vec::new();
        let _ = conn.read_to_end(&mut rest);
        start.elapsed()
    })
    .expect("spawn sender")
}

/// The board side of one transfer: accepts one connection on `listener`, reads it to the end,
/// closes it; returns the bytes' hash and count.
fn board_receive(t: &mut Table, listener: Socket) -> ([u8; 32], usize) {
    let (c, _) = t.accept(listener).expect("accept");
    t.set_timeout(c, Timeout::After(60_000_000));
    let mut hash = Sha256::new();
    let mut total = 0;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match t.recv(c, &mut buf, RecvFlags::NONE) {
            Ok(0) => break,
            Ok(n) => {
                hash.update(&buf[..n]);
                total += n;
            }
            Err(e) => panic!("board recv after {total} bytes: {e:?}"),
        }
    }
    t.close(c);
    (hash.finalize().into(), total)
}

/// A listening board socket on `port` with `backlog`, accepting with a 60 s timeout.
fn board_listener(t: &mut Table, port: u16, backlog: i64) -> Socket {
    let l = t.socket(AF_INET, SOCK_STREAM, 0).unwrap();
    t.bind(l, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port))
        .unwrap();
    t.listen(l, Some(backlog)).unwrap();
    t.set_timeout(l, Timeout::After(60_000_000));
    l
}

/// One 1 MiB Linux -> board transfer; asserts it is byte-exact and returns the client's time.
fn transfer(rig: &mut Rig, listener: Socket, port: u16, seed: u64) -> Duration {
    transfer_prepared(rig, listener, port, random_bytes(MIB, seed))
}

/// Spoofed sources in the namespace's subnet: `.10` to `.249`, each with its own MAC.
fn spoofed(subnet: u8, i: usize) -> ([u8; 6], Ipv4Addr) {
    let host = 10 + (i % 240) as u8;
    (
        [0x02, 0x5f, 0, subnet, (i >> 8) as u8, i as u8],
        Ipv4Addr::new(10, 78, subnet, host),
    )
}

#[test]
fn spoofed_syn_flood_does_not_stop_a_real_client() {
    if !have_root("spoofed_syn_flood_does_not_stop_a_real_client") {
        return;
    }
    const SUBNET: u8 = 3;
    const SYNS: usize = 1_000;
    const PORT: u16 = 7300;
    let mut rig = Rig::new(SUBNET);
    let listener = board_listener(&mut rig.table, PORT, 4);
    let quiet = transfer(&mut rig, listener, PORT, 1);

    // 1,000 SYNs from spoofed addresses and ports, one every 2 ms, while the client transfers.
    let (tap, board_ip, board_mac) = (rig.tap.clone(), rig.board_ip, rig.board_mac);
    let flood = rig
        .ns
        .spawn(move || {
            let socket = PacketSocket::open(&tap).expect("packet socket");
            let mut rng = rand::rngs::StdRng::seed_from_u64(3);
            let mut sent = 0;
            for i in 0..SYNS {
                let (src_mac, src) = spoofed(SUBNET, i);
                let ends = Endpoints {
                    src_mac,
                    dst_mac: board_mac,
                    src,
                    dst: board_ip,
                };
                let syn = rawframe::tcp_syn(ends, rng.gen_range(1024..65000), PORT, rng.gen());
                if socket.send(&syn).is_ok() {
                    sent += 1;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            sent
        })
        .unwrap();
    // Let the flood fill the backlog first.
    rig.pump_until(Duration::from_millis(100), |_| false);
    let flooded = transfer(&mut rig, listener, PORT, 2);
    assert!(rig.pump_until(LIMIT, |_| flood.is_finished()));
    let sent = flood.join().expect("flood thread");
    let drops = rig.stack().drops();
    println!(
        "SYN flood: {sent} spoofed SYNs sent; 1 MiB took {:.3} s quiet, {:.3} s during the flood; \
         drops {drops:?}",
        quiet.as_secs_f64(),
        flooded.as_secs_f64()
    );
    assert_eq!(sent, SYNS);
    assert!(
        drops.syn_backlog_full > 0,
        "the flood never filled the backlog"
    );
    assert!(
        drops.half_open_evicted > 0,
        "no half-open connection evicted"
    );
    rig.table.close(listener);
    let after = rig.settle(Duration::from_secs(20));
    assert_all_free(&after, &rig.table);
    rig.check_models();
}

#[test]
fn udp_flood_is_dropped_by_count_while_tcp_completes() {
    if !have_root("udp_flood_is_dropped_by_count_while_tcp_completes") {
        return;
    }
    udp_flood_during_transfers(4, Flood::LineRate);
}

#[test]
fn unpaced_udp_flood_is_dropped_by_count_while_tcp_completes() {
    if !have_root("unpaced_udp_flood_is_dropped_by_count_while_tcp_completes") {
        return;
    }
    udp_flood_during_transfers(6, Flood::Unpaced);
}

/// How fast Linux floods the board.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flood {
    /// At the line rate of the board's 100 Mbit/s link (the RTL8152's; the TAP itself has no
    /// rate).
    LineRate,
    /// As fast as the TAP takes datagrams (a million and more a second), far beyond what a
    /// real link carries: the driver's and models' worst case.
    Unpaced,
}

/// Linux sends 512-byte datagrams, alternately to a bound socket nobody reads and to an
/// unbound port, for two seconds while 1 MiB transfers run back to back; every datagram that
/// reached the stack is counted, the transfers complete byte-exact and neither model saw a
/// driver error.
fn udp_flood_during_transfers(subnet: u8, pace: Flood) {
    const PORT: u16 = 7400;
    const UNREAD: u16 = 7401;
    const UNBOUND: u16 = 7402;
    /// 512-byte datagrams per second on 100 Mbit/s Ethernet: 554 bytes of frame plus 8 of
    /// preamble and 12 of inter-frame gap, 574 bytes = 4592 bits each.
    const LINE_RATE_FPS: u64 = 100_000_000 / 4_592;
    /// Bound of an unpaced flood's datagrams (it stops at FLOOD_TIME before reaching it).
    const UNPACED_MAX: u64 = 20_000_000;
    const FLOOD_TIME: Duration = Duration::from_secs(2);
    let mut rig = Rig::new(subnet);
    let listener = board_listener(&mut rig.table, PORT, 2);
    let unread = rig.table.socket(AF_INET, SOCK_DGRAM, 0).unwrap();
    rig.table
        .bind(unread, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, UNREAD))
        .unwrap();
    let quiet = transfer(&mut rig, listener, PORT, 3);

    let stop = Arc::new(AtomicBool::new(false));
    let stop_flood = stop.clone();
    let (linux_ip, board_ip) = (rig.linux_ip, rig.board_ip);
    let flood = rig
        .ns
        .spawn(move || {
            let socket = UdpSocket::bind(SocketAddrV4::new(linux_ip, 0)).expect("bind");
            let payload = [0x5a; 512];
            let mut sent = 0u64;
            let start = Instant::now();
            while !stop_flood.load(Ordering::Relaxed) && start.elapsed() < FLOOD_TIME {
                let due = match pace {
                    Flood::LineRate => {
                        start.elapsed().as_micros() as u64 * LINE_RATE_FPS / 1_000_000
                    }
                    Flood::Unpaced => (sent + 1024).min(UNPACED_MAX),
                };
                while sent < due {
                    let port = if sent % 2 == 0 { UNREAD } else { UNBOUND };
                    // A full socket buffer is a frame the link did not carry: count it anyway,
                    // the pace is the cable's (or, unpaced, the attempt's).
                    let _ = socket.send_to(&payload, SocketAddrV4::new(board_ip, port));
                    sent += 1;
                }
                if pace == Flood::LineRate {
                    std::thread::sleep(Duration::from_micros(500));
                }
            }
            (sent, start.elapsed())
        })
        .unwrap();
    rig.pump_until(Duration::from_millis(50), |_| false);
    let mut flooded = Vec::new();
    while !flood.is_finished() {
        flooded.push(transfer(&mut rig, listener, PORT, 4 + flooded.len() as u64));
    }
    let flooded_mean = flooded.iter().sum::<Duration>() / flooded.len() as u32;
    stop.store(true, Ordering::Relaxed);
    assert!(rig.pump_until(LIMIT, |_| flood.is_finished()));
    let (sent, flood_time) = flood.join().expect("flood thread");
    rig.pump_until(Duration::from_millis(200), |_| false);
    // What the unread socket did take.
    rig.table.set_timeout(unread, Timeout::NonBlocking);
    let mut delivered = 0u64;
    let mut buf = [0u8; 600];
    while rig
        .table
        .recvfrom(unread, &mut buf, RecvFlags::NONE)
        .is_ok()
    {
        delivered += 1;
    }
    let drops = rig.stack().drops();
    let nic = rig.table.stack_mut().device_mut().counters();
    let model = rig.table.stack_mut().device_mut().nic_report();
    let tun_dropped = rig.tap_tx_dropped();
    println!(
        "UDP flood ({pace:?}): {sent} datagrams sent by Linux in {:.2} s ({:.0}/s), {} reached the stack ({} frames from the \
         driver in all); counted: {} to no socket, {} to a full socket, {delivered} delivered; \
         1 MiB took {:.3} s quiet, {:.3} s on average over {} transfers during the flood; \
         Linux's TAP dropped {tun_dropped} frames it could not hand to the board",
        flood_time.as_secs_f64(),
        sent as f64 / flood_time.as_secs_f64(),
        drops.udp_received,
        nic.rx_frames,
        drops.udp_no_socket,
        drops.udp_rx_full,
        quiet.as_secs_f64(),
        flooded_mean.as_secs_f64(),
        flooded.len()
    );
    assert_eq!(
        drops.udp_received,
        drops.udp_no_socket + drops.udp_rx_full + delivered,
        "every datagram that reached the stack is accounted for"
    );
    assert!(
        drops.udp_no_socket > 0 && drops.udp_rx_full > 0,
        "{drops:?}"
    );
    assert!(drops.udp_received <= sent);
    // The board takes every frame the TAP hands it: the model delivers them all to the
    // driver, which loses none. What it cannot take waits in (or falls off) Linux's queue.
    assert_eq!(nic.rx_frames, model.rx_frames);
    assert_eq!((nic.rx_dropped, nic.rx_errors, nic.rx_malformed), (0, 0, 0));
    if pace == Flood::Unpaced {
        assert!(
            tun_dropped > 0,
            "an unpaced flood outruns the board: Linux drops and counts the excess"
        );
    }
    rig.table.close(unread);
    rig.table.close(listener);
    let after = rig.settle(Duration::from_secs(20));
    assert_all_free(&after, &rig.table);
    rig.check_models();
}

#[test]
fn arp_pressure_from_hundreds_of_addresses_keeps_the_real_peer_working() {
    if !have_root("arp_pressure_from_hundreds_of_addresses_keeps_the_real_peer_working") {
        return;
    }
    const SUBNET: u8 = 5;
    const SOURCES: usize = 240;
    const ROUNDS: usize = 3;
    const PORT: u16 = 7500;
    let mut rig = Rig::new(SUBNET);
    let listener = board_listener(&mut rig.table, PORT, 2);
    let (tap, board_ip, board_mac, linux_ip) =
        (rig.tap.clone(), rig.board_ip, rig.board_mac, rig.linux_ip);

    // Every spoofed source asks for the board's MAC, then pings it; three rounds.
    let storm = rig
        .ns
        .spawn(move || {
            let socket = PacketSocket::open(&tap).expect("packet socket");
            let mut sent = 0;
            for round in 0..ROUNDS {
                for i in 0..SOURCES {
                    let (src_mac, src) = spoofed(SUBNET, i);
                    let ends = Endpoints {
                        src_mac,
                        dst_mac: board_mac,
                        src,
                        dst: board_ip,
                    };
                    let arp = rawframe::arp_request(src_mac, src, board_ip);
                    let ping = rawframe::icmp_echo(ends, i as u16, round as u16);
                    sent += usize::from(socket.send(&arp).is_ok());
                    sent += usize::from(socket.send(&ping).is_ok());
                    std::thread::sleep(Duration::from_micros(500));
                }
            }
            sent
        })
        .unwrap();
    // Meanwhile, and after, the real peer exchanges data with the board.
    let stop = Arc::new(AtomicBool::new(false));
    let stop_watch = stop.clone();
    let tap = rig.tap.clone();
    let watcher = rig
        .ns
        .spawn(move || {
            // ARP requests the board sends for the real peer: each one is a re-resolution.
            let socket = PacketSocket::open(&tap).expect("packet socket");
            let (mut replies, mut asks) = (0, 0);
            let mut buf = [0u8; 2048];
            while !stop_watch.load(Ordering::Relaxed) {
                if let Ok(Some(n)) = socket.recv(&mut buf, 50) {
                    replies += usize::from(rawframe::is_arp_reply_from(&buf[..n], board_ip));
                    asks += usize::from(rawframe::is_arp_request(&buf[..n], board_ip, linux_ip));
                }
            }
            (replies, asks)
        })
        .unwrap();
    let mut rounds = 0;
    let start = Instant::now();
    while !storm.is_finished() || rounds < 3 {
        assert!(start.elapsed() < LIMIT, "storm did not end");
        let data = random_bytes(64 * 1024, 100 + rounds);
        transfer_prepared(&mut rig, listener, PORT, data);
        rounds += 1;
    }
    let sent = storm.join().expect("storm thread");
    // After the storm: the real peer still pings the board.
    let mut ping = rig.ns.command("ping");
    ping.args(["-c", "2", "-i", "0.2", "-W", "2", &board_ip.to_string()]);
    let mut ping = k230_testkit::netns::Guarded::spawn(ping).expect("ping");
    let mut status = None;
    assert!(rig.pump_until(Duration::from_secs(15), |_| {
        status = ping.child.try_wait().expect("ping status");
        status.is_some()
    }));
    stop.store(true, Ordering::Relaxed);
    let (replies, asks) = watcher.join().expect("watcher thread");
    println!(
        "ARP pressure: {sent} frames from {SOURCES} spoofed sources ({ROUNDS} rounds of ARP \
         request + ping); {rounds} 64 KiB transfers with the real peer meanwhile; the board sent \
         {replies} ARP replies and asked for the real peer {asks} times; neighbor cache bound \
         {} entries (smoltcp IFACE_NEIGHBOR_CACHE_COUNT)",
        smoltcp::config::IFACE_NEIGHBOR_CACHE_COUNT
    );
    assert!(
        status.expect("ping exited").success(),
        "ping after the storm"
    );
    assert_eq!(sent, 2 * SOURCES * ROUNDS);
    assert!(
        replies >= SOURCES,
        "the board answered only {replies} ARP requests"
    );
    rig.table.close(listener);
    let after = rig.settle(Duration::from_secs(20));
    assert_all_free(&after, &rig.table);
    rig.check_models();
}

/// [`transfer`] of given bytes.
fn transfer_prepared(rig: &mut Rig, listener: Socket, port: u16, data: Vec<u8>) -> Duration {
    let expected = sha(&data);
    let len = data.len();
    let sender = linux_sender(&rig.ns, SocketAddrV4::new(rig.board_ip, port), data);
    let (digest, total) = board_receive(&mut rig.table, listener);
    assert!(rig.pump_until(LIMIT, |_| sender.is_finished()));
    let took = sender.join().expect("sender thread");
    assert_eq!(total, len);
    assert_eq!(digest, expected, "bytes differ");
    took
}
