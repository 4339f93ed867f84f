//! The seed manual's TCP-client example on the simulated board (real MicroPython, bindings,
//! upy-socket, netstack, RTL8152 driver over the DWC2 host driver over their models) against a
//! Linux TCP server, through a TAP device in a network namespace the test creates. Root only.
#![cfg(feature = "host")]

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use integration_tests::netns::{dnsmasq, have_root, unique_name, Netns};
use k230_hal::sim::board::SimBoard;
use k230_hal::sim::wire::tap::Tap;
use netstack::api::Ipv4Config;
use upy_bindings::host::net::HostNet;
use upy_bindings::host::{have_library, Interpreter};

/// The address the seed script (tests/upy/seed_client.py) connects to.
const PEER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 2);
const BOARD_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 15);
const MAC: [u8; 6] = [0x00, 0xe0, 0x4c, 0x36, 0x00, 0x15];
const LIMIT: Duration = Duration::from_secs(30);

fn lines_from_one_client(listener: TcpListener) -> Vec<String> {
    listener.set_nonblocking(true).expect("nonblocking");
    let start = Instant::now();
    let stream = loop {
        match listener.accept() {
            Ok((stream, _)) => break stream,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && start.elapsed() < LIMIT => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(e) => panic!("accept: {e}"),
        }
    };
    stream.set_nonblocking(false).expect("blocking");
    stream.set_read_timeout(Some(LIMIT)).expect("timeout");
    BufReader::new(stream)
        .lines()
        .map(|l| l.expect("read").trim_end_matches('\r').to_owned())
        .collect()
}

/// A namespace with the peer's TAP side at [`PEER_IP`], and the simulated board on the TAP.
struct Rig {
    // Dropped first: the board (and its TAP descriptor) before the namespace.
    net: HostNet<SimBoard>,
    tap: String,
    ns: Netns,
}

fn rig(config: Option<Ipv4Config>) -> Rig {
    let ns = Netns::new().expect("netns");
    let tap = unique_name("k230u");
    let tap_dev = Tap::open_in_netns(&tap, &Path::new("/var/run/netns").join(ns.name()))
        .expect("TAP in netns");
    ns.exec_ok(&["ip", "addr", "add", &format!("{PEER_IP}/24"), "dev", &tap])
        .expect("peer address");
    ns.exec_ok(&["ip", "link", "set", &tap, "up"])
        .expect("link up");
    let board = SimBoard::new(tap_dev, MAC).expect("board");
    let net = HostNet::start(board, MAC, config).expect("net");
    Rig { net, tap, ns }
}

#[test]
fn seed_example_reaches_a_linux_server_through_the_simulated_board() {
    let test = "seed_example_reaches_a_linux_server_through_the_simulated_board";
    if !have_root(test) || !have_library(test) {
        return;
    }
    let interpreter = Interpreter::shared(&upy_bindings::MODULES).expect("interpreter");
    let rig = rig(Some(Ipv4Config {
        address: BOARD_IP,
        netmask: Ipv4Addr::new(255, 255, 255, 0),
        gateway: PEER_IP,
        dns: PEER_IP,
    }));

    let (ready, listening) = mpsc::channel();
    let server = rig
        .ns
        .spawn(move || {
            let listener =
                TcpListener::bind(SocketAddrV4::new(PEER_IP, 60000)).expect("bind server");
            ready.send(()).expect("test waits");
            lines_from_one_client(listener)
        })
        .expect("server thread");
    listening.recv().expect("server listens");

    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/upy/seed_client.py");
    let (result, _) = interpreter.run_file_with(rig.net.backends(), &script, &[]);
    let lines = server.join().expect("server");
    assert_eq!(result, Ok(()));
    let expected: Vec<String> = (0..10)
        .map(|i| format!("K230 TCP 客户端发送测试 {i} "))
        .collect();
    assert_eq!(lines, expected);
}

#[test]
fn lan_dhcp_and_dns_against_dnsmasq() {
    let test = "lan_dhcp_and_dns_against_dnsmasq";
    if !have_root(test) || !have_library(test) {
        return;
    }
    let interpreter = Interpreter::shared(&upy_bindings::MODULES).expect("interpreter");
    let rig = rig(None);
    let _dnsmasq = dnsmasq(
        &rig.ns,
        &rig.tap,
        &[
            &format!("--dhcp-range={BOARD_IP},{BOARD_IP},255.255.255.0,1h"),
            &format!("--dhcp-option=option:router,{PEER_IP}"),
            &format!("--dhcp-option=option:dns-server,{PEER_IP}"),
            &format!("--address=/peer.k230.sim/{PEER_IP}"),
        ],
    )
    .expect("dnsmasq");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/upy/lan_dhcp_dns.py");
    let args = [
        BOARD_IP.to_string(),
        "peer.k230.sim".to_owned(),
        PEER_IP.to_string(),
    ];
    let (result, _) = interpreter.run_file_with(rig.net.backends(), &script, &args);
    assert_eq!(result, Ok(()));
}
