//! The supervised stack's address policy (the one every board runs), first over the loopback
//! hot-pluggable NIC, then over the simulated board (the RTL8152 driver over the DWC2 driver and
//! models) against a peer stack at the other end of the cable.

use core::net::{Ipv4Addr, SocketAddrV4};

use k230_board::supervised;
use k230_hal::eth::driver::Driver;
use k230_hal::eth::loopback::{LoopbackControl, LoopbackNic};
use k230_hal::eth::supervisor::Supervisor;
use netstack::api::{Ipv4Config, Micros, NetError, SocketId, SocketStack, TcpPhase, Transport};
use netstack::{InterfaceControl, Seed, Stack, StackConfig, StaticBuffers, StaticStorage};
use smoltcp::phy::{Device, DeviceCapabilities};
use smoltcp::time::Instant;

type Storage = StaticStorage<'static, 2, 1, 5>;
type Buffers = StaticBuffers<2, 1, 2048, 1024>;

fn storage() -> netstack::Parts<'static> {
    let storage: &'static mut Storage = Box::leak(Box::new(Storage::new()));
    let buffers: &'static mut Buffers = Box::leak(Box::new(Buffers::new()));
    storage.parts(buffers)
}

type Looped = Stack<'static, Supervisor<LoopbackNic>>;

/// A supervised stack over the loopback NIC, and the NIC's port.
fn supervised_loopback() -> (Looped, LoopbackControl) {
    let (nic, port) = LoopbackNic::new([2, 0, 0, 0, 0, 1]);
    (
        supervised(Supervisor::new(nic), Seed::reproducible(1), storage(), 0),
        port,
    )
}

/// Unplugs (at `now` ms) and polls.
fn unplug(s: &mut Looped, port: &LoopbackControl, now: Micros) {
    port.unplug();
    s.poll(now * 1000);
}

/// Replugs (at `now` ms) and polls.
fn replug(s: &mut Looped, port: &LoopbackControl, now: Micros) {
    port.replug();
    s.poll(now * 1000);
}

const STATIC: Ipv4Config = Ipv4Config {
    address: Ipv4Addr::new(10, 0, 0, 1),
    netmask: Ipv4Addr::new(255, 255, 255, 0),
    gateway: Ipv4Addr::new(10, 0, 0, 254),
    dns: Ipv4Addr::new(10, 0, 0, 254),
};

#[test]
fn an_unplug_releases_the_address_and_aborts_connections_a_replug_restores_static() {
    let (mut s, port) = supervised_loopback();
    s.set_static(STATIC).unwrap();
    s.poll(0);
    assert!(s.link_up());
    let tcp = s.open(Transport::Tcp).unwrap();
    s.connect(tcp, SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 80))
        .unwrap();
    s.poll(1000);
    assert_eq!(s.tcp_phase(tcp), Ok(TcpPhase::Connecting));

    unplug(&mut s, &port, 2);
    assert_eq!(s.config(), None, "address released");
    assert!(!s.link_up(), "no carrier while the device is gone");
    assert!(!s.dhcp_running());
    assert_eq!(s.recv(tcp, &mut [0; 8]), Err(NetError::ConnectionAborted));

    replug(&mut s, &port, 3);
    assert_eq!(
        s.config(),
        Some(STATIC),
        "static configuration applied again"
    );
    assert!(s.link_up());
    assert!(!s.dhcp_running());
}

#[test]
fn a_replug_restarts_dhcp_when_it_ran() {
    let (mut s, port) = supervised_loopback();
    s.start_dhcp();
    s.poll(0);
    unplug(&mut s, &port, 1);
    assert!(!s.dhcp_running(), "no DHCP while the device is gone");
    assert!(!s.link_up());
    replug(&mut s, &port, 2);
    assert!(s.dhcp_running());
    assert!(s.link_up());
    assert_eq!(s.config(), None, "no lease yet");
}

#[test]
fn a_configuration_set_while_the_device_is_gone_stands() {
    let (mut s, port) = supervised_loopback();
    s.start_dhcp();
    s.poll(0);
    unplug(&mut s, &port, 1);
    s.set_static(STATIC).unwrap();
    replug(&mut s, &port, 2);
    assert_eq!(s.config(), Some(STATIC));
    assert!(
        !s.dhcp_running(),
        "DHCP is not restarted over the user's choice"
    );
}

#[test]
fn quiet_rounds_change_no_addressing() {
    let (mut s, _port) = supervised_loopback();
    s.set_static(STATIC).unwrap();
    for round in 0..5 {
        s.poll(round * 1000);
    }
    assert_eq!(s.config(), Some(STATIC));
    assert!(s.link_up());
    assert_eq!(s.device().losses(), 0);
}

#[test]
fn the_link_state_is_the_real_carrier() {
    let (mut s, port) = supervised_loopback();
    s.set_static(STATIC).unwrap();
    s.poll(0);
    assert!(s.link_up());
    port.set_carrier(false);
    s.poll(1000);
    assert!(!s.link_up(), "cable pulled: no carrier");
    assert_eq!(s.config(), Some(STATIC), "a pulled cable keeps the address");
    port.set_carrier(true);
    s.poll(2000);
    assert!(s.link_up());
}

#[test]
fn a_failed_bring_up_keeps_the_address_released_until_the_device_comes_up() {
    let (mut s, port) = supervised_loopback();
    s.set_static(STATIC).unwrap();
    s.poll(0);
    unplug(&mut s, &port, 1);
    port.fail_reattach(true);
    replug(&mut s, &port, 2);
    assert_eq!(s.config(), None);
    assert!(!s.link_up());
    port.fail_reattach(false);
    // The supervisor retries after its pause.
    for ms in 3..2000 {
        s.poll(ms * 1000);
    }
    assert_eq!(s.config(), Some(STATIC));
    assert!(s.link_up());
}

/// The whole path on the simulated board: our stack over the supervised RTL8152 driver over the
/// DWC2 driver and models, a peer stack at the other end of the cable.
mod board {
    use super::*;
    use k230_hal::sim::board::SimBoard;
    use k230_hal::sim::wire::pair::{pair, PairEnd};
    use k230_hal::sim::wire::Wire;

    const MAC: [u8; 6] = [0x02, 0x4b, 0x32, 0x33, 0x30, 0x01];
    const PEER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
    /// Bounded rounds (1 ms apart) for a handshake or a segment to cross.
    const ROUNDS: u64 = 400;

    /// The peer's NIC: the far end of the cable as a smoltcp device.
    struct Peer(PairEnd);
    struct PeerRx(Vec<u8>);
    struct PeerTx<'a>(&'a mut PairEnd);

    impl smoltcp::phy::RxToken for PeerRx {
        fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
            f(&self.0)
        }
    }

    impl smoltcp::phy::TxToken for PeerTx<'_> {
        fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
            let mut frame = vec![0; len];
            let r = f(&mut frame);
            // The pair is deep enough for the test's traffic; a full one drops like a cable.
            let _ = self.0.send(&frame);
            r
        }
    }

    impl Device for Peer {
        type RxToken<'a> = PeerRx;
        type TxToken<'a> = PeerTx<'a>;
        fn receive(&mut self, _: Instant) -> Option<(PeerRx, PeerTx<'_>)> {
            let frame = self.0.recv().ok().flatten()?;
            Some((PeerRx(frame), PeerTx(&mut self.0)))
        }
        fn transmit(&mut self, _: Instant) -> Option<PeerTx<'_>> {
            Some(PeerTx(&mut self.0))
        }
        fn capabilities(&self) -> DeviceCapabilities {
            let mut caps = DeviceCapabilities::default();
            caps.max_transmission_unit = 1514;
            caps
        }
    }

    type BoardStack = Stack<'static, SimBoard>;

    /// Polls both stacks, 1 ms apart, until `done` (bounded); true when it was.
    fn run(
        ours: &mut BoardStack,
        peer: &mut Stack<'static, Peer>,
        now: &mut Micros,
        mut done: impl FnMut(&mut BoardStack, &mut Stack<'static, Peer>) -> bool,
    ) -> bool {
        for _ in 0..ROUNDS {
            *now += 1000;
            ours.poll(*now);
            peer.poll(*now);
            if done(ours, peer) {
                return true;
            }
        }
        false
    }

    /// Connects to the peer's listener and sends `data` across; returns our socket.
    fn connect_and_send(
        ours: &mut BoardStack,
        peer: &mut Stack<'static, Peer>,
        listener: SocketId,
        now: &mut Micros,
        data: &[u8],
    ) -> SocketId {
        let tcp = ours.open(Transport::Tcp).unwrap();
        ours.connect(tcp, SocketAddrV4::new(PEER_IP, 7)).unwrap();
        let mut accepted = None;
        assert!(
            run(ours, peer, now, |o, p| {
                if accepted.is_none() {
                    accepted = p.accept(listener).ok().map(|(id, _)| id);
                }
                accepted.is_some() && o.tcp_phase(tcp) == Ok(TcpPhase::Connected)
            }),
            "connected: {:?}",
            ours.tcp_phase(tcp)
        );
        assert_eq!(ours.send(tcp, data), Ok(data.len()));
        let server = accepted.unwrap();
        let mut got = Vec::new();
        assert!(
            run(ours, peer, now, |_, p| {
                let mut buf = [0; 64];
                if let Ok(n) = p.recv(server, &mut buf) {
                    got.extend_from_slice(&buf[..n]);
                }
                got == data
            }),
            "data crossed"
        );
        tcp
    }

    #[test]
    fn tcp_aborts_on_unplug_and_works_again_after_replug_with_the_same_mac() {
        let (board_end, peer_end) = pair(64);
        let board = SimBoard::new(board_end, MAC).expect("board");
        let mut ours = supervised(board, Seed::reproducible(7), storage(), 0);
        ours.set_static(STATIC).unwrap();
        let peer_config = StackConfig {
            mac: [0x02, 0, 0, 0, 0, 0x02],
            seed: Seed::reproducible(8),
        };
        let mut peer = Stack::new(Peer(peer_end), peer_config, storage(), 0);
        peer.set_static(Ipv4Config {
            address: PEER_IP,
            ..STATIC
        })
        .unwrap();
        peer.set_link_up(true);
        let listener = peer.open(Transport::Tcp).unwrap();
        peer.bind(listener, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 7))
            .unwrap();
        peer.listen(listener, 2).unwrap();
        let mut now = 0;

        let tcp = connect_and_send(&mut ours, &mut peer, listener, &mut now, b"before");

        assert!(ours.device_mut().unplug_usb(), "plugged in");
        assert!(run(&mut ours, &mut peer, &mut now, |o, _| o
            .config()
            .is_none()));
        assert_eq!(
            ours.recv(tcp, &mut [0; 8]),
            Err(NetError::ConnectionAborted)
        );
        assert!(!ours.link_up());
        ours.close(tcp);
        // Out for 2 s, as a hand takes to replug; smoltcp sends one ARP request a second at
        // most (its neighbour cache's silent time, not reset by a flush), so a replug within
        // a second of the first request would make the next connection wait for it.
        now += 2_000_000;

        assert!(ours.device_mut().replug_usb());
        assert!(
            run(&mut ours, &mut peer, &mut now, |o, _| o.config()
                == Some(STATIC)),
            "back with its static configuration"
        );
        assert!(ours.link_up());
        assert_eq!(ours.device().supervisor().mac(), MAC);
        assert_eq!(ours.device().supervisor().losses(), 1);
        connect_and_send(&mut ours, &mut peer, listener, &mut now, b"after");
    }
}
