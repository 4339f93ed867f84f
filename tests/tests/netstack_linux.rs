//! The netstack `Stack` against Linux, on the real driver path: the stack runs in this process
//! on the simulated board (RTL8152 driver over the DWC2 host driver over the DWC2 model, the
//! RTL8152 model cabled to a TAP wire); the TAP lives in a network namespace the test creates,
//! where the Linux peers (ping, sockets, dnsmasq) run. Root only. Every test ends by checking
//! that neither hardware model saw a driver error.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::sync::{mpsc, Arc, Barrier, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use integration_tests::peer::reset;
use integration_tests::tap::TapPeer;
use k230_hal::sim::board::SimBoard;
use k230_hal::sim::wire::device::WireDevice;
use k230_hal::sim::wire::tap::Tap;
use k230_testkit::netns::{dnsmasq, Guarded, Netns};
use k230_testkit::require::have_root;
use netstack::api::{Ipv4Config, Micros, NetError, SocketId, SocketStack, TcpPhase, Transport};
use netstack::{HeapStorage, InterfaceControl, Seed, Stack, StackConfig};
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};
use smoltcp::phy::Device;

const PREFIX: u8 = 24;
const MIB: usize = 1024 * 1024;

/// Microseconds since the first call: one monotonic clock for every stack in the process.
fn now() -> Micros {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// A stack (on the simulated board, or straight on the TAP) on a TAP whose other side is in its
/// own namespace with address `.1` of `subnet`.
struct Rig<D: Device = SimBoard> {
    stack: Stack<'static, D>,
    ns: Netns,
    tap: String,
    linux_ip: Ipv4Addr,
    stack_ip: Ipv4Addr,
}

impl Rig {
    /// The rig with the board's stack (the one assembly, supervising the NIC at every poll) on
    /// the simulated board, its NIC model cabled to the TAP.
    fn new(subnet: u8) -> Self {
        Rig::build(subnet, |wire| {
            let mac = [0x00, 0xe0, 0x4c, 0x52, 0x77, subnet];
            let board = SimBoard::new(wire, mac).expect("simulated board");
            k230_board::supervised(
                board,
                Seed::from_os().expect("OS entropy"),
                HeapStorage::default().parts(),
                now(),
            )
        })
    }

    /// Checks that the hardware models saw no driver error.
    fn check_models(&mut self) {
        let board = self.stack.device_mut();
        assert_eq!(board.nic_report().errors, vec![], "RTL8152 model errors");
        assert_eq!(
            board.usb_violations(),
            Vec::<String>::new(),
            "DWC2 model violations"
        );
    }
}

impl Rig<WireDevice<Tap>> {
    /// The rig with the stack straight on the TAP (no NIC model), with the TAP's offloads.
    fn on_tap(subnet: u8) -> Self {
        Rig::build(subnet, |wire| {
            let config = StackConfig {
                mac: [0x02, 0x4b, 0x32, 0x33, 0x30, subnet],
                seed: Seed::from_os().expect("OS entropy"),
            };
            Stack::new(
                WireDevice::new(wire),
                config,
                HeapStorage::default().parts(),
                now(),
            )
        })
    }

    /// Frames the kernel took from the TAP so far (its interface's receive count).
    fn kernel_rx_frames(&self) -> u64 {
        let path = format!("/sys/class/net/{}/statistics/rx_packets", self.tap);
        let out = self.ns.command("cat").arg(&path).output().expect("cat");
        assert!(out.status.success(), "cat {path}");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("a count")
    }
}

impl<D: Device> Rig<D> {
    /// The rig for subnet `10.77.<subnet>.0/24` with the stack `stack` builds on the TAP; the
    /// stack is unconfigured.
    fn build(subnet: u8, stack: impl FnOnce(Tap) -> Stack<'static, D>) -> Self {
        let linux_ip = Ipv4Addr::new(10, 77, subnet, 1);
        let (TapPeer { ns, ifname: tap }, wire) =
            TapPeer::new("k230t", linux_ip, PREFIX).expect("TAP in a netns");
        Rig {
            stack: stack(wire),
            ns,
            tap,
            linux_ip,
            stack_ip: Ipv4Addr::new(10, 77, subnet, 2),
        }
    }

    /// Gives the stack its static address `.2` (DNS server: the Linux side).
    fn with_static(mut self) -> Self {
        let config = Ipv4Config {
            address: self.stack_ip,
            netmask: Ipv4Addr::new(255, 255, 255, 0),
            gateway: self.linux_ip,
            dns: self.linux_ip,
        };
        self.stack.set_static(config).expect("valid config");
        self
    }

    /// Polls the stack (which watches the board's NIC and passes its link state on, as on a
    /// board) until `done` holds or `limit` passes; naps briefly when idle.
    fn pump_until(
        &mut self,
        limit: Duration,
        mut done: impl FnMut(&mut Stack<'static, D>) -> bool,
    ) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            if done(&mut self.stack) {
                return true;
            }
            let outcome = self.stack.poll(now());
            if !outcome.progressed {
                let pause = outcome
                    .next_poll
                    .map_or(200, |at| at.saturating_sub(now()))
                    .min(200);
                std::thread::sleep(Duration::from_micros(pause));
            }
        }
        done(&mut self.stack)
    }
}

fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..len).map(|_| rng.gen()).collect()
}

fn sha(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

#[test]
fn linux_pings_the_stack() {
    if !have_root("linux_pings_the_stack") {
        return;
    }
    let mut rig = Rig::new(1).with_static();
    let mut cmd = rig.ns.command("ping");
    cmd.args(["-c", "3", "-i", "0.2", "-W", "2", &rig.stack_ip.to_string()]);
    let mut ping = Guarded::spawn(cmd).expect("start ping");
    let mut status = None;
    assert!(rig.pump_until(Duration::from_secs(15), |_| {
        status = ping.child.try_wait().expect("ping status");
        status.is_some()
    }));
    assert!(status.expect("ping exited").success(), "ping failed");
    rig.check_models();
}

/// Connects the stack to a Linux listener on `port`, sends `data`, closes, and checks that
/// Linux read exactly `data`.
fn send_to_linux<D: Device>(rig: &mut Rig<D>, port: u16, data: &[u8]) {
    let linux_addr = SocketAddrV4::new(rig.linux_ip, port);
    let receiver = rig
        .ns
        .spawn(move || {
            let listener = TcpListener::bind(linux_addr).expect("bind in netns");
            let (mut conn, _) = listener.accept().expect("accept");
            let mut all = Vec::new();
            conn.read_to_end(&mut all).expect("read");
            sha(&all)
        })
        .unwrap();
    // The listener may not be up yet: retry refused connects for a while.
    let mut s = None;
    for _ in 0..50 {
        let sock = rig.stack.open(Transport::Tcp).unwrap();
        rig.stack.connect(sock, linux_addr).unwrap();
        let mut phase = TcpPhase::Connecting;
        rig.pump_until(Duration::from_secs(5), |st| {
            phase = st.tcp_phase(sock).unwrap();
            phase != TcpPhase::Connecting
        });
        if phase == TcpPhase::Connected {
            s = Some(sock);
            break;
        }
        rig.stack.close(sock);
        std::thread::sleep(Duration::from_millis(50));
    }
    let s = s.expect("connected to the Linux listener");
    let mut sent = 0;
    assert!(rig.pump_until(Duration::from_secs(30), |st| {
        if let Ok(k) = st.send(s, &data[sent..]) {
            sent += k;
        }
        sent == data.len()
    }));
    rig.stack.close(s);
    assert!(rig.pump_until(Duration::from_secs(30), |_| receiver.is_finished()));
    let digest = receiver.join().expect("receiver thread");
    assert_eq!(digest, sha(data), "stack -> Linux bytes differ");
}

/// Listens on `port`, lets a Linux client send `payload` and close, and checks that the stack
/// read exactly `payload`.
fn receive_from_linux<D: Device>(rig: &mut Rig<D>, port: u16, payload: Vec<u8>) {
    let listener = rig.stack.open(Transport::Tcp).unwrap();
    rig.stack
        .bind(listener, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port))
        .unwrap();
    rig.stack.listen(listener, 1).unwrap();
    let (len, expected) = (payload.len(), sha(&payload));
    let stack_addr = SocketAddrV4::new(rig.stack_ip, port);
    let sender = rig
        .ns
        .spawn(move || {
            let mut conn = TcpStream::connect_timeout(&stack_addr.into(), Duration::from_secs(10))
                .expect("connect to stack");
            conn.write_all(&payload).expect("write");
            conn.shutdown(std::net::Shutdown::Write).expect("shutdown");
            // Wait for the stack to close too, so the connection ends cleanly.
            let mut rest = Vec::new();
            let _ = conn.read_to_end(&mut rest);
        })
        .unwrap();
    let mut conn = None;
    let mut got = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    let mut eof = false;
    assert!(rig.pump_until(Duration::from_secs(30), |st| {
        if conn.is_none() {
            conn = st.accept(listener).ok().map(|(c, _)| c);
        }
        if let Some(c) = conn {
            loop {
                match st.recv(c, &mut buf) {
                    Ok(0) => {
                        eof = true;
                        break;
                    }
                    Ok(k) => got.extend_from_slice(&buf[..k]),
                    Err(NetError::WouldBlock) => break,
                    Err(e) => panic!("recv: {e:?}"),
                }
            }
        }
        eof
    }));
    rig.stack.close(conn.unwrap());
    assert!(rig.pump_until(Duration::from_secs(10), |_| sender.is_finished()));
    sender.join().expect("sender thread");
    assert_eq!(got.len(), len);
    assert_eq!(sha(&got), expected, "Linux -> stack bytes differ");
}

#[test]
fn tcp_one_mebibyte_each_way_checksummed() {
    if !have_root("tcp_one_mebibyte_each_way_checksummed") {
        return;
    }
    let mut rig = Rig::new(2).with_static();
    send_to_linux(&mut rig, 5001, &random_bytes(MIB, 1));

    receive_from_linux(&mut rig, 5002, random_bytes(MIB, 2));
    rig.check_models();
}

#[test]
fn tcp_through_the_taps_offloads_goes_out_in_large_frames_and_arrives_exact() {
    if !have_root("tcp_through_the_taps_offloads_goes_out_in_large_frames_and_arrives_exact") {
        return;
    }
    // The kernel's own frames come with their checksums vouched for (TUN_F_CSUM): not checked.
    let mut rig = Rig::on_tap(21).with_static();
    assert!(!rig.stack.device().capabilities().checksum.tcp.rx());
    receive_from_linux(&mut rig, 5004, random_bytes(MIB, 4));
    assert_eq!(rig.stack.device().bad_checksums(), 0);
    let before = rig.kernel_rx_frames();
    send_to_linux(&mut rig, 5003, &random_bytes(MIB, 3));
    // One MiB is at least 718 segments of 1460 bytes; in large frames the kernel takes a few
    // dozen writes (with the handshake, the ARP request and the window updates' replies).
    let frames = rig.kernel_rx_frames() - before;
    assert!(
        frames < (MIB / 1460 / 4) as u64,
        "the kernel took {frames} frames for {MIB} bytes: no large frames"
    );
}

#[test]
fn udp_both_ways() {
    if !have_root("udp_both_ways") {
        return;
    }
    let mut rig = Rig::new(3).with_static();
    let linux_addr = SocketAddrV4::new(rig.linux_ip, 6001);
    let ready = Arc::new(Barrier::new(2));
    let ready_peer = ready.clone();
    // The Linux peer answers each datagram with its bytes reversed.
    let echo = rig
        .ns
        .spawn(move || {
            let socket = UdpSocket::bind(linux_addr).expect("bind in netns");
            socket
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            ready_peer.wait();
            let mut buf = [0u8; 2048];
            for _ in 0..10 {
                let (n, from) = socket.recv_from(&mut buf).expect("datagram from stack");
                buf[..n].reverse();
                socket.send_to(&buf[..n], from).expect("reply");
            }
        })
        .unwrap();
    ready.wait();
    let s = rig.stack.open(Transport::Udp).unwrap();
    rig.stack
        .bind(s, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 6002))
        .unwrap();
    let mut buf = [0u8; 2048];
    for i in 0..10u64 {
        let data = random_bytes(1 + (i as usize) * 140, i);
        let mut sent = false;
        let mut reply = None;
        assert!(rig.pump_until(Duration::from_secs(5), |st| {
            if !sent {
                sent = st.send_to(s, &data, Some(linux_addr)).is_ok();
            }
            reply = st.recv_from(s, &mut buf).ok();
            reply.is_some()
        }));
        let (n, from) = reply.unwrap();
        assert_eq!(from, linux_addr);
        let mut expected = data.clone();
        expected.reverse();
        assert_eq!(&buf[..n], &expected[..], "datagram {i}");
    }
    echo.join().expect("echo thread");
    rig.check_models();
}

#[test]
fn dhcp_lease_from_dnsmasq_is_applied_renewed_and_lost() {
    if !have_root("dhcp_lease_from_dnsmasq_is_applied_renewed_and_lost") {
        return;
    }
    let mut rig = Rig::new(4);
    let server = dnsmasq(
        &rig.ns,
        &rig.tap,
        &[
            "--dhcp-range=10.77.4.50,10.77.4.60,255.255.255.0,2m",
            "--dhcp-option=option:router,10.77.4.1",
            "--dhcp-option=option:dns-server,10.77.4.1",
            "--port=0",
        ],
    )
    .expect("start dnsmasq");
    // Renew every 3 s, expire after 6 s without renewal.
    rig.stack
        .set_dhcp_lease_cap(Some(smoltcp::time::Duration::from_secs(6)));
    rig.stack.start_dhcp();
    let mut config = None;
    assert!(rig.pump_until(Duration::from_secs(20), |st| {
        config = st.config();
        config.is_some()
    }));
    let config = config.unwrap();
    let host = config.address.octets();
    assert!(
        host[..3] == [10, 77, 4] && (50..=60).contains(&host[3]),
        "{config:?}"
    );
    assert_eq!(config.netmask, Ipv4Addr::new(255, 255, 255, 0));
    assert_eq!(config.gateway, Ipv4Addr::new(10, 77, 4, 1));
    assert_eq!(config.dns, Ipv4Addr::new(10, 77, 4, 1));

    // Past the capped lease the address is still there: it was renewed.
    let mut lost = false;
    rig.pump_until(Duration::from_secs(9), |st| {
        lost |= st.config().is_none();
        false
    });
    assert!(!lost, "lease not renewed");
    assert_eq!(rig.stack.ipv4_config(), Some(config));

    // Without the server the lease runs out and the address is removed.
    drop(server);
    assert!(rig.pump_until(Duration::from_secs(20), |st| st.config().is_none()));
    rig.check_models();
}

/// `start_dhcp` on an interface that already holds a lease (a script's `ifconfig('dhcp')` on a
/// board whose boot leased) asks anew: the address goes and comes back at once, not at the
/// lease's renewal (1 min here).
#[test]
fn a_second_dhcp_start_leases_again() {
    if !have_root("a_second_dhcp_start_leases_again") {
        return;
    }
    let mut rig = Rig::new(10);
    let _server = dnsmasq(
        &rig.ns,
        &rig.tap,
        &[
            "--dhcp-range=10.77.10.50,10.77.10.50,255.255.255.0,2m",
            "--port=0",
        ],
    )
    .expect("start dnsmasq");
    rig.stack.start_dhcp();
    let mut config = None;
    assert!(rig.pump_until(Duration::from_secs(20), |st| {
        config = st.config();
        config.is_some()
    }));
    rig.stack.start_dhcp();
    assert_eq!(rig.stack.config(), None);
    assert!(
        rig.pump_until(Duration::from_secs(10), |st| st.config() == config),
        "no lease after the second start"
    );
    rig.check_models();
}

#[test]
fn dns_answers_and_errors_from_dnsmasq() {
    if !have_root("dns_answers_and_errors_from_dnsmasq") {
        return;
    }
    let mut rig = Rig::new(5).with_static();
    let _server = dnsmasq(
        &rig.ns,
        &rig.tap,
        &[
            "--address=/board.k230.test/10.77.5.99",
            "--address=/missing.k230.test/",
        ],
    )
    .expect("start dnsmasq");
    let resolve = |rig: &mut Rig, name: &str| {
        let q = rig.stack.resolve_start(name).unwrap();
        let mut result = Err(NetError::WouldBlock);
        assert!(rig.pump_until(Duration::from_secs(20), |st| {
            result = st.resolve_poll(q);
            result != Err(NetError::WouldBlock)
        }));
        result
    };
    // dnsmasq may still be starting: the first query is retransmitted until it answers.
    assert_eq!(
        resolve(&mut rig, "board.k230.test"),
        Ok(Ipv4Addr::new(10, 77, 5, 99))
    );
    assert_eq!(
        resolve(&mut rig, "missing.k230.test"),
        Err(NetError::NameNotFound)
    );
    rig.check_models();
}

#[test]
fn dns_without_an_answering_server_times_out() {
    if !have_root("dns_without_an_answering_server_times_out") {
        return;
    }
    let mut rig = Rig::new(6).with_static();
    let q = rig.stack.resolve_start("nobody.k230.test").unwrap();
    let mut result = Err(NetError::WouldBlock);
    assert!(rig.pump_until(Duration::from_secs(20), |st| {
        result = st.resolve_poll(q);
        result != Err(NetError::WouldBlock)
    }));
    assert_eq!(result, Err(NetError::TimedOut));
    rig.check_models();
}

#[test]
fn eight_simultaneous_linux_connects_to_backlog_eight_are_all_accepted() {
    if !have_root("eight_simultaneous_linux_connects_to_backlog_eight_are_all_accepted") {
        return;
    }
    let mut rig = Rig::new(7).with_static();
    let listener = rig.stack.open(Transport::Tcp).unwrap();
    rig.stack
        .bind(listener, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 7000))
        .unwrap();
    rig.stack.listen(listener, 8).unwrap();
    let stack_addr = SocketAddrV4::new(rig.stack_ip, 7000);
    let start = Arc::new(Barrier::new(8));
    let (connected_tx, connected_rx) = mpsc::channel();
    let clients: Vec<_> = (0..8u8)
        .map(|i| {
            let start = start.clone();
            let connected = connected_tx.clone();
            rig.ns
                .spawn(move || {
                    start.wait();
                    let conn =
                        TcpStream::connect_timeout(&stack_addr.into(), Duration::from_secs(10));
                    let _ = connected.send(conn.as_ref().map(|_| ()).map_err(|e| e.to_string()));
                    let mut conn = conn.map_err(|e| format!("client {i}: {e}"))?;
                    conn.write_all(&[i]).map_err(|e| e.to_string())?;
                    conn.set_read_timeout(Some(Duration::from_secs(10)))
                        .map_err(|e| e.to_string())?;
                    let mut echo = [0u8; 1];
                    conn.read_exact(&mut echo).map_err(|e| e.to_string())?;
                    Ok::<u8, String>(echo[0])
                })
                .unwrap()
        })
        .collect();
    // All eight connect while nothing is accepted: the backlog alone holds them.
    let mut connects = Vec::new();
    assert!(rig.pump_until(Duration::from_secs(15), |_| {
        connects.extend(connected_rx.try_iter());
        connects.len() == 8
    }));
    assert!(connects.iter().all(Result::is_ok), "{connects:?}");
    let mut accepted: Vec<SocketId> = Vec::new();
    let mut tags = Vec::new();
    let mut buf = [0u8; 4];
    assert!(rig.pump_until(Duration::from_secs(15), |st| {
        while let Ok((c, _)) = st.accept(listener) {
            accepted.push(c);
        }
        for &c in &accepted {
            if let Ok(1) = st.recv(c, &mut buf) {
                tags.push(buf[0]);
                st.send(c, &buf[..1]).unwrap();
            }
        }
        tags.len() == 8
    }));
    let mut echoed: Vec<u8> = Vec::new();
    for client in clients {
        rig.pump_until(Duration::from_secs(10), |_| client.is_finished());
        let result = client.join().expect("client thread");
        echoed.push(result.expect("client connected and got its echo"));
    }
    tags.sort_unstable();
    echoed.sort_unstable();
    assert_eq!(tags, (0..8).collect::<Vec<u8>>());
    assert_eq!(echoed, (0..8).collect::<Vec<u8>>());
    assert_eq!(accepted.len(), 8);
    rig.check_models();
}

/// A Linux peer on `addr` (listening when this returns) that accepts one connection, sends
/// `payload` (and waits for it to leave), then closes with SO_LINGER 0: an RST.
fn peer_that_resets(rig: &Rig, addr: SocketAddrV4, payload: Vec<u8>) -> JoinHandle<()> {
    let ready = Arc::new(Barrier::new(2));
    let ready_peer = ready.clone();
    let peer = rig
        .ns
        .spawn(move || {
            let listener = TcpListener::bind(addr).expect("bind in netns");
            ready_peer.wait();
            let (mut conn, _) = listener.accept().expect("accept");
            if !payload.is_empty() {
                conn.write_all(&payload).expect("write");
                std::thread::sleep(Duration::from_millis(300));
            }
            reset(conn);
        })
        .unwrap();
    ready.wait();
    peer
}

#[test]
fn linux_refusal_and_reset_are_reported() {
    if !have_root("linux_refusal_and_reset_are_reported") {
        return;
    }
    let mut rig = Rig::new(8).with_static();
    let closed_port = SocketAddrV4::new(rig.linux_ip, 5999);
    let s = rig.stack.open(Transport::Tcp).unwrap();
    rig.stack.connect(s, closed_port).unwrap();
    let mut phase = TcpPhase::Connecting;
    assert!(rig.pump_until(Duration::from_secs(10), |st| {
        phase = st.tcp_phase(s).unwrap();
        phase != TcpPhase::Connecting
    }));
    assert_eq!(phase, TcpPhase::Failed(NetError::ConnectionRefused));
    rig.stack.close(s);

    // Linux accepts, then closes with SO_LINGER 0: an RST.
    let addr = SocketAddrV4::new(rig.linux_ip, 5998);
    let peer = peer_that_resets(&rig, addr, Vec::new());
    let s = rig.stack.open(Transport::Tcp).unwrap();
    rig.stack.connect(s, addr).unwrap();
    let mut phases = Vec::new();
    assert!(rig.pump_until(Duration::from_secs(10), |st| {
        let p = st.tcp_phase(s).unwrap();
        if phases.last() != Some(&p) {
            phases.push(p);
        }
        matches!(p, TcpPhase::Failed(_))
    }));
    assert_eq!(
        phases.last(),
        Some(&TcpPhase::Failed(NetError::ConnectionReset)),
        "{phases:?}"
    );
    assert_eq!(rig.stack.tcp_phase(s), Ok(TcpPhase::Closed));
    peer.join().expect("peer thread");
    rig.check_models();
}

#[test]
fn bytes_sent_before_a_reset_are_read_before_it() {
    if !have_root("bytes_sent_before_a_reset_are_read_before_it") {
        return;
    }
    let mut rig = Rig::new(9).with_static();
    let addr = SocketAddrV4::new(rig.linux_ip, 5997);
    let payload = random_bytes(10_000, 9);
    let peer = peer_that_resets(&rig, addr, payload.clone());
    let s = rig.stack.open(Transport::Tcp).unwrap();
    rig.stack.connect(s, addr).unwrap();
    // Nothing is read until the reset has arrived (readiness shows the pending failure without
    // taking it, as `tcp_phase` would).
    assert!(rig.pump_until(Duration::from_secs(10), |st| st.readiness(s).unwrap().error));
    let mut first = [0u8; 18];
    assert_eq!(rig.stack.peek(s, &mut first), Ok(18));
    assert_eq!(first[..], payload[..18], "peeked bytes");
    let mut got = Vec::new();
    let mut buf = [0u8; 1500];
    let end = loop {
        match rig.stack.recv(s, &mut buf) {
            Ok(0) => break Ok(0),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => break Err(e),
        }
    };
    assert_eq!(end, Err(NetError::ConnectionReset));
    assert_eq!(got.len(), payload.len());
    assert!(got == payload, "bytes differ");
    // Reported once: afterwards the connection is simply over.
    assert_eq!(rig.stack.recv(s, &mut buf), Ok(0));
    assert_eq!(rig.stack.tcp_phase(s), Ok(TcpPhase::Closed));
    rig.stack.close(s);
    peer.join().expect("peer thread");
    rig.check_models();
}
