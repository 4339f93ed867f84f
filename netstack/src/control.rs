//! Interface control: what `network.LAN` needs (static or DHCP configuration, link state, MAC).

use core::net::Ipv4Addr;

use crate::api::{Ipv4Config, NetError};

/// Controls the stack's one Ethernet interface.
pub trait InterfaceControl {
    /// Stops DHCP and applies a static configuration (an unspecified address removes it).
    /// Fails with [`NetError::Invalid`] for a non-contiguous netmask.
    fn set_static(&mut self, config: Ipv4Config) -> Result<(), NetError>;
    /// Removes the current configuration and starts the DHCP client.
    fn start_dhcp(&mut self);
    /// Whether the DHCP client runs.
    fn dhcp_running(&self) -> bool;
    /// The current configuration (static or leased), `None` without address.
    fn config(&self) -> Option<Ipv4Config>;
    /// Tells the stack whether the link has carrier (called by the board's driver).
    fn set_link_up(&mut self, up: bool);
    /// Whether the link has carrier.
    fn link_up(&self) -> bool;
    /// The interface's MAC address.
    fn mac(&self) -> [u8; 6];
}

/// The prefix length of a contiguous netmask, `None` when the mask has holes.
pub fn prefix_len(netmask: Ipv4Addr) -> Option<u8> {
    let bits = u32::from(netmask);
    let ones = bits.leading_ones();
    // Contiguous: all ones first, then all zeros.
    let contiguous = bits.checked_shl(ones).unwrap_or(0) == 0;
    contiguous.then(|| u8::try_from(ones).unwrap_or(32))
}

/// The netmask of a prefix length (clamped to 32).
pub fn netmask(prefix_len: u8) -> Ipv4Addr {
    let len = u32::from(prefix_len.min(32));
    Ipv4Addr::from(u32::MAX.checked_shl(32 - len).unwrap_or(0))
}

/// Whether `addr` is the limited broadcast or the directed broadcast of `config`'s subnet.
pub fn is_broadcast(addr: Ipv4Addr, config: Option<&Ipv4Config>) -> bool {
    if addr.is_broadcast() {
        return true;
    }
    config.is_some_and(|c| {
        let mask = u32::from(c.netmask);
        mask != u32::MAX && u32::from(addr) == (u32::from(c.address) & mask) | !mask
    })
}

/// Whether `addr` is reachable under `config`: on its subnet, or through a gateway.
pub fn routable(addr: Ipv4Addr, config: Option<&Ipv4Config>) -> bool {
    config.is_some_and(|c| {
        let mask = u32::from(c.netmask);
        let on_link = u32::from(addr) & mask == u32::from(c.address) & mask;
        on_link || !c.gateway.is_unspecified() || addr.is_broadcast()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Ipv4Config {
        Ipv4Config {
            address: Ipv4Addr::new(10, 1, 2, 3),
            netmask: Ipv4Addr::new(255, 255, 255, 0),
            gateway: Ipv4Addr::UNSPECIFIED,
            dns: Ipv4Addr::UNSPECIFIED,
        }
    }

    #[test]
    fn netmask_and_prefix_round_trip() {
        for len in 0..=32u8 {
            assert_eq!(prefix_len(netmask(len)), Some(len));
        }
        assert_eq!(prefix_len(Ipv4Addr::new(255, 0, 255, 0)), None);
        assert_eq!(netmask(40), Ipv4Addr::BROADCAST);
    }

    #[test]
    fn broadcast_and_routing() {
        let c = config();
        assert!(is_broadcast(Ipv4Addr::BROADCAST, None));
        assert!(is_broadcast(Ipv4Addr::new(10, 1, 2, 255), Some(&c)));
        assert!(!is_broadcast(Ipv4Addr::new(10, 1, 2, 254), Some(&c)));
        assert!(routable(Ipv4Addr::new(10, 1, 2, 9), Some(&c)));
        assert!(!routable(Ipv4Addr::new(10, 1, 3, 9), Some(&c)));
        assert!(!routable(Ipv4Addr::new(10, 1, 2, 9), None));
        let via_gateway = Ipv4Config {
            gateway: Ipv4Addr::new(10, 1, 2, 1),
            ..c
        };
        assert!(routable(Ipv4Addr::new(10, 1, 3, 9), Some(&via_gateway)));
    }
}
