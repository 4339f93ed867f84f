//! What the soak's board and Linux sides say to each other: ports, the transfer header, the
//! datagram layout and the seekable pseudo-random bytes every payload is made of, so that the
//! receiving side checks each byte as it arrives (a prefix of what was sent, or a failure).

use std::net::{Ipv4Addr, SocketAddrV4};

use crate::sim::{BOARD_IP, PEER_IP};

/// Linux's sink of board→Linux bulk transfers.
pub const SINK_PORT: u16 = 7001;
/// Linux's source of Linux→board bulk transfers.
pub const SOURCE_PORT: u16 = 7002;
/// Linux's echo server for the board's short connections.
pub const ECHO_PORT: u16 = 7003;
/// The board's echo listener for Linux's short connections.
pub const BOARD_ECHO_PORT: u16 = 8003;
/// The board's UDP port, where Linux's flood goes.
pub const BOARD_UDP_PORT: u16 = 9001;
/// Linux's UDP port, where the board's flood goes.
pub const PEER_UDP_PORT: u16 = 9002;
/// Bytes of one short connection's message (each way).
pub const CHURN_MESSAGE: usize = 64;
/// Bytes of a flood datagram (the largest that fits an Ethernet frame: 1500 − 20 − 8).
pub const DATAGRAM: usize = 1472;
/// The wire's rate: the RTL8152 is a 100 Mbit/s NIC.
pub const LINE_RATE_BITS: u64 = 100_000_000;

/// `PEER_IP:port`.
pub fn peer(port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(PEER_IP, port)
}

/// `BOARD_IP:port`.
pub fn board(port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(BOARD_IP, port)
}

/// `0.0.0.0:port`.
pub fn any(port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port)
}

/// Flood datagrams per second that fill the line: each frame takes its bytes on the wire plus
/// Ethernet's 14-byte header, 4-byte CRC, 8-byte preamble and 12-byte gap.
pub fn line_rate_datagrams() -> u64 {
    let wire_bytes = (DATAGRAM + 28 + 14 + 4 + 8 + 12) as u64;
    LINE_RATE_BITS / (8 * wire_bytes)
}

/// A seekable stream of pseudo-random bytes: byte `i` of stream `seed` is byte `i % 8` of
/// SplitMix64's output for word `i / 8`, so either side can produce or check any part of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pattern(pub u64);

impl Pattern {
    fn word(self, index: u64) -> [u8; 8] {
        // SplitMix64's finaliser (Steele, Lea, Flood: "Fast splittable pseudorandom number
        // generators", 2014) over the seed plus the golden-ratio increment per word.
        let mut z = self
            .0
            .wrapping_add(index.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)).to_le_bytes()
    }

    /// Fills `buf` with the stream's bytes from `offset` on.
    pub fn fill(self, offset: u64, buf: &mut [u8]) {
        for (i, byte) in buf.iter_mut().enumerate() {
            let at = offset + i as u64;
            *byte = self.word(at / 8)[(at % 8) as usize];
        }
    }

    /// The index in `buf` of the first byte that differs from the stream from `offset` on.
    pub fn mismatch(self, offset: u64, buf: &[u8]) -> Option<usize> {
        buf.iter().enumerate().position(|(i, byte)| {
            let at = offset + i as u64;
            *byte != self.word(at / 8)[(at % 8) as usize]
        })
    }
}

/// The first bytes of a bulk transfer's connection, from the board: which attempt, which
/// stream, how long. Board→Linux the board's data follows; Linux→board Linux answers with the
/// data. The receiver of the data acknowledges the whole transfer with its length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// The attempt's id (unique per run; a cut transfer restarts under a new id).
    pub id: u64,
    /// The data's [`Pattern`].
    pub seed: u64,
    /// Bytes of data.
    pub len: u64,
}

impl Header {
    /// Bytes on the wire.
    pub const LEN: usize = 24;

    /// The header's bytes.
    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut out = [0; Self::LEN];
        out[..8].copy_from_slice(&self.id.to_le_bytes());
        out[8..16].copy_from_slice(&self.seed.to_le_bytes());
        out[16..].copy_from_slice(&self.len.to_le_bytes());
        out
    }

    /// The header in `bytes`.
    pub fn decode(bytes: &[u8; Self::LEN]) -> Self {
        let word = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().unwrap_or([0; 8]));
        Self {
            id: word(0),
            seed: word(8),
            len: word(16),
        }
    }
}

/// A flood datagram: its sequence number, then [`DATAGRAM`]` − 8` bytes of the flood's pattern
/// at `seq × DATAGRAM`.
pub fn datagram(pattern: Pattern, seq: u64, buf: &mut [u8; DATAGRAM]) {
    buf[..8].copy_from_slice(&seq.to_le_bytes());
    pattern.fill(seq * DATAGRAM as u64, &mut buf[8..]);
}

/// The sequence number of a flood datagram if it is whole and byte-exact.
pub fn check_datagram(pattern: Pattern, data: &[u8]) -> Option<u64> {
    let seq = u64::from_le_bytes(data.get(..8)?.try_into().ok()?);
    let exact = data.len() == DATAGRAM
        && pattern
            .mismatch(seq * DATAGRAM as u64, &data[8..])
            .is_none();
    exact.then_some(seq)
}

/// Which sequence numbers arrived, to find duplicates.
#[derive(Debug, Default)]
pub struct Seen(Vec<u64>);

impl Seen {
    /// Records `seq`; false if it was seen before.
    pub fn insert(&mut self, seq: u64) -> bool {
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        if word >= self.0.len() {
            self.0.resize(word + 1, 0);
        }
        let fresh = self.0[word] & (1 << bit) == 0;
        self.0[word] |= 1 << bit;
        fresh
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_part_of_a_pattern_is_the_same_however_it_is_cut() {
        let p = Pattern(42);
        let mut whole = [0u8; 100];
        p.fill(0, &mut whole);
        let mut part = [0u8; 37];
        p.fill(13, &mut part);
        assert_eq!(part, whole[13..50]);
        assert_eq!(p.mismatch(13, &part), None);
        part[5] ^= 1;
        assert_eq!(p.mismatch(13, &part), Some(5));
        assert_ne!(whole[..8], {
            let mut other = [0u8; 8];
            Pattern(43).fill(0, &mut other);
            other
        });
    }

    #[test]
    fn headers_and_datagrams_round_trip_and_damage_is_seen() {
        let h = Header {
            id: 7,
            seed: u64::MAX,
            len: 1 << 40,
        };
        assert_eq!(Header::decode(&h.encode()), h);
        let mut d = [0u8; DATAGRAM];
        datagram(Pattern(9), 1234, &mut d);
        assert_eq!(check_datagram(Pattern(9), &d), Some(1234));
        assert_eq!(check_datagram(Pattern(9), &d[..100]), None);
        d[DATAGRAM - 1] ^= 0x80;
        assert_eq!(check_datagram(Pattern(9), &d), None);
        let mut seen = Seen::default();
        assert!(seen.insert(1000) && seen.insert(3) && !seen.insert(1000));
    }

    #[test]
    fn the_line_carries_about_8100_full_datagrams_a_second() {
        assert_eq!(line_rate_datagrams(), 8_127);
    }
}
