//! Reliability of the whole simulated path: netstack over the RTL8152 driver over the DWC2
//! driver over the DWC2 model and the RTL8152 model, two boards on an in-process wire.
//!
//! - Impairments: 4 MiB of TCP each way under 5% loss, 5% reordering, 1% duplication and 1%
//!   corruption (per frame, each direction), byte-exact by SHA-256; the seed is printed and
//!   taken from `K230_IMPAIR_SEED` when set, so a failure reproduces. Transfer times and
//!   throughput are printed (`--nocapture`).
//!
//! - USB unplug: board A's RTL8152 leaves the root port mid-transfer (a USB disconnect the
//!   DWC2 driver sees on HPRT0). The board's supervisor fails the NIC and reports the loss; the
//!   harness, as the firmware's network service, removes the interface's address as lwIP's
//!   `netif_remove` does, and A's sockets (through `upy-socket`, as MicroPython sees them) fail
//!   with `ECONNABORTED` (lwIP aborts the connections of a removed netif with `ERR_ABRT`, which
//!   modlwip turns into `ECONNABORTED`). Replugged, the NIC is enumerated and brought up again
//!   with the same MAC, and a new connection is byte-exact.
//! - Cable unplug: board A's Ethernet cable is pulled mid-transfer for two seconds; the link
//!   goes down and up, the USB device stays, and the TCP transfer completes byte-exact.
//! - A halted (STALLed) bulk endpoint is cleared by the driver and traffic goes on.
//!
//! The stacks run on a virtual clock (as in `netstack_sim.rs`); wall-clock time bounds each run.

use std::cell::Cell;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::rc::Rc;
use std::time::{Duration, Instant};

use k230_hal::eth::driver::Driver;
use k230_hal::eth::supervisor::State;
use k230_hal::sim::board::{NicModel, SimBoard};
use k230_hal::sim::wire::impair::{Impair, ImpairStats, Impairments, StatsHandle};
use k230_hal::sim::wire::pair::{pair, PairEnd};
use k230_hal::sim::wire::Wire;
use netstack::api::{Ipv4Config, Micros, SocketId, SocketStack, TcpPhase, Transport};
use netstack::{HeapStorage, InterfaceControl, Seed, Stack};
use rand::{RngCore, SeedableRng};
use sha2::{Digest, Sha256};
use upy_socket::consts::{AF_INET, SOCK_STREAM};
use upy_socket::{Clock, Errno, PollFlags, RecvFlags, Socket, SocketError, Sockets, Timeout};

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

/// A stack on a simulated board with NIC model `model` cabled to `wire`.
fn board_stack<W: Wire + 'static>(
    model: NicModel,
    wire: W,
    mac: [u8; 6],
    ip: Ipv4Addr,
) -> Stack<'static, SimBoard> {
    let board = SimBoard::with_nic(model, wire, mac).expect("board comes up");
    let storage = HeapStorage {
        tcp_sockets: 4,
        tcp_buffer: 32 * 1024,
        udp_sockets: 1,
        udp_buffer: 1536,
    };
    // The board's stack: the one assembly (supervised NIC, one address policy).
    let seed = Seed::reproducible(u64::from(mac[4]) * 7919);
    let mut stack = k230_board::supervised(board, seed, storage.parts(), 0);
    stack.set_static(config(ip)).expect("valid config");
    stack
}

/// The virtual clock, shared with board A's `upy-socket` (whose sockets never wait here: they
/// are non-blocking, the test's loop drives both boards).
#[derive(Clone, Default)]
struct VirtualClock(Rc<Cell<Micros>>);

impl Clock for VirtualClock {
    fn now(&self) -> Micros {
        self.0.get()
    }

    fn sleep_until(&mut self, deadline: Micros) {
        self.0.set(self.0.get().max(deadline));
    }
}

/// Board A as MicroPython sees it: `upy-socket` over its stack.
type Upy = Sockets<Stack<'static, SimBoard>, VirtualClock, 8>;

/// Two boards on a virtual clock: A with `upy-socket` on top, B a plain stack.
struct Net {
    a: Upy,
    b: Stack<'static, SimBoard>,
    now: Micros,
    clock: VirtualClock,
}

impl Net {
    fn new(a: Stack<'static, SimBoard>, b: Stack<'static, SimBoard>) -> Self {
        let clock = VirtualClock::default();
        Self {
            a: Sockets::new(a, clock.clone()),
            b,
            now: 0,
            clock,
        }
    }

    /// One round of each board's network service (each stack's poll first lets the supervisor
    /// watch the NIC), then the clock moves: a little while frames flow, else to the earlier
    /// deadline. Boards are polled every round: the NIC model's only clock is the host talking
    /// to it.
    fn step(&mut self) {
        let now = self.now;
        let pa = self.a.stack_mut().poll(now);
        let pb = self.b.poll(now);
        let idle_until = [pa.next_poll, pb.next_poll]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(now + 10_000);
        self.now = if pa.progressed || pb.progressed {
            now + 50
        } else {
            idle_until.clamp(now + 50, now + 10_000)
        };
        self.clock.0.set(self.now);
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
            Side::A => self.a.stack_mut(),
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
    transfer_with(net, from, port, len, seed, |_, _| {})
}

/// [`transfer`], calling `during(net, bytes received so far)` every round.
fn transfer_with(
    net: &mut Net,
    from: Side,
    port: u16,
    len: usize,
    seed: u64,
    mut during: impl FnMut(&mut Net, usize),
) -> Transfer {
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
        during(n, got);
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
    impaired_net_with(NicModel::Rtl8152, rates, seed)
}

/// [`impaired_net`] with board A's NIC model `a`.
fn impaired_net_with(a: NicModel, rates: Impairments, seed: u64) -> (Net, [StatsHandle; 2]) {
    let (wa, wb): (PairEnd, PairEnd) = pair(WIRE_CAPACITY);
    let (ia, ib) = (
        Impair::new(wa, rates, seed),
        Impair::new(wb, rates, seed ^ 0x5555),
    );
    let stats = [ia.stats_handle(), ib.stats_handle()];
    let net = Net::new(
        board_stack(a, ia, MAC_A, A_IP),
        board_stack(NicModel::Rtl8152, ib, MAC_B, B_IP),
    );
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
    for board in [net.a.stack().device(), net.b.device()] {
        assert_eq!(board.nic_report().errors, vec![]);
        if let Some(ecm) = board.ecm_report() {
            assert_eq!(ecm.errors, vec![]);
        }
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
        ("A", &impair[0], net.a.stack().device()),
        ("B", &impair[1], net.b.device()),
    ] {
        let s: ImpairStats = handle.get();
        eprintln!(
            "board {name}: sent through the impairments {s:?}; driver {:?}",
            board.counters()
        );
        // Each impairment really happened, at about its rate (frames sent: the driver's count).
        let sent = board.counters().tx_frames;
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

/// Two boards on a clean wire.
fn clean_net() -> Net {
    impaired_net(Impairments::default(), 0).0
}

/// A non-blocking `upy-socket` TCP socket on A connected to a listener on B at `port`;
/// returns it and B's accepted socket.
fn upy_connect(net: &mut Net, port: u16) -> (Socket, SocketId) {
    let listener = net.b.open(Transport::Tcp).unwrap();
    let any = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port);
    net.b.bind(listener, any).unwrap();
    net.b.listen(listener, 1).unwrap();
    let sock = net.a.socket(AF_INET, SOCK_STREAM, 0).unwrap();
    net.a.set_timeout(sock, Timeout::NonBlocking);
    assert_eq!(
        net.a.connect(sock, SocketAddrV4::new(B_IP, port)),
        Err(SocketError::Os(Errno::EINPROGRESS))
    );
    let mut accepted = None;
    let up = net.run_until(1_000_000, |n| {
        if accepted.is_none() {
            accepted = n.b.accept(listener).ok();
        }
        accepted.is_some() && n.a.ioctl_poll(sock, PollFlags::WR).contains(PollFlags::WR)
    });
    assert!(up, "upy-socket connection on port {port} not established");
    net.b.close(listener);
    (sock, accepted.unwrap().0)
}

#[test]
fn usb_unplug_fails_open_sockets_with_econnaborted_and_a_replug_brings_the_nic_back() {
    let mut net = clean_net();
    // Two connections in use: A sends on one, receives on the other.
    let (a_out, b_in) = upy_connect(&mut net, 9101);
    let (a_in, b_out) = upy_connect(&mut net, 9102);
    let chunk = vec![0x5au8; 8192];
    let mut buf = vec![0u8; 16 * 1024];
    let (mut a_sent, mut a_got) = (0usize, 0usize);
    // Both directions flowing: at least 256 KiB each way before the unplug.
    let flowing = net.run_until(2_000_000, |n| {
        if let Ok(k) = n.a.send(a_out, &chunk) {
            a_sent += k;
        }
        let _ = n.b.send(b_out, &chunk);
        while let Ok(k) = n.b.recv(b_in, &mut buf) {
            assert!(k > 0);
        }
        while let Ok(k) = n.a.recv(a_in, &mut buf, RecvFlags::NONE) {
            a_got += k;
        }
        a_sent >= 256 * 1024 && a_got >= 256 * 1024
    });
    assert!(flowing, "sent {a_sent}, received {a_got}");

    assert!(net.a.stack_mut().device_mut().unplug_usb());
    let unplugged_at = net.now;
    let (mut send_failed, mut recv_failed) = (None, None);
    // Both sockets have something to transmit (data, or acknowledgements of what arrived),
    // and smoltcp resets a socket whose local address is gone when it next transmits. A socket
    // with nothing to send would only fail at the user timeout (netstack TCP_TIMEOUT, 60 s),
    // where lwIP aborts every connection of a removed address at once
    // (`tcp_netif_ip_addr_changed`).
    let failed = net.run_until(20_000_000, |n| {
        if send_failed.is_none() {
            match n.a.send(a_out, &chunk) {
                Ok(_) | Err(SocketError::Os(Errno::EAGAIN)) => {}
                Err(e) => send_failed = Some((e, n.now)),
            }
        }
        if recv_failed.is_none() {
            match n.a.recv(a_in, &mut buf, RecvFlags::NONE) {
                Ok(_) | Err(SocketError::Os(Errno::EAGAIN)) => {}
                Err(e) => recv_failed = Some((e, n.now)),
            }
        }
        let _ = n.b.send(b_out, &chunk);
        while n.b.recv(b_in, &mut buf).is_ok_and(|k| k > 0) {}
        (send_failed.is_some() && recv_failed.is_some()) || n.now > unplugged_at + 70_000_000
    });
    assert!(failed);
    let (send_err, send_at) = send_failed.expect("sending socket failed");
    let (recv_err, recv_at) = recv_failed.expect("receiving socket failed");
    assert_eq!(send_err, SocketError::Os(Errno::ECONNABORTED));
    assert_eq!(recv_err, SocketError::Os(Errno::ECONNABORTED));
    eprintln!(
        "USB unplug: sending socket failed after {} ms, receiving socket after {} ms (virtual)",
        (send_at - unplugged_at) / 1000,
        (recv_at - unplugged_at) / 1000
    );
    assert!(
        send_at - unplugged_at < 1_000_000,
        "the sender fails at once"
    );
    // A failure is reported once, then the socket is dead (modlwip: EBADF).
    assert_eq!(
        net.a.send(a_out, &chunk),
        Err(SocketError::Os(Errno::EBADF))
    );
    let board = net.a.stack().device().supervisor();
    assert_eq!((board.state(), board.losses()), (State::Detached, 1));
    assert_eq!(board.comebacks(), 0);
    assert_eq!(net.a.stack().ipv4_config(), None, "address removed");
    // New connections cannot be made while the NIC is gone.
    let s = net.a.socket(AF_INET, SOCK_STREAM, 0).unwrap();
    net.a.set_timeout(s, Timeout::NonBlocking);
    assert_eq!(
        net.a.connect(s, SocketAddrV4::new(B_IP, 9103)),
        Err(SocketError::Os(Errno::EHOSTUNREACH))
    );
    net.a.close(s);
    net.a.close(a_out);
    net.a.close(a_in);
    net.b.close(b_in);
    net.b.close(b_out);

    // Plugged back in: enumerated, brought up with the same MAC, configured again.
    assert!(net.a.stack_mut().device_mut().replug_usb());
    let back = net.run_until(100_000, |n| {
        n.a.stack().device().supervisor().comebacks() == 1
    });
    let board = net.a.stack().device().supervisor();
    assert!(
        back,
        "NIC not back: {:?}, {} failed bring-ups",
        board.state(),
        board.failed_bring_ups()
    );
    let board = net.a.stack_mut().device_mut();
    assert_eq!(board.supervisor().state(), State::Running);
    assert_eq!(board.nic().mac(), MAC_A);
    assert_eq!(
        board.controller().device_state(),
        Some((1, 1)),
        "addressed, configured"
    );
    assert_eq!(net.a.stack().ipv4_config(), Some(config(A_IP)));
    // And new connections are byte-exact both ways.
    let ab = transfer(&mut net, Side::A, 9104, 512 * 1024, 3);
    let ba = transfer(&mut net, Side::B, 9105, 512 * 1024, 4);
    ab.report("after replug A->B", 512 * 1024);
    ba.report("after replug B->A", 512 * 1024);
    assert_eq!(net.a.stack().device().supervisor().losses(), 1);
    assert_clean(&net);
}

/// Board A's root port holds the CDC-ECM model: the board assembly over the CDC-ECM driver
/// carries TCP both ways byte-exact, loses the NIC on a USB unplug (address released) and brings
/// it back on the replug with the same MAC and address.
#[test]
fn a_cdc_ecm_board_carries_tcp_and_comes_back_after_a_usb_replug_with_its_mac() {
    let mut net = impaired_net_with(NicModel::CdcEcm, Impairments::default(), 0).0;
    let ab = transfer(&mut net, Side::A, 9201, 512 * 1024, 5);
    let ba = transfer(&mut net, Side::B, 9202, 512 * 1024, 6);
    ab.report("CDC-ECM A->B", 512 * 1024);
    ba.report("CDC-ECM B->A", 512 * 1024);
    // Virtual time (deterministic): receiving is not held to one segment per round trip, which
    // a one-segment TCP window made it (3.7 s for these 512 KiB; the RTL8152 board takes 4 ms).
    assert!(
        ba.virtual_us < 100_000,
        "B->A took {} us virtual",
        ba.virtual_us
    );
    for cycle in 1..=3u8 {
        // Closed connections finish first (the pools are small).
        let settled = net.run_until(1_000_000, |n| {
            n.a.stack().pool_usage().tcp_lingering == 0 && n.b.pool_usage().tcp_lingering == 0
        });
        assert!(settled, "cycle {cycle}: connections still closing");
        assert!(net.a.stack_mut().device_mut().unplug_usb());
        let lost = net.run_until(100_000, |n| {
            n.a.stack().device().supervisor().state() == State::Detached
        });
        assert!(lost, "cycle {cycle}: NIC loss not noticed");
        assert_eq!(net.a.stack().ipv4_config(), None, "address released");
        assert!(net.a.stack_mut().device_mut().replug_usb());
        let back = net.run_until(100_000, |n| {
            n.a.stack().device().supervisor().comebacks() == u32::from(cycle)
        });
        assert!(back, "cycle {cycle}: NIC not back");
        let board = net.a.stack_mut().device_mut();
        assert_eq!(board.nic().mac(), MAC_A);
        assert_eq!(net.a.stack().ipv4_config(), Some(config(A_IP)));
        let port = 9210 + 2 * u16::from(cycle);
        transfer(&mut net, Side::A, port, 64 * 1024, 7 + u64::from(cycle))
            .report("after replug A->B", 64 * 1024);
        transfer(&mut net, Side::B, port + 1, 64 * 1024, 8 + u64::from(cycle))
            .report("after replug B->A", 64 * 1024);
    }
    assert_eq!(net.a.stack().device().supervisor().losses(), 3);
    assert!(net.a.stack().device().ecm_report().is_some());
    assert_clean(&net);
}

/// A bulk transfer from an RTL8152 board goes out in large sends: smoltcp's TCP socket builds
/// frames of several segments, netstack's link hands them through the board's supervised NIC to
/// the driver, which sends each behind one GTSENDV4 descriptor, and the model cuts them into
/// segments. Byte-exact, and board A's model took fewer TX descriptors and bulk-OUT transfers
/// than it put frames on the wire (without large send, one of each per frame: 736 per MiB).
/// Prints the figures per MiB and the virtual-time throughput.
#[test]
fn bulk_tcp_from_an_rtl8152_board_goes_out_in_large_sends() {
    use smoltcp::phy::Device;
    const LEN: usize = 4 * 1024 * 1024;
    let mut net = clean_net();
    let caps = net.a.stack().device().capabilities();
    assert_eq!(
        caps.segmentation.tcpv4.map(usize::from),
        Some(k230_hal::eth::rtl8152::tx::MAX_LARGE_SEND)
    );
    let before = net.a.stack().device().nic_report();
    let t = transfer(&mut net, Side::A, 9301, LEN, 21);
    let after = net.a.stack().device().nic_report();
    t.report("large send A->B", LEN);
    let frames = after.tx_frames - before.tx_frames;
    let descriptors = after.tx_descriptors - before.tx_descriptors;
    let large = after.tx_large_sends - before.tx_large_sends;
    let transfers = after.tx_transfers - before.tx_transfers;
    let mib = (LEN >> 20) as u64;
    eprintln!(
        "large send A->B per MiB: {} frames on the wire, {} TX descriptors ({} large sends), \
         {} bulk-OUT transfers",
        frames / mib,
        descriptors / mib,
        large / mib,
        transfers / mib
    );
    assert!(large > 0, "no large send");
    assert!(
        descriptors * 3 < frames,
        "{descriptors} descriptors for {frames} frames"
    );
    assert!(
        transfers * 3 < frames,
        "{transfers} transfers for {frames} frames"
    );
    assert_clean(&net);
}

#[test]
fn cable_unplug_mid_transfer_pauses_tcp_which_then_completes() {
    let mut net = clean_net();
    let cable = net.a.stack().device().cable();
    const LEN: usize = 1024 * 1024;
    const OUTAGE_US: Micros = 2_000_000;
    let (mut pulled_at, mut plugged_at) = (None, None);
    let mut carrier_lost = false;
    let t = transfer_with(&mut net, Side::A, 9201, LEN, 5, |n, got| {
        if pulled_at.is_none() && got >= LEN / 4 {
            cable.unplug();
            pulled_at = Some(n.now);
        }
        if let (Some(at), None) = (pulled_at, plugged_at) {
            carrier_lost |= !n.a.stack().device().supervisor().carrier();
            if n.now >= at + OUTAGE_US {
                cable.plug();
                plugged_at = Some(n.now);
            }
        }
    });
    t.report("A->B across a 2 s cable pull", LEN);
    assert!(plugged_at.is_some(), "the cable was pulled and plugged");
    assert!(carrier_lost, "the driver saw the link go down");
    let board = net.a.stack().device().supervisor();
    assert_eq!((board.state(), board.losses()), (State::Running, 0));
    assert!(board.carrier());
    assert!(t.virtual_us >= OUTAGE_US);
    assert_clean(&net);
}

#[test]
fn halted_bulk_endpoints_are_cleared_and_traffic_goes_on() {
    let mut net = clean_net();
    transfer(&mut net, Side::A, 9301, 64 * 1024, 6);
    let before = net.a.stack().device().counters();
    // The NIC halts both bulk endpoints (IN 1, OUT 2) mid-stream.
    let mut halted = false;
    transfer_with(&mut net, Side::B, 9302, 256 * 1024, 7, |n, got| {
        if !halted && got > 0 {
            let board = n.a.stack().device();
            board.controller().halt_endpoint(0x81);
            board.controller().halt_endpoint(0x02);
            halted = true;
        }
    });
    transfer(&mut net, Side::A, 9303, 256 * 1024, 8);
    let after = net.a.stack().device().counters();
    assert!(halted);
    assert_eq!(
        after.rx_errors - before.rx_errors,
        1,
        "one stalled bulk-IN transfer"
    );
    assert_eq!(
        after.tx_errors, before.tx_errors,
        "the stalled bulk OUT was resent"
    );
    assert_eq!(after.tx_dropped, before.tx_dropped);
    assert_clean(&net);
}
