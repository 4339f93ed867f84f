//! What the network bring-up finds on this board.
//!
//! The bring-up service (USB1 DWC2 host, RTL8152, smoltcp stack with DHCP, ping and echo on
//! port 7) plugs in here once the driver crates provide it; until then this reports what a
//! board has and that the service is not in this build.

use crate::board::NicSpec;
use core::fmt;

/// The bring-up's finding, printed on the console.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// The board cannot have a NIC (QEMU virt has no USB host controller).
    NoNic,
    /// The board has a USB host for a NIC, but this build has no USB host driver to run it.
    ServiceNotBuilt {
        /// DWC2 register base of the NIC's host controller.
        usb_base: usize,
    },
}

/// The bring-up's finding for a board with `nic`.
pub fn probe(nic: NicSpec) -> Status {
    match nic {
        NicSpec::Absent => Status::NoNic,
        NicSpec::UsbDwc2 { base } => Status::ServiceNotBuilt { usb_base: base },
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::NoNic => f.write_str("no NIC"),
            Status::ServiceNotBuilt { usb_base } => write!(
                f,
                "USB host at {usb_base:#x}, bring-up service not in this build"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::board::{K230, QEMU_VIRT};

    #[test]
    fn qemu_has_no_nic_and_k230_names_its_usb_host() {
        assert_eq!(probe(QEMU_VIRT.nic).to_string(), "no NIC");
        assert_eq!(
            probe(K230.nic),
            Status::ServiceNotBuilt {
                usb_base: 0x9154_0000
            }
        );
    }
}
