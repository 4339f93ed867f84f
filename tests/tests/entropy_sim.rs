//! What an attacker on the wire sees of the stack's secrets, on simulated boards (netstack over
//! the RTL8152 and DWC2 drivers over their models): TCP initial sequence numbers, ephemeral
//! ports, DNS query ids and source ports.
//!
//! - Two boards booted with the same MAC, on the same virtual clock, doing the same things, send
//!   different ISNs, ports and DNS ids (each stack's seed from the OS's CSPRNG, as in the
//!   simulator); the same fixed seed gives the same values (so the comparison can fail).
//! - 1,000 ISNs of one board pass a simple statistical check: no repeats, no constant
//!   difference, no LCG (mod 2^32) or xorshift32 relation between consecutive ones, every bit
//!   set about half the time; sequences with those patterns fail the same check.

use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

use k230_hal::sim::board::SimBoard;
use k230_hal::sim::wire::pair::pair;
use k230_hal::sim::wire::Wire;
use netstack::api::{Ipv4Config, Micros, SocketStack, TcpPhase, Transport};
use netstack::{HeapStorage, InterfaceControl, Seed, Stack, StackConfig};
use smoltcp::wire::{
    EthernetFrame, EthernetProtocol, IpProtocol, Ipv4Packet, TcpPacket, UdpPacket,
};

const BOARD_IP: Ipv4Addr = Ipv4Addr::new(10, 6, 0, 2);
const PEER_IP: Ipv4Addr = Ipv4Addr::new(10, 6, 0, 1);
const MAC: [u8; 6] = [0x00, 0xe0, 0x4c, 0x06, 0x00, 0x02];
const PEER_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x06, 0x00, 0x01];
/// The peer's closed port: every SYN is answered with a RST.
const CLOSED_PORT: u16 = 9;

/// A wire that keeps a copy of every frame the board sends.
struct Recorder<W> {
    inner: W,
    sent: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl<W: Wire> Wire for Recorder<W> {
    fn send(&mut self, frame: &[u8]) -> std::io::Result<()> {
        self.inner.send(frame)?;
        self.sent.lock().unwrap().push(frame.to_vec());
        Ok(())
    }

    fn recv(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        self.inner.recv()
    }
}

/// What the board put on the wire that an attacker cares about.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Observed {
    /// (source port, ISN) of each SYN.
    syns: Vec<(u16, u32)>,
    /// (source port, query id) of each DNS query.
    queries: Vec<(u16, u16)>,
}

fn observe(frames: &[Vec<u8>]) -> Observed {
    let mut seen = Observed::default();
    for frame in frames {
        let Ok(eth) = EthernetFrame::new_checked(&frame[..]) else {
            continue;
        };
        if eth.ethertype() != EthernetProtocol::Ipv4 {
            continue;
        }
        let Ok(ip) = Ipv4Packet::new_checked(eth.payload()) else {
            continue;
        };
        match ip.next_header() {
            IpProtocol::Tcp => {
                if let Ok(tcp) = TcpPacket::new_checked(ip.payload()) {
                    if tcp.syn() && !tcp.ack() {
                        seen.syns.push((tcp.src_port(), tcp.seq_number().0 as u32));
                    }
                }
            }
            IpProtocol::Udp => {
                if let Ok(udp) = UdpPacket::new_checked(ip.payload()) {
                    let dns = udp.payload();
                    if udp.dst_port() == 53 && dns.len() >= 2 {
                        seen.queries
                            .push((udp.src_port(), u16::from_be_bytes([dns[0], dns[1]])));
                    }
                }
            }
            _ => {}
        }
    }
    seen
}

fn config(address: Ipv4Addr) -> Ipv4Config {
    Ipv4Config {
        address,
        netmask: Ipv4Addr::new(255, 255, 255, 0),
        gateway: Ipv4Addr::UNSPECIFIED,
        dns: PEER_IP,
    }
}

fn storage() -> HeapStorage {
    HeapStorage {
        tcp_sockets: 4,
        tcp_buffer: 4096,
        udp_sockets: 2,
        udp_buffer: 1536,
    }
}

/// A board (MAC [`MAC`], stack seeded with `seed`) cabled to a peer board; the board's frames
/// are recorded.
struct Rig {
    board: Stack<'static, SimBoard>,
    peer: Stack<'static, SimBoard>,
    sent: Arc<Mutex<Vec<Vec<u8>>>>,
    now: Micros,
}

impl Rig {
    fn new(seed: Seed) -> Self {
        let (a, b) = pair(64);
        let sent = Arc::new(Mutex::new(Vec::new()));
        let wire = Recorder {
            inner: a,
            sent: sent.clone(),
        };
        let mut board = Stack::new(
            SimBoard::new(wire, MAC).expect("board comes up"),
            StackConfig { mac: MAC, seed },
            storage().parts(),
            0,
        );
        board.set_static(config(BOARD_IP)).unwrap();
        let mut peer = Stack::new(
            SimBoard::new(b, PEER_MAC).expect("peer comes up"),
            StackConfig {
                mac: PEER_MAC,
                seed: Seed::reproducible(1),
            },
            storage().parts(),
            0,
        );
        peer.set_static(config(PEER_IP)).unwrap();
        Self {
            board,
            peer,
            sent,
            now: 0,
        }
    }

    /// One round of both boards, then 1 ms passes.
    fn step(&mut self) {
        for stack in [&mut self.board, &mut self.peer] {
            stack.device_mut().poll(self.now / 1000);
            let carrier = stack.device().supervisor().carrier();
            stack.set_link_up(carrier);
            stack.poll(self.now);
        }
        self.now += 1_000;
    }

    /// Connects to the peer's closed port and waits (at most 2 s) for the refusal.
    fn refused_connection(&mut self) {
        let id = self.board.open(Transport::Tcp).unwrap();
        let to = std::net::SocketAddrV4::new(PEER_IP, CLOSED_PORT);
        self.board.connect(id, to).unwrap();
        for _ in 0..2_000 {
            self.step();
            if self.board.tcp_phase(id) != Ok(TcpPhase::Connecting) {
                break;
            }
        }
        // Refused (the failure itself is reported by the next socket call).
        assert_eq!(self.board.tcp_phase(id), Ok(TcpPhase::Closed));
        self.board.close(id);
    }

    /// Starts resolving `name` (the peer answers nothing) and lets the query go out.
    fn query(&mut self, name: &str) {
        self.board.resolve_start(name).unwrap();
        for _ in 0..50 {
            self.step();
        }
    }

    fn observed(&self) -> Observed {
        observe(&self.sent.lock().unwrap())
    }
}

/// The same boot and the same actions on a board seeded with `seed`.
fn boot_and_act(seed: Seed) -> Observed {
    let mut rig = Rig::new(seed);
    for _ in 0..10 {
        rig.step();
    }
    for _ in 0..4 {
        rig.refused_connection();
    }
    rig.query("peer.k230.sim");
    rig.query("other.k230.sim");
    let seen = rig.observed();
    assert_eq!(seen.syns.len(), 4, "{seen:?}");
    assert_eq!(seen.queries.len(), 2, "{seen:?}");
    seen
}

#[test]
fn two_boards_with_the_same_clock_and_mac_send_different_isns_ports_and_dns_ids() {
    let one = boot_and_act(Seed::from_os().unwrap());
    let two = boot_and_act(Seed::from_os().unwrap());
    println!("board 1: {one:?}\nboard 2: {two:?}");
    let isns = |o: &Observed| o.syns.iter().map(|s| s.1).collect::<Vec<_>>();
    let ports = |o: &Observed| o.syns.iter().map(|s| s.0).collect::<Vec<_>>();
    let dns_ports = |o: &Observed| o.queries.iter().map(|q| q.0).collect::<Vec<_>>();
    let dns_ids = |o: &Observed| o.queries.iter().map(|q| q.1).collect::<Vec<_>>();
    assert!(isns(&one).iter().all(|i| !isns(&two).contains(i)));
    assert_ne!(ports(&one), ports(&two));
    assert_ne!(dns_ports(&one), dns_ports(&two));
    assert_ne!(dns_ids(&one), dns_ids(&two));

    // The comparison can fail: one fixed seed, the same values.
    assert_eq!(
        boot_and_act(Seed::reproducible(5)),
        boot_and_act(Seed::reproducible(5))
    );
}

/// Why a sequence of ISNs looks predictable, if it does.
fn pattern(isns: &[u32]) -> Option<String> {
    let mut sorted = isns.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted.len() != isns.len() {
        return Some(format!("{} repeats", isns.len() - sorted.len()));
    }
    let diffs: Vec<u32> = isns.windows(2).map(|w| w[1].wrapping_sub(w[0])).collect();
    let mut distinct = diffs.clone();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < diffs.len() * 9 / 10 {
        return Some(format!("only {} distinct differences", distinct.len()));
    }
    // x[i+1] = a x[i] + c (mod 2^32) makes d[i+1] = a d[i]: the multiplier from each odd
    // difference would be the same every time.
    let mut multipliers: Vec<u32> = diffs
        .windows(2)
        .filter(|d| d[0] % 2 == 1)
        .map(|d| d[1].wrapping_mul(inverse(d[0])))
        .collect();
    let fitted = multipliers.len();
    multipliers.sort_unstable();
    multipliers.dedup();
    if multipliers.len() < fitted * 9 / 10 {
        return Some(format!(
            "LCG-like: {} multipliers for {fitted} steps",
            multipliers.len()
        ));
    }
    if isns.windows(2).any(|w| w[1] == xorshift32(w[0])) {
        return Some("a xorshift32 step".into());
    }
    let n = isns.len() as f64;
    for bit in 0..32 {
        let ones = isns.iter().filter(|x| *x >> bit & 1 == 1).count() as f64;
        // 6 standard deviations of a fair coin.
        if (ones - n / 2.0).abs() > 3.0 * n.sqrt() {
            return Some(format!("bit {bit} set in {ones} of {n}"));
        }
    }
    None
}

/// The inverse of odd `x` modulo 2^32 (Newton's iteration).
fn inverse(x: u32) -> u32 {
    let mut y = x;
    for _ in 0..5 {
        y = y.wrapping_mul(2u32.wrapping_sub(x.wrapping_mul(y)));
    }
    y
}

fn xorshift32(mut x: u32) -> u32 {
    x ^= x << 13;
    x ^= x >> 17;
    x ^ (x << 5)
}

#[test]
fn the_check_catches_predictable_sequences() {
    let steady: Vec<u32> = (0..1000u32).map(|i| i.wrapping_mul(64_000)).collect();
    assert!(pattern(&steady).is_some());
    let lcg: Vec<u32> = std::iter::successors(Some(7u32), |x| {
        Some(x.wrapping_mul(1_103_515_245).wrapping_add(12_345))
    })
    .take(1000)
    .collect();
    assert!(
        pattern(&lcg).unwrap().starts_with("LCG-like"),
        "{:?}",
        pattern(&lcg)
    );
    let xs: Vec<u32> = std::iter::successors(Some(1u32), |x| Some(xorshift32(*x)))
        .take(1000)
        .collect();
    assert_eq!(pattern(&xs).as_deref(), Some("a xorshift32 step"));
}

#[test]
fn a_thousand_isns_from_one_board_show_no_pattern() {
    let mut rig = Rig::new(Seed::from_os().unwrap());
    for _ in 0..10 {
        rig.step();
    }
    for _ in 0..1000 {
        rig.refused_connection();
    }
    let seen = rig.observed();
    let isns: Vec<u32> = seen.syns.iter().map(|s| s.1).collect();
    assert_eq!(isns.len(), 1000);
    assert_eq!(pattern(&isns), None);
    let ports: Vec<u16> = seen.syns.iter().map(|s| s.0).collect();
    let consecutive = ports
        .windows(2)
        .filter(|w| w[1] == w[0].wrapping_add(1))
        .count();
    assert!(consecutive < 10, "{consecutive} ports one above the last");
}
