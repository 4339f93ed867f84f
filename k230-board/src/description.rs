//! Board descriptions: where a board's NIC is and what bringing it up takes.

use k230_hal::sysctl::{k230, UsbPort};
use k230_hal::variant::Vbus;

/// How a board's DWC2 controller is taken out of reset before its driver starts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UsbReset {
    /// The K230's system controller resets the controller and puts its PHY in host mode
    /// (`k230_hal::sysctl::Sysctl::usb_host_init`).
    K230(UsbPort),
    /// Nothing to do (QEMU raspi3b's DWC2 model comes out of reset ready).
    None,
}

/// A board's USB NIC: the host controller it hangs off and how it comes up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UsbNic {
    /// The DWC2 controller's register base.
    pub dwc2_base: usize,
    /// Bytes of its register window.
    pub dwc2_len: usize,
    /// How the controller is taken out of reset.
    pub reset: UsbReset,
    /// The K230 GPIO switching the NIC's USB power (VBUS), as the board variant's table names it
    /// (`k230_hal::variant::BoardVariant::vbus`): off while the controller starts, on 100 ms after;
    /// `None` where VBUS is always on.
    pub vbus: Option<Vbus>,
    /// How long bring-up waits for the device on the root port.
    pub connect_timeout_ms: u32,
}

impl UsbNic {
    /// The K230's controller `port`, reset by its system controller, VBUS always on (a board
    /// whose VBUS is switched sets [`Self::vbus`]), waiting 3 s for the device.
    pub const fn k230(port: UsbPort) -> UsbNic {
        UsbNic {
            dwc2_base: port.base(),
            dwc2_len: k230::USB_REG_LEN,
            reset: UsbReset::K230(port),
            vbus: None,
            connect_timeout_ms: 3_000,
        }
    }
}

/// The K230 boards' RJ45 port: the RTL8152 on USB1 (facts: `../shared/design/k230-facts.md`).
pub const K230_USB1: UsbNic = UsbNic::k230(UsbPort::Usb1);

/// QEMU `raspi3b`: the BCM2837's DWC2 core (QEMU `hw/arm/bcm2835_peripherals.c`: USB_OTG_OFFSET
/// 0x980000 from the 0x3F00_0000 peripheral base) with its 0x11000-byte window (`hcd-dwc2.h`),
/// no reset and no VBUS switch.
pub const QEMU_RASPI3B: UsbNic = UsbNic {
    dwc2_base: 0x3F98_0000,
    dwc2_len: 0x1_1000,
    reset: UsbReset::None,
    vbus: None,
    connect_timeout_ms: 2_000,
};

/// Where a board's stack gets its secret and `os.urandom` its bytes: a hardware noise source,
/// health-checked by `k230_hal::trng::Trng` ([`crate::secret`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entropy {
    /// The K230's TRNG (`k230_hal::trng::Pufrt` at `k230_hal::trng::BASE`).
    K230Trng,
    /// A BCM2835 RNG (`k230_hal::trng::bcm2835`) at this register base.
    Bcm2835Rng {
        /// Its register base.
        base: usize,
    },
}

/// QEMU `raspi3b`'s RNG: `RNG_OFFSET` 0x10_4000 from the 0x3F00_0000 peripheral base (QEMU
/// `include/hw/arm/raspi_platform.h`, model `hw/misc/bcm2835_rng.c`).
pub const QEMU_RASPI3B_RNG: Entropy = Entropy::Bcm2835Rng { base: 0x3F10_4000 };

/// A board's network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Net {
    /// No NIC can exist on this board (QEMU `virt` has no USB host controller).
    Absent,
    /// A USB NIC.
    Usb(UsbNic),
}

#[cfg(test)]
mod tests {
    use super::*;
    use k230_hal::variant::BoardVariant;

    #[test]
    fn the_k230_nic_is_on_usb1_and_a_variant_may_switch_its_power() {
        assert_eq!(K230_USB1.dwc2_base, 0x9154_0000);
        assert_eq!(K230_USB1.reset, UsbReset::K230(UsbPort::Usb1));
        assert_eq!(K230_USB1.vbus, None);
        let switched = BoardVariant::ALL.iter().find_map(|v| v.vbus());
        let switched = switched.expect("a variant whose VBUS is a GPIO");
        let nic = UsbNic {
            vbus: Some(switched),
            ..K230_USB1
        };
        assert!(format!("{:?}", Net::Usb(nic)).contains("vbus: Some(Vbus"));
        assert_eq!(QEMU_RASPI3B.reset, UsbReset::None);
    }
}
