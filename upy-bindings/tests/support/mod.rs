//! Shared by the tests that cable the board's network to a peer stack on an in-memory wire.

use std::net::Ipv4Addr;

use netstack::api::Ipv4Config;
use netstack::phy::{wire, WireEnd};
use upy_bindings::host::net::HostNet;

/// A /24 configuration whose gateway is also the DNS server.
fn config(address: Ipv4Addr, gateway: Ipv4Addr) -> Ipv4Config {
    Ipv4Config {
        address,
        netmask: Ipv4Addr::new(255, 255, 255, 0),
        gateway,
        dns: gateway,
    }
}

/// The board's network and the peer's, cabled together, each with the other as gateway.
pub fn cabled(board_ip: Ipv4Addr, peer_ip: Ipv4Addr) -> (HostNet<WireEnd>, HostNet<WireEnd>) {
    let (board_end, peer_end) = wire();
    let board = HostNet::start(
        board_end,
        [0x02, 0, 0, 0, 0, 0x15],
        Some(config(board_ip, peer_ip)),
    )
    .expect("board net");
    let peer = HostNet::start(
        peer_end,
        [0x02, 0, 0, 0, 0, 0x02],
        Some(config(peer_ip, board_ip)),
    )
    .expect("peer net");
    (board, peer)
}
