//! The network stack over a NIC that may be unplugged: every poll of the stack (from
//! `k230net_poll()` or from a socket call waiting for the network) first lets the hot-plug
//! [`Supervisor`] look at the root port, as the firmware's service loop does.
//!
//! When the USB device goes away, the interface's address is released (as lwIP's
//! `netif_remove` does): the stack aborts the connections bound to it, so Python sees
//! `ECONNABORTED` at once, and `network.LAN` reports no connection (the link is down and there
//! is no address). When the device is back, the addressing the user had is applied again: the
//! DHCP client starts anew, or the static configuration set with `ifconfig((ip, mask, gw,
//! dns))` is installed again. A configuration the user sets while the device is gone stands.

use core::net::{Ipv4Addr, SocketAddrV4};

use k230_hal::eth::supervisor::{HotPlug, LinkEvent, Supervisor};
use netstack::api::{
    Ipv4Config, Micros, NetError, PollOutcome, QueryId, Readiness, SocketId, SocketOption,
    SocketStack, TcpPhase, Transport,
};
use netstack::{InterfaceControl, Stack};
use smoltcp::phy::Device;

/// How the interface was addressed when its device went away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Addressing {
    /// The DHCP client ran.
    Dhcp,
    /// A static configuration.
    Static(Ipv4Config),
}

/// No address: what a static configuration with an unspecified address installs
/// ([`InterfaceControl::set_static`] removes the address and stops DHCP).
const RELEASED: Ipv4Config = Ipv4Config {
    address: Ipv4Addr::UNSPECIFIED,
    netmask: Ipv4Addr::UNSPECIFIED,
    gateway: Ipv4Addr::UNSPECIFIED,
    dns: Ipv4Addr::UNSPECIFIED,
};

/// A [`Stack`] over a supervised NIC, itself a socket stack; see the [module docs](self).
pub struct Supervised<'a, D: HotPlug + Device> {
    stack: Stack<'a, Supervisor<D>>,
    /// What to apply again when the device is back (`None`: nothing, or the user chose anew).
    restore: Option<Addressing>,
}

impl<'a, D: HotPlug + Device> Supervised<'a, D> {
    /// Supervises the NIC of `stack`.
    pub fn new(stack: Stack<'a, Supervisor<D>>) -> Self {
        Self {
            stack,
            restore: None,
        }
    }

    /// The stack (its supervisor is its device).
    pub fn stack(&self) -> &Stack<'a, Supervisor<D>> {
        &self.stack
    }

    /// Lets the supervisor look at the port, acts on what it reports and sets the link state.
    fn supervise(&mut self, now: Micros) {
        match self.stack.device_mut().poll(now / 1000) {
            Some(LinkEvent::DeviceLost) => self.device_lost(),
            Some(LinkEvent::DeviceBack) => self.device_back(),
            Some(LinkEvent::BringUpFailed) | None => {}
        }
        let carrier = self.stack.device().carrier();
        self.stack.set_link_up(carrier);
    }

    /// Remembers the addressing and releases the address (the stack aborts its connections).
    fn device_lost(&mut self) {
        self.restore = if self.stack.dhcp_running() {
            Some(Addressing::Dhcp)
        } else {
            self.stack.config().map(Addressing::Static)
        };
        log::warn!("k230net: NIC unplugged, address released");
        // RELEASED's netmask is contiguous, so this cannot fail.
        let _ = self.stack.set_static(RELEASED);
    }

    /// Applies the remembered addressing again.
    fn device_back(&mut self) {
        match self.restore.take() {
            Some(Addressing::Dhcp) => {
                log::info!("k230net: NIC back, DHCP restarted");
                self.stack.start_dhcp();
            }
            Some(Addressing::Static(config)) => {
                log::info!("k230net: NIC back, static address {}", config.address);
                if let Err(e) = self.stack.set_static(config) {
                    log::error!("k230net: static configuration refused: {e:?}");
                }
            }
            None => log::info!("k230net: NIC back"),
        }
    }
}

impl<D: HotPlug + Device> SocketStack for Supervised<'_, D> {
    fn poll(&mut self, now: Micros) -> PollOutcome {
        self.supervise(now);
        self.stack.poll(now)
    }

    fn open(&mut self, transport: Transport) -> Result<SocketId, NetError> {
        self.stack.open(transport)
    }

    fn close(&mut self, id: SocketId) {
        self.stack.close(id)
    }

    fn bind(&mut self, id: SocketId, local: SocketAddrV4) -> Result<(), NetError> {
        self.stack.bind(id, local)
    }

    fn local_addr(&self, id: SocketId) -> Result<Option<SocketAddrV4>, NetError> {
        self.stack.local_addr(id)
    }

    fn listen(&mut self, id: SocketId, backlog: usize) -> Result<(), NetError> {
        self.stack.listen(id, backlog)
    }

    fn accept(&mut self, id: SocketId) -> Result<(SocketId, SocketAddrV4), NetError> {
        self.stack.accept(id)
    }

    fn connect(&mut self, id: SocketId, remote: SocketAddrV4) -> Result<(), NetError> {
        self.stack.connect(id, remote)
    }

    fn peer_addr(&self, id: SocketId) -> Result<Option<SocketAddrV4>, NetError> {
        self.stack.peer_addr(id)
    }

    fn tcp_phase(&mut self, id: SocketId) -> Result<TcpPhase, NetError> {
        self.stack.tcp_phase(id)
    }

    fn send(&mut self, id: SocketId, data: &[u8]) -> Result<usize, NetError> {
        self.stack.send(id, data)
    }

    fn recv(&mut self, id: SocketId, buf: &mut [u8]) -> Result<usize, NetError> {
        self.stack.recv(id, buf)
    }

    fn peek(&mut self, id: SocketId, buf: &mut [u8]) -> Result<usize, NetError> {
        self.stack.peek(id, buf)
    }

    fn send_to(
        &mut self,
        id: SocketId,
        data: &[u8],
        to: Option<SocketAddrV4>,
    ) -> Result<usize, NetError> {
        self.stack.send_to(id, data, to)
    }

    fn recv_from(
        &mut self,
        id: SocketId,
        buf: &mut [u8],
    ) -> Result<(usize, SocketAddrV4), NetError> {
        self.stack.recv_from(id, buf)
    }

    fn peek_from(
        &mut self,
        id: SocketId,
        buf: &mut [u8],
    ) -> Result<(usize, SocketAddrV4), NetError> {
        self.stack.peek_from(id, buf)
    }

    fn readiness(&self, id: SocketId) -> Result<Readiness, NetError> {
        self.stack.readiness(id)
    }

    fn set_option(&mut self, id: SocketId, option: SocketOption) -> Result<(), NetError> {
        self.stack.set_option(id, option)
    }

    fn resolve_start(&mut self, name: &str) -> Result<QueryId, NetError> {
        self.stack.resolve_start(name)
    }

    fn resolve_poll(&mut self, query: QueryId) -> Result<Ipv4Addr, NetError> {
        self.stack.resolve_poll(query)
    }

    fn ipv4_config(&self) -> Option<Ipv4Config> {
        self.stack.ipv4_config()
    }
}

/// The user's addressing choices go to the stack and replace what a replug would restore.
impl<D: HotPlug + Device> InterfaceControl for Supervised<'_, D> {
    fn set_static(&mut self, config: Ipv4Config) -> Result<(), NetError> {
        self.stack.set_static(config)?;
        self.restore = None;
        Ok(())
    }

    fn start_dhcp(&mut self) {
        self.restore = None;
        self.stack.start_dhcp()
    }

    fn dhcp_running(&self) -> bool {
        self.stack.dhcp_running()
    }

    fn config(&self) -> Option<Ipv4Config> {
        self.stack.config()
    }

    fn set_link_up(&mut self, up: bool) {
        self.stack.set_link_up(up)
    }

    fn link_up(&self) -> bool {
        self.stack.link_up()
    }

    fn mac(&self) -> [u8; 6] {
        self.stack.mac()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::Cell;
    use k230_hal::usb::PortEvent;
    use netstack::{Seed, StackConfig, StaticBuffers, StaticStorage};
    use smoltcp::phy::{DeviceCapabilities, Loopback, Medium};
    use smoltcp::time::Instant;
    use std::rc::Rc;

    type Storage = StaticStorage<'static, 2, 1, 5>;
    type Buffers = StaticBuffers<2, 1, 2048, 1024>;

    /// A NIC (smoltcp's loopback) whose root port reports what the test puts in `port`.
    struct Fake {
        port: Rc<Cell<Option<PortEvent>>>,
        lo: Loopback,
    }

    impl Device for Fake {
        type RxToken<'a> = <Loopback as Device>::RxToken<'a>;
        type TxToken<'a> = <Loopback as Device>::TxToken<'a>;
        fn receive(&mut self, t: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
            self.lo.receive(t)
        }
        fn transmit(&mut self, t: Instant) -> Option<Self::TxToken<'_>> {
            self.lo.transmit(t)
        }
        fn capabilities(&self) -> DeviceCapabilities {
            self.lo.capabilities()
        }
    }

    impl HotPlug for Fake {
        type Error = ();
        fn poll_port(&mut self) -> Option<PortEvent> {
            self.port.take()
        }
        fn detached(&mut self) {}
        fn reattach(&mut self) -> Result<(), ()> {
            Ok(())
        }
        fn link_up(&self) -> bool {
            true
        }
        fn maintain(&mut self) {}
    }

    const STATIC: Ipv4Config = Ipv4Config {
        address: Ipv4Addr::new(10, 0, 0, 1),
        netmask: Ipv4Addr::new(255, 255, 255, 0),
        gateway: Ipv4Addr::new(10, 0, 0, 254),
        dns: Ipv4Addr::new(10, 0, 0, 254),
    };

    /// A supervised stack over a fake NIC, and the NIC's port.
    fn supervised() -> (Supervised<'static, Fake>, Rc<Cell<Option<PortEvent>>>) {
        let storage: &'static mut Storage = Box::leak(Box::new(Storage::new()));
        let buffers: &'static mut Buffers = Box::leak(Box::new(Buffers::new()));
        let port = Rc::new(Cell::new(None));
        let nic = Fake {
            port: port.clone(),
            lo: Loopback::new(Medium::Ethernet),
        };
        let config = StackConfig {
            mac: [2, 0, 0, 0, 0, 1],
            seed: Seed::reproducible(1),
        };
        let stack = Stack::new(Supervisor::new(nic), config, storage.parts(buffers), 0);
        (Supervised::new(stack), port)
    }

    /// Unplugs (at `now` ms) and polls; then replugs and polls.
    fn unplug(s: &mut Supervised<'static, Fake>, port: &Cell<Option<PortEvent>>, now: Micros) {
        port.set(Some(PortEvent::Disconnected));
        s.poll(now * 1000);
    }

    fn replug(s: &mut Supervised<'static, Fake>, port: &Cell<Option<PortEvent>>, now: Micros) {
        port.set(Some(PortEvent::Connected));
        s.poll(now * 1000);
    }

    #[test]
    fn an_unplug_releases_the_address_and_aborts_connections_a_replug_restores_static() {
        let (mut s, port) = supervised();
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
        let (mut s, port) = supervised();
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
        let (mut s, port) = supervised();
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
        let (mut s, _port) = supervised();
        s.set_static(STATIC).unwrap();
        for round in 0..5 {
            s.poll(round * 1000);
        }
        assert_eq!(s.config(), Some(STATIC));
        assert!(s.link_up());
        assert_eq!(s.stack().device().losses(), 0);
    }

    /// The whole path on the simulated board: our stack over the supervised RTL8152 driver over
    /// the DWC2 driver and models, a peer stack at the other end of the cable.
    mod board {
        use super::*;
        use crate::nic::Nic;
        use k230_hal::eth::rtl8152::Rtl8152;
        use k230_hal::sim::dwc2_model::Dwc2Model;
        use k230_hal::sim::rtl8152::Rtl8152Model;
        use k230_hal::sim::wire::pair::{pair, PairEnd};
        use k230_hal::sim::wire::Wire;
        use k230_hal::sim::SimHost;

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

        type BoardStack = Supervised<'static, Nic<SimHost>>;

        fn storage() -> netstack::Parts<'static> {
            let storage: &'static mut Storage = Box::leak(Box::new(Storage::new()));
            let buffers: &'static mut Buffers = Box::leak(Box::new(Buffers::new()));
            storage.parts(buffers)
        }

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
            let controller = Dwc2Model::new();
            controller.attach(Box::new(Rtl8152Model::new(board_end, MAC)));
            let (host, device) = controller.connect_host().unwrap();
            let nic = Nic::Rtl8152(Rtl8152::probe(host, &device).unwrap());
            let config = StackConfig {
                mac: MAC,
                seed: Seed::reproducible(7),
            };
            let mut ours = Supervised::new(Stack::new(Supervisor::new(nic), config, storage(), 0));
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

            let model = controller.detach().expect("plugged in");
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

            controller.attach(model);
            assert!(
                run(&mut ours, &mut peer, &mut now, |o, _| o.config()
                    == Some(STATIC)),
                "back with its static configuration"
            );
            assert!(ours.link_up());
            assert_eq!(ours.stack().device().nic().mac(), MAC);
            assert_eq!(ours.stack().device().losses(), 1);
            connect_and_send(&mut ours, &mut peer, listener, &mut now, b"after");
        }
    }
}
