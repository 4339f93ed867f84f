//! On the wire: every sequence number and transaction id the stack sends is the value it chose
//! from its secret, and none is an output of its interface's own generator (which a listener's
//! SYN-ACKs or the DHCP client's broadcasts would otherwise reveal). The test plays the other
//! hosts of the link frame by frame, with smoltcp's `wire` types.

use core::cell::RefCell;
use core::net::{Ipv4Addr, SocketAddrV4};
use std::collections::{HashSet, VecDeque};
use std::rc::Rc;

use smoltcp::phy::{ChecksumCapabilities, Device, DeviceCapabilities, Medium, RxToken, TxToken};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, DhcpMessageType, DhcpPacket, DhcpRepr, EthernetAddress,
    EthernetFrame, EthernetProtocol, EthernetRepr, IpAddress, IpProtocol, Ipv4Packet, Ipv4Repr,
    TcpControl, TcpPacket, TcpRepr, TcpSeqNumber, UdpPacket, UdpRepr, DHCP_CLIENT_PORT,
    DHCP_SERVER_PORT,
};

use super::tests::Model;
use crate::api::{Ipv4Config, Micros, SocketStack, Transport};
use crate::entropy::{Secrets, Seed};
use crate::{InterfaceControl, Stack, StackConfig, StaticBuffers, StaticStorage};

const BOARD_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const BOARD_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
/// The host that connects to the board.
const CLIENT: (Ipv4Addr, [u8; 6]) = (Ipv4Addr::new(10, 0, 0, 2), [2, 0, 0, 0, 0, 2]);
/// The DHCP server.
const SERVER: (Ipv4Addr, [u8; 6]) = (Ipv4Addr::new(10, 0, 0, 3), [2, 0, 0, 0, 0, 3]);
const LISTEN_PORT: u16 = 80;

/// The link as the test sees it: the frames it put in reach of the board, and every frame the
/// board sent. ARP requests for [`CLIENT`] and [`SERVER`] are answered at once (and counted).
#[derive(Default)]
struct Link {
    inbox: VecDeque<Vec<u8>>,
    sent: Vec<Vec<u8>>,
    arp_answered: usize,
}

/// The board's NIC on the [`Link`].
struct Nic(Rc<RefCell<Link>>);

struct Rx(Vec<u8>);

impl RxToken for Rx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

struct Tx(Rc<RefCell<Link>>);

impl TxToken for Tx {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = vec![0; len];
        let r = f(&mut frame);
        let mut link = self.0.borrow_mut();
        if let Some(reply) = answer_arp(&frame) {
            link.inbox.push_back(reply);
            link.arp_answered += 1;
        }
        link.sent.push(frame);
        r
    }
}

impl Device for Nic {
    type RxToken<'a> = Rx;
    type TxToken<'a> = Tx;

    fn receive(&mut self, _: Instant) -> Option<(Rx, Tx)> {
        let frame = self.0.borrow_mut().inbox.pop_front()?;
        Some((Rx(frame), Tx(self.0.clone())))
    }

    fn transmit(&mut self, _: Instant) -> Option<Tx> {
        Some(Tx(self.0.clone()))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = 1514;
        caps
    }
}

/// An Ethernet frame from `src` to `dst` of `len` payload bytes written by `fill`.
fn ethernet(
    (src, dst): ([u8; 6], [u8; 6]),
    ethertype: EthernetProtocol,
    len: usize,
    fill: impl FnOnce(&mut [u8]),
) -> Vec<u8> {
    let eth = EthernetRepr {
        src_addr: EthernetAddress(src),
        dst_addr: EthernetAddress(dst),
        ethertype,
    };
    let mut frame = vec![0; eth.buffer_len() + len];
    let mut view = EthernetFrame::new_unchecked(&mut frame[..]);
    eth.emit(&mut view);
    fill(view.payload_mut());
    frame
}

/// An IPv4 packet `ip` from the host at `src` to the MAC `dst`, its payload written by `fill`
/// (given the checksum rules).
fn ipv4(
    (src, dst): ((Ipv4Addr, [u8; 6]), [u8; 6]),
    next_header: IpProtocol,
    (to, len): (Ipv4Addr, usize),
    fill: impl FnOnce(&mut [u8], &ChecksumCapabilities),
) -> Vec<u8> {
    let ip = Ipv4Repr {
        src_addr: src.0,
        dst_addr: to,
        next_header,
        payload_len: len,
        hop_limit: 64,
    };
    let checksums = ChecksumCapabilities::default();
    ethernet(
        (src.1, dst),
        EthernetProtocol::Ipv4,
        ip.buffer_len() + len,
        |p| {
            let mut packet = Ipv4Packet::new_unchecked(p);
            ip.emit(&mut packet, &checksums);
            fill(packet.payload_mut(), &checksums);
        },
    )
}

/// The reply of [`CLIENT`] or [`SERVER`] to an ARP request for it in `frame`.
fn answer_arp(frame: &[u8]) -> Option<Vec<u8>> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    let arp = ArpRepr::parse(&ArpPacket::new_checked(eth.payload()).ok()?).ok()?;
    let ArpRepr::EthernetIpv4 {
        operation: ArpOperation::Request,
        source_hardware_addr,
        source_protocol_addr,
        target_protocol_addr,
        ..
    } = arp
    else {
        return None;
    };
    let (ip, mac) = [CLIENT, SERVER]
        .into_iter()
        .find(|(ip, _)| *ip == target_protocol_addr)?;
    let reply = ArpRepr::EthernetIpv4 {
        operation: ArpOperation::Reply,
        source_hardware_addr: EthernetAddress(mac),
        source_protocol_addr: ip,
        target_hardware_addr: source_hardware_addr,
        target_protocol_addr: source_protocol_addr,
    };
    Some(ethernet(
        (mac, source_hardware_addr.0),
        EthernetProtocol::Arp,
        reply.buffer_len(),
        |p| reply.emit(&mut ArpPacket::new_unchecked(p)),
    ))
}

/// A TCP segment from [`CLIENT`]'s `port` to the board's listening port.
fn segment(port: u16, control: TcpControl, seq: u32) -> Vec<u8> {
    let tcp = TcpRepr {
        src_port: port,
        dst_port: LISTEN_PORT,
        control,
        seq_number: TcpSeqNumber(seq as i32),
        ack_number: None,
        window_len: 64_000,
        window_scale: None,
        max_seg_size: Some(1460),
        sack_permitted: false,
        sack_ranges: [None, None, None],
        timestamp: None,
        payload: &[],
    };
    ipv4(
        (CLIENT, BOARD_MAC),
        IpProtocol::Tcp,
        (BOARD_IP, tcp.buffer_len()),
        |p, checksums| {
            tcp.emit(
                &mut TcpPacket::new_unchecked(p),
                &IpAddress::Ipv4(CLIENT.0),
                &IpAddress::Ipv4(BOARD_IP),
                checksums,
            );
        },
    )
}

/// A DHCP message from [`SERVER`] to the board answering transaction `xid` with `kind`.
fn from_server(kind: DhcpMessageType, xid: u32) -> Vec<u8> {
    let dhcp = DhcpRepr {
        message_type: kind,
        transaction_id: xid,
        secs: 0,
        client_hardware_address: EthernetAddress(BOARD_MAC),
        client_ip: Ipv4Addr::UNSPECIFIED,
        your_ip: BOARD_IP,
        server_ip: SERVER.0,
        router: Some(SERVER.0),
        subnet_mask: Some(Ipv4Addr::new(255, 255, 255, 0)),
        relay_agent_ip: Ipv4Addr::UNSPECIFIED,
        broadcast: false,
        requested_ip: None,
        client_identifier: None,
        server_identifier: Some(SERVER.0),
        parameter_request_list: None,
        dns_servers: None,
        max_size: None,
        lease_duration: Some(3600),
        renew_duration: None,
        rebind_duration: None,
        additional_options: &[],
    };
    let udp = UdpRepr {
        src_port: DHCP_SERVER_PORT,
        dst_port: DHCP_CLIENT_PORT,
    };
    ipv4(
        (SERVER, [0xff; 6]),
        IpProtocol::Udp,
        (Ipv4Addr::BROADCAST, udp.header_len() + dhcp.buffer_len()),
        |p, checksums| {
            udp.emit(
                &mut UdpPacket::new_unchecked(p),
                &IpAddress::Ipv4(SERVER.0),
                &IpAddress::Ipv4(Ipv4Addr::BROADCAST),
                dhcp.buffer_len(),
                |p| {
                    dhcp.emit(&mut DhcpPacket::new_unchecked(p))
                        .expect("room for the message");
                },
                checksums,
            );
        },
    )
}

/// A SYN-ACK the board sent to `port`: its sequence number.
fn syn_ack(frame: &[u8], port: u16) -> Option<u32> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
    let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
    (tcp.syn() && tcp.ack() && tcp.dst_port() == port).then(|| tcp.seq_number().0 as u32)
}

/// A DHCP message the board sent: destination MAC and IP, type, transaction id.
struct Sent {
    mac: [u8; 6],
    ip: Ipv4Addr,
    kind: DhcpMessageType,
    xid: u32,
}

fn dhcp_sent(frame: &[u8]) -> Option<Sent> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
    let udp = UdpPacket::new_checked(ip.payload()).ok()?;
    if udp.dst_port() != DHCP_SERVER_PORT {
        return None;
    }
    let packet = DhcpPacket::new_checked(udp.payload()).ok()?;
    let dhcp = DhcpRepr::parse(&packet).ok()?;
    Some(Sent {
        mac: eth.dst_addr().0,
        ip: ip.dst_addr(),
        kind: dhcp.message_type,
        xid: dhcp.transaction_id,
    })
}

type Board = Stack<'static, Nic>;

/// A board seeded with `seed` on a fresh [`Link`].
fn board(seed: &Seed) -> (Board, Rc<RefCell<Link>>) {
    type Storage = StaticStorage<'static, 4, 1, 7>;
    type Buffers = StaticBuffers<4, 1, 2048, 1536>;
    let storage: &'static mut Storage = Box::leak(Box::new(Storage::new()));
    let buffers: &'static mut Buffers = Box::leak(Box::new(Buffers::new()));
    let link = Rc::new(RefCell::new(Link::default()));
    let config = StackConfig {
        mac: BOARD_MAC,
        seed: seed.clone(),
    };
    let stack = Stack::new(Nic(link.clone()), config, storage.parts(buffers), 0);
    (stack, link)
}

/// The first `n` 32-bit draws of the generator of the board's own interface (`Stack::new`
/// seeds it with the secret generator's first output).
fn interface_draws(seed: &Seed, n: usize) -> HashSet<u32> {
    let mut model = Model(Secrets::new(seed).next_u64());
    (0..n).map(|_| model.draw32()).collect()
}

/// The value a throwaway interface seeded with `seed` draws first for a socket.
fn first_socket_draw(seed: u64) -> u32 {
    let mut model = Model(seed);
    while model.draw16() == 0 {}
    model.draw32()
}

#[test]
fn a_listeners_syn_acks_carry_rfc6528_isns_not_the_interface_generators_numbers() {
    let seed = Seed::reproducible(11);
    let secrets = Secrets::new(&seed);
    let (mut stack, link) = board(&seed);
    stack
        .set_static(Ipv4Config {
            address: BOARD_IP,
            netmask: Ipv4Addr::new(255, 255, 255, 0),
            gateway: Ipv4Addr::UNSPECIFIED,
            dns: Ipv4Addr::UNSPECIFIED,
        })
        .unwrap();
    let listener = stack.open(Transport::Tcp).unwrap();
    stack
        .bind(
            listener,
            SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, LISTEN_PORT),
        )
        .unwrap();
    stack.listen(listener, 2).unwrap();
    let mut isns = Vec::new();
    for round in 0..200u16 {
        let now: Micros = 1_000_000 + u64::from(round) * 40_037;
        let port = 40_000 + round;
        link.borrow_mut()
            .inbox
            .push_back(segment(port, TcpControl::Syn, 7));
        // The first SYN-ACK waits for the client's ARP reply.
        for later in 0..3 {
            stack.poll(now + later);
        }
        let sent = core::mem::take(&mut link.borrow_mut().sent);
        let isn = sent
            .iter()
            .find_map(|f| syn_ack(f, port))
            .unwrap_or_else(|| panic!("round {round}: no SYN-ACK"));
        let local = SocketAddrV4::new(BOARD_IP, LISTEN_PORT);
        let remote = SocketAddrV4::new(CLIENT.0, port);
        assert_eq!(isn, secrets.isn(local, remote, now), "round {round}");
        isns.push(isn);
        // The client gives up: the socket listens again.
        link.borrow_mut()
            .inbox
            .push_back(segment(port, TcpControl::Rst, 8));
        stack.poll(now + 10);
    }
    let draws = interface_draws(&seed, 100_000);
    assert!(isns.iter().all(|isn| !draws.contains(isn)));
    // The check can fail: the interface's generator is what smoltcp alone would use.
    let mut model = Model(Secrets::new(&seed).next_u64());
    while model.draw16() == 0 {}
    assert!(draws.contains(&model.draw32()));
}

/// Polls the board every 100 ms from `from` until `to`, answering the DHCP client with
/// `answer` (what to send back to a message it sent, if anything); every DHCP message sent.
fn run_dhcp(
    stack: &mut Board,
    link: &Rc<RefCell<Link>>,
    (from, to): (Micros, Micros),
    answer: impl Fn(&Sent) -> Option<Vec<u8>>,
) -> Vec<Sent> {
    let mut seen = Vec::new();
    let mut now = from;
    while now < to {
        stack.poll(now);
        let sent = core::mem::take(&mut link.borrow_mut().sent);
        for message in sent.iter().filter_map(|f| dhcp_sent(f)) {
            if let Some(reply) = answer(&message) {
                link.borrow_mut().inbox.push_back(reply);
            }
            seen.push(message);
        }
        stack.poll(now + 1);
        now += 100_000;
    }
    seen
}

#[test]
fn each_discover_draws_its_transaction_id_from_a_fresh_secret_seed() {
    let seed = Seed::reproducible(12);
    let (mut stack, link) = board(&seed);
    stack.start_dhcp();
    // No server: a DISCOVER every 2 s, each with a new transaction id.
    let sent = run_dhcp(&mut stack, &link, (0, 40_000_000), |_| None);
    let xids: Vec<u32> = sent.iter().map(|m| m.xid).collect();
    assert!(sent.iter().all(|m| m.kind == DhcpMessageType::Discover));
    assert!(xids.len() >= 15, "{} DISCOVERs", xids.len());
    // Each is the first draw of a throwaway interface seeded from the secret generator (whose
    // first output seeded the stack's interface).
    let mut secrets = Secrets::new(&seed);
    secrets.next_u64();
    for (i, xid) in xids.iter().enumerate() {
        assert_eq!(*xid, first_socket_draw(secrets.next_u64()), "DISCOVER {i}");
    }
    let draws = interface_draws(&seed, 100_000);
    assert!(xids.iter().all(|x| !draws.contains(x)));
}

#[test]
fn the_renewal_goes_unicast_to_the_server_with_a_fresh_transaction_id() {
    let seed = Seed::reproducible(13);
    let (mut stack, link) = board(&seed);
    // Renewal after 10 s.
    stack.set_dhcp_lease_cap(Some(Duration::from_secs(20)));
    stack.start_dhcp();
    let serve = |m: &Sent| match m.kind {
        DhcpMessageType::Discover => Some(from_server(DhcpMessageType::Offer, m.xid)),
        DhcpMessageType::Request => Some(from_server(DhcpMessageType::Ack, m.xid)),
        _ => None,
    };
    let sent = run_dhcp(&mut stack, &link, (0, 2_000_000), serve);
    assert_eq!(stack.config().map(|c| c.address), Some(BOARD_IP));
    assert_eq!(sent.len(), 2, "DISCOVER and REQUEST");
    let asked = link.borrow().arp_answered;
    let renewals = run_dhcp(&mut stack, &link, (2_000_000, 12_000_000), serve);
    let renewal = renewals.first().expect("a renewal by 12 s");
    assert_eq!(renewal.kind, DhcpMessageType::Request);
    assert_eq!((renewal.ip, renewal.mac), SERVER, "unicast to the server");
    // One ARP exchange found the server for the renewal.
    assert_eq!(link.borrow().arp_answered - asked, 1);
    assert_eq!(stack.config().map(|c| c.address), Some(BOARD_IP));
    let draws = interface_draws(&seed, 100_000);
    for xid in sent.iter().chain(&renewals).map(|m| m.xid) {
        assert!(!draws.contains(&xid));
    }
    assert_ne!(renewal.xid, sent[0].xid);
}
