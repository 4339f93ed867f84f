//! Checks the firmware runs at boot that need no NIC: arithmetic and memory, the timer, and a
//! smoltcp ICMP echo packet built and parsed back. (The stack itself is exercised end to end by
//! MicroPython scripts over the loopback interface; see `tests/tests/firmware_qemu.rs`.)

use core::fmt;
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{Icmpv4Packet, Icmpv4Repr};

/// The outcome of each check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Report {
    /// CRC-32 of the standard check string matches its published value.
    pub crc32: bool,
    /// The timer advances.
    pub timer: bool,
    /// An ICMP echo request survives emit, checksum and parse.
    pub icmp: bool,
}

impl Report {
    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.crc32 && self.timer && self.icmp
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let word = |ok: bool| if ok { "ok" } else { "FAILED" };
        write!(
            f,
            "crc32 {}, timer {}, icmp {} -> {}",
            word(self.crc32),
            word(self.timer),
            word(self.icmp),
            if self.passed() { "PASS" } else { "FAIL" }
        )
    }
}

/// Runs every check; `now` reads the timer.
pub fn run(now: impl FnMut() -> u64) -> Report {
    Report {
        crc32: crc32(b"123456789") == 0xCBF4_3926,
        timer: timer_advances(now, 1_000_000),
        icmp: icmp_round_trip(),
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
        assert_eq!(report.to_string(), "crc32 ok, timer ok, icmp ok -> PASS");
    }

    #[test]
    fn a_stopped_timer_fails_within_the_read_bound() {
        assert!(!timer_advances(|| 5, 1000));
        let report = run(|| 42);
        assert!(!report.passed());
        assert!(report
            .to_string()
            .ends_with("timer FAILED, icmp ok -> FAIL"));
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
