//! Two netstack `Stack`s talking over an in-memory wire (optionally lossy and reordering), on a
//! virtual clock: TCP/UDP delivery byte for byte, backlog without RST, failure reasons,
//! background close, bind rules.

use std::net::{Ipv4Addr, SocketAddrV4};

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
    let listener = net.b.open(Transport::Tcp).unwrap();
    net.b
        .bind(listener, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port))
        .unwrap();
    net.b.listen(listener, 1).unwrap();
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

/// Moves `data` both ways at once over a connected pair and checks every byte.
fn exchange<D: Device>(net: &mut Net<D>, a_sock: SocketId, b_sock: SocketId, len: usize) {
    let to_b = random_bytes(len, 1);
    let to_a = random_bytes(len, 2);
    let (mut sent_ab, mut sent_ba) = (0, 0);
    let (mut got_b, mut got_a) = (Vec::new(), Vec::new());
    let mut buf = vec![0u8; 4096];
    let done = net.run_until(5_000_000, |n| {
        if sent_ab < len {
            if let Ok(k) = n.a.send(a_sock, &to_b[sent_ab..]) {
                sent_ab += k;
            }
        }
        if sent_ba < len {
            if let Ok(k) = n.b.send(b_sock, &to_a[sent_ba..]) {
                sent_ba += k;
            }
        }
        while let Ok(k) = n.b.recv(b_sock, &mut buf) {
            assert!(k > 0, "unexpected end of stream at B");
            got_b.extend_from_slice(&buf[..k]);
        }
        while let Ok(k) = n.a.recv(a_sock, &mut buf) {
            assert!(k > 0, "unexpected end of stream at A");
            got_a.extend_from_slice(&buf[..k]);
        }
        got_a.len() >= len && got_b.len() >= len
    });
    assert!(
        done,
        "transfer stalled: A got {} B got {} of {len}",
        got_a.len(),
        got_b.len()
    );
    assert!(got_b == to_b, "A->B bytes differ");
    assert!(got_a == to_a, "B->A bytes differ");
}

#[test]
fn tcp_is_byte_exact_both_ways() {
    let mut net = plain_net();
    let (a, b) = connect_pair(&mut net, 7000);
    exchange(&mut net, a, b, 512 * 1024);
}

#[test]
fn tcp_is_byte_exact_over_loss_corruption_and_reordering() {
    let mut net = faulty_net();
    let (a, b) = connect_pair(&mut net, 7001);
    exchange(&mut net, a, b, 256 * 1024);
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
    exchange(&mut net, a_sock, b_sock, 64 * 1024);
    // Four TCP sockets: one in use, three left.
    let more: Vec<_> = (0..3).map(|_| net.a.open(Transport::Tcp)).collect();
    assert!(more.iter().all(Result::is_ok));
    assert_eq!(net.a.open(Transport::Tcp), Err(NetError::NoMemory));
}

#[test]
fn readiness_follows_the_connection() {
    let mut net = plain_net();
    let listener = net.b.open(Transport::Tcp).unwrap();
    net.b
        .bind(listener, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 7700))
        .unwrap();
    net.b.listen(listener, 1).unwrap();
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

#[test]
fn sockets_in_time_wait_are_reclaimed_when_the_pool_runs_out() {
    let mut net = plain_net();
    let listener = net.b.open(Transport::Tcp).unwrap();
    net.b
        .bind(listener, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 8200))
        .unwrap();
    net.b.listen(listener, 3).unwrap();
    let clients: Vec<SocketId> = (0..3)
        .map(|_| {
            let s = net.a.open(Transport::Tcp).unwrap();
            net.a.connect(s, SocketAddrV4::new(B_IP, 8200)).unwrap();
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
    // A closes first, so A's sockets end in TIME-WAIT (smoltcp keeps it 10 s).
    let closed_at = net.now;
    clients.iter().for_each(|&s| net.a.close(s));
    net.run_for(200_000);
    servers.iter().for_each(|&s| net.b.close(s));
    net.run_for(200_000);
    assert!(net.now - closed_at < 5_000_000);
    let all: Vec<_> = (0..8).map(|_| net.a.open(Transport::Tcp)).collect();
    assert!(all.iter().all(Result::is_ok), "{all:?}");
    // The reclaimed sockets work: connect one of them.
    let last = *all.last().unwrap().as_ref().unwrap();
    net.a.connect(last, SocketAddrV4::new(B_IP, 8200)).unwrap();
    assert!(net.run_until(100_000, |n| n.a.tcp_phase(last) == Ok(TcpPhase::Connected)));
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
