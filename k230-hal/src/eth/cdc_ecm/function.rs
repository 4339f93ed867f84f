//! Finding a CDC-ECM function in a configuration descriptor.
//!
//! A CDC-ECM function is a Communications interface (class 0x02, subclass 0x06) followed by its
//! functional descriptors (header, union, Ethernet networking; USB CDC 1.2 §5.2.3, ECM 1.2 §5.4)
//! and an optional interrupt IN notification endpoint, plus the Data interface (class 0x0A) the
//! union names, whose non-zero alternate setting carries one bulk IN and one bulk OUT endpoint.
//! Layout facts: USB CDC 1.2 and ECM 1.2 specifications; Linux `drivers/net/usb/cdc_ether.c`
//! (`usbnet_generic_cdc_bind` requires header, union and Ethernet descriptors); QEMU
//! `hw/usb/dev-network.c` (a real-world layout: alternate setting 0 of the data interface has no
//! endpoints, alternate setting 1 has both bulk endpoints).
//!
//! Parsing never panics: a descriptor chain that overruns the buffer or contains a zero length is
//! rejected as a whole; a class descriptor too short for its subtype is skipped with a warning.

use core::fmt;

use crate::usb::descriptor::{
    CdcEthernet, CdcUnion, ConfigurationDescriptor, EndpointDescriptor, EndpointType, Interface,
};
use crate::usb::Direction;

/// Communications interface class (CDC 1.2 Table 3).
pub const CLASS_COMMUNICATIONS: u8 = 0x02;
/// Ethernet Networking Control Model subclass (CDC 1.2 Table 4).
pub const SUBCLASS_ECM: u8 = 0x06;
/// Data interface class (CDC 1.2 Table 6).
const CLASS_DATA: u8 = 0x0A;
/// Header functional descriptor subtype (CDC 1.2 Table 13) and its length.
const SUBTYPE_HEADER: u8 = 0x00;
const HEADER_LEN: usize = 5;

/// Why a configuration descriptor holds no usable CDC-ECM function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FunctionError {
    /// The descriptor chain is broken (zero length, overrun, or no configuration header).
    Malformed,
    /// No Communications interface with the ECM subclass.
    NotEcm,
    /// The ECM interface lacks its header functional descriptor.
    MissingHeader,
    /// The ECM interface lacks its union functional descriptor.
    MissingUnion,
    /// The ECM interface lacks its Ethernet networking functional descriptor.
    MissingEthernet,
    /// No alternate setting of the union's data interface has a bulk IN and a bulk OUT endpoint.
    NoDataEndpoints,
}

impl fmt::Display for FunctionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self {
            Self::Malformed => "malformed descriptor chain",
            Self::NotEcm => "no CDC-ECM communications interface",
            Self::MissingHeader => "no CDC header functional descriptor",
            Self::MissingUnion => "no CDC union functional descriptor",
            Self::MissingEthernet => "no CDC Ethernet functional descriptor",
            Self::NoDataEndpoints => "no data interface with bulk IN and OUT endpoints",
        };
        f.write_str(what)
    }
}

/// An endpoint the function uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// Endpoint number, 1 to 15.
    pub number: u8,
    /// wMaxPacketSize (bits 10:0).
    pub max_packet_size: u16,
    /// bInterval.
    pub interval: u8,
}

/// Everything a CDC-ECM driver needs from the descriptors of one configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EcmFunction {
    /// bConfigurationValue of the configuration holding the function.
    pub configuration: u8,
    /// bInterfaceNumber of the Communications (control) interface.
    pub control_interface: u8,
    /// bInterfaceNumber of the Data interface.
    pub data_interface: u8,
    /// The Data interface's alternate setting that carries the bulk endpoints.
    pub data_alt_setting: u8,
    /// Bulk IN endpoint (frames from the device).
    pub bulk_in: Endpoint,
    /// Bulk OUT endpoint (frames to the device).
    pub bulk_out: Endpoint,
    /// Interrupt IN endpoint for notifications, if the function has one.
    pub notify: Option<Endpoint>,
    /// iMACAddress: index of the string descriptor holding the MAC address.
    pub mac_string: u8,
    /// wMaxSegmentSize: the largest Ethernet frame (without FCS) the device handles.
    pub max_segment_size: u16,
}

impl Endpoint {
    fn from_descriptor(ep: &EndpointDescriptor<&[u8]>) -> Option<Self> {
        let endpoint = Self {
            number: ep.number(),
            max_packet_size: ep.max_packet_size(),
            interval: ep.interval(),
        };
        if endpoint.number == 0 || endpoint.max_packet_size == 0 {
            log::warn!("cdc-ecm: unusable endpoint {:#04x} skipped", ep.address());
            return None;
        }
        Some(endpoint)
    }
}

/// The first endpoint of `kind` and `direction` in `iface`.
fn endpoint(iface: &Interface<'_>, kind: EndpointType, direction: Direction) -> Option<Endpoint> {
    iface
        .endpoints()
        .filter(|ep| ep.endpoint_type() == kind && ep.direction() == direction)
        .find_map(|ep| Endpoint::from_descriptor(&ep))
}

impl EcmFunction {
    /// Finds the first CDC-ECM function in a whole configuration descriptor.
    pub fn find(bytes: &[u8]) -> Result<Self, FunctionError> {
        let config =
            ConfigurationDescriptor::new_checked(bytes).map_err(|_| FunctionError::Malformed)?;
        // The descriptor views stop at a malformed descriptor: a chain that ends before
        // wTotalLength (or the bytes read) is broken. new_checked ensured bytes[0] >= 9.
        let walked: usize = config.descriptors().map(|d| d.bytes.len()).sum();
        let expected = usize::from(config.total_length()).min(bytes.len());
        if usize::from(bytes[0]) + walked < expected {
            return Err(FunctionError::Malformed);
        }
        let control = config
            .interfaces()
            .find(|i| {
                i.descriptor.class() == CLASS_COMMUNICATIONS
                    && i.descriptor.subclass() == SUBCLASS_ECM
            })
            .ok_or(FunctionError::NotEcm)?;
        let control_interface = control.descriptor.number();
        let mut header = false;
        let mut data_interface = None;
        let mut ethernet = None;
        for cs in control.class_specific() {
            let bytes = cs.bytes();
            match cs.subtype() {
                SUBTYPE_HEADER if bytes.len() >= HEADER_LEN => header = true,
                CdcUnion::<&[u8]>::SUBTYPE => match CdcUnion::new_checked(bytes) {
                    Ok(u) if u.control_interface() == control_interface => {
                        data_interface =
                            data_interface.or(u.subordinate_interfaces().first().copied());
                    }
                    Ok(_) => log::warn!("cdc-ecm: union for another interface skipped"),
                    Err(e) => log::warn!("cdc-ecm: union descriptor skipped: {e:?}"),
                },
                CdcEthernet::<&[u8]>::SUBTYPE => match CdcEthernet::new_checked(bytes) {
                    Ok(eth) => {
                        ethernet =
                            ethernet.or(Some((eth.mac_string_index(), eth.max_segment_size())));
                    }
                    Err(e) => log::warn!("cdc-ecm: Ethernet descriptor skipped: {e:?}"),
                },
                SUBTYPE_HEADER => log::warn!("cdc-ecm: short header descriptor skipped"),
                _ => {}
            }
        }
        if !header {
            return Err(FunctionError::MissingHeader);
        }
        let data_interface = data_interface.ok_or(FunctionError::MissingUnion)?;
        let (mac_string, max_segment_size) = ethernet.ok_or(FunctionError::MissingEthernet)?;
        let notify = endpoint(&control, EndpointType::Interrupt, Direction::In);
        let (data_alt_setting, bulk_in, bulk_out) = config
            .interfaces()
            .filter(|i| {
                i.descriptor.number() == data_interface && i.descriptor.class() == CLASS_DATA
            })
            .find_map(|i| {
                let bulk_in = endpoint(&i, EndpointType::Bulk, Direction::In)?;
                let bulk_out = endpoint(&i, EndpointType::Bulk, Direction::Out)?;
                Some((i.descriptor.alternate(), bulk_in, bulk_out))
            })
            .ok_or(FunctionError::NoDataEndpoints)?;
        Ok(EcmFunction {
            configuration: config.configuration_value(),
            control_interface,
            data_interface,
            data_alt_setting,
            bulk_in,
            bulk_out,
            notify,
            mac_string,
            max_segment_size,
        })
    }
}
