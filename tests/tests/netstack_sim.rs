//! Two netstack `Stack`s talking over an in-memory wire (optionally lossy and reordering), on a
//! virtual clock: TCP/UDP delivery byte for byte, backlog without RST, failure reasons,
//! background close, bind rules.

use std::net::{Ipv4Addr, SocketAddrV4};

use integration_tests::rawframe;
use netstack::api::{
    Ipv4Config, Micros, NetError, SocketId, SocketOption, SocketStack, TcpPhase, Transport,
};
use netstack::phy::{wire, Reorder, WireEnd};
use netstack::{
    HeapStorage, InterfaceControl, Seed, Stack, StackConfig, StaticBuffers, StaticStorage,
};
use rand::{Rng, SeedableRng};
use smoltcp::phy::{Device, FaultInjector};

const A_IP: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 1);
const B_IP: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 2);

fn config(address: Ipv4Addr) -> Ipv4Config {
    Ipv4Config {
        address,
        netmask: Ipv4Addr::new(255, 255, 255, 0),
        gateway: Ipv4Addr::UNSPECIFIED,
        dns: Ipv4Addr::UNSPECIFIED,
    }
}

fn storage() -> HeapStorage {
    HeapStorage {
        tcp_sockets: 8,
        tcp_buffer: 16 * 1024,
        udp_sockets: 4,
        udp_buffer: 8 * 1024,
    }
}

fn stack<D: Device>(device: D, mac_last: u8, ip: Ipv4Addr) -> Stack<'static, D> {
    let mac = [0x02, 0, 0, 0, 0, mac_last];
    let mut stack = Stack::new(
        device,
        StackConfig {
            mac,
            seed: Seed::reproducible(u64::from(mac_last) * 7919),
        },
        storage().parts(),
        0,
    );
    stack.set_static(config(ip)).expect("valid config");
    stack
}

/// Two stacks and a virtual clock.
struct Net<D: Device> {
    a: Stack<'static, D>,
    b: Stack<'static, D>,
    now: Micros,
}

impl<D: Device> Net<D> {
    /// Polls both stacks once and advances the clock: a little while frames flow, else to the
    /// earlier deadline.
    fn step(&mut self) {
        let pa = self.a.poll(self.now);
        let pb = self.b.poll(self.now);
        let idle_until = [pa.next_poll, pb.next_poll]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(self.now + 10_000);
        self.now = if pa.progressed || pb.progressed {
            self.now + 50
        } else {
            idle_until.clamp(self.now + 50, self.now + 100_000)
        };
    }

    /// Steps until `done` holds, at most `steps` times; true when it held.
    fn run_until(&mut self, steps: usize, mut done: impl FnMut(&mut Self) -> bool) -> bool {
        for _ in 0..steps {
            if done(self) {
                return true;
            }
            self.step();
        }
        done(self)
    }

    /// Steps for `micros` of virtual time.
    fn run_for(&mut self, micros: Micros) {
        let end = self.now + micros;
        for _ in 0..1_000_000 {
            if self.now >= end {
                return;
            }
            self.step();
        }
    }
}

fn plain_net() -> Net<WireEnd> {
    let (ea, eb) = wire();
    Net {
        a: stack(ea, 1, A_IP),
        b: stack(eb, 2, B_IP),
        now: 0,
    }
}

type Faulty = FaultInjector<Reorder<WireEnd>>;

fn faulty(end: WireEnd, seed: u32) -> Faulty {
    let mut device = FaultInjector::new(Reorder::new(end, 5, u64::from(seed)), seed);
    device.set_drop_chance(5);
    device.set_corrupt_chance(1);
    device
}

fn faulty_net() -> Net<Faulty> {
    let (ea, eb) = wire();
    Net {
        a: stack(faulty(ea, 11), 1, A_IP),
        b: stack(faulty(eb, 23), 2, B_IP),
        now: 0,
    }
}

/// Opens a listener on B and a connected pair; returns (A's socket, B's accepted socket).
fn connect_pair<D: Device>(net: &mut Net<D>, port: u16) -> (SocketId, SocketId) {
    let listener = listen_on(
        net,
        Side::B,
        SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port),
        1,
    );
    let client = net.a.open(Transport::Tcp).unwrap();
    net.a
        .connect(client, SocketAddrV4::new(B_IP, port))
        .unwrap();
    let mut accepted = None;
    assert!(net.run_until(200_000, |n| {
        if accepted.is_none() {
            accepted = n.b.accept(listener).ok();
        }
        accepted.is_some() && n.a.tcp_phase(client) == Ok(TcpPhase::Connected)
    }));
    let (server, peer) = accepted.unwrap();
    assert_eq!(peer.ip(), &A_IP);
    assert_eq!(Some(peer), net.a.local_addr(client).unwrap());
    net.b.close(listener);
    (client, server)
}

fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..len).map(|_| rng.gen()).collect()
}

/// Which stack of a [`Net`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    A,
    B,
}

impl<D: Device> Net<D> {
    fn side(&mut self, side: Side) -> &mut Stack<'static, D> {
        match side {
            Side::A => &mut self.a,
            Side::B => &mut self.b,
        }
    }
}

/// Moves `len` bytes both ways at once over a connected pair (`x` and `y`, each on its side, the
/// same side for a connection over loopback) and checks every byte.
fn exchange<D: Device>(net: &mut Net<D>, x: (Side, SocketId), y: (Side, SocketId), len: usize) {
    let to_y = random_bytes(len, 1);
    let to_x = random_bytes(len, 2);
    let (mut sent_xy, mut sent_yx) = (0, 0);
    let (mut got_y, mut got_x) = (Vec::new(), Vec::new());
    let mut buf = vec![0u8; 4096];
    let done = net.run_until(5_000_000, |n| {
        if sent_xy < len {
            if let Ok(k) = n.side(x.0).send(x.1, &to_y[sent_xy..]) {
                sent_xy += k;
            }
        }
        if sent_yx < len {
            if let Ok(k) = n.side(y.0).send(y.1, &to_x[sent_yx..]) {
                sent_yx += k;
            }
        }
        while let Ok(k) = n.side(y.0).recv(y.1, &mut buf) {
            assert!(k > 0, "unexpected end of stream at {y:?}");
            got_y.extend_from_slice(&buf[..k]);
        }
        while let Ok(k) = n.side(x.0).recv(x.1, &mut buf) {
            assert!(k > 0, "unexpected end of stream at {x:?}");
            got_x.extend_from_slice(&buf[..k]);
        }
        got_x.len() >= len && got_y.len() >= len
    });
    assert!(
        done,
        "transfer stalled: {x:?} got {} {y:?} got {} of {len}",
        got_x.len(),
        got_y.len()
    );
    assert!(got_y == to_y, "{x:?} -> {y:?} bytes differ");
    assert!(got_x == to_x, "{y:?} -> {x:?} bytes differ");
}

#[test]
fn tcp_is_byte_exact_both_ways() {
    let mut net = plain_net();
    let (a, b) = connect_pair(&mut net, 7000);
    exchange(&mut net, (Side::A, a), (Side::B, b), 512 * 1024);
}

#[test]
fn tcp_is_byte_exact_over_loss_corruption_and_reordering() {
    let mut net = faulty_net();
    let (a, b) = connect_pair(&mut net, 7001);
    exchange(&mut net, (Side::A, a), (Side::B, b), 256 * 1024);
}

#[test]
fn udp_datagrams_are_exact_both_ways() {
    let mut net = plain_net();
    let ua = net.a.open(Transport::Udp).unwrap();
    let ub = net.b.open(Transport::Udp).unwrap();
    net.a
        .bind(ua, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 6000))
        .unwrap();
    net.b.bind(ub, SocketAddrV4::new(B_IP, 6001)).unwrap();
    let datagrams: Vec<Vec<u8>> = (0..6)
        .map(|i| random_bytes(1 + i * 250, i as u64))
        .collect();
    let mut buf = vec![0u8; 2048];
    for (i, d) in datagrams.iter().enumerate() {
        net.a
            .send_to(ua, d, Some(SocketAddrV4::new(B_IP, 6001)))
            .unwrap();
        let reply = random_bytes(d.len(), 100 + i as u64);
        net.b
            .send_to(ub, &reply, Some(SocketAddrV4::new(A_IP, 6000)))
            .unwrap();
        let mut at_b = None;
        let mut at_a = None;
        assert!(net.run_until(10_000, |n| {
            if at_b.is_none() {
                at_b =
                    n.b.recv_from(ub, &mut buf)
                        .ok()
                        .map(|(k, from)| (buf[..k].to_vec(), from));
            }
            if at_a.is_none() {
                at_a =
                    n.a.recv_from(ua, &mut buf)
                        .ok()
                        .map(|(k, from)| (buf[..k].to_vec(), from));
            }
            at_a.is_some() && at_b.is_some()
        }));
        assert_eq!(at_b, Some((d.clone(), SocketAddrV4::new(A_IP, 6000))));
        assert_eq!(at_a, Some((reply, SocketAddrV4::new(B_IP, 6001))));
    }
    // Truncation to the caller's buffer, like recvfrom on a datagram socket.
    net.a
        .send_to(ua, &[7u8; 100], Some(SocketAddrV4::new(B_IP, 6001)))
        .unwrap();
    let mut small = [0u8; 10];
    let mut got = None;
    assert!(net.run_until(10_000, |n| {
        got = n.b.recv_from(ub, &mut small).ok();
        got.is_some()
    }));
    assert_eq!(got.map(|(k, _)| k), Some(10));
    assert_eq!(net.b.recv_from(ub, &mut small), Err(NetError::WouldBlock));
}

/// Sends one datagram of `len` bytes from A's `from` to B's port 6001 and lets it arrive.
fn send_udp(net: &mut Net<WireEnd>, from: SocketId, len: usize) {
    let to = SocketAddrV4::new(B_IP, 6001);
    net.a.send_to(from, &vec![7u8; len], Some(to)).unwrap();
    net.run_for(20_000);
}

#[test]
fn a_datagram_dropped_after_the_buffer_padded_its_end_is_counted_as_buffer_full() {
    // B's receive buffer: 8 KiB and 8 datagrams. Five of 1400 bytes fill it to 7000, three
    // are read (the ring's free space is now 4200 bytes at its start and 1192 at its end), five
    // of one byte take room at the end and all datagram slots but one. The next 1400 bytes do
    // not fit the end: smoltcp pads the end (using the last slot), then finds no slot for the
    // datagram and drops it. The queue grew by the padding, not by the datagram.
    let mut net = plain_net();
    let ua = net.a.open(Transport::Udp).unwrap();
    let ub = net.b.open(Transport::Udp).unwrap();
    net.a.bind(ua, SocketAddrV4::new(A_IP, 6000)).unwrap();
    net.b.bind(ub, SocketAddrV4::new(B_IP, 6001)).unwrap();
    let mut buf = vec![0u8; 4096];
    for _ in 0..5 {
        send_udp(&mut net, ua, 1400);
    }
    for _ in 0..3 {
        assert_eq!(net.b.recv_from(ub, &mut buf).map(|(n, _)| n), Ok(1400));
    }
    for _ in 0..5 {
        send_udp(&mut net, ua, 1);
    }
    send_udp(&mut net, ua, 1400);
    let drops = net.b.drops();
    assert_eq!((drops.udp_received, drops.udp_rx_full), (11, 1));
    let mut queued = Vec::new();
    while let Ok((n, _)) = net.b.recv_from(ub, &mut buf) {
        queued.push(n);
    }
    assert_eq!(queued, [1400, 1400, 1, 1, 1, 1, 1]);
}

#[test]
fn udp_broadcast_needs_permission() {
    let mut net = plain_net();
    let ua = net.a.open(Transport::Udp).unwrap();
    let ub = net.b.open(Transport::Udp).unwrap();
    net.b
        .bind(ub, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 6100))
        .unwrap();
    let to = SocketAddrV4::new(Ipv4Addr::BROADCAST, 6100);
    assert_eq!(
        net.a.send_to(ua, b"hi", Some(to)),
        Err(NetError::NotPermitted)
    );
    net.a.set_option(ua, SocketOption::Broadcast(true)).unwrap();
    assert_eq!(net.a.send_to(ua, b"hi", Some(to)), Ok(2));
    let mut buf = [0u8; 16];
    let mut got = None;
    assert!(net.run_until(10_000, |n| {
        got = n.b.recv_from(ub, &mut buf).ok();
        got.is_some()
    }));
    assert_eq!(got.map(|(k, from)| (k, *from.ip())), Some((2, A_IP)));
}

#[test]
fn connect_to_closed_port_is_refused_once() {
    let mut net = plain_net();
    let s = net.a.open(Transport::Tcp).unwrap();
    net.a.connect(s, SocketAddrV4::new(B_IP, 7100)).unwrap();
    let mut phase = None;
    assert!(net.run_until(100_000, |n| {
        phase = Some(n.a.tcp_phase(s).unwrap());
        phase != Some(TcpPhase::Connecting)
    }));
    assert_eq!(phase, Some(TcpPhase::Failed(NetError::ConnectionRefused)));
    assert_eq!(net.a.tcp_phase(s), Ok(TcpPhase::Closed));
}

#[test]
fn backlog_holds_extra_syns_without_rst_until_accept() {
    let mut net = plain_net();
    let listener = net.b.open(Transport::Tcp).unwrap();
    net.b.bind(listener, SocketAddrV4::new(B_IP, 7200)).unwrap();
    net.b.listen(listener, 2).unwrap();
    let clients: Vec<SocketId> = (0..4)
        .map(|_| {
            let s = net.a.open(Transport::Tcp).unwrap();
            net.a.connect(s, SocketAddrV4::new(B_IP, 7200)).unwrap();
            s
        })
        .collect();
    // Two fill the backlog; the other two must be kept waiting, not refused.
    net.run_for(3_000_000);
    let phases: Vec<TcpPhase> = clients
        .iter()
        .map(|&s| net.a.tcp_phase(s).unwrap())
        .collect();
    let connected = phases.iter().filter(|p| **p == TcpPhase::Connected).count();
    let waiting = phases
        .iter()
        .filter(|p| **p == TcpPhase::Connecting)
        .count();
    assert_eq!((connected, waiting), (2, 2), "phases: {phases:?}");

    // Accepting makes room; the retransmitted SYNs then get in. Accept order is arrival order.
    let mut accepted = Vec::new();
    assert!(net.run_until(2_000_000, |n| {
        while let Ok((_, peer)) = n.b.accept(listener) {
            accepted.push(peer);
        }
        accepted.len() == 4
            && clients
                .iter()
                .all(|&s| n.a.tcp_phase(s) == Ok(TcpPhase::Connected))
    }));
    let first_two: Vec<Option<SocketAddrV4>> = phases
        .iter()
        .zip(&clients)
        .filter(|(p, _)| **p == TcpPhase::Connected)
        .map(|(_, &s)| net.a.local_addr(s).unwrap())
        .collect();
    assert_eq!(
        accepted[..2].iter().map(|a| Some(*a)).collect::<Vec<_>>(),
        first_two
    );
}

#[test]
fn closing_a_listener_resets_pending_connections() {
    let mut net = plain_net();
    let listener = net.b.open(Transport::Tcp).unwrap();
    net.b.bind(listener, SocketAddrV4::new(B_IP, 7300)).unwrap();
    net.b.listen(listener, 1).unwrap();
    let s = net.a.open(Transport::Tcp).unwrap();
    net.a.connect(s, SocketAddrV4::new(B_IP, 7300)).unwrap();
    assert!(net.run_until(100_000, |n| n.a.tcp_phase(s) == Ok(TcpPhase::Connected)));
    net.b.close(listener);
    let mut phase = None;
    assert!(net.run_until(100_000, |n| {
        phase = Some(n.a.tcp_phase(s).unwrap());
        phase != Some(TcpPhase::Connected)
    }));
    assert_eq!(phase, Some(TcpPhase::Failed(NetError::ConnectionReset)));
    let mut buf = [0u8; 4];
    assert_eq!(
        net.a.recv(s, &mut buf),
        Ok(0),
        "after the failure: end of stream"
    );
}

#[test]
fn unanswered_connect_times_out() {
    let mut net = plain_net();
    net.b.set_link_up(false);
    let s = net.a.open(Transport::Tcp).unwrap();
    net.a.connect(s, SocketAddrV4::new(B_IP, 7400)).unwrap();
    let mut phase = None;
    assert!(net.run_until(1_000_000, |n| {
        phase = Some(n.a.tcp_phase(s).unwrap());
        phase != Some(TcpPhase::Connecting)
    }));
    assert_eq!(phase, Some(TcpPhase::Failed(NetError::TimedOut)));
    assert!(net.now >= 60_000_000, "timed out after {} us", net.now);
}

#[test]
fn close_finishes_in_the_background_and_frees_the_socket() {
    let mut net = plain_net();
    let (a, b) = connect_pair(&mut net, 7500);
    let data = random_bytes(24_000, 9);
    let mut sent = 0;
    assert!(net.run_until(100_000, |n| {
        if let Ok(k) = n.a.send(a, &data[sent..]) {
            sent += k;
        }
        sent == data.len()
    }));
    // Closed with data still queued: it is delivered, then end of stream.
    net.a.close(a);
    assert_eq!(net.a.tcp_phase(a), Err(NetError::BadSocket));
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let mut eof = false;
    assert!(net.run_until(500_000, |n| {
        match n.b.recv(b, &mut buf) {
            Ok(0) => eof = true,
            Ok(k) => got.extend_from_slice(&buf[..k]),
            Err(NetError::WouldBlock) => {}
            Err(e) => panic!("recv: {e:?}"),
        }
        eof
    }));
    assert!(got == data);
    assert_eq!(net.b.tcp_phase(b), Ok(TcpPhase::PeerClosed));
    net.b.close(b);
    net.run_for(15_000_000);
    // Every TCP socket of A is free again: the pool can be opened to its size.
    let all: Vec<_> = (0..8).map(|_| net.a.open(Transport::Tcp)).collect();
    assert!(all.iter().all(Result::is_ok), "{all:?}");
    assert_eq!(net.a.open(Transport::Tcp), Err(NetError::NoMemory));
}

/// Found by the `upy_calls` fuzz target: a connection a listener never handed out took data,
/// then the listener closed (resetting it): its socket was free again but the unread bytes
/// were still counted as buffered.
#[test]
fn unread_bytes_of_a_reset_connection_are_not_counted_once_its_socket_is_free() {
    let mut net = plain_net();
    let listener = listen_on(
        &mut net,
        Side::B,
        SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 7600),
        1,
    );
    let client = net.a.open(Transport::Tcp).unwrap();
    net.a
        .connect(client, SocketAddrV4::new(B_IP, 7600))
        .unwrap();
    assert!(net.run_until(100_000, |n| {
        n.a.tcp_phase(client) == Ok(TcpPhase::Connected)
    }));
    assert_eq!(net.a.send(client, b"ping\n"), Ok(5));
    assert!(net.run_until(100_000, |n| n.b.pool_usage().bytes_buffered == 5));
    net.b.close(listener);
    net.a.close(client);
    net.run_for(netstack::stack::LINGER_LIMIT + 5_000_000);
    let usage = net.b.pool_usage();
    assert_eq!(usage.tcp_free, usage.tcp_total, "{usage:?}");
    assert_eq!(usage.bytes_buffered, 0, "{usage:?}");
}

#[test]
fn bind_rules_and_ephemeral_ports() {
    let mut net = plain_net();
    let any = |port| SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port);
    let s1 = net.a.open(Transport::Tcp).unwrap();
    let s2 = net.a.open(Transport::Tcp).unwrap();
    net.a.bind(s1, any(8000)).unwrap();
    assert_eq!(net.a.bind(s2, any(8000)), Err(NetError::AddrInUse));
    assert_eq!(
        net.a.bind(s2, SocketAddrV4::new(A_IP, 8000)),
        Err(NetError::AddrInUse)
    );
    assert_eq!(
        net.a.bind(s2, SocketAddrV4::new(B_IP, 8001)),
        Err(NetError::AddrNotAvailable)
    );
    net.a.set_option(s2, SocketOption::ReuseAddr(true)).unwrap();
    net.a.bind(s2, any(8000)).unwrap();
    net.a.listen(s1, 1).unwrap();
    assert_eq!(net.a.listen(s2, 1), Err(NetError::AddrInUse));

    let e1 = net.a.open(Transport::Udp).unwrap();
    let e2 = net.a.open(Transport::Udp).unwrap();
    net.a.bind(e1, any(0)).unwrap();
    net.a.bind(e2, any(0)).unwrap();
    let p1 = net.a.local_addr(e1).unwrap().unwrap().port();
    let p2 = net.a.local_addr(e2).unwrap().unwrap().port();
    assert!(p1 >= 49152 && p2 >= 49152 && p1 != p2, "{p1} {p2}");

    // UDP shares a port only when both sockets allow it.
    let u1 = net.a.open(Transport::Udp).unwrap();
    let u2 = net.a.open(Transport::Udp).unwrap();
    net.a.set_option(u1, SocketOption::ReuseAddr(true)).unwrap();
    net.a.bind(u1, any(8100)).unwrap();
    assert_eq!(net.a.bind(u2, any(8100)), Err(NetError::AddrInUse));
    net.a.set_option(u2, SocketOption::ReuseAddr(true)).unwrap();
    net.a.bind(u2, any(8100)).unwrap();
}

#[test]
fn numeric_names_resolve_without_dns() {
    let mut net = plain_net();
    let q = net.a.resolve_start("10.9.0.77").unwrap();
    assert_eq!(net.a.resolve_poll(q), Ok(Ipv4Addr::new(10, 9, 0, 77)));
    assert_eq!(net.a.resolve_poll(q), Err(NetError::Invalid), "freed");
    // No DNS server configured: names cannot be looked up.
    assert_eq!(
        net.a.resolve_start("example.test"),
        Err(NetError::HostUnreachable)
    );
    // With a server: malformed names are refused before any query is sent.
    net.a
        .set_static(Ipv4Config {
            dns: B_IP,
            ..config(A_IP)
        })
        .unwrap();
    assert_eq!(net.a.resolve_start("a..test"), Err(NetError::Invalid));
    assert_eq!(
        net.a.resolve_start(&"x".repeat(300)),
        Err(NetError::Invalid)
    );
}

/// The `no_std` configuration: fixed-size sockets and tables, and their buffers apart.
type SmallStorage = StaticStorage<'static, 4, 2, 8>;
type SmallBuffers = StaticBuffers<4, 2, 4096, 1024>;

#[test]
fn static_storage_stack_carries_tcp() {
    let storage: &'static mut SmallStorage = Box::leak(Box::new(SmallStorage::new()));
    let buffers: &'static mut SmallBuffers = Box::leak(Box::new(SmallBuffers::new()));
    let (ea, eb) = wire();
    let mut a = Stack::new(
        ea,
        StackConfig {
            mac: [2, 0, 0, 0, 0, 1],
            seed: Seed::reproducible(5),
        },
        storage.parts(buffers),
        0,
    );
    a.set_static(config(A_IP)).unwrap();
    let mut net = Net {
        a,
        b: stack(eb, 2, B_IP),
        now: 0,
    };
    let (a_sock, b_sock) = connect_pair(&mut net, 7600);
    exchange(&mut net, (Side::A, a_sock), (Side::B, b_sock), 64 * 1024);
    // Four TCP sockets: one in use, three left.
    let more: Vec<_> = (0..3).map(|_| net.a.open(Transport::Tcp)).collect();
    assert!(more.iter().all(Result::is_ok));
    assert_eq!(net.a.open(Transport::Tcp), Err(NetError::NoMemory));
}

#[test]
fn readiness_follows_the_connection() {
    let mut net = plain_net();
    let listener = listen_on(
        &mut net,
        Side::B,
        SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 7700),
        1,
    );
    assert_eq!(net.b.tcp_phase(listener), Ok(TcpPhase::Listening));
    assert!(!net.b.readiness(listener).unwrap().readable);
    let a = net.a.open(Transport::Tcp).unwrap();
    let idle = net.a.readiness(a).unwrap();
    assert!(idle.hangup && !idle.readable && !idle.error);
    net.a.connect(a, SocketAddrV4::new(B_IP, 7700)).unwrap();
    assert_eq!(
        net.a.connect(a, SocketAddrV4::new(B_IP, 7700)),
        Err(NetError::InProgress)
    );
    assert!(net.run_until(100_000, |n| n.b.readiness(listener).unwrap().readable));
    let (b, _) = net.b.accept(listener).unwrap();
    assert!(!net.b.readiness(listener).unwrap().readable);
    assert!(net.run_until(100_000, |n| n.a.tcp_phase(a) == Ok(TcpPhase::Connected)));
    assert_eq!(
        net.a.connect(a, SocketAddrV4::new(B_IP, 7700)),
        Err(NetError::AlreadyConnected)
    );
    let ra = net.a.readiness(a).unwrap();
    assert!(ra.writable && !ra.readable && !ra.hangup);
    net.a.send(a, b"ping").unwrap();
    assert!(net.run_until(100_000, |n| n.b.readiness(b).unwrap().readable));
    let mut buf = [0u8; 8];
    assert_eq!(net.b.recv(b, &mut buf), Ok(4));
    assert_eq!(net.b.recv(b, &mut buf), Err(NetError::WouldBlock));
    // The peer closes: A reads end of stream and may still write.
    net.b.close(b);
    assert!(net.run_until(100_000, |n| n.a.tcp_phase(a) == Ok(TcpPhase::PeerClosed)));
    assert!(net.a.readiness(a).unwrap().readable);
    assert_eq!(net.a.recv(a, &mut buf), Ok(0));
    assert_eq!(net.a.send(a, b"late"), Ok(4));
}

#[test]
fn losing_the_address_aborts_connections() {
    let mut net = plain_net();
    let (a, _b) = connect_pair(&mut net, 7800);
    net.a
        .set_static(Ipv4Config {
            address: Ipv4Addr::UNSPECIFIED,
            ..config(A_IP)
        })
        .unwrap();
    assert_eq!(net.a.ipv4_config(), None);
    // Reported once, by whichever call comes first.
    assert_eq!(net.a.send(a, b"data"), Err(NetError::ConnectionAborted));
    assert_eq!(net.a.tcp_phase(a), Ok(TcpPhase::Closed));
    let s = net.a.open(Transport::Tcp).unwrap();
    assert_eq!(
        net.a.connect(s, SocketAddrV4::new(B_IP, 7800)),
        Err(NetError::HostUnreachable)
    );
}

#[test]
fn losing_the_address_aborts_idle_connections_at_once() {
    // lwIP aborts every connection of an address the interface loses; an idle connection has
    // no retransmission that would otherwise notice.
    let mut net = plain_net();
    let (a, _b) = connect_pair(&mut net, 7801);
    net.a
        .set_static(Ipv4Config {
            address: Ipv4Addr::UNSPECIFIED,
            ..config(A_IP)
        })
        .unwrap();
    let started = net.now;
    let mut phase = None;
    assert!(net.run_until(3, |n| {
        phase = Some(n.a.tcp_phase(a).unwrap());
        phase != Some(TcpPhase::Connected)
    }));
    assert_eq!(phase, Some(TcpPhase::Failed(NetError::ConnectionAborted)));
    assert!(
        net.now - started < 1_000_000,
        "took {} us",
        net.now - started
    );
}

#[test]
fn keepalive_detects_a_silent_peer_and_idle_connections_survive_without_it() {
    let mut net = plain_net();
    let (with, _b1) = connect_pair(&mut net, 7900);
    let (without, _b2) = connect_pair(&mut net, 7901);
    net.a
        .set_option(with, SocketOption::KeepAlive(true))
        .unwrap();
    net.b.set_link_up(false);
    let mut phase = None;
    assert!(net.run_until(1_000_000, |n| {
        phase = Some(n.a.tcp_phase(with).unwrap());
        phase != Some(TcpPhase::Connected)
    }));
    assert_eq!(phase, Some(TcpPhase::Failed(NetError::TimedOut)));
    assert_eq!(net.a.tcp_phase(without), Ok(TcpPhase::Connected));
}

#[test]
fn connected_udp_takes_datagrams_from_its_peer_only() {
    let mut net = plain_net();
    let ua = net.a.open(Transport::Udp).unwrap();
    net.a
        .bind(ua, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 6200))
        .unwrap();
    net.a.connect(ua, SocketAddrV4::new(B_IP, 6201)).unwrap();
    assert_eq!(net.a.peer_addr(ua), Ok(Some(SocketAddrV4::new(B_IP, 6201))));
    let peer = net.b.open(Transport::Udp).unwrap();
    let stranger = net.b.open(Transport::Udp).unwrap();
    net.b
        .bind(peer, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 6201))
        .unwrap();
    let to_a = Some(SocketAddrV4::new(A_IP, 6200));
    net.b.send_to(stranger, b"intruder", to_a).unwrap();
    net.run_for(10_000);
    net.b.send_to(peer, b"friend", to_a).unwrap();
    let mut buf = [0u8; 32];
    let mut got = None;
    assert!(net.run_until(10_000, |n| {
        got = n.a.recv_from(ua, &mut buf).ok();
        got.is_some()
    }));
    assert_eq!(got, Some((6, SocketAddrV4::new(B_IP, 6201))));
    assert_eq!(&buf[..6], b"friend");
    assert_eq!(net.a.recv_from(ua, &mut buf), Err(NetError::WouldBlock));
    // Connected send goes to the peer.
    assert_eq!(net.a.send(ua, b"back"), Ok(4));
    let mut reply = None;
    assert!(net.run_until(10_000, |n| {
        reply = n.b.recv_from(peer, &mut buf).ok();
        reply.is_some()
    }));
    assert_eq!(reply, Some((4, SocketAddrV4::new(A_IP, 6200))));
}

/// Three connections from A to a listener on B's `port`: (A's sockets, B's accepted ones).
fn three_connections_to_b(net: &mut Net<WireEnd>, port: u16) -> (Vec<SocketId>, Vec<SocketId>) {
    let listener = listen_on(
        net,
        Side::B,
        SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port),
        3,
    );
    let clients: Vec<SocketId> = (0..3)
        .map(|_| {
            let s = net.a.open(Transport::Tcp).unwrap();
            net.a.connect(s, SocketAddrV4::new(B_IP, port)).unwrap();
            s
        })
        .collect();
    let mut servers = Vec::new();
    assert!(net.run_until(100_000, |n| {
        while let Ok((s, _)) = n.b.accept(listener) {
            servers.push(s);
        }
        servers.len() == 3
    }));
    (clients, servers)
}

/// A's whole pool (8 sockets) opens, and the last of them connects to B's `port`: the reclaimed
/// sockets work.
fn a_full_pool_opens_and_connects(net: &mut Net<WireEnd>, port: u16) {
    let all: Vec<_> = (0..8).map(|_| net.a.open(Transport::Tcp)).collect();
    assert!(all.iter().all(Result::is_ok), "{all:?}");
    let last = *all.last().unwrap().as_ref().unwrap();
    net.a.connect(last, SocketAddrV4::new(B_IP, port)).unwrap();
    assert!(net.run_until(100_000, |n| n.a.tcp_phase(last) == Ok(TcpPhase::Connected)));
}

#[test]
fn sockets_in_time_wait_are_reclaimed_when_the_pool_runs_out() {
    let mut net = plain_net();
    let (clients, servers) = three_connections_to_b(&mut net, 8200);
    // A closes first, so A's sockets end in TIME-WAIT (smoltcp keeps it 10 s).
    let closed_at = net.now;
    clients.iter().for_each(|&s| net.a.close(s));
    net.run_for(200_000);
    servers.iter().for_each(|&s| net.b.close(s));
    net.run_for(200_000);
    assert!(net.now - closed_at < 5_000_000);
    a_full_pool_opens_and_connects(&mut net, 8200);
}

/// A program that closes connections whose peer never closes its side (FIN-WAIT-2) still gets
/// sockets: those are reclaimed when the pool runs out, and new connections work.
#[test]
fn sockets_in_fin_wait_2_are_reclaimed_when_the_pool_runs_out() {
    let mut net = plain_net();
    let (clients, servers) = three_connections_to_b(&mut net, 8210);
    // A closes; B acknowledges the FINs but keeps its sides open.
    clients.iter().for_each(|&s| net.a.close(s));
    net.run_for(200_000);
    assert!(servers
        .iter()
        .all(|&s| net.b.tcp_phase(s) == Ok(TcpPhase::PeerClosed)));
    a_full_pool_opens_and_connects(&mut net, 8210);
}

#[test]
fn nodelay_sends_small_writes_without_waiting_for_acks() {
    // Frames A puts on the wire for two 1-byte writes made before any ACK can come back.
    fn frames_for_two_small_writes(nodelay: bool) -> usize {
        let mut net = plain_net();
        let (a, _b) = connect_pair(&mut net, 8300);
        net.a.set_option(a, SocketOption::NoDelay(nodelay)).unwrap();
        net.run_for(1_000_000);
        assert_eq!(net.b.device().pending(), 0);
        let now = net.now;
        net.a.send(a, b"x").unwrap();
        net.a.poll(now);
        net.a.send(a, b"y").unwrap();
        net.a.poll(now + 10);
        net.b.device().pending()
    }
    assert_eq!(
        frames_for_two_small_writes(false),
        1,
        "Nagle holds the second byte"
    );
    assert_eq!(
        frames_for_two_small_writes(true),
        2,
        "TCP_NODELAY sends it at once"
    );
}

#[test]
fn closing_udp_flushes_queued_datagrams_then_frees_the_socket() {
    let mut net = plain_net();
    let ua = net.a.open(Transport::Udp).unwrap();
    let ub = net.b.open(Transport::Udp).unwrap();
    net.b
        .bind(ub, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 6200))
        .unwrap();
    let to = SocketAddrV4::new(B_IP, 6200);
    // A has not resolved B yet: all five stay queued when A closes.
    for i in 0..5u8 {
        assert_eq!(net.a.send_to(ua, &[i; 100], Some(to)), Ok(100));
    }
    net.a.close(ua);
    let usage = net.a.pool_usage();
    assert_eq!((usage.udp_in_use, usage.udp_draining), (0, 1));
    let mut got = Vec::new();
    let mut buf = [0u8; 200];
    assert!(net.run_until(100_000, |n| {
        while let Ok((k, _)) = n.b.recv_from(ub, &mut buf) {
            got.push(buf[..k].to_vec());
        }
        got.len() == 5
    }));
    assert_eq!(got, (0..5u8).map(|i| vec![i; 100]).collect::<Vec<_>>());
    net.run_for(10_000);
    let usage = net.a.pool_usage();
    assert_eq!((usage.udp_in_use, usage.udp_draining), (0, 0));
    assert_eq!(usage.bytes_buffered, 0);
    assert_eq!(net.a.drops().udp_close_discarded_bytes, 0);
}

#[test]
fn closing_udp_towards_nobody_discards_after_the_flush_limit_and_counts() {
    let mut net = plain_net();
    let ua = net.a.open(Transport::Udp).unwrap();
    // On the subnet, but no host answers ARP for it.
    let nobody = SocketAddrV4::new(Ipv4Addr::new(10, 9, 0, 99), 6300);
    assert_eq!(net.a.send_to(ua, &[7; 300], Some(nobody)), Ok(300));
    net.a.close(ua);
    assert_eq!(net.a.pool_usage().udp_draining, 1);
    net.run_for(netstack::stack::UDP_FLUSH_LIMIT + 200_000);
    let usage = net.a.pool_usage();
    assert_eq!((usage.udp_in_use, usage.udp_draining), (0, 0));
    assert_eq!(net.a.drops().udp_close_discarded_bytes, 300);
    // Every UDP socket can be opened again.
    let all: Vec<_> = (0..usage.udp_total)
        .map(|_| net.a.open(Transport::Udp).unwrap())
        .collect();
    assert_eq!(net.a.open(Transport::Udp), Err(NetError::NoMemory));
    all.into_iter().for_each(|s| net.a.close(s));
}

#[test]
fn a_draining_udp_socket_gives_way_to_a_new_bind_of_its_port() {
    let mut net = plain_net();
    let ua = net.a.open(Transport::Udp).unwrap();
    let port = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 6400);
    net.a.bind(ua, port).unwrap();
    let nobody = SocketAddrV4::new(Ipv4Addr::new(10, 9, 0, 99), 6300);
    net.a.send_to(ua, &[1; 50], Some(nobody)).unwrap();
    net.a.close(ua);
    let again = net.a.open(Transport::Udp).unwrap();
    net.a.bind(again, port).unwrap();
    assert_eq!(net.a.pool_usage().udp_draining, 0);
    assert_eq!(net.a.drops().udp_close_discarded_bytes, 50);
    // B's datagrams to the port reach the new socket.
    let ub = net.b.open(Transport::Udp).unwrap();
    net.b
        .send_to(ub, b"new", Some(SocketAddrV4::new(A_IP, 6400)))
        .unwrap();
    let mut buf = [0u8; 8];
    assert!(net.run_until(100_000, |n| n.a.recv_from(again, &mut buf).is_ok()));
    assert_eq!(&buf[..3], b"new");
}

// ---------------------------------------------------------------------------------------------
// Loopback: 127.0.0.1 and the stack's own address go back into the stack, never onto the wire.

use netstack::loopback::NoNic;
use smoltcp::phy::{DeviceCapabilities, TxToken};
use smoltcp::time::Instant;
use smoltcp::wire::{ArpPacket, EthernetFrame, EthernetProtocol, Ipv4Packet};
use std::sync::{Arc, Mutex};

const LOCALHOST: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// Frames a [`Recorder`] saw its stack send.
type Frames = Arc<Mutex<Vec<Vec<u8>>>>;

/// A wire end that keeps a copy of every frame its stack puts on the wire.
struct Recorder {
    end: WireEnd,
    sent: Frames,
}

struct RecordedTx<'a> {
    inner: <WireEnd as Device>::TxToken<'a>,
    sent: &'a Mutex<Vec<Vec<u8>>>,
}

impl TxToken for RecordedTx<'_> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        self.inner.consume(len, |buf| {
            let result = f(buf);
            self.sent.lock().unwrap().push(buf.to_vec());
            result
        })
    }
}

impl Device for Recorder {
    type RxToken<'a> = <WireEnd as Device>::RxToken<'a>;
    type TxToken<'a> = RecordedTx<'a>;

    fn receive(&mut self, t: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let (rx, tx) = self.end.receive(t)?;
        Some((
            rx,
            RecordedTx {
                inner: tx,
                sent: &self.sent,
            },
        ))
    }

    fn transmit(&mut self, t: Instant) -> Option<Self::TxToken<'_>> {
        Some(RecordedTx {
            inner: self.end.transmit(t)?,
            sent: &self.sent,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        self.end.capabilities()
    }
}

/// Two stacks on a wire whose frames from A are recorded.
fn recorded_net() -> (Net<Recorder>, Frames) {
    let (ea, eb) = wire();
    let sent = Arc::new(Mutex::new(Vec::new()));
    let a = Recorder {
        end: ea,
        sent: Arc::clone(&sent),
    };
    let b = Recorder {
        end: eb,
        sent: Arc::default(),
    };
    let net = Net {
        a: stack(a, 1, A_IP),
        b: stack(b, 2, B_IP),
        now: 0,
    };
    (net, sent)
}

/// The IPv4 addresses (IPv4 source and destination, or ARP sender and target) of a frame, read
/// with smoltcp's wire views.
fn frame_addresses(frame: &[u8]) -> Vec<Ipv4Addr> {
    let eth = EthernetFrame::new_checked(frame).expect("Ethernet frame");
    match eth.ethertype() {
        EthernetProtocol::Ipv4 => {
            let ip = Ipv4Packet::new_checked(eth.payload()).expect("IPv4 packet");
            vec![ip.src_addr(), ip.dst_addr()]
        }
        EthernetProtocol::Arp => {
            let arp = ArpPacket::new_checked(eth.payload()).expect("ARP packet");
            let addr = |b: &[u8]| Ipv4Addr::from(<[u8; 4]>::try_from(b).expect("IPv4 in ARP"));
            vec![
                addr(arp.source_protocol_addr()),
                addr(arp.target_protocol_addr()),
            ]
        }
        _ => Vec::new(),
    }
}

/// Checks that A put no frame with a loopback address, or for A itself, on the wire; returns
/// how many frames it put there.
fn assert_nothing_local_on_the_wire(sent: &Mutex<Vec<Vec<u8>>>) -> usize {
    let sent = sent.lock().unwrap();
    for frame in sent.iter() {
        let addresses = frame_addresses(frame);
        assert!(
            !addresses.iter().any(Ipv4Addr::is_loopback),
            "a loopback address on the wire: {addresses:?}"
        );
        if let EthernetProtocol::Ipv4 = EthernetFrame::new_checked(&frame[..]).unwrap().ethertype()
        {
            assert_ne!(addresses[1], A_IP, "a frame for A itself on the wire");
        }
    }
    sent.len()
}

/// A TCP listener on side `side` bound to `addr`.
fn listen_on<D: Device>(
    net: &mut Net<D>,
    side: Side,
    addr: SocketAddrV4,
    backlog: usize,
) -> SocketId {
    let listener = net.side(side).open(Transport::Tcp).unwrap();
    net.side(side).bind(listener, addr).unwrap();
    net.side(side).listen(listener, backlog).unwrap();
    listener
}

/// A listener on `local`'s side `side`; a client on `client_side` connected to `to`; returns
/// (client, accepted connection, the peer address the listener saw).
fn connect_via<D: Device>(
    net: &mut Net<D>,
    side: Side,
    listener: SocketId,
    client_side: Side,
    to: SocketAddrV4,
) -> (SocketId, SocketId, SocketAddrV4) {
    let client = net.side(client_side).open(Transport::Tcp).unwrap();
    net.side(client_side).connect(client, to).unwrap();
    let mut accepted = None;
    assert!(net.run_until(200_000, |n| {
        if accepted.is_none() {
            accepted = n.side(side).accept(listener).ok();
        }
        accepted.is_some() && n.side(client_side).tcp_phase(client) == Ok(TcpPhase::Connected)
    }));
    let (server, peer) = accepted.unwrap();
    (client, server, peer)
}

#[test]
fn loopback_tcp_and_udp_stay_off_the_wire_while_the_nic_carries_its_own() {
    let (mut net, sent) = recorded_net();
    let listener = listen_on(
        &mut net,
        Side::A,
        SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 7100),
        4,
    );
    // One listener on any address: reached through 127.0.0.1, A's own address, and the wire.
    let (lo_client, lo_server, lo_peer) = connect_via(
        &mut net,
        Side::A,
        listener,
        Side::A,
        SocketAddrV4::new(LOCALHOST, 7100),
    );
    assert_eq!(lo_peer.ip(), &LOCALHOST);
    assert_eq!(net.a.local_addr(lo_client).unwrap(), Some(lo_peer));
    let (own_client, own_server, own_peer) = connect_via(
        &mut net,
        Side::A,
        listener,
        Side::A,
        SocketAddrV4::new(A_IP, 7100),
    );
    assert_eq!(own_peer.ip(), &A_IP);
    let (b_client, b_server, b_peer) = connect_via(
        &mut net,
        Side::A,
        listener,
        Side::B,
        SocketAddrV4::new(A_IP, 7100),
    );
    assert_eq!(b_peer.ip(), &B_IP);
    exchange(
        &mut net,
        (Side::A, lo_client),
        (Side::A, lo_server),
        256 * 1024,
    );
    exchange(
        &mut net,
        (Side::A, own_client),
        (Side::A, own_server),
        64 * 1024,
    );
    exchange(
        &mut net,
        (Side::B, b_client),
        (Side::A, b_server),
        64 * 1024,
    );

    // UDP: a socket bound to 127.0.0.1 hears from loopback senders; one on any address hears
    // loopback and the wire.
    let bound_lo = net.a.open(Transport::Udp).unwrap();
    net.a
        .bind(bound_lo, SocketAddrV4::new(LOCALHOST, 7101))
        .unwrap();
    let any = net.a.open(Transport::Udp).unwrap();
    net.a
        .bind(any, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 7102))
        .unwrap();
    let sender = net.a.open(Transport::Udp).unwrap();
    let ub = net.b.open(Transport::Udp).unwrap();
    let mut buf = [0u8; 64];
    for (to, from_b) in [(7101, false), (7102, false), (7102, true)] {
        let dest = SocketAddrV4::new(if from_b { A_IP } else { LOCALHOST }, to);
        if from_b {
            net.b.send_to(ub, b"from b", Some(dest)).unwrap();
        } else {
            net.a.send_to(sender, b"from a", Some(dest)).unwrap();
        }
        let socket = if to == 7101 { bound_lo } else { any };
        let mut got = None;
        assert!(net.run_until(10_000, |n| {
            got = n.a.recv_from(socket, &mut buf).ok();
            got.is_some()
        }));
        let (n, from) = got.unwrap();
        let expected = if from_b { B_IP } else { LOCALHOST };
        let text: &[u8] = if from_b { b"from b" } else { b"from a" };
        assert_eq!((&buf[..n], *from.ip()), (text, expected));
    }

    // From 127.0.0.1 to elsewhere: refused (Linux: EINVAL), nothing sent.
    let tcp_lo = net.a.open(Transport::Tcp).unwrap();
    net.a
        .bind(tcp_lo, SocketAddrV4::new(LOCALHOST, 7103))
        .unwrap();
    assert_eq!(
        net.a.connect(tcp_lo, SocketAddrV4::new(B_IP, 7100)),
        Err(NetError::Invalid)
    );
    assert_eq!(
        net.a
            .send_to(bound_lo, b"x", Some(SocketAddrV4::new(B_IP, 7101))),
        Err(NetError::Invalid)
    );
    net.run_for(100_000);
    let on_wire = assert_nothing_local_on_the_wire(&sent);
    assert!(
        on_wire > 50,
        "the NIC carried B's connection: {on_wire} frames"
    );
    assert_eq!(net.a.drops().link, netstack::loopback::LinkDrops::default());
}

#[test]
fn loopback_works_while_the_link_is_down_and_frames_for_the_nic_are_counted() {
    let (mut net, sent) = recorded_net();
    net.a.set_link_up(false);
    let listener = listen_on(&mut net, Side::A, SocketAddrV4::new(LOCALHOST, 7110), 1);
    let (client, server, _) = connect_via(
        &mut net,
        Side::A,
        listener,
        Side::A,
        SocketAddrV4::new(LOCALHOST, 7110),
    );
    exchange(&mut net, (Side::A, client), (Side::A, server), 32 * 1024);
    // A connection to B cannot start: its ARP request is dropped and counted, not sent.
    let to_b = net.a.open(Transport::Tcp).unwrap();
    net.a.connect(to_b, SocketAddrV4::new(B_IP, 7111)).unwrap();
    net.run_for(50_000);
    assert!(net.a.drops().link.no_link > 0);
    assert_eq!(
        sent.lock().unwrap().len(),
        0,
        "nothing on the wire while down"
    );
}

/// The MAC addresses `stack` gives A (1) and B (2).
const A_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 1];
const B_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 2];

/// A SYN from the wire, as B would send it to A (`src`, `dst` addresses at the IP level).
fn syn(src: Ipv4Addr, dst: Ipv4Addr, port: u16) -> Vec<u8> {
    let ends = rawframe::Endpoints {
        src_mac: B_MAC,
        dst_mac: A_MAC,
        src,
        dst,
    };
    rawframe::tcp_syn(ends, 40000, port, 1)
}

/// B's broadcast ARP request, sent from `sender`.
fn arp_request(sender: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    rawframe::arp_request(B_MAC, sender, target)
}

#[test]
fn martians_from_the_wire_are_dropped_and_counted() {
    let (ea, mut eb) = wire();
    let sent = Arc::new(Mutex::new(Vec::new()));
    let mut a = stack(
        Recorder {
            end: ea,
            sent: Arc::clone(&sent),
        },
        1,
        A_IP,
    );
    let listener = a.open(Transport::Tcp).unwrap();
    a.bind(listener, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 7120))
        .unwrap();
    a.listen(listener, 4).unwrap();
    let martians = [
        syn(LOCALHOST, A_IP, 7120),
        syn(B_IP, LOCALHOST, 7120),
        syn(A_IP, A_IP, 7120),
        arp_request(LOCALHOST, A_IP),
        arp_request(B_IP, LOCALHOST),
    ];
    for frame in &martians {
        let token = eb.transmit(Instant::from_micros(0)).unwrap();
        token.consume(frame.len(), |buf| buf.copy_from_slice(frame));
    }
    let mut now = 0;
    for _ in 0..100 {
        a.poll(now);
        now += 1_000;
    }
    assert_eq!(a.drops().link.martians, martians.len() as u64);
    assert_eq!(a.accept(listener), Err(NetError::WouldBlock));
    assert_eq!(sent.lock().unwrap().len(), 0, "A answered a martian");
    // The same SYN from a real address is answered.
    let frame = syn(B_IP, A_IP, 7120);
    eb.transmit(Instant::from_micros(0))
        .unwrap()
        .consume(frame.len(), |buf| buf.copy_from_slice(&frame));
    a.poll(now);
    assert!(!sent.lock().unwrap().is_empty(), "no answer to a real SYN");
}

#[test]
fn frames_with_a_wrong_tcp_checksum_are_dropped_and_counted() {
    let (ea, mut eb) = wire();
    let sent = Arc::new(Mutex::new(Vec::new()));
    let mut a = stack(
        Recorder {
            end: ea,
            sent: Arc::clone(&sent),
        },
        1,
        A_IP,
    );
    let listener = a.open(Transport::Tcp).unwrap();
    a.bind(listener, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 7121))
        .unwrap();
    a.listen(listener, 4).unwrap();
    let good = syn(B_IP, A_IP, 7121);
    // The SYN with one bit of its TCP checksum (bytes 50..52 of the frame) or its port flipped.
    let mut bad = [good.clone(), good.clone()];
    bad[0][51] ^= 0x01;
    bad[1][36] ^= 0x80;
    for frame in &bad {
        eb.transmit(Instant::from_micros(0))
            .unwrap()
            .consume(frame.len(), |buf| buf.copy_from_slice(frame));
    }
    let mut now = 0;
    for _ in 0..10 {
        a.poll(now);
        now += 1_000;
    }
    assert_eq!(a.drops().link.bad_checksum, 2);
    assert_eq!(sent.lock().unwrap().len(), 0, "A answered a corrupt SYN");
    eb.transmit(Instant::from_micros(0))
        .unwrap()
        .consume(good.len(), |buf| buf.copy_from_slice(&good));
    a.poll(now);
    let answers = sent.lock().unwrap();
    assert_eq!(answers.len(), 1, "no answer to the intact SYN");
    // Our SYN-ACK carries a checksum Linux (or anyone) accepts.
    assert!(netstack::checksum::verify(
        &answers[0],
        &smoltcp::phy::ChecksumCapabilities::default()
    ));
    assert_eq!(a.drops().link.bad_checksum, 2);
}

#[test]
fn a_stack_without_nic_serves_tcp_and_udp_over_loopback() {
    let mut a = Stack::without_nic(Seed::reproducible(5), storage().parts(), 0);
    assert_eq!(a.ipv4_config(), None);
    let listener = a.open(Transport::Tcp).unwrap();
    a.bind(listener, SocketAddrV4::new(LOCALHOST, 7130))
        .unwrap();
    a.listen(listener, 1).unwrap();
    let client = a.open(Transport::Tcp).unwrap();
    a.connect(client, SocketAddrV4::new(LOCALHOST, 7130))
        .unwrap();
    let mut now = 0;
    let mut pump = |a: &mut Stack<'static, NoNic>, steps: usize| {
        for _ in 0..steps {
            a.poll(now);
            now += 1_000;
        }
    };
    pump(&mut a, 20);
    let (server, peer) = a.accept(listener).expect("accepted over loopback");
    assert_eq!(peer.ip(), &LOCALHOST);
    assert_eq!(a.send(client, b"ping"), Ok(4));
    pump(&mut a, 5);
    let mut buf = [0u8; 16];
    assert_eq!(a.recv(server, &mut buf), Ok(4));
    assert_eq!(&buf[..4], b"ping");
    let u = a.open(Transport::Udp).unwrap();
    a.bind(u, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 7131))
        .unwrap();
    let v = a.open(Transport::Udp).unwrap();
    a.send_to(v, b"dgram", Some(SocketAddrV4::new(LOCALHOST, 7131)))
        .unwrap();
    pump(&mut a, 5);
    let (n, from) = a.recv_from(u, &mut buf).expect("datagram over loopback");
    assert_eq!((&buf[..n], *from.ip()), (&b"dgram"[..], LOCALHOST));
    // Nothing beyond the board: no route.
    let out = a.open(Transport::Tcp).unwrap();
    assert_eq!(
        a.connect(out, SocketAddrV4::new(A_IP, 80)),
        Err(NetError::HostUnreachable)
    );
    assert_eq!(
        a.send_to(v, b"x", Some(SocketAddrV4::new(A_IP, 80))),
        Err(NetError::HostUnreachable)
    );
    // "localhost" is answered without DNS, as lwIP does.
    let q = a.resolve_start("localhost").unwrap();
    assert_eq!(a.resolve_poll(q), Ok(LOCALHOST));
    assert_eq!(a.drops().link, netstack::loopback::LinkDrops::default());
}
#[test]
fn loopback_traffic_does_not_hold_back_resolving_a_neighbour() {
    let (mut net, _) = recorded_net();
    let listener = listen_on(&mut net, Side::A, SocketAddrV4::new(LOCALHOST, 7140), 1);
    let (client, server, _) = connect_via(
        &mut net,
        Side::A,
        listener,
        Side::A,
        SocketAddrV4::new(LOCALHOST, 7140),
    );
    exchange(&mut net, (Side::A, client), (Side::A, server), 16 * 1024);
    // smoltcp sends one ARP request a second at most: had 127.0.0.1 been resolved by a request,
    // this connection's request for B would wait up to a second.
    let b_listener = listen_on(
        &mut net,
        Side::B,
        SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 7141),
        1,
    );
    let start = net.now;
    let (_, _, peer) = connect_via(
        &mut net,
        Side::B,
        b_listener,
        Side::A,
        SocketAddrV4::new(B_IP, 7141),
    );
    assert_eq!(peer.ip(), &A_IP);
    assert!(
        net.now - start < 100_000,
        "connecting to B took {} us",
        net.now - start
    );
}

/// What a program that closes as its last act leaves to send: counted until the peer has
/// acknowledged every byte and the FIN (the end of a `cargo xtask sim` run waits on it).
#[test]
fn closed_connections_count_as_unacked_until_the_peer_has_every_byte_and_the_fin() {
    let mut net = plain_net();
    let (client, server) = connect_pair(&mut net, 7150);
    // More than B's receive buffer (16 KiB) holds: the rest waits in A's for B to read.
    let data = random_bytes(24 * 1024, 3);
    let mut sent = 0;
    assert!(net.run_until(100_000, |n| {
        if let Ok(k) = n.a.send(client, &data[sent..]) {
            sent += k;
        }
        sent == data.len()
    }));
    net.a.close(client);
    assert_eq!(net.a.pool_usage().tcp_unacked, 1);
    // B does not read: its window closes, A keeps what B has not taken.
    net.run_for(2_000_000);
    let usage = net.a.pool_usage();
    assert_eq!(usage.tcp_unacked, 1, "{usage:?}");
    assert!(usage.tcp_unacked_bytes > 0, "{usage:?}");
    // B reads everything: A's data and FIN are acknowledged.
    let mut got = Vec::new();
    let mut buf = vec![0u8; 4096];
    assert!(net.run_until(100_000, |n| {
        while let Ok(k) = n.b.recv(server, &mut buf) {
            if k == 0 {
                return true;
            }
            got.extend_from_slice(&buf[..k]);
        }
        false
    }));
    assert!(got == data, "B got {} bytes", got.len());
    net.run_for(100_000);
    let usage = net.a.pool_usage();
    assert_eq!(
        (usage.tcp_unacked, usage.tcp_unacked_bytes),
        (0, 0),
        "{usage:?}"
    );
    assert_eq!(
        usage.tcp_lingering, 1,
        "FIN-WAIT-2 lingers, finished sending"
    );
}

#[test]
fn tcp_through_a_nic_that_cuts_large_frames_is_exact_and_looped_large_frames_are_cut_by_the_link() {
    let (ea, eb) = wire();
    let mut net = Net {
        a: stack(ea.offloading(), 1, A_IP),
        b: stack(eb, 2, B_IP),
        now: 0,
    };
    let (a, b) = connect_pair(&mut net, 7010);
    let len = 512 * 1024;
    exchange(&mut net, (Side::A, a), (Side::B, b), len);
    // smoltcp sent A's data as large frames (B's 16 KiB window holds several segments), which
    // the NIC cut: without the offload there would be none.
    let large = net.a.device().large_frames().expect("an offloading end");
    assert!(
        large >= (len / 16_384) as u64,
        "{large} large frames for {len} bytes"
    );
    // Over loopback, the link cuts the same large frames itself into its queue's free slots.
    let listener = listen_on(
        &mut net,
        Side::A,
        SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 7011),
        1,
    );
    let (client, server, _) = connect_via(
        &mut net,
        Side::A,
        listener,
        Side::A,
        SocketAddrV4::new(LOCALHOST, 7011),
    );
    let before = net.a.device().large_frames();
    exchange(&mut net, (Side::A, client), (Side::A, server), len);
    assert_eq!(
        net.a.device().large_frames(),
        before,
        "looped frames met the NIC"
    );
    assert_eq!(net.a.drops().link, netstack::loopback::LinkDrops::default());
    assert_eq!(net.b.drops().link, netstack::loopback::LinkDrops::default());
}
