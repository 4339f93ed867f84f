//! Throwaway smoltcp interfaces whose generator yields what the stack chose.
//!
//! smoltcp 0.14 draws TCP initial sequence numbers (`tcp::Socket::connect`, and a listening
//! socket taking a SYN), DNS query ids and source ports (`dns::Socket::start_query`) and DHCP
//! transaction ids (`dhcpv4::Socket` sending DISCOVER or a renewing REQUEST) from the generator
//! of the interface context it is handed (`Interface`'s `rand`, seeded once from
//! `Config::random_seed`, `src/iface/interface/mod.rs`). That generator is a 64-bit linear
//! congruential generator with a truncated output (`src/rand.rs`): two outputs reveal its state,
//! and with it every later sequence number. smoltcp offers no public way to reseed it or to set
//! a sequence number, so (without a fork) the stack hands those calls an interface built for the
//! one call ([`like`]), whose seed is either a fresh secret (DNS, DHCP) or chosen so that its
//! first draw is the RFC 6528 ISN the stack computed ([`seed_drawing`]): `connect` gets its
//! context, a SYN for a listener is processed by it ([`crate::gate`]), the DHCP client sends
//! through it. The stack's own interface draws nothing that goes on the wire: with our features
//! its only other draw is an IPv4 fragment id at creation (unused without
//! `proto-ipv4-fragmentation`; IPv4 idents are 0 with DF set), and IGMP/MLD report delays and
//! 6LoWPAN/RPL draws are not compiled in.
//!
//! A throwaway interface has the stack interface's station address, IPv4 addresses and default
//! route but an empty neighbour cache (smoltcp has no way to read or copy one; it fills it only
//! from ARP). Processing a received SYN needs no neighbour (the SYN-ACK goes out later through
//! the stack's interface). The DHCP client's renewal is unicast to the server, so the stack
//! tells the throwaway interface where that next hop is ([`teach`]), from the ARP messages it
//! saw, as smoltcp's own cache learnt it.
//!
//! The generator is modelled in [`crate::lcg`]. `Interface::new` with our features
//! (`proto-ipv4`, no 6LoWPAN/802.15.4) draws 16 bits until they are not zero (its first IPv4
//! fragment id) before any socket draws. The tests check the values on the wire.

use core::net::Ipv4Addr;

use smoltcp::iface::{Config, Interface, SocketSet, SocketStorage};
use smoltcp::phy::{Device, DeviceCapabilities, PacketMeta, TxToken};
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    EthernetRepr,
};

use crate::api::Micros;
use crate::gate::{Neighbour, OneFrame};
use crate::lcg::{draw16, draw32, step, unstep};
use crate::stack::instant;

/// A seed whose interface's first draw after `Interface::new` is `value`. `filler` (secret and
/// fresh per call) fills the 32 state bits that `value` does not fix.
pub(crate) fn seed_drawing(value: u32, filler: u64) -> u64 {
    let mut filler = filler;
    loop {
        // The top three bits pick the shift; `value` sits right above the shifted-out bits,
        // the bits between it and the top three are cut off by the `as u32`.
        let top = filler >> 61;
        let shift = 29 - top;
        let low = filler & ((1 << shift) - 1);
        let cut = (filler >> 32) & ((1 << top) - 1);
        let target = (top << 61) | (cut << (shift + 32)) | (u64::from(value) << shift) | low;
        debug_assert_eq!(draw32(target), value);
        // `Interface::new` draws from the state before; a zero there would make it draw again.
        let before = unstep(target);
        if draw16(before) != 0 {
            return unstep(before);
        }
        filler = step(filler);
    }
}

/// An interface like `main` (station address, IPv4 addresses, default route) over `device`'s
/// capabilities whose generator starts from `seed`, for one call that draws from it.
pub(crate) fn like<D: Device + ?Sized>(
    main: &Interface,
    device: &mut D,
    seed: u64,
    now: Micros,
) -> Interface {
    let mut config = Config::new(main.hardware_addr());
    config.random_seed = seed;
    let mut iface = Interface::new(config, device, instant(now));
    iface.update_ip_addrs(|addrs| {
        for cidr in main.ip_addrs() {
            // Both lists have smoltcp's capacity.
            let _ = addrs.push(*cidr);
        }
    });
    if let Some(route) = main.routes().get_default_ipv4_route() {
        iface.routes_mut().update(|routes| {
            // The list is empty.
            let _ = routes.push(route);
        });
    }
    iface
}

/// Bytes of an Ethernet frame carrying an ARP message.
const ARP_FRAME: usize = 14 + 28;

/// Tells `iface` (the interface of the station at `mac` and `own`) where `neighbour` is, as
/// smoltcp learns it: from an ARP reply to the station, received on a device of `caps`. An ARP
/// reply is not answered, so `tx` (which a received frame comes with) goes unused.
pub(crate) fn teach<T: TxToken>(
    iface: &mut Interface,
    (mac, own): ([u8; 6], Ipv4Addr),
    neighbour: Neighbour,
    tx: T,
    caps: &DeviceCapabilities,
    now: Micros,
) {
    let station_mac = EthernetAddress(mac);
    let arp = ArpRepr::EthernetIpv4 {
        operation: ArpOperation::Reply,
        source_hardware_addr: EthernetAddress(neighbour.mac),
        source_protocol_addr: neighbour.ip,
        target_hardware_addr: station_mac,
        target_protocol_addr: own,
    };
    let eth = EthernetRepr {
        src_addr: EthernetAddress(neighbour.mac),
        dst_addr: station_mac,
        ethertype: EthernetProtocol::Arp,
    };
    let mut frame = [0u8; ARP_FRAME];
    let mut view = EthernetFrame::new_unchecked(&mut frame[..]);
    eth.emit(&mut view);
    arp.emit(&mut ArpPacket::new_unchecked(view.payload_mut()));
    let mut device = OneFrame::new(&frame, PacketMeta::default(), tx, caps);
    let mut none: [SocketStorage<'_>; 0] = [];
    let mut sockets = SocketSet::new(&mut none[..]);
    iface.poll_ingress_single(instant(now), &mut device, &mut sockets);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Ipv4Config, SocketStack, Transport};
    use crate::entropy::{Secrets, Seed};
    use crate::{InterfaceControl, Stack, StackConfig, StaticBuffers, StaticStorage};
    use core::cell::RefCell;
    use core::net::{Ipv4Addr, SocketAddrV4};
    use smoltcp::phy::{DeviceCapabilities, Loopback, Medium, TxToken};
    use smoltcp::time::Instant;
    use smoltcp::wire::{
        ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, Ipv4Packet, TcpPacket,
    };
    use std::rc::Rc;

    /// smoltcp's generator, written from the facts above, run forward.
    pub(super) struct Model(pub u64);

    impl Model {
        pub fn draw32(&mut self) -> u32 {
            self.0 = step(self.0);
            draw32(self.0)
        }
        pub fn draw16(&mut self) -> u16 {
            self.0 = step(self.0);
            draw16(self.0)
        }
    }

    /// smoltcp's loopback, with a copy of every frame sent; an ARP request comes back as the
    /// reply of a host at [`PEER_MAC`] (the stack's own loopback path keeps frames for its own
    /// addresses, so the SYN must go to another host).
    struct Tap {
        lo: Loopback,
        sent: Rc<RefCell<Vec<Vec<u8>>>>,
    }

    struct TapTx<'a> {
        inner: <Loopback as Device>::TxToken<'a>,
        sent: Rc<RefCell<Vec<Vec<u8>>>>,
    }

    impl TxToken for TapTx<'_> {
        fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
            let sent = self.sent;
            self.inner.consume(len, |buf| {
                let r = f(buf);
                sent.borrow_mut().push(buf.to_vec());
                answer_arp(buf);
                r
            })
        }
    }

    impl Device for Tap {
        type RxToken<'a> = <Loopback as Device>::RxToken<'a>;
        type TxToken<'a> = TapTx<'a>;
        fn receive(&mut self, t: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
            let sent = self.sent.clone();
            let (rx, tx) = self.lo.receive(t)?;
            Some((rx, TapTx { inner: tx, sent }))
        }
        fn transmit(&mut self, t: Instant) -> Option<Self::TxToken<'_>> {
            let sent = self.sent.clone();
            let inner = self.lo.transmit(t)?;
            Some(TapTx { inner, sent })
        }
        fn capabilities(&self) -> DeviceCapabilities {
            self.lo.capabilities()
        }
    }

    /// The MAC of the host that answers every ARP request on the [`Tap`].
    const PEER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];

    /// Turns an ARP request in `frame` into the reply of a host at [`PEER_MAC`].
    fn answer_arp(frame: &mut [u8]) {
        let Ok(eth) = EthernetFrame::new_checked(&frame[..]) else {
            return;
        };
        let Ok(arp) = ArpPacket::new_checked(eth.payload()) else {
            return;
        };
        let Ok(ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Request,
            source_hardware_addr,
            source_protocol_addr,
            target_protocol_addr,
            ..
        }) = ArpRepr::parse(&arp)
        else {
            return;
        };
        let reply = ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Reply,
            source_hardware_addr: EthernetAddress(PEER_MAC),
            source_protocol_addr: target_protocol_addr,
            target_hardware_addr: source_hardware_addr,
            target_protocol_addr: source_protocol_addr,
        };
        let mut eth = EthernetFrame::new_unchecked(frame);
        eth.set_dst_addr(source_hardware_addr);
        eth.set_src_addr(EthernetAddress(PEER_MAC));
        reply.emit(&mut ArpPacket::new_unchecked(eth.payload_mut()));
    }

    /// The SYN smoltcp sends for `connect` carries exactly the RFC 6528 number the stack chose:
    /// the model of smoltcp's generator above matches the smoltcp in use.
    #[test]
    fn the_syn_on_the_wire_carries_the_chosen_isn() {
        type Storage = StaticStorage<'static, 2, 1, 5>;
        type Buffers = StaticBuffers<2, 1, 2048, 1536>;
        let storage: &'static mut Storage = Box::leak(Box::new(Storage::new()));
        let buffers: &'static mut Buffers = Box::leak(Box::new(Buffers::new()));
        let sent = Rc::new(RefCell::new(Vec::new()));
        let tap = Tap {
            lo: Loopback::new(Medium::Ethernet),
            sent: sent.clone(),
        };
        let seed = Seed::reproducible(9);
        let config = StackConfig {
            mac: [2, 0, 0, 0, 0, 9],
            seed: seed.clone(),
        };
        let mut stack = Stack::new(tap, config, storage.parts(buffers), 0);
        let own = Ipv4Addr::new(10, 0, 0, 1);
        stack
            .set_static(Ipv4Config {
                address: own,
                netmask: Ipv4Addr::new(255, 255, 255, 0),
                gateway: Ipv4Addr::UNSPECIFIED,
                dns: Ipv4Addr::UNSPECIFIED,
            })
            .unwrap();
        let secrets = Secrets::new(&seed);
        let remote = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 9);
        let mut checked = 0;
        for round in 1..=20u64 {
            let now = round * 1_000_003;
            stack.poll(now);
            let id = stack.open(Transport::Tcp).unwrap();
            stack.connect(id, remote).unwrap();
            // (The first connection waits for ARP.)
            for later in 1..=5 {
                stack.poll(now + later);
            }
            let frames = core::mem::take(&mut *sent.borrow_mut());
            let syn = frames.iter().find_map(|f| {
                let eth = EthernetFrame::new_checked(&f[..]).ok()?;
                let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
                let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
                (tcp.syn() && !tcp.ack()).then(|| (tcp.src_port(), tcp.seq_number().0 as u32))
            });
            let (port, isn) = syn.expect("a SYN went out");
            let local = SocketAddrV4::new(own, port);
            assert_eq!(isn, secrets.isn(local, remote, now), "round {round}");
            stack.close(id);
            checked += 1;
        }
        assert_eq!(checked, 20);
    }

    #[test]
    fn the_chosen_seed_draws_the_value_after_the_interface_id() {
        let mut filler = 0x9e37_79b9_7f4a_7c15u64;
        for value in [0, 1, 0xffff_ffff, 0x8000_0000, 0x1234_5678] {
            for _ in 0..64 {
                filler = filler.rotate_left(7).wrapping_mul(3);
                let mut model = Model(seed_drawing(value, filler));
                assert_ne!(model.draw16(), 0, "Interface::new draws once");
                assert_eq!(model.draw32(), value);
            }
        }
    }
}

#[cfg(test)]
mod on_the_wire;
