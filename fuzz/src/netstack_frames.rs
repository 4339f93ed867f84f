//! Whole Ethernet frames into the netstack: a `Stack` over a device that delivers the fuzz
//! input as received frames, with a TCP listener, a connecting TCP client and a bound UDP
//! socket open (and the DHCP client running when the first input byte says so).
//!
//! Input: one flag byte (bit 0: DHCP instead of a static address), then records of
//! `[advance_ms: u8][length: u16 LE][frame]` (a record longer than the rest takes the rest).
//!
//! Invariants: no panic; every frame is taken from the device (none stuck, however malformed);
//! the socket API keeps answering with results or `NetError`s afterwards. Frames the harness
//! cannot parse itself (Ethernet header, then IPv4 header and checksum, or ARP) are counted and
//! must be dropped silently: fed at an instant when nothing else is due, such a frame is taken
//! and nothing is sent.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddrV4};

use netstack::api::{Ipv4Config, Micros, SocketId, SocketStack, Transport};
use netstack::{HeapStorage, InterfaceControl, Seed, Stack, StackConfig};
use smoltcp::phy::{Device, DeviceCapabilities, Medium, RxToken, TxToken};
use smoltcp::time::Instant;
use smoltcp::wire::{ArpPacket, EthernetFrame, EthernetProtocol, Ipv4Packet};

/// The stack's MAC and address (the seeds' frames are addressed to them).
pub const MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
/// The stack's IPv4 address.
pub const IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
/// The peer the TCP client connects to.
pub const PEER: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 4000);
/// The TCP listener's port.
pub const TCP_PORT: u16 = 80;
/// The UDP socket's port.
pub const UDP_PORT: u16 = 5000;
/// Frames one input may carry.
const MAX_FRAMES: usize = 256;

/// A device that receives the queued frames and counts what the stack sends.
#[derive(Default)]
pub struct Feed {
    rx: VecDeque<Vec<u8>>,
    /// Frames the stack transmitted.
    pub sent: usize,
    /// Where the stack writes a frame it sends (kept, so that a send allocates nothing).
    tx: Vec<u8>,
}

/// A queued frame handed to the stack.
pub struct Rx(Vec<u8>);

impl RxToken for Rx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

/// Room for one frame the stack sends (counted, then dropped).
pub struct Tx<'a> {
    sent: &'a mut usize,
    frame: &'a mut Vec<u8>,
}

impl TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        *self.sent += 1;
        self.frame.resize(len, 0);
        f(&mut self.frame[..len])
    }
}

impl Feed {
    fn tx(&mut self) -> Tx<'_> {
        Tx {
            sent: &mut self.sent,
            frame: &mut self.tx,
        }
    }
}

impl Device for Feed {
    type RxToken<'a> = Rx;
    type TxToken<'a> = Tx<'a>;

    fn receive(&mut self, _timestamp: Instant) -> Option<(Rx, Tx<'_>)> {
        let frame = self.rx.pop_front()?;
        Some((Rx(frame), self.tx()))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<Tx<'_>> {
        Some(self.tx())
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = 1514;
        caps
    }
}

/// Whether the harness can parse `frame`: an Ethernet header, then a checksummed IPv4 header or
/// an ARP packet for those ethertypes.
pub fn parses(frame: &[u8]) -> bool {
    let Ok(eth) = EthernetFrame::new_checked(frame) else {
        return false;
    };
    match eth.ethertype() {
        EthernetProtocol::Ipv4 => {
            Ipv4Packet::new_checked(eth.payload()).is_ok_and(|ip| ip.verify_checksum())
        }
        EthernetProtocol::Arp => ArpPacket::new_checked(eth.payload()).is_ok(),
        _ => true,
    }
}

/// Splits the records of an input (after the flag byte) into `(advance_ms, frame)`.
pub fn records(mut rest: &[u8]) -> Vec<(u8, &[u8])> {
    let mut out = Vec::new();
    while rest.len() >= 3 && out.len() < MAX_FRAMES {
        let advance = rest[0];
        let len = usize::from(u16::from_le_bytes([rest[1], rest[2]]));
        let end = (3 + len).min(rest.len());
        out.push((advance, &rest[3..end]));
        rest = &rest[end..];
    }
    out
}

struct Open {
    listener: SocketId,
    client: SocketId,
    udp: SocketId,
}

fn open(stack: &mut Stack<'static, Feed>) -> Open {
    let listener = stack.open(Transport::Tcp).expect("a free TCP socket");
    stack
        .bind(listener, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, TCP_PORT))
        .expect("port free");
    stack.listen(listener, 2).expect("listen");
    let client = stack.open(Transport::Tcp).expect("a free TCP socket");
    // Without an address (DHCP) the connect fails; the socket stays open either way.
    let _ = stack.connect(client, PEER);
    let udp = stack.open(Transport::Udp).expect("a free UDP socket");
    stack
        .bind(udp, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, UDP_PORT))
        .expect("port free");
    Open {
        listener,
        client,
        udp,
    }
}

/// Feeds the frames `data` decodes to into a stack and uses its sockets afterwards.
pub fn run(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let storage = HeapStorage {
        tcp_sockets: 4,
        tcp_buffer: 4096,
        udp_sockets: 2,
        udp_buffer: 2048,
    };
    let config = StackConfig {
        mac: MAC,
        seed: Seed::reproducible(0x5eed),
    };
    let mut stack = Stack::new(Feed::default(), config, storage.parts(), 0);
    if flags & 1 != 0 {
        stack.start_dhcp();
    } else {
        let config = Ipv4Config {
            address: IP,
            netmask: Ipv4Addr::new(255, 255, 255, 0),
            gateway: Ipv4Addr::new(10, 0, 0, 254),
            dns: Ipv4Addr::UNSPECIFIED,
        };
        stack.set_static(config).expect("valid configuration");
    }
    let sockets = open(&mut stack);
    let mut now: Micros = 1_000;
    stack.poll(now);

    let records = records(rest);
    let mut unparsable = 0;
    for (advance, frame) in &records {
        if parses(frame) {
            stack.device_mut().rx.push_back(frame.to_vec());
            now += u64::from(*advance) * 1_000 + 1;
            stack.poll(now);
            use_sockets(&mut stack, &sockets);
        } else {
            // With nothing else due at this instant, the frame must be taken and dropped
            // without a word in reply.
            settle(&mut stack, now);
            let sent = stack.device().sent;
            stack.device_mut().rx.push_back(frame.to_vec());
            stack.poll(now);
            assert!(stack.device().rx.is_empty(), "unparsable frame not taken");
            assert_eq!(
                stack.device().sent,
                sent,
                "an unparsable frame was answered"
            );
            unparsable += 1;
        }
    }
    for _ in 0..(MAX_FRAMES / 64 + 2) {
        if stack.device().rx.is_empty() {
            break;
        }
        now += 1_000;
        stack.poll(now);
    }
    assert!(
        stack.device().rx.is_empty(),
        "{} of {} frames ({unparsable} unparsable) never taken",
        stack.device().rx.len(),
        records.len()
    );
    for id in [sockets.listener, sockets.client, sockets.udp] {
        stack.close(id);
    }
    stack.poll(now + 1_000);
}

/// Polls at `now` until a poll does nothing (everything due at this instant is sent).
fn settle(stack: &mut Stack<'static, Feed>, now: Micros) {
    for _ in 0..16 {
        if !stack.poll(now).progressed {
            return;
        }
    }
    panic!("the stack keeps working at one instant without input");
}

/// What an application would do after each frame: accept and echo, read the client, echo UDP.
fn use_sockets(stack: &mut Stack<'static, Feed>, s: &Open) {
    let mut buf = [0u8; 1600];
    if let Ok((conn, _peer)) = stack.accept(s.listener) {
        if let Ok(n) = stack.recv(conn, &mut buf) {
            assert!(n <= buf.len());
            let _ = stack.send(conn, &buf[..n]);
        }
        let _ = stack.readiness(conn);
        stack.close(conn);
    }
    let _ = stack.tcp_phase(s.client);
    if let Ok(n) = stack.recv(s.client, &mut buf) {
        assert!(n <= buf.len());
    }
    let _ = stack.send(s.client, b"hello");
    for _ in 0..4 {
        match stack.recv_from(s.udp, &mut buf) {
            Ok((n, from)) => {
                assert!(n <= buf.len());
                let _ = stack.send_to(s.udp, &buf[..n], Some(from));
            }
            Err(_) => break,
        }
    }
    for id in [s.listener, s.client, s.udp] {
        let _ = stack.readiness(id);
    }
}
