//! What an attacker on the wire sees of the stack's secrets, on simulated boards (netstack over
//! the RTL8152 and DWC2 drivers over their models): TCP initial sequence numbers of connections
//! it opens and of connections it accepts, ephemeral ports, DNS query ids and source ports, DHCP
//! transaction ids.
//!
//! - Two boards booted with the same MAC, on the same virtual clock, doing the same things, send
//!   different ISNs (SYN and SYN-ACK), ports, DNS ids and DHCP transaction ids (each stack's
//!   seed from the OS's CSPRNG, as in the simulator); the same fixed seed gives the same values
//!   (so the comparison can fail).
//! - 1,000 ISNs of connections one board opens, 1,000 of connections it accepts and 200
//!   consecutive DHCP transaction ids pass a simple statistical check: no repeats, no constant
//!   difference, no LCG (mod 2^32) or xorshift32 relation between consecutive ones, every bit
//!   set about half the time; sequences with those patterns fail the same check.
//! - Nor does an observer who knows smoltcp's generator ([`netstack::lcg`]) predict them: from
//!   two consecutive values it finds every generator state that draws them in a row and checks
//!   whether one draws the third; on consecutive draws of smoltcp's generator (what the stack's
//!   interface would send without [`netstack`]'s scratch interfaces) it always succeeds. (With
//!   known seeds, netstack's `scratch::on_the_wire` tests check the exact values.)

use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

use k230_hal::sim::board::SimBoard;
use k230_hal::sim::wire::pair::pair;
use k230_hal::sim::wire::Wire;
use netstack::api::{Ipv4Config, Micros, SocketStack, TcpPhase, Transport};
use netstack::lcg::{draw32, step, INC, MUL};
use netstack::{HeapStorage, InterfaceControl, Seed, Stack, StackConfig};
use smoltcp::wire::{
    DhcpPacket, EthernetFrame, EthernetProtocol, IpProtocol, Ipv4Packet, TcpPacket, UdpPacket,
    DHCP_SERVER_PORT,
};

const BOARD_IP: Ipv4Addr = Ipv4Addr::new(10, 6, 0, 2);
const PEER_IP: Ipv4Addr = Ipv4Addr::new(10, 6, 0, 1);
const MAC: [u8; 6] = [0x00, 0xe0, 0x4c, 0x06, 0x00, 0x02];
const PEER_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x06, 0x00, 0x01];
/// The peer's closed port: every SYN is answered with a RST.
const CLOSED_PORT: u16 = 9;
/// The board's listening port.
const LISTEN_PORT: u16 = 80;

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

    fn recv_into(&mut self, into: &mut Vec<u8>) -> std::io::Result<Option<usize>> {
        self.inner.recv_into(into)
    }
}

/// What the board put on the wire that an attacker cares about.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Observed {
    /// (source port, ISN) of each SYN.
    syns: Vec<(u16, u32)>,
    /// ISN of each SYN-ACK.
    syn_acks: Vec<u32>,
    /// (source port, query id) of each DNS query.
    queries: Vec<(u16, u16)>,
    /// Transaction id of each DHCP message.
    xids: Vec<u32>,
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
                    } else if tcp.syn() {
                        seen.syn_acks.push(tcp.seq_number().0 as u32);
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
                    if udp.dst_port() == DHCP_SERVER_PORT {
                        if let Ok(dhcp) = DhcpPacket::new_checked(udp.payload()) {
                            seen.xids.push(dhcp.transaction_id());
                        }
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
        self.step_by(1_000);
    }

    /// One round of both boards, then `micros` pass.
    fn step_by(&mut self, micros: Micros) {
        for stack in [&mut self.board, &mut self.peer] {
            stack.device_mut().poll(self.now / 1000);
            let carrier = stack.device().supervisor().carrier();
            stack.set_link_up(carrier);
            stack.poll(self.now);
        }
        self.now += micros;
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

    /// The peer connects to the board's listener `listener`; the board accepts and both close
    /// (at most 2 s each step).
    fn accepted_connection(&mut self, listener: netstack::api::SocketId) {
        let id = self.peer.open(Transport::Tcp).unwrap();
        let to = std::net::SocketAddrV4::new(BOARD_IP, LISTEN_PORT);
        self.peer.connect(id, to).unwrap();
        let mut accepted = None;
        for _ in 0..2_000 {
            self.step();
            accepted = self.board.accept(listener).ok();
            if accepted.is_some() {
                break;
            }
        }
        let (conn, _) = accepted.expect("the board accepts");
        self.board.close(conn);
        self.peer.close(id);
        for _ in 0..5 {
            self.step();
        }
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

/// The board's listener on [`LISTEN_PORT`].
fn listen(rig: &mut Rig) -> netstack::api::SocketId {
    let listener = rig.board.open(Transport::Tcp).unwrap();
    let local = std::net::SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, LISTEN_PORT);
    rig.board.bind(listener, local).unwrap();
    rig.board.listen(listener, 2).unwrap();
    listener
}

/// Lets the board's DHCP client (no server answers) send `n` DISCOVERs, then goes back to
/// the static address.
fn discover(rig: &mut Rig, n: usize) {
    rig.board.start_dhcp();
    for _ in 0..n * 20 {
        rig.step_by(100_000);
    }
    rig.board.set_static(config(BOARD_IP)).unwrap();
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
    let listener = listen(&mut rig);
    for _ in 0..4 {
        rig.accepted_connection(listener);
    }
    rig.query("peer.k230.sim");
    rig.query("other.k230.sim");
    discover(&mut rig, 4);
    let seen = rig.observed();
    assert_eq!(seen.syns.len(), 4, "{seen:?}");
    assert_eq!(seen.syn_acks.len(), 4, "{seen:?}");
    assert_eq!(seen.queries.len(), 2, "{seen:?}");
    assert!(seen.xids.len() >= 4, "{seen:?}");
    seen
}

#[test]
fn two_boards_with_the_same_clock_and_mac_send_different_isns_ports_and_ids() {
    let one = boot_and_act(Seed::from_os().unwrap());
    let two = boot_and_act(Seed::from_os().unwrap());
    println!("board 1: {one:?}\nboard 2: {two:?}");
    let isns = |o: &Observed| o.syns.iter().map(|s| s.1).collect::<Vec<_>>();
    let ports = |o: &Observed| o.syns.iter().map(|s| s.0).collect::<Vec<_>>();
    let dns_ports = |o: &Observed| o.queries.iter().map(|q| q.0).collect::<Vec<_>>();
    let dns_ids = |o: &Observed| o.queries.iter().map(|q| q.1).collect::<Vec<_>>();
    assert!(isns(&one).iter().all(|i| !isns(&two).contains(i)));
    assert!(one.syn_acks.iter().all(|i| !two.syn_acks.contains(i)));
    assert!(one.xids.iter().all(|x| !two.xids.contains(x)));
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
    assert_eq!(predicted(&isns, 4), None);
    let ports: Vec<u16> = seen.syns.iter().map(|s| s.0).collect();
    let consecutive = ports
        .windows(2)
        .filter(|w| w[1] == w[0].wrapping_add(1))
        .count();
    assert!(consecutive < 10, "{consecutive} ports one above the last");
}

#[test]
fn a_thousand_accepted_connections_show_no_pattern_in_their_isns() {
    let mut rig = Rig::new(Seed::from_os().unwrap());
    for _ in 0..10 {
        rig.step();
    }
    let listener = listen(&mut rig);
    for _ in 0..1000 {
        rig.accepted_connection(listener);
    }
    let isns = rig.observed().syn_acks;
    assert_eq!(isns.len(), 1000);
    assert_eq!(pattern(&isns), None);
    assert_eq!(predicted(&isns, 4), None);
}

#[test]
fn two_hundred_dhcp_transaction_ids_of_one_board_show_no_pattern() {
    let mut rig = Rig::new(Seed::from_os().unwrap());
    discover(&mut rig, 200);
    let xids = rig.observed().xids;
    assert!(xids.len() >= 200, "{} DISCOVERs", xids.len());
    assert_eq!(pattern(&xids), None);
    assert_eq!(predicted(&xids, 4), None);
}

/// Whether smoltcp's generator, in a state that draws `x1` and then `x2`, draws `x3` next: the
/// prediction of an observer of two consecutive draws.
///
/// A state drawing `x1` is `t1 | cut | x1 | low`: `t1` its top three bits (the draw's shift
/// `29 - t1`), `cut` the `t1` bits between them and `x1`, `low` the `29 - t1` bits below. The
/// next state draws `x2` with its own top bits `t2`: its bits `29 - t2 ..= 60 - t2` are `x2`,
/// which only depend on the state modulo `2^(61 - t2)`. For each `t1`, `t2` and the bits of
/// `cut` below that, `low` is found by meeting in the middle: its low half's products are
/// sorted, and for each high half the low halves that land the next state's bits on `x2` are a
/// window of that list.
fn predicts(x1: u32, x2: u32, x3: u32) -> bool {
    for t1 in 0..8u64 {
        let shift1 = 29 - t1;
        let half = shift1 / 2;
        for t2 in 0..8u64 {
            let shift2 = 29 - t2;
            let modulus_bits = shift2 + 32;
            let mask = (1u64 << modulus_bits) - 1;
            let mut lows: Vec<(u64, u64)> = (0..1u64 << half)
                .map(|lo| (lo.wrapping_mul(MUL) & mask, lo))
                .collect();
            lows.sort_unstable();
            let cut_bits_seen = t1.saturating_sub(t2);
            let want = u64::from(x2) << shift2;
            for cut_low in 0..1u64 << cut_bits_seen {
                let known = (cut_low << (shift1 + 32)) | (u64::from(x1) << shift1);
                for hi in 0..1u64 << (shift1 - half) {
                    let part = (known | (hi << half)).wrapping_mul(MUL).wrapping_add(INC) & mask;
                    let from = want.wrapping_sub(part) & mask;
                    for lo in window(&lows, from, 1 << shift2, mask) {
                        for cut_high in 0..1u64 << (t1 - cut_bits_seen) {
                            let cut = (cut_high << cut_bits_seen) | cut_low;
                            let s1 = (t1 << 61)
                                | (cut << (shift1 + 32))
                                | (u64::from(x1) << shift1)
                                | (hi << half)
                                | lo;
                            let s2 = step(s1);
                            if draw32(s1) == x1 && draw32(s2) == x2 && draw32(step(s2)) == x3 {
                                return true;
                            }
                        }
                    }
                }
            }
        }
    }
    false
}

/// The second fields of the entries of `sorted` (by first field) whose first field lies in
/// `[from, from + len)` modulo `mask + 1`.
fn window(sorted: &[(u64, u64)], from: u64, len: u64, mask: u64) -> Vec<u64> {
    let end = from + len;
    let range = |a: u64, b: u64| {
        let start = sorted.partition_point(|e| e.0 < a);
        sorted[start..]
            .iter()
            .take_while(move |e| e.0 < b)
            .map(|e| e.1)
    };
    if end <= mask + 1 {
        range(from, end).collect()
    } else {
        range(from, mask + 1)
            .chain(range(0, end - mask - 1))
            .collect()
    }
}

/// The first consecutive triple of `values` an observer of smoltcp's generator predicts (of the
/// first `triples`).
fn predicted(values: &[u32], triples: usize) -> Option<usize> {
    values
        .windows(3)
        .take(triples)
        .position(|w| predicts(w[0], w[1], w[2]))
}

#[test]
fn the_observer_predicts_smoltcps_generator_and_nothing_else() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(18);
    for _ in 0..8 {
        let mut state: u64 = rng.gen();
        let draws: Vec<u32> = (0..3)
            .map(|_| {
                state = step(state);
                draw32(state)
            })
            .collect();
        assert!(predicts(draws[0], draws[1], draws[2]), "{draws:x?}");
        assert!(!predicts(draws[0], draws[1], draws[2] ^ 1));
    }
    let random: Vec<u32> = (0..10).map(|_| rng.gen()).collect();
    assert_eq!(predicted(&random, 8), None);
}
