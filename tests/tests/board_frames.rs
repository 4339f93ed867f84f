//! Whole simulated boards: the RTL8152 driver over the DWC2 host driver over the DWC2 model,
//! with the RTL8152 model on the root port.
//!
//! - Two boards in two threads exchange 10,000 frames each way (random sizes 60–1514)
//!   byte-exact over the in-process wire pair, with no model or driver errors.
//! - A board and the Linux kernel, through a TAP in a network namespace this test creates:
//!   Linux's ARP request reaches the driver, the driver's ARP and ICMP echo replies reach Linux
//!   (its `ping` succeeds and its neighbour table holds our MAC).

use integration_tests::tap::TapPeer;
use k230_hal::eth::rtl8152::tx::TxError;
use k230_hal::sim::board::SimBoard;
use k230_hal::sim::wire::pair::pair;
use k230_testkit::require::have_root;
use rand::{Rng, SeedableRng};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const FRAMES: usize = 10_000;
const MAC_A: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x0a, 0x01];
const MAC_B: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x0b, 0x01];

/// Frame `i` from `src` to `dst`: random size and payload from a seed both sides know.
fn frame(src: [u8; 6], dst: [u8; 6], i: usize) -> Vec<u8> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(u64::from(src[4]) << 32 | i as u64);
    let len = rng.gen_range(60..=1514);
    let mut f = vec![0; len];
    f[..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    f[12..14].copy_from_slice(&[0x88, 0xb5]);
    f[14..18].copy_from_slice(&(i as u32).to_be_bytes());
    rng.fill(&mut f[18..]);
    f
}

/// Sends FRAMES frames to `peer` and checks FRAMES frames from it, in order, byte-exact, then
/// keeps the board running until the peer is done too (a board's polling is its NIC model's
/// only clock: frames still in the model's TX FIFO need it to reach the wire).
/// Returns (frames received, elapsed).
fn run_board(
    mut board: SimBoard,
    me: [u8; 6],
    peer: [u8; 6],
    finished: Arc<AtomicUsize>,
) -> (SimBoard, usize, Duration) {
    let start = Instant::now();
    let deadline = start + Duration::from_secs(300);
    let (mut sent, mut received) = (0, 0);
    let mut elapsed = None;
    while finished.load(Ordering::SeqCst) < 2 && Instant::now() < deadline {
        let nic = board.rtl8152().expect("the board's RTL8152");
        nic.poll();
        while sent < FRAMES {
            let f = frame(me, peer, sent);
            match nic.send(f.len(), |b| b.copy_from_slice(&f)) {
                Ok(()) => sent += 1,
                Err(TxError::Full) => break,
                Err(e) => panic!("send {sent}: {e:?}"),
            }
        }
        while let Some(ok) = nic.recv(|f| f == frame(peer, me, received).as_slice()) {
            assert!(ok, "frame {received} from the peer differs");
            received += 1;
        }
        if elapsed.is_none() && sent == FRAMES && received == FRAMES {
            elapsed = Some(start.elapsed());
            finished.fetch_add(1, Ordering::SeqCst);
        }
    }
    // The peer has our last frames, so our last transfer is done: one more poll counts it.
    for _ in 0..100 {
        board.rtl8152().expect("the board's RTL8152").poll();
    }
    (board, received, elapsed.unwrap_or_else(|| start.elapsed()))
}

#[test]
fn two_boards_exchange_ten_thousand_frames_byte_exact() {
    let (wire_a, wire_b) = pair(64);
    let a = SimBoard::new(wire_a, MAC_A).expect("board A");
    let b = SimBoard::new(wire_b, MAC_B).expect("board B");
    let finished = Arc::new(AtomicUsize::new(0));
    let fa = finished.clone();
    let ta = std::thread::spawn(move || run_board(a, MAC_A, MAC_B, fa));
    let tb = std::thread::spawn(move || run_board(b, MAC_B, MAC_A, finished));
    let (a, got_a, time_a) = ta.join().unwrap();
    let (b, got_b, time_b) = tb.join().unwrap();
    assert_eq!((got_a, got_b), (FRAMES, FRAMES));
    for board in [&a, &b] {
        let s = board.counters();
        assert_eq!(s.rx_frames, FRAMES as u64);
        assert_eq!(s.tx_frames, FRAMES as u64);
        assert_eq!(
            (s.rx_malformed, s.rx_errors, s.tx_dropped, s.tx_errors),
            (0, 0, 0, 0)
        );
        assert_eq!(board.nic_report().errors, vec![]);
        assert_eq!(board.usb_violations(), Vec::<String>::new());
    }
    println!(
        "board A: {FRAMES} frames each way in {time_a:?}; board B: {time_b:?}; \
         A's NIC model made {} bulk-IN transfers",
        a.nic_report().rx_transfers
    );
}

const OUR_MAC: [u8; 6] = [0x00, 0xe0, 0x4c, 0x52, 0x00, 0x01];
const OUR_IP: [u8; 4] = [192, 0, 2, 2];
const LINUX_IP: [u8; 4] = [192, 0, 2, 1];

/// The IPv4/ICMP internet checksum.
fn checksum(data: &[u8]) -> u16 {
    let mut sum = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum::<u32>();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The reply to an ARP request for OUR_IP or an ICMP echo request to it, if `f` is one.
fn answer(f: &[u8]) -> Option<Vec<u8>> {
    let ethertype = f.get(12..14)?;
    if ethertype == [0x08, 0x06]
        && f.get(20..22)? == [0, 1]
        && f.get(28..32)? == LINUX_IP
        && f.get(38..42)? == OUR_IP
    {
        let mut r = Vec::with_capacity(42);
        r.extend_from_slice(&f[6..12]);
        r.extend_from_slice(&OUR_MAC);
        r.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 2]);
        r.extend_from_slice(&OUR_MAC);
        r.extend_from_slice(&OUR_IP);
        r.extend_from_slice(&f[22..32]); // requester's MAC and IP
        return Some(r);
    }
    let ihl = usize::from(f.get(14)? & 0x0f) * 4;
    if ethertype == [0x08, 0x00] && f.get(23)? == &1 && f.get(30..34)? == OUR_IP {
        let total = usize::from(u16::from_be_bytes([f[16], f[17]]));
        let ip = f.get(14..14 + total)?;
        if *ip.get(ihl)? != 8 {
            return None;
        }
        let mut r = Vec::new();
        r.extend_from_slice(&f[6..12]);
        r.extend_from_slice(&OUR_MAC);
        r.extend_from_slice(&[0x08, 0x00]);
        let mut ip = ip.to_vec();
        ip[12..16].copy_from_slice(&OUR_IP);
        ip[16..20].copy_from_slice(&f[26..30]);
        ip[10..12].copy_from_slice(&[0, 0]);
        let c = checksum(&ip[..ihl]);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        ip[ihl] = 0; // echo reply
        ip[ihl + 2..ihl + 4].copy_from_slice(&[0, 0]);
        let c = checksum(&ip[ihl..]);
        ip[ihl + 2..ihl + 4].copy_from_slice(&c.to_be_bytes());
        r.extend_from_slice(&ip);
        return Some(r);
    }
    None
}

#[test]
fn board_and_linux_exchange_frames_through_tap() {
    if !have_root("board_and_linux_exchange_frames_through_tap") {
        return;
    }
    let (TapPeer { ns, .. }, tap) =
        TapPeer::new("k230b", LINUX_IP.into(), 24).expect("TAP in a netns");
    let mut board = SimBoard::new(tap, OUR_MAC).expect("board");

    let mut ping = ns
        .command("ping")
        .args(["-c", "3", "-i", "0.2", "-W", "2", "192.0.2.2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("ping");
    let deadline = Instant::now() + Duration::from_secs(20);
    let (mut arp_requests, mut echo_requests) = (0, 0);
    let status = loop {
        assert!(Instant::now() < deadline, "ping did not finish");
        if let Some(status) = ping.try_wait().unwrap() {
            break status;
        }
        let nic = board.rtl8152().expect("the board's RTL8152");
        nic.poll();
        // Bounded per round; replies go out through the driver.
        for _ in 0..16 {
            let Some(reply) = nic.recv(|f| (f[12..14] == [0x08, 0x06], answer(f))) else {
                break;
            };
            match reply {
                (true, Some(r)) => {
                    arp_requests += 1;
                    nic.send(r.len(), |b| b.copy_from_slice(&r)).unwrap();
                }
                (false, Some(r)) => {
                    echo_requests += 1;
                    nic.send(r.len(), |b| b.copy_from_slice(&r)).unwrap();
                }
                _ => {}
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let out = ns
        .command("ip")
        .args(["neigh", "show", "192.0.2.2"])
        .output()
        .unwrap();
    let neigh = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(arp_requests >= 1, "Linux's ARP request reached the driver");
    assert!(echo_requests >= 3, "echo requests: {echo_requests}");
    assert!(status.success(), "ping answered through the driver");
    assert!(
        neigh.contains("00:e0:4c:52:00:01"),
        "neighbour entry: {neigh}"
    );
    assert_eq!(board.nic_report().errors, vec![]);
    assert_eq!(board.usb_violations(), Vec::<String>::new());
}

/// Streams `n` frames of `len` bytes from board A to board B, both driven round-robin by this
/// one thread (so the figure is the CPU cost of the path, not of thread scheduling), and
/// returns frames per second.
fn stream(n: usize, len: usize) -> f64 {
    let (wire_a, wire_b) = pair(64);
    let mut a = SimBoard::new(wire_a, MAC_A).expect("board A");
    let mut b = SimBoard::new(wire_b, MAC_B).expect("board B");
    let mut f = vec![0x5a; len];
    f[..6].copy_from_slice(&MAC_B);
    f[6..12].copy_from_slice(&MAC_A);
    let start = Instant::now();
    let deadline = start + Duration::from_secs(120);
    let (mut sent, mut got) = (0, 0);
    while got < n && Instant::now() < deadline {
        let tx = a.rtl8152().expect("board A's RTL8152");
        tx.poll();
        while sent < n && tx.send(len, |b| b.copy_from_slice(&f)).is_ok() {
            sent += 1;
        }
        let rx = b.rtl8152().expect("board B's RTL8152");
        while rx.recv(|f| assert_eq!(f.len(), len)).is_some() {
            got += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(got, n);
    assert_eq!(a.nic_report().errors, vec![]);
    assert_eq!(b.nic_report().errors, vec![]);
    n as f64 / secs
}

/// Frames per second through the whole simulated path (driver, DWC2 host, both models, wire),
/// against the 100 Mbit/s line rate of the real port. A measurement, not a pass/fail test:
/// `cargo test --release -p integration-tests --test board_frames -- --ignored --nocapture`.
#[test]
#[ignore]
fn bench_sim_frames_per_second() {
    for len in [60usize, 1514] {
        let fps = stream(20_000, len);
        // On the wire each frame also takes 8 preamble, 4 CRC and 12 inter-frame gap bytes.
        let line_rate = 100e6 / (((len + 24) * 8) as f64);
        println!(
            "{len:>4}-byte frames: {fps:>9.0} frames/s, {:>7.1} Mbit/s of frames, {:.2}x the 100 Mbit/s line rate",
            fps * len as f64 * 8.0 / 1e6,
            fps / line_rate
        );
    }
}

/// The frames of a classic pcap file (host byte order, as our writer makes it).
fn pcap_frames(b: &[u8]) -> Vec<Vec<u8>> {
    let at = |i: usize| u32::from_ne_bytes(b[i..i + 4].try_into().unwrap()) as usize;
    assert_eq!(at(0), 0xa1b2_c3d4);
    assert_eq!(at(20), 1, "LINKTYPE_ETHERNET");
    let (mut pos, mut frames) = (24, Vec::new());
    while pos + 16 <= b.len() {
        let len = at(pos + 8);
        frames.push(b[pos + 16..pos + 16 + len].to_vec());
        pos += 16 + len;
    }
    frames
}

#[test]
fn smoltcp_on_a_board_answers_linux_ping_through_a_recorded_tap() {
    use k230_hal::sim::wire::pcap::PcapWriter;
    use smoltcp::iface::{Config, Interface, SocketSet};
    use smoltcp::wire::{EthernetAddress, IpAddress, IpCidr};

    if !have_root("smoltcp_on_a_board_answers_linux_ping_through_a_recorded_tap") {
        return;
    }
    let (TapPeer { ns, .. }, tap) =
        TapPeer::new("k230s", LINUX_IP.into(), 24).expect("TAP in a netns");
    let capture = tempfile::NamedTempFile::new().unwrap();
    let wire = PcapWriter::new(tap, capture.reopen().unwrap()).unwrap();
    let mut board = SimBoard::new(wire, OUR_MAC).expect("board");

    let clock = Instant::now();
    let now = || smoltcp::time::Instant::from_micros(clock.elapsed().as_micros() as i64);
    let config = Config::new(EthernetAddress(OUR_MAC).into());
    let mut iface = Interface::new(config, &mut board, now());
    iface.update_ip_addrs(|a| {
        a.push(IpCidr::new(IpAddress::v4(192, 0, 2, 2), 24))
            .unwrap();
    });
    let mut sockets = SocketSet::new(vec![]);

    let mut ping = ns
        .command("ping")
        .args(["-c", "5", "-i", "0.2", "-W", "2", "192.0.2.2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ping");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        assert!(Instant::now() < deadline, "ping did not finish");
        if let Some(status) = ping.try_wait().unwrap() {
            break status;
        }
        iface.poll(now(), &mut board, &mut sockets);
        std::thread::sleep(Duration::from_millis(1));
    };
    assert!(
        status.success(),
        "Linux's ping answered by smoltcp on the simulated board"
    );
    assert_eq!(board.nic_report().errors, vec![]);
    assert_eq!(board.usb_violations(), Vec::<String>::new());
    drop(board);
    let frames = pcap_frames(&std::fs::read(capture.path()).unwrap());
    let arp_request = |f: &Vec<u8>| f.len() >= 42 && f[12..14] == [8, 6] && f[21] == 1;
    let arp_reply = |f: &Vec<u8>| f.len() >= 42 && f[12..14] == [8, 6] && f[21] == 2;
    let echo =
        |f: &Vec<u8>, kind: u8| f.len() >= 35 && f[12..14] == [8, 0] && f[23] == 1 && f[34] == kind;
    assert!(frames.iter().any(|f| arp_request(f) && f[38..42] == OUR_IP));
    assert!(frames.iter().any(|f| arp_reply(f) && f[6..12] == OUR_MAC));
    assert!(
        frames.iter().filter(|f| echo(f, 8)).count() >= 5,
        "echo requests recorded"
    );
    assert!(
        frames.iter().filter(|f| echo(f, 0)).count() >= 5,
        "echo replies recorded"
    );
}
