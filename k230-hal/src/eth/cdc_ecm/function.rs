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

/// bDescriptorType of a configuration descriptor.
const DT_CONFIGURATION: u8 = 0x02;
/// bDescriptorType of an interface descriptor.
const DT_INTERFACE: u8 = 0x04;
/// bDescriptorType of an endpoint descriptor.
const DT_ENDPOINT: u8 = 0x05;
/// bDescriptorType of a class-specific interface descriptor (CDC 1.2 Table 12).
const DT_CS_INTERFACE: u8 = 0x24;

/// Communications interface class (CDC 1.2 Table 3).
pub const CLASS_COMMUNICATIONS: u8 = 0x02;
/// Ethernet Networking Control Model subclass (CDC 1.2 Table 4).
pub const SUBCLASS_ECM: u8 = 0x06;
/// Data interface class (CDC 1.2 Table 6).
const CLASS_DATA: u8 = 0x0A;

/// Header functional descriptor subtype (CDC 1.2 Table 13).
const SUBTYPE_HEADER: u8 = 0x00;
/// Union functional descriptor subtype.
const SUBTYPE_UNION: u8 = 0x06;
/// Ethernet networking functional descriptor subtype.
const SUBTYPE_ETHERNET: u8 = 0x0F;

/// Endpoint transfer types in bmAttributes bits 1:0 (USB 2.0 Table 9-13).
const XFER_BULK: u8 = 0x02;
const XFER_INTERRUPT: u8 = 0x03;

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

/// The descriptors of a buffer, one record (`bLength` bytes) at a time.
struct Records<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<&'a [u8], FunctionError>;

    fn next(&mut self) -> Option<Self::Item> {
        let len = usize::from(*self.rest.first()?);
        if len < 2 || len > self.rest.len() {
            self.rest = &[];
            return Some(Err(FunctionError::Malformed));
        }
        let (record, rest) = self.rest.split_at(len);
        self.rest = rest;
        Some(Ok(record))
    }
}

/// The interface descriptor the following descriptors belong to.
#[derive(Clone, Copy)]
struct Interface {
    number: u8,
    alt: u8,
    class: u8,
    subclass: u8,
}

/// What is known so far while walking the configuration.
#[derive(Default)]
struct Found {
    control: Option<u8>,
    header: bool,
    union_data: Option<u8>,
    ethernet: Option<(u8, u16)>,
    notify: Option<Endpoint>,
    data: Option<(u8, u8, Option<Endpoint>, Option<Endpoint>)>,
    data_done: bool,
}

impl EcmFunction {
    /// Finds the first CDC-ECM function in a whole configuration descriptor.
    pub fn find(config: &[u8]) -> Result<Self, FunctionError> {
        let mut records = Records { rest: config };
        let configuration = match records.next() {
            Some(Ok(r)) if r.len() >= 9 && r[1] == DT_CONFIGURATION => r[5],
            _ => return Err(FunctionError::Malformed),
        };
        let mut found = Found::default();
        let mut current: Option<Interface> = None;
        for record in records {
            let record = record?;
            match record[1] {
                DT_INTERFACE if record.len() >= 9 => {
                    let iface = Interface {
                        number: record[2],
                        alt: record[3],
                        class: record[5],
                        subclass: record[6],
                    };
                    found.interface(iface);
                    current = Some(iface);
                }
                DT_CS_INTERFACE if current.is_some_and(|i| Some(i.number) == found.control) => {
                    found.functional(record);
                }
                DT_ENDPOINT if record.len() >= 7 => {
                    if let Some(iface) = current {
                        found.endpoint(iface, record);
                    }
                }
                _ => {}
            }
        }
        found.finish(configuration)
    }
}

impl Found {
    fn interface(&mut self, iface: Interface) {
        // A data alternate setting ends when the next interface descriptor starts.
        if let Some((_, _, Some(_), Some(_))) = self.data {
            self.data_done = true;
        } else if !self.data_done {
            self.data = None;
        }
        if self.control.is_none()
            && iface.class == CLASS_COMMUNICATIONS
            && iface.subclass == SUBCLASS_ECM
        {
            self.control = Some(iface.number);
        }
        if !self.data_done && iface.class == CLASS_DATA && Some(iface.number) == self.union_data {
            self.data = Some((iface.number, iface.alt, None, None));
        }
    }

    fn functional(&mut self, record: &[u8]) {
        let Some(&subtype) = record.get(2) else {
            log::warn!("cdc-ecm: class descriptor without subtype skipped");
            return;
        };
        match (subtype, record.len()) {
            (SUBTYPE_HEADER, 5..) => self.header = true,
            // bControlInterface, then bSubordinateInterface0 (the data interface).
            (SUBTYPE_UNION, 5..) if Some(record[3]) == self.control => {
                self.union_data.get_or_insert(record[4]);
            }
            // iMACAddress at 3, bmEthernetStatistics 4..8, wMaxSegmentSize 8..10.
            (SUBTYPE_ETHERNET, 13..) => {
                let mss = u16::from_le_bytes([record[8], record[9]]);
                self.ethernet.get_or_insert((record[3], mss));
            }
            (SUBTYPE_HEADER | SUBTYPE_UNION | SUBTYPE_ETHERNET, len) => {
                log::warn!("cdc-ecm: functional descriptor {subtype:#04x} of {len} bytes skipped");
            }
            _ => {}
        }
    }

    fn endpoint(&mut self, iface: Interface, record: &[u8]) {
        let address = record[2];
        let ep = Endpoint {
            number: address & 0x0F,
            max_packet_size: u16::from_le_bytes([record[4], record[5]]) & 0x07FF,
            interval: record[6],
        };
        let is_in = address & 0x80 != 0;
        let kind = record[3] & 0x03;
        if ep.number == 0 || ep.max_packet_size == 0 {
            log::warn!("cdc-ecm: unusable endpoint {address:#04x} skipped");
            return;
        }
        if Some(iface.number) == self.control && kind == XFER_INTERRUPT && is_in {
            self.notify.get_or_insert(ep);
        }
        if let Some((number, alt, bulk_in, bulk_out)) = &mut self.data {
            if *number == iface.number && *alt == iface.alt && kind == XFER_BULK {
                let slot = if is_in { bulk_in } else { bulk_out };
                slot.get_or_insert(ep);
            }
        }
    }

    fn finish(self, configuration: u8) -> Result<EcmFunction, FunctionError> {
        let control_interface = self.control.ok_or(FunctionError::NotEcm)?;
        if !self.header {
            return Err(FunctionError::MissingHeader);
        }
        self.union_data.ok_or(FunctionError::MissingUnion)?;
        let (mac_string, max_segment_size) = self.ethernet.ok_or(FunctionError::MissingEthernet)?;
        let Some((data_interface, data_alt_setting, Some(bulk_in), Some(bulk_out))) = self.data
        else {
            return Err(FunctionError::NoDataEndpoints);
        };
        Ok(EcmFunction {
            configuration,
            control_interface,
            data_interface,
            data_alt_setting,
            bulk_in,
            bulk_out,
            notify: self.notify,
            mac_string,
            max_segment_size,
        })
    }
}
