//! Scripts on the simulated board (real MicroPython, bindings, upy-socket, the board assembly's
//! supervised netstack, RTL8152 driver over the DWC2 host driver over their models) against
//! Linux, through a TAP device in a network namespace the test creates: the seed manual's
//! TCP-client example, DHCP and DNS against dnsmasq, and the NIC unplugged and replugged while a
//! TCP connection is open. Root only.
#![cfg(feature = "host")]

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::os::fd::AsRawFd;
use std::path::PathBuf;

use integration_tests::tap::TapPeer;
use integration_tests::upy_peers::{self, Running, BOARD_IP, LIMIT, PEER_IP};
use k230_hal::sim::board::SimBoard;
use k230_testkit::netns::{accept_within, dnsmasq};
use k230_testkit::require::have_root;
use netstack::api::Ipv4Config;
use upy_bindings::host::net::HostNet;
use upy_bindings::host::{have_library, Interpreter, SIM_MODULES};

const MAC: [u8; 6] = [0x00, 0xe0, 0x4c, 0x36, 0x00, 0x15];

/// A namespace with the peer's TAP side at [`PEER_IP`], and the simulated board on the TAP.
struct Rig {
    // Dropped first: the board (and its TAP descriptor) before the namespace.
    net: HostNet<SimBoard>,
    peer: TapPeer,
}

fn rig(config: Option<Ipv4Config>) -> Rig {
    let (peer, tap) = TapPeer::new("k230u", PEER_IP, 24).expect("TAP in a netns");
    let frames = tap.as_raw_fd();
    let board = SimBoard::new(tap, MAC).expect("board");
    let net = HostNet::start_board(board, config).expect("net");
    net.wake_on(frames);
    Rig { net, peer }
}

#[test]
fn seed_example_reaches_a_linux_server_through_the_simulated_board() {
    let test = "seed_example_reaches_a_linux_server_through_the_simulated_board";
    if !have_root(test) || !have_library(test) {
        return;
    }
    let interpreter = Interpreter::shared(&SIM_MODULES).expect("interpreter");
    let rig = rig(Some(Ipv4Config {
        address: BOARD_IP,
        netmask: Ipv4Addr::new(255, 255, 255, 0),
        gateway: PEER_IP,
        dns: PEER_IP,
    }));

    let server = Running::start(&rig.peer.ns, upy_peers::seed_server);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/upy/seed_client.py");
    let (result, _) = interpreter.run_file_with(rig.net.backends(), &script, &[]);
    let received = server.finish();
    assert_eq!(result, Ok(()));
    assert_eq!(received, upy_peers::seed_client_lines());
}

#[test]
fn lan_dhcp_and_dns_against_dnsmasq() {
    let test = "lan_dhcp_and_dns_against_dnsmasq";
    if !have_root(test) || !have_library(test) {
        return;
    }
    let interpreter = Interpreter::shared(&SIM_MODULES).expect("interpreter");
    let rig = rig(None);
    let args: Vec<String> = upy_peers::dhcp_args()
        .into_iter()
        .chain(upy_peers::dns_args())
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let _dnsmasq = dnsmasq(&rig.peer.ns, &rig.peer.ifname, &args).expect("dnsmasq");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/upy/lan_dhcp_dns.py");
    let args = [
        BOARD_IP.to_string(),
        upy_peers::PEER_NAME.to_owned(),
        PEER_IP.to_string(),
    ];
    let (result, _) = interpreter.run_file_with(rig.net.backends(), &script, &args);
    assert_eq!(result, Ok(()));
}

/// The peer for `tests/upy/hotplug.py`: one line from the connection the unplug aborts, answered
/// with `ack` (the board sends nothing more on it; it stays open here), then every line of the
/// connection after the replug.
fn before_and_after(listener: TcpListener) -> (String, Vec<String>) {
    let accept = || accept_within(&listener, LIMIT).expect("accept");
    let mut held = BufReader::new(accept());
    let mut first = String::new();
    held.read_line(&mut first)
        .expect("the line before the unplug");
    held.get_mut().write_all(b"ack\n").expect("ack");
    let after = BufReader::new(accept())
        .lines()
        .map(|l| l.expect("read").to_owned())
        .collect();
    (first, after)
}

/// Runs `tests/upy/hotplug.py` on a board addressed by `addressing` ("static" or "dhcp").
fn hotplug(rig: &Rig, addressing: &str) {
    let interpreter = Interpreter::shared(&SIM_MODULES).expect("interpreter");
    let server = rig
        .peer
        .ns
        .serve(SocketAddrV4::new(PEER_IP, 60001), before_and_after)
        .expect("the peer's server");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/upy/hotplug.py");
    let args = [
        PEER_IP.to_string(),
        "60001".to_owned(),
        addressing.to_owned(),
    ];
    let (result, _) = interpreter.run_file_with(rig.net.sim_backends(), &script, &args);
    assert_eq!(result, Ok(()));
    let (before, after) = server.join().expect("server");
    assert_eq!(
        (before.as_str(), after),
        ("before\n", vec!["after".to_owned()])
    );
    rig.net.with_table(|t| {
        let board = t.stack().device();
        let supervisor = board.supervisor();
        assert_eq!((supervisor.losses(), supervisor.comebacks()), (1, 1));
        assert_eq!(board.nic_report().errors, vec![]);
        assert_eq!(board.usb_violations(), Vec::<String>::new());
    });
}

#[test]
fn an_unplug_aborts_the_connection_and_a_replug_restores_the_static_address() {
    let test = "an_unplug_aborts_the_connection_and_a_replug_restores_the_static_address";
    if !have_root(test) || !have_library(test) {
        return;
    }
    hotplug(
        &rig(Some(Ipv4Config {
            address: BOARD_IP,
            netmask: Ipv4Addr::new(255, 255, 255, 0),
            gateway: PEER_IP,
            dns: PEER_IP,
        })),
        "static",
    );
}

#[test]
fn an_unplug_aborts_the_connection_and_a_replug_brings_the_dhcp_lease_back() {
    let test = "an_unplug_aborts_the_connection_and_a_replug_brings_the_dhcp_lease_back";
    if !have_root(test) || !have_library(test) {
        return;
    }
    let rig = rig(None);
    let _dnsmasq = dnsmasq(
        &rig.peer.ns,
        &rig.peer.ifname,
        &[&format!(
            "--dhcp-range={BOARD_IP},{BOARD_IP},255.255.255.0,1h"
        )],
    )
    .expect("dnsmasq");
    hotplug(&rig, "dhcp");
}
