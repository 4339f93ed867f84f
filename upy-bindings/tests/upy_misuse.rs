//! The socket misuse catalogue (tests/upy/misuse.py, issue 6) on the real interpreter through
//! the bindings, upy-socket and netstack, against a peer stack on an in-memory Ethernet wire.
//! Every case must give modlwip's outcome (the script exits non-zero on any mismatch); the
//! reference comparison (`upy_reference`) runs the same catalogue under the pinned
//! MicroPython's own socket to show the expectations are that MicroPython's. No root needed.
#![cfg(feature = "host")]

mod support;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;

use upy_bindings::host::{have_library, Interpreter};
use upy_socket::consts::{AF_INET, SOCK_STREAM};

const BOARD_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 4, 15);
const PEER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 4, 2);
const OPEN_PORT: u16 = 7500;
const CLOSED_PORT: u16 = 7501;
/// The board's DNS server is the peer, which runs none: a lookup fails after this long.
const DNS_TIMEOUT_MICROS: u64 = 300_000;

#[test]
fn misuse_catalogue_raises_what_modlwip_raises() {
    if !have_library("misuse_catalogue_raises_what_modlwip_raises") {
        return;
    }
    let interpreter =
        Interpreter::shared(&upy_bindings::MODULES).unwrap_or_else(|e| panic!("interpreter: {e}"));
    let (board, peer) = support::cabled(BOARD_IP, PEER_IP);
    board.with_table(|t| t.set_dns_timeout(DNS_TIMEOUT_MICROS));
    // The peer's listener completes handshakes into its backlog; the cases never need the
    // connections accepted.
    let listener = peer.with_table(|t| {
        let s = t.socket(AF_INET, SOCK_STREAM, 0).expect("socket");
        t.bind(s, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, OPEN_PORT))
            .expect("bind");
        t.listen(s, Some(8)).expect("listen");
        s
    });
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/upy/misuse.py");
    let args = [
        "lwip".to_owned(),
        PEER_IP.to_string(),
        OPEN_PORT.to_string(),
        CLOSED_PORT.to_string(),
        "nonexistent.k230.sim".to_owned(),
    ];
    let (result, _) = interpreter.run_file_with(board.backends(), &script, &args);
    peer.with_table(|t| t.close(listener));
    assert_eq!(result, Ok(()), "the catalogue printed its mismatches above");
}
