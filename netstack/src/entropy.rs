//! The stack's secrets and the unpredictable values drawn from them: TCP initial sequence
//! numbers (RFC 6528), ephemeral ports (RFC 6056), the seeds of smoltcp's generators (DNS query
//! ids and source ports, DHCP transaction ids).
//!
//! A [`Seed`] of 256 bits from a cryptographically secure source (the K230's TRNG on the board,
//! the OS's CSPRNG on a host) is split into two SipHash-2-4 keys: one keys the ISN function
//! `F(local, remote)`, the other a counter-mode generator for everything else. SipHash is a
//! keyed pseudorandom function, so without the seed no output predicts another.

use core::fmt;
use core::hash::Hasher;
use core::net::SocketAddrV4;

use rand_core::{CryptoRng, RngCore};
use siphasher::sip::SipHasher24;

use crate::api::Micros;

/// 256 secret bits: everything unpredictable the stack sends derives from them.
#[derive(Clone)]
pub struct Seed([u8; 32]);

impl Seed {
    /// A seed from a cryptographically secure generator; fails when the generator does (e.g. a
    /// TRNG whose health check tripped).
    pub fn from_rng<R: RngCore + CryptoRng>(rng: &mut R) -> Result<Self, rand_core::Error> {
        let mut bytes = [0; 32];
        rng.try_fill_bytes(&mut bytes)?;
        Ok(Self::from_bytes(bytes))
    }

    /// A seed of 32 bytes read from a cryptographically secure source (e.g. a health-checked
    /// TRNG whose errors the caller reports itself).
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// A seed from the operating system's CSPRNG (`getrandom`).
    #[cfg(feature = "std")]
    pub fn from_os() -> Result<Self, rand_core::Error> {
        Self::from_rng(&mut rand_core::OsRng)
    }

    /// A fixed seed, for reproducible runs only (fuzzing, tests that compare exact traffic):
    /// every sequence number, port and id follows from `n`, so anyone who knows `n` predicts
    /// them.
    pub const fn reproducible(n: u64) -> Self {
        let b = n.to_le_bytes();
        Self([
            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], 0x5e, 0xed, 0, 0, 0, 0, 0, 0, b[0],
            b[1], b[2], b[3], b[4], b[5], b[6], b[7], 0x5e, 0xed, 0, 0, 0, 0, 0, 1,
        ])
    }

    /// The `i`th 64-bit word.
    fn word(&self, i: usize) -> u64 {
        let mut w = [0; 8];
        w.copy_from_slice(&self.0[i * 8..i * 8 + 8]);
        u64::from_le_bytes(w)
    }
}

/// Never prints the secret.
impl fmt::Debug for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Seed(..)")
    }
}

/// The keys and the generator's position.
pub(crate) struct Secrets {
    isn_key: (u64, u64),
    stream_key: (u64, u64),
    counter: u64,
}

impl Secrets {
    /// The secrets of `seed`.
    pub fn new(seed: &Seed) -> Self {
        Self {
            isn_key: (seed.word(0), seed.word(1)),
            stream_key: (seed.word(2), seed.word(3)),
            counter: 0,
        }
    }

    /// The next 64 bits of the generator: SipHash of a counter under the stream key.
    pub fn next_u64(&mut self) -> u64 {
        self.counter = self.counter.wrapping_add(1);
        let mut h = SipHasher24::new_with_keys(self.stream_key.0, self.stream_key.1);
        h.write(&self.counter.to_le_bytes());
        h.finish()
    }

    /// The next 16 bits of the generator.
    pub fn next_u16(&mut self) -> u16 {
        // Truncation keeps 16 uniformly distributed bits.
        self.next_u64() as u16
    }

    /// The initial sequence number of a connection from `local` to `remote` at `now`, as RFC 6528
    /// §3 defines it: `ISN = M + F(localip, localport, remoteip, remoteport, secretkey)`, `M` a
    /// timer ticking every 4 µs and `F` a keyed hash (here SipHash-2-4). Connections of
    /// different 4-tuples get unrelated numbers; a reused 4-tuple gets numbers that keep
    /// growing with time, so that old segments fall outside the new connection's window.
    pub fn isn(&self, local: SocketAddrV4, remote: SocketAddrV4, now: Micros) -> u32 {
        let mut h = SipHasher24::new_with_keys(self.isn_key.0, self.isn_key.1);
        h.write(&local.ip().octets());
        h.write(&local.port().to_be_bytes());
        h.write(&remote.ip().octets());
        h.write(&remote.port().to_be_bytes());
        // M wraps every 2^32 ticks (4.8 h), as the RFC's 32-bit timer does.
        let m = (now / 4) as u32;
        m.wrapping_add(h.finish() as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn at(last: u8, port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, last), port)
    }

    #[test]
    fn isn_follows_the_clock_for_one_tuple_and_the_key_across_tuples() {
        let secrets = Secrets::new(&Seed::reproducible(1));
        let (a, b) = (at(2, 50_000), at(1, 80));
        let first = secrets.isn(a, b, 1_000);
        // Same 4-tuple: M grows by one every 4 µs.
        assert_eq!(secrets.isn(a, b, 1_000 + 4 * 250), first.wrapping_add(250));
        // Another local port: unrelated.
        let other = secrets.isn(at(2, 50_001), b, 1_000);
        assert_ne!(other, first);
        assert_ne!(other.wrapping_sub(first), 1);
        // Another key, same tuple and time: unrelated.
        let stranger = Secrets::new(&Seed::reproducible(2));
        assert_ne!(stranger.isn(a, b, 1_000), first);
    }

    #[test]
    fn generator_outputs_differ_per_seed_and_per_draw() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut one = Secrets::new(&Seed::from_rng(&mut rng).unwrap());
        let mut two = Secrets::new(&Seed::from_rng(&mut rng).unwrap());
        let a: Vec<u64> = (0..64).map(|_| one.next_u64()).collect();
        let b: Vec<u64> = (0..64).map(|_| two.next_u64()).collect();
        assert_ne!(a, b);
        let mut sorted = a.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), a.len(), "no repeats");
    }

    #[test]
    fn the_seed_is_not_printed() {
        assert_eq!(format!("{:?}", Seed::reproducible(42)), "Seed(..)");
    }

    #[cfg(feature = "std")]
    #[test]
    fn os_seeds_differ() {
        let a = Secrets::new(&Seed::from_os().unwrap()).isn(at(2, 1), at(1, 2), 0);
        let b = Secrets::new(&Seed::from_os().unwrap()).isn(at(2, 1), at(1, 2), 0);
        assert_ne!(a, b);
    }
}
