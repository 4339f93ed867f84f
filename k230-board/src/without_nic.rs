//! The stack of a board without a NIC (QEMU `virt`): sockets over loopback (127.0.0.0/8) only,
//! so the socket API runs end to end where no wire exists.
//!
//! Its secret is a constant, not a secret, on purpose: such a board drives no entropy source,
//! and nothing the stack draws from the secret (TCP initial sequence numbers, ephemeral ports,
//! DNS and DHCP ids) can leave the board, as the stack has no device that sends. The only party
//! that sees those numbers is a script on the same board, which can read the stack's memory
//! anyway. The constant is private to this module, so it cannot seed a stack that has a NIC:
//! those take theirs from their board's noise source ([`crate::secret`]).

use netstack::api::Micros;
use netstack::loopback::NoNic;
use netstack::{Parts, Seed, Stack};

/// Public by design (see the [module docs](self)); 32 bytes that say what they are.
const NO_WIRE: Seed = Seed::from_bytes(*b"k230-net loopback only, no wire!");

/// The loopback-only stack from `parts`; like every board's stack it needs polling (a socket
/// call waiting for the network polls it too).
pub fn loopback_only(parts: Parts<'_>, now: Micros) -> Stack<'_, NoNic> {
    Stack::without_nic(NO_WIRE, parts, now)
}
