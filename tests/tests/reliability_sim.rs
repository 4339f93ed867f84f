//! Reliability of the whole simulated path: netstack over the RTL8152 driver over the DWC2
//! driver over the DWC2 model and the RTL8152 model, two boards on an in-process wire.
//!
//! - Impairments: 4 MiB of TCP each way under 5% loss, 5% reordering, 1% duplication and 1%
//!   corruption (per frame, each direction), byte-exact by SHA-256; the seed is printed and
//!   taken from `K230_IMPAIR_SEED` when set, so a failure reproduces. Transfer times and
//!   throughput are printed (`--nocapture`).
//!
//! The stacks run on a virtual clock (as in `netstack_sim.rs`); wall-clock time bounds each run.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use k230_hal::sim::board::SimBoard;
use k230_hal::sim::wire::impair::{Impair, ImpairStats, Impairments, StatsHandle};
use k230_hal::sim::wire::pair::{pair, PairEnd};
use k230_hal::sim::wire::Wire;
use netstack::api::{Ipv4Config, Micros, SocketId, SocketStack, TcpPhase, Transport};
use netstack::{HeapStorage, InterfaceControl, Stack, StackConfig};
use rand::{RngCore, SeedableRng};
use sha2::{Digest, Sha256};

const A_IP: Ipv4Addr = Ipv4Addr::new(10, 8, 0, 1);
const B_IP: Ipv4Addr = Ipv4Addr::new(10, 8, 0, 2);
const MAC_A: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x0a, 0x01];
const MAC_B: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x0b, 0x01];
/// Frames in flight per wire direction.
const WIRE_CAPACITY: usize = 64;
/// Bytes moved each way under impairment.
const IMPAIRED_BYTES: usize = 4 * 1024 * 1024;
/// Default impairment seed (override with `K230_IMPAIR_SEED`).
const DEFAULT_SEED: u64 = 0x6b32_3330_7265_6c31;
/// Wall-clock limit of one transfer.
const WALL_LIMIT: Duration = Duration::from_secs(240);
/// Stack rounds one transfer may take.
const STEP_LIMIT: usize = 20_000_000;

fn config(address: Ipv4Addr) -> Ipv4Config {
    Ipv4Config {
        address,
        netmask: Ipv4Addr::new(255, 255, 255, 0),
        gateway: Ipv4Addr::UNSPECIFIED,
        dns: Ipv4Addr::UNSPECIFIED,
    }
}

/// A stack on a simulated board cabled to `wire`.
fn board_stack<W: Wire + 'static>(wire: W, mac: [u8; 6], ip: Ipv4Addr) -> Stack<'static, SimBoard> {
    let board = SimBoard::new(wire, mac).expect("board comes up");
    let storage = HeapStorage {
        tcp_sockets: 4,
        tcp_buffer: 32 * 1024,
        udp_sockets: 1,
        udp_buffer: 1536,
    };
    let seed = u64::from(mac[4]) * 7919;
    let mut stack = Stack::new(board, StackConfig { mac, seed }, storage.parts(), 0);
    stack.set_static(config(ip)).expect("valid config");
    stack
}

/// Two board stacks and a virtual clock.
struct Net {
    a: Stack<'static, SimBoard>,
    b: Stack<'static, SimBoard>,
    now: Micros,
}

impl Net {
    /// Polls both stacks once and moves the clock: a little while frames flow, else to the
    /// earlier deadline. Boards are polled every round: the NIC model's only clock is the
    /// host talking to it.
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
            idle_until.clamp(self.now + 50, self.now + 10_000)
        };
    }

    /// Steps until `done` holds, at most `steps` times and `WALL_LIMIT` long.
    fn run_until(&mut self, steps: usize, mut done: impl FnMut(&mut Self) -> bool) -> bool {
        let deadline = Instant::now() + WALL_LIMIT;
        for i in 0..steps {
            if done(self) {
                return true;
            }
            if i % 1024 == 0 && Instant::now() > deadline {
                return false;
            }
            self.step();
        }
        done(self)
    }
}

/// Which board a socket lives on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    A,
    B,
}

impl Net {
    fn side(&mut self, side: Side) -> &mut Stack<'static, SimBoard> {
        match side {
            Side::A => &mut self.a,
            Side::B => &mut self.b,
        }
    }

    /// A listener on `server`'s side at `port` and a connection from the other side; returns
    /// (client socket, accepted socket).
    fn connect(&mut self, client: Side, port: u16) -> (SocketId, SocketId) {
        let (server, server_ip) = match client {
            Side::A => (Side::B, B_IP),
            Side::B => (Side::A, A_IP),
        };
        let listener = self.side(server).open(Transport::Tcp).unwrap();
        let any = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port);
        self.side(server).bind(listener, any).unwrap();
        self.side(server).listen(listener, 1).unwrap();
        let sock = self.side(client).open(Transport::Tcp).unwrap();
        let remote = SocketAddrV4::new(server_ip, port);
        self.side(client).connect(sock, remote).unwrap();
        let mut accepted = None;
        let up = self.run_until(2_000_000, |n| {
            if accepted.is_none() {
                accepted = n.side(server).accept(listener).ok();
            }
            accepted.is_some() && n.side(client).tcp_phase(sock) == Ok(TcpPhase::Connected)
        });
        assert!(up, "connection on port {port} not established");
        self.side(server).close(listener);
        (sock, accepted.unwrap().0)
    }
}

/// What one transfer took.
struct Transfer {
    wall: Duration,
    virtual_us: Micros,
}

impl Transfer {
    fn report(&self, what: &str, bytes: usize) {
        let secs = self.wall.as_secs_f64();
        eprintln!(
            "{what}: {bytes} bytes in {:.2} s wall ({:.2} MB/s), {:.2} s virtual ({:.2} MB/s)",
            secs,
            bytes as f64 / secs / 1e6,
            self.virtual_us as f64 / 1e6,
            bytes as f64 / (self.virtual_us as f64 / 1e6) / 1e6,
        );
    }
}

/// Sends `len` seeded random bytes from `from` to the other side over a fresh connection and
/// checks the SHA-256 of what arrived against what was sent.
fn transfer(net: &mut Net, from: Side, port: u16, len: usize, seed: u64) -> Transfer {
    let to = if from == Side::A { Side::B } else { Side::A };
    let (tx, rx) = net.connect(from, port);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut chunk = vec![0u8; 16 * 1024];
    let mut pending = 0;
    let mut offset = 0;
    let mut sent = 0;
    let (mut sent_hash, mut got_hash) = (Sha256::new(), Sha256::new());
    let mut got = 0;
    let mut buf = vec![0u8; 16 * 1024];
    let (wall, start) = (Instant::now(), net.now);
    let done = net.run_until(STEP_LIMIT, |n| {
        while sent < len {
            if offset == pending {
                pending = chunk.len().min(len - sent);
                rng.fill_bytes(&mut chunk[..pending]);
                sent_hash.update(&chunk[..pending]);
                offset = 0;
            }
            match n.side(from).send(tx, &chunk[offset..pending]) {
                Ok(k) if k > 0 => {
                    offset += k;
                    sent += k;
                }
                _ => break,
            }
        }
        while let Ok(k) = n.side(to).recv(rx, &mut buf) {
            assert!(k > 0, "end of stream after {got} bytes");
            got_hash.update(&buf[..k]);
            got += k;
        }
        got >= len
    });
    assert!(done, "transfer stalled: {got} of {len} bytes arrived");
    assert_eq!(got, len);
    assert_eq!(
        got_hash.finalize(),
        sent_hash.finalize(),
        "SHA-256 of the bytes received differs from what was sent"
    );
    let result = Transfer {
        wall: wall.elapsed(),
        virtual_us: net.now - start,
    };
    net.side(from).close(tx);
    net.side(to).close(rx);
    result
}

/// Two boards whose outgoing frames both go through `rates`, and the impairment counters of
/// each direction.
fn impaired_net(rates: Impairments, seed: u64) -> (Net, [StatsHandle; 2]) {
    let (wa, wb): (PairEnd, PairEnd) = pair(WIRE_CAPACITY);
    let (ia, ib) = (
        Impair::new(wa, rates, seed),
        Impair::new(wb, rates, seed ^ 0x5555),
    );
    let stats = [ia.stats_handle(), ib.stats_handle()];
    let net = Net {
        a: board_stack(ia, MAC_A, A_IP),
        b: board_stack(ib, MAC_B, B_IP),
        now: 0,
    };
    (net, stats)
}

fn impair_seed() -> u64 {
    std::env::var("K230_IMPAIR_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SEED)
}

/// Checks the boards' models and drivers recorded no rule broken.
fn assert_clean(net: &Net) {
    for board in [net.a.device(), net.b.device()] {
        assert_eq!(board.nic_report().errors, vec![]);
        assert_eq!(board.usb_violations(), Vec::<String>::new());
    }
}

#[test]
fn four_mib_each_way_survive_loss_reordering_duplication_and_corruption() {
    let seed = impair_seed();
    eprintln!("impairment seed {seed} (set K230_IMPAIR_SEED to reproduce another)");
    let rates = Impairments {
        drop_pct: 5,
        corrupt_pct: 1,
        duplicate_pct: 1,
        reorder_pct: 5,
    };
    // The same transfers on a clean wire first, for comparison.
    let (mut clean, _) = impaired_net(Impairments::default(), seed);
    let clean_ab = transfer(&mut clean, Side::A, 9001, IMPAIRED_BYTES, seed);
    clean_ab.report("clean A->B", IMPAIRED_BYTES);
    let (mut net, impair) = impaired_net(rates, seed);
    let ab = transfer(&mut net, Side::A, 9001, IMPAIRED_BYTES, seed);
    ab.report("impaired A->B", IMPAIRED_BYTES);
    let ba = transfer(
        &mut net,
        Side::B,
        9002,
        IMPAIRED_BYTES,
        seed.wrapping_add(1),
    );
    ba.report("impaired B->A", IMPAIRED_BYTES);
    assert_clean(&net);
    for (name, handle, board) in [
        ("A", &impair[0], net.a.device()),
        ("B", &impair[1], net.b.device()),
    ] {
        let s: ImpairStats = handle.get();
        eprintln!(
            "board {name}: sent through the impairments {s:?}; driver {:?}",
            board.stats()
        );
        // Each impairment really happened, at about its rate (frames sent: the driver's count).
        let sent = board.stats().tx_frames;
        assert!(sent > 2_000, "{sent} frames sent");
        for (count, pct) in [
            (s.dropped, rates.drop_pct),
            (s.reordered, rates.reorder_pct),
            (s.duplicated, rates.duplicate_pct),
            (s.corrupted, rates.corrupt_pct),
        ] {
            let expected = sent * u64::from(pct) / 100;
            assert!(
                count > expected / 3 && count < expected * 3,
                "{count} of {sent} frames for {pct}%: {s:?}"
            );
        }
    }
}
