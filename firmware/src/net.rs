//! What the network bring-up finds on this board.
//!
//! On a board with a USB host for its NIC the firmware's bring-up service takes over (USB1 DWC2
//! host, RTL8152 or CDC-ECM, `netstack` with DHCP, ping, [`crate::echo`] on port 7); this module
//! names what was found and formats the service's console lines.

use crate::board::NicSpec;
use crate::service::NetDevice;
use core::fmt;
use k230_hal::eth::supervisor::{HotPlug, LinkEvent, State, Supervisor};
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
        NicSpec::UsbDwc2 { base, .. } => Status::UsbHost { usb_base: base },
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

/// The console line for a change of the NIC's USB device.
pub struct LinkEventLine(pub LinkEvent);

impl fmt::Display for LinkEventLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 {
            LinkEvent::DeviceLost => "NIC unplugged, address released",
            LinkEvent::DeviceBack => "NIC back, asking DHCP for an address",
            LinkEvent::BringUpFailed => "NIC plugged in but did not come up, retrying",
        })
    }
}

/// A supervised NIC serves as its driver does; it has carrier only while its device runs.
impl<N: HotPlug + NetDevice> NetDevice for Supervisor<N> {
    fn mac(&self) -> [u8; 6] {
        self.nic().mac()
    }
    fn carrier(&self) -> bool {
        Supervisor::carrier(self)
    }
    fn counters(&self) -> [u64; 4] {
        self.nic().counters()
    }
    fn present(&self) -> bool {
        self.state() == State::Running
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

    use smoltcp::phy::{Device, Loopback, Medium};
    use smoltcp::time::Instant;

    /// A NIC (smoltcp's loopback) whose root port reports what the test says.
    struct Fake {
        port: Option<k230_hal::usb::PortEvent>,
        lo: Loopback,
    }

    impl Device for Fake {
        type RxToken<'a> = <Loopback as Device>::RxToken<'a>;
        type TxToken<'a> = <Loopback as Device>::TxToken<'a>;
        fn receive(&mut self, t: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
            self.lo.receive(t)
        }
        fn transmit(&mut self, t: Instant) -> Option<Self::TxToken<'_>> {
            self.lo.transmit(t)
        }
        fn capabilities(&self) -> smoltcp::phy::DeviceCapabilities {
            self.lo.capabilities()
        }
    }

    impl NetDevice for Fake {
        fn mac(&self) -> [u8; 6] {
            [2, 0, 0, 0, 0, 1]
        }
        fn carrier(&self) -> bool {
            true
        }
        fn counters(&self) -> [u64; 4] {
            [1, 2, 3, 4]
        }
    }

    impl HotPlug for Fake {
        type Error = ();
        fn poll_port(&mut self) -> Option<k230_hal::usb::PortEvent> {
            self.port.take()
        }
        fn detached(&mut self) {}
        fn reattach(&mut self) -> Result<(), ()> {
            Ok(())
        }
        fn link_up(&self) -> bool {
            true
        }
        fn maintain(&mut self) {}
    }

    #[test]
    fn a_supervised_nic_has_carrier_only_while_its_device_runs() {
        use k230_hal::usb::PortEvent;
        let mut s = Supervisor::new(Fake {
            port: None,
            lo: Loopback::new(Medium::Ethernet),
        });
        assert_eq!((s.mac(), s.counters()), ([2, 0, 0, 0, 0, 1], [1, 2, 3, 4]));
        assert!(NetDevice::carrier(&s) && s.present());
        s.nic_mut().port = Some(PortEvent::Disconnected);
        let lost = s.poll(0).unwrap();
        assert!(!NetDevice::carrier(&s) && !s.present());
        assert!(s.transmit(Instant::ZERO).is_none(), "no tokens while gone");
        assert_eq!(
            LinkEventLine(lost).to_string(),
            "NIC unplugged, address released"
        );
        s.nic_mut().port = Some(PortEvent::Connected);
        let back = s.poll(1).unwrap();
        assert!(NetDevice::carrier(&s) && s.present());
        assert_eq!(
            LinkEventLine(back).to_string(),
            "NIC back, asking DHCP for an address"
        );
    }
}
