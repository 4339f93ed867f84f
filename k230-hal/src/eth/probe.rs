//! Which NIC driver applies to an enumerated USB device.
//!
//! The RTL8152 is matched by its IDs first: it also offers a CDC-ECM configuration, and Linux
//! keeps `cdc_ether` off it when `r8152` is built (`drivers/net/usb/cdc_ether.c`, the Realtek
//! entries with `driver_info = 0`). Any other device is CDC-ECM when its enumerated configuration
//! holds an ECM function, or when its device class is Communications (0x02): the ECM function
//! may then sit in another configuration, as in QEMU's `usb-net`, whose configuration index 0 is
//! RNDIS; [`cdc_ecm::probe`](super::cdc_ecm::probe) looks through all of them.

use super::cdc_ecm::{EcmFunction, CLASS_COMMUNICATIONS};
use super::rtl8152;
use crate::usb::UsbDevice;

/// A NIC driver of this crate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NicKind {
    /// Realtek RTL8152 ([`rtl8152`]).
    Rtl8152,
    /// USB CDC Ethernet Control Model ([`cdc_ecm`](super::cdc_ecm)).
    CdcEcm,
}

/// The driver for `device`, or `None` when no driver of this crate applies.
pub fn identify(device: &UsbDevice) -> Option<NicKind> {
    if device.vendor_id() == rtl8152::VENDOR_ID && device.product_id() == rtl8152::PRODUCT_ID {
        return Some(NicKind::Rtl8152);
    }
    let device_class = device.device_descriptor[4];
    if EcmFunction::find(device.config()).is_ok() || device_class == CLASS_COMMUNICATIONS {
        return Some(NicKind::CdcEcm);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usb::{DeviceAddress, Speed, MAX_CONFIG_DESCRIPTOR};

    fn device(ids: [u8; 4], class: u8, config: &[u8]) -> UsbDevice {
        let mut device_descriptor = [0u8; 18];
        device_descriptor[..2].copy_from_slice(&[18, 0x01]);
        device_descriptor[4] = class;
        device_descriptor[8..12].copy_from_slice(&ids);
        let mut config_descriptor = [0u8; MAX_CONFIG_DESCRIPTOR];
        config_descriptor[..config.len()].copy_from_slice(config);
        UsbDevice {
            address: DeviceAddress::new(1).unwrap(),
            speed: Speed::High,
            device_descriptor,
            config_descriptor,
            config_len: config.len(),
        }
    }

    /// A vendor-class interface with two bulk endpoints (RTL8152's configuration 1).
    const VENDOR_CONFIG: [u8; 32] = [
        9, 2, 32, 0, 1, 1, 0, 0xa0, 50, 9, 4, 0, 0, 2, 0xff, 0xff, 0, 0, 7, 5, 0x81, 2, 0, 2, 0, 7,
        5, 0x02, 2, 0, 2, 0,
    ];

    /// A minimal ECM configuration: control interface with header, union and Ethernet
    /// descriptors, data interface alt 1 with two bulk endpoints.
    fn ecm_config() -> Vec<u8> {
        let mut c = vec![9, 2, 0, 0, 2, 1, 0, 0x80, 50];
        c.extend([9, 4, 0, 0, 0, 0x02, 0x06, 0, 0]);
        c.extend([5, 0x24, 0x00, 0x10, 0x01, 5, 0x24, 0x06, 0, 1]);
        c.extend([13, 0x24, 0x0f, 3, 0, 0, 0, 0, 0xea, 0x05, 0, 0, 0]);
        c.extend([9, 4, 1, 1, 2, 0x0a, 0, 0, 0]);
        c.extend([7, 5, 0x81, 2, 0, 2, 0, 7, 5, 0x02, 2, 0, 2, 0]);
        let total = c.len() as u16;
        c[2..4].copy_from_slice(&total.to_le_bytes());
        c
    }

    #[test]
    fn rtl8152_by_ids_even_with_an_ecm_configuration() {
        let d = device([0xda, 0x0b, 0x52, 0x81], 0, &VENDOR_CONFIG);
        assert_eq!(identify(&d), Some(NicKind::Rtl8152));
        let d = device([0xda, 0x0b, 0x52, 0x81], 0, &ecm_config());
        assert_eq!(identify(&d), Some(NicKind::Rtl8152));
    }

    #[test]
    fn ecm_by_configuration_or_device_class() {
        assert_eq!(
            identify(&device([0x34, 0x12, 0x78, 0x56], 0, &ecm_config())),
            Some(NicKind::CdcEcm)
        );
        // QEMU's usb-net: class 0x02, the enumerated configuration is RNDIS-like (no ECM).
        assert_eq!(
            identify(&device([0x25, 0x05, 0xa2, 0xa4], 0x02, &VENDOR_CONFIG)),
            Some(NicKind::CdcEcm)
        );
    }

    #[test]
    fn other_devices_have_no_driver() {
        assert_eq!(
            identify(&device([0x34, 0x12, 0x78, 0x56], 0, &VENDOR_CONFIG)),
            None
        );
        assert_eq!(identify(&device([0x34, 0x12, 0x78, 0x56], 0, &[])), None);
    }
}
