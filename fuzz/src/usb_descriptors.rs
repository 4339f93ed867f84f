//! USB descriptor parsing on an arbitrary configuration descriptor: the views of
//! `k230_hal::usb::descriptor`, the CDC-ECM function search and functional descriptors
//! (`k230_hal::eth::cdc_ecm`), and driver selection (`k230_hal::eth::probe::identify`).
//!
//! Invariants: iteration stays inside the bytes and ends; interfaces partition the descriptors
//! that follow them; pipes are data endpoints 1 to 15; a found ECM function has usable
//! endpoints; `identify` picks the RTL8152 by its IDs whatever the configuration says, CDC-ECM
//! for a Communications-class device, and otherwise exactly when an ECM function was found.

use k230_hal::eth::cdc_ecm::{parse_mac_string, EcmFunction, Notification, CLASS_COMMUNICATIONS};
use k230_hal::eth::probe::{identify, NicKind};
use k230_hal::eth::rtl8152;
use k230_hal::usb::descriptor::{
    CdcEthernet, CdcUnion, ConfigurationDescriptor, DeviceDescriptor, TYPE_INTERFACE,
};
use k230_hal::usb::MAX_CONFIG_DESCRIPTOR;
use k230_hal::usb::{DeviceAddress, Direction, Speed, TransferType, UsbDevice};

/// Parses `data` as a configuration descriptor (and, for the small parsers, as the descriptor
/// or notification they take).
pub fn run(data: &[u8]) {
    views(data);
    ecm(data);
    for (vid, pid, class) in [
        (rtl8152::VENDOR_ID, rtl8152::PRODUCT_ID, 0xff),
        (0x1234, 0x5678, 0),
        (0x1234, 0x5678, CLASS_COMMUNICATIONS),
    ] {
        let nic = identify(&device(vid, pid, class, data));
        let ecm_found = EcmFunction::find(&data[..data.len().min(MAX_CONFIG_DESCRIPTOR)]).is_ok();
        let want = if vid == rtl8152::VENDOR_ID {
            Some(NicKind::Rtl8152)
        } else if class == CLASS_COMMUNICATIONS || ecm_found {
            Some(NicKind::CdcEcm)
        } else {
            None
        };
        assert_eq!(nic, want);
    }
    if let Ok(d) = DeviceDescriptor::new_checked(data) {
        let _ = (d.vendor_id(), d.product_id(), d.num_configurations());
    }
    if let Ok(mac) = parse_mac_string(data) {
        assert_eq!(mac[0] & 1, 0, "a station address is never multicast");
    }
    if let Ok(n) = Notification::new_checked(data) {
        assert_eq!(n.data().len(), usize::from(n.length()));
        let _ = n.event();
    }
}

/// An enumerated device with these IDs and class whose configuration descriptor is `config`
/// (truncated to the driver's buffer; `config_len` is left as long as the input, which
/// [`UsbDevice::config`] must clamp).
fn device(vid: u16, pid: u16, class: u8, config: &[u8]) -> UsbDevice {
    let mut device_descriptor = [18, 1, 0, 2, class, 0, 0, 64, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1];
    device_descriptor[8..10].copy_from_slice(&vid.to_le_bytes());
    device_descriptor[10..12].copy_from_slice(&pid.to_le_bytes());
    let mut config_descriptor = [0u8; MAX_CONFIG_DESCRIPTOR];
    let n = config.len().min(MAX_CONFIG_DESCRIPTOR);
    config_descriptor[..n].copy_from_slice(&config[..n]);
    UsbDevice {
        address: DeviceAddress::new(1).expect("1 is a valid address"),
        speed: Speed::High,
        device_descriptor,
        config_descriptor,
        config_len: config.len(),
    }
}

fn views(data: &[u8]) {
    let Ok(config) = ConfigurationDescriptor::new_checked(data) else {
        return;
    };
    let _ = (
        config.num_interfaces(),
        config.attributes(),
        config.max_power(),
    );
    let limit = usize::from(config.total_length()).min(data.len());
    let mut walked = 0;
    let mut count = 0;
    for d in config.descriptors() {
        assert!(d.bytes.len() >= 2 && d.bytes[1] == d.kind);
        walked += d.bytes.len();
        count += 1;
    }
    assert!(
        walked <= limit,
        "descriptors run past wTotalLength or the buffer"
    );
    assert!(count <= limit / 2);
    let mut in_interfaces = 0;
    for iface in config.interfaces() {
        in_interfaces += 1 + iface.body.clone().count();
        assert!(iface.body.clone().all(|d| d.kind != TYPE_INTERFACE));
        for ep in iface.endpoints() {
            let _ = (ep.max_packet_size(), ep.interval(), ep.endpoint_type());
        }
        for cs in iface.class_specific() {
            assert!(cs.bytes().len() >= 3);
            if let Ok(u) = CdcUnion::new_checked(cs.bytes()) {
                let _ = (u.control_interface(), u.subordinate_interfaces());
            }
            if let Ok(e) = CdcEthernet::new_checked(cs.bytes()) {
                let _ = (e.mac_string_index(), e.statistics(), e.max_segment_size());
                let _ = (e.multicast_filters(), e.power_filters());
            }
        }
        let device = DeviceAddress::new(1).expect("1 is a valid address");
        let pipes = iface.pipes(device, Speed::High);
        for (pipe, kind, direction) in [
            (pipes.bulk_in, TransferType::Bulk, Direction::In),
            (pipes.bulk_out, TransferType::Bulk, Direction::Out),
            (pipes.interrupt_in, TransferType::Interrupt, Direction::In),
        ] {
            if let Some(p) = pipe {
                assert!((1..=15).contains(&p.endpoint));
                assert_eq!((p.kind, p.direction), (kind, direction));
            }
        }
    }
    assert!(in_interfaces <= count);
}

fn ecm(data: &[u8]) {
    if let Ok(f) = EcmFunction::find(data) {
        for ep in [Some(f.bulk_in), Some(f.bulk_out), f.notify]
            .into_iter()
            .flatten()
        {
            assert!((1..=15).contains(&ep.number), "{f:?}");
            assert_ne!(ep.max_packet_size, 0, "{f:?}");
        }
    }
}
