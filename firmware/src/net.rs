//! What the network bring-up finds on this board.
//!
//! On a board with a USB host for its NIC the firmware's bring-up service takes over (USB1 DWC2
//! host, RTL8152 or CDC-ECM, `netstack` with DHCP, ping, [`crate::echo`] on port 7); this module
//! names what was found and formats the service's console lines.

use crate::board::NicSpec;
use core::fmt;
use netstack::api::Ipv4Config;
use netstack::control::prefix_len;

/// The bring-up's finding, printed on the console.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// The board cannot have a NIC (QEMU virt has no USB host controller).
    NoNic,
    /// The board has a USB host controller for a NIC: the bring-up service runs.
    UsbHost {
        /// DWC2 register base of the NIC's host controller.
        usb_base: usize,
    },
}

/// The bring-up's finding for a board with `nic`.
pub fn probe(nic: NicSpec) -> Status {
    match nic {
        NicSpec::Absent => Status::NoNic,
        NicSpec::UsbDwc2 { base } => Status::UsbHost { usb_base: base },
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::NoNic => f.write_str("no NIC"),
            Status::UsbHost { usb_base } => {
                write!(f, "USB host at {usb_base:#x}, starting bring-up")
            }
        }
    }
}

/// The console line for the interface's address: `address 192.168.1.20/24 gw 192.168.1.1 dns
/// 192.168.1.1`, or that there is none yet.
pub struct AddressLine(pub Option<Ipv4Config>);

impl fmt::Display for AddressLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(c) = self.0 else {
            return f.write_str("no address yet (DHCP running)");
        };
        match prefix_len(c.netmask) {
            Some(p) => write!(f, "address {}/{p}", c.address)?,
            None => write!(f, "address {} netmask {}", c.address, c.netmask)?,
        }
        write!(f, " gw {} dns {}", c.gateway, c.dns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::board::{K230, QEMU_VIRT};
    use core::net::Ipv4Addr;

    #[test]
    fn address_lines() {
        assert_eq!(
            AddressLine(None).to_string(),
            "no address yet (DHCP running)"
        );
        let c = Ipv4Config {
            address: Ipv4Addr::new(192, 168, 1, 20),
            netmask: Ipv4Addr::new(255, 255, 255, 0),
            gateway: Ipv4Addr::new(192, 168, 1, 1),
            dns: Ipv4Addr::new(192, 168, 1, 1),
        };
        assert_eq!(
            AddressLine(Some(c)).to_string(),
            "address 192.168.1.20/24 gw 192.168.1.1 dns 192.168.1.1"
        );
        let odd = Ipv4Config {
            netmask: Ipv4Addr::new(255, 0, 255, 0),
            ..c
        };
        assert!(AddressLine(Some(odd))
            .to_string()
            .contains("netmask 255.0.255.0"));
    }

    #[test]
    fn qemu_has_no_nic_and_k230_names_its_usb_host() {
        assert_eq!(probe(QEMU_VIRT.nic).to_string(), "no NIC");
        assert_eq!(
            probe(K230.nic),
            Status::UsbHost {
                usb_base: 0x9154_0000
            }
        );
        assert_eq!(
            probe(K230.nic).to_string(),
            "USB host at 0x91540000, starting bring-up"
        );
    }
}
