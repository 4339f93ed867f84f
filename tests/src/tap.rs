//! The Linux peer of a simulated board or a stack on the host: a TAP device whose kernel side is
//! in a network namespace of its own, addressed and up. The board's side is the [`Tap`] returned
//! with it; keep it in a field declared before the [`TapPeer`] so that it closes before the
//! namespace goes.

use std::io;
use std::net::Ipv4Addr;

use k230_hal::sim::wire::tap::Tap;
use k230_testkit::netns::{unique_name, Netns};

/// The namespace and the TAP's name in it.
#[derive(Debug)]
pub struct TapPeer {
    /// The peer's namespace (start peers in it with [`Netns::spawn`] or [`Netns::command`]).
    pub ns: Netns,
    /// The TAP's name (its kernel side, inside `ns`).
    pub ifname: String,
}

impl TapPeer {
    /// A new namespace with a TAP named from `prefix` whose kernel side has `peer/prefix_len`;
    /// returns it and the board's end of the link.
    pub fn new(prefix: &str, peer: Ipv4Addr, prefix_len: u8) -> io::Result<(Self, Tap)> {
        let ns = Netns::new()?;
        let ifname = unique_name(prefix);
        let tap = Tap::open_in_netns(&ifname, &ns.path())?;
        ns.address(&ifname, peer, prefix_len)?;
        Ok((Self { ns, ifname }, tap))
    }
}
