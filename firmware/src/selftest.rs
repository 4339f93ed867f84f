//! Checks the firmware runs at boot that need no NIC: arithmetic and memory, the heap, the timer,
//! a smoltcp ICMP echo packet built and parsed back, and the whole network service (`netstack`,
//! the echo server) echoing TCP bytes to a client on the same stack over smoltcp's loopback.

use crate::echo::ECHO_PORT;
use crate::service::{Addressing, Echo, NetDevice, Service};
use alloc::vec::Vec;
use core::fmt;
use core::net::{Ipv4Addr, SocketAddrV4};
use netstack::api::{Ipv4Config, SocketStack, TcpPhase, Transport};
use netstack::{HeapStorage, Seed};
use smoltcp::phy::{ChecksumCapabilities, Device, DeviceCapabilities, Loopback, Medium};
use smoltcp::time::Instant;
use smoltcp::wire::{Icmpv4Packet, Icmpv4Repr};

/// The outcome of each check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Report {
    /// CRC-32 of the standard check string matches its published value.
    pub crc32: bool,
    /// Heap allocations hold and give back what was written.
    pub heap: bool,
    /// The timer advances.
    pub timer: bool,
    /// An ICMP echo request survives emit, checksum and parse.
    pub icmp: bool,
    /// The network service echoes TCP bytes over loopback.
    pub stack: bool,
}

impl Report {
    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.crc32 && self.heap && self.timer && self.icmp && self.stack
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let word = |ok: bool| if ok { "ok" } else { "FAILED" };
        write!(
            f,
            "crc32 {}, heap {}, timer {}, icmp {}, stack {} -> {}",
            word(self.crc32),
            word(self.heap),
            word(self.timer),
            word(self.icmp),
            word(self.stack),
            if self.passed() { "PASS" } else { "FAIL" }
        )
    }
}

/// Runs every check; `now` reads the timer.
pub fn run(now: impl FnMut() -> u64) -> Report {
    Report {
        crc32: crc32(b"123456789") == 0xCBF4_3926,
        heap: heap_holds(4096),
        timer: timer_advances(now, 1_000_000),
        icmp: icmp_round_trip(),
        stack: stack_echoes(),
    }
}

/// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), bit by bit.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

/// Allocates `words` words, fills them with a pattern, grows the vector and reads it all back.
pub fn heap_holds(words: usize) -> bool {
    let pattern = |i: usize| (i as u32).wrapping_mul(0x9E37_79B9);
    let mut v: Vec<u32> = Vec::with_capacity(words);
    v.extend((0..words).map(pattern));
    // Growing moves the data to a new block.
    v.reserve(words * 2);
    v.iter().enumerate().all(|(i, &w)| w == pattern(i))
}

/// Whether `now` moves forward within `max_reads` reads.
pub fn timer_advances(mut now: impl FnMut() -> u64, max_reads: u32) -> bool {
    let start = now();
    (0..max_reads).any(|_| now() > start)
}

/// Emits an ICMP echo request with smoltcp, then parses and checksums it back.
pub fn icmp_round_trip() -> bool {
    let payload = *b"k230 self-test";
    let repr = Icmpv4Repr::EchoRequest {
        ident: 0x4b32,
        seq_no: 7,
        data: &payload,
    };
    let caps = ChecksumCapabilities::default();
    let mut buf = [0u8; 64];
    let Some(bytes) = buf.get_mut(..repr.buffer_len()) else {
        return false;
    };
    repr.emit(&mut Icmpv4Packet::new_unchecked(&mut *bytes), &caps);
    let Ok(packet) = Icmpv4Packet::new_checked(&*bytes) else {
        return false;
    };
    packet.verify_checksum() && Icmpv4Repr::parse(&packet, &caps) == Ok(repr)
}

/// smoltcp's loopback as a NIC with permanent carrier.
struct LoopbackNic(Loopback);

impl Device for LoopbackNic {
    type RxToken<'a> = <Loopback as Device>::RxToken<'a>;
    type TxToken<'a> = <Loopback as Device>::TxToken<'a>;
    fn receive(&mut self, t: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        self.0.receive(t)
    }
    fn transmit(&mut self, t: Instant) -> Option<Self::TxToken<'_>> {
        self.0.transmit(t)
    }
    fn capabilities(&self) -> DeviceCapabilities {
        self.0.capabilities()
    }
}

impl NetDevice for LoopbackNic {
    fn mac(&self) -> [u8; 6] {
        [0x02, 0x4b, 0x32, 0x33, 0x30, 0x01]
    }
    fn carrier(&self) -> bool {
        true
    }
    fn counters(&self) -> [u64; 4] {
        [0; 4]
    }
}

/// Console lines of the service during the self-test go nowhere.
struct Discard;

impl fmt::Write for Discard {
    fn write_str(&mut self, _: &str) -> fmt::Result {
        Ok(())
    }
}

/// Runs the network service on 127.0.0.1 over loopback and has a TCP client on the same stack
/// send 3000 bytes to the echo port; true when they all come back unchanged. Time is simulated
/// (1 ms per round, at most 2000 rounds).
pub fn stack_echoes() -> bool {
    let storage = HeapStorage {
        tcp_sockets: 2,
        tcp_buffer: 4096,
        udp_sockets: 1,
        udp_buffer: 512,
    };
    let config = Ipv4Config {
        address: Ipv4Addr::LOCALHOST,
        netmask: Ipv4Addr::new(255, 0, 0, 0),
        gateway: Ipv4Addr::UNSPECIFIED,
        dns: Ipv4Addr::UNSPECIFIED,
    };
    let nic = LoopbackNic(Loopback::new(Medium::Ethernet));
    // A closed loopback: nothing here is seen off the board, so a fixed seed and the echo
    // server do no harm.
    let seed = Seed::reproducible(1);
    let addressing = Addressing::Static(config);
    let Ok(mut service) = Service::start(nic, storage.parts(), addressing, seed, Echo::Tcp, 0)
    else {
        return false;
    };
    let Ok(client) = service.stack_mut().open(Transport::Tcp) else {
        return false;
    };
    let echo = SocketAddrV4::new(Ipv4Addr::LOCALHOST, ECHO_PORT);
    if service.stack_mut().connect(client, echo).is_err() {
        return false;
    }
    let payload: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    let (mut sent, mut back) = (0, Vec::with_capacity(payload.len()));
    for round in 1..=2000u64 {
        if service.step(round * 1000, &mut Discard).is_err() {
            return false;
        }
        let stack = service.stack_mut();
        if stack.tcp_phase(client) != Ok(TcpPhase::Connected) {
            continue;
        }
        if let Ok(n) = stack.send(client, &payload[sent..]) {
            sent += n;
        }
        let mut buf = [0u8; 512];
        while let Ok(n @ 1..) = stack.recv(client, &mut buf) {
            back.extend_from_slice(&buf[..n]);
        }
        if back.len() >= payload.len() {
            break;
        }
    }
    back == payload
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_published_check_values() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(b"a"), 0xE8B7_BE43);
    }

    #[test]
    fn every_check_passes_on_the_host() {
        let mut t = 0u64;
        let report = run(|| {
            t += 1;
            t
        });
        assert!(report.passed(), "{report}");
        assert_eq!(
            report.to_string(),
            "crc32 ok, heap ok, timer ok, icmp ok, stack ok -> PASS"
        );
    }

    #[test]
    fn a_stopped_timer_fails_within_the_read_bound() {
        assert!(!timer_advances(|| 5, 1000));
        let report = run(|| 42);
        assert!(!report.passed());
        assert!(report
            .to_string()
            .ends_with("timer FAILED, icmp ok, stack ok -> FAIL"));
    }

    #[test]
    fn icmp_round_trip_detects_a_flipped_bit() {
        // The same steps as icmp_round_trip, with a corruption in between.
        let repr = Icmpv4Repr::EchoRequest {
            ident: 1,
            seq_no: 2,
            data: b"xyz",
        };
        let caps = ChecksumCapabilities::default();
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..]), &caps);
        buf[9] ^= 0x01;
        let packet = Icmpv4Packet::new_checked(&buf[..]).unwrap();
        assert!(!packet.verify_checksum());
        assert!(icmp_round_trip());
    }
}
