//! Zero-copy views of USB standard and class descriptors.
//!
//! Each view wraps a byte buffer (`T: AsRef<[u8]>`, as smoltcp's `wire` does), checks it once in
//! `new_checked`, and then reads fields without further checks. Nothing here panics on short or
//! hostile input: a bad `bLength` ends iteration instead. Layouts are from the USB 2.0
//! specification chapter 9 (§9.6) and, for the CDC functional descriptors, from the USB CDC 1.2
//! specification (§5.2.3) as used by Linux `drivers/net/usb/cdc_ether.c`.

use crate::usb::{DeviceAddress, Direction, Pipe, Speed, TransferType};

/// bDescriptorType of a device descriptor.
pub const TYPE_DEVICE: u8 = 0x01;
/// bDescriptorType of a configuration descriptor.
pub const TYPE_CONFIGURATION: u8 = 0x02;
/// bDescriptorType of a string descriptor.
pub const TYPE_STRING: u8 = 0x03;
/// bDescriptorType of an interface descriptor.
pub const TYPE_INTERFACE: u8 = 0x04;
/// bDescriptorType of an endpoint descriptor.
pub const TYPE_ENDPOINT: u8 = 0x05;
/// bDescriptorType of a class-specific interface descriptor (CDC `CS_INTERFACE`).
pub const TYPE_CS_INTERFACE: u8 = 0x24;

/// Why a buffer is not the descriptor it was taken for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DescriptorError {
    /// The buffer (or `bLength`) is shorter than the descriptor's fixed fields.
    Truncated,
    /// `bDescriptorType` (or the class-specific subtype) is not the expected one.
    WrongType,
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

/// Checks that `buf` holds a descriptor of `kind` with at least `min` bytes by `bLength`.
fn check(buf: &[u8], kind: u8, min: usize) -> Result<(), DescriptorError> {
    if buf.len() < min || usize::from(buf[0]) < min {
        return Err(DescriptorError::Truncated);
    }
    if buf[1] != kind {
        return Err(DescriptorError::WrongType);
    }
    Ok(())
}

/// The 18-byte device descriptor (USB 2.0 §9.6.1).
#[derive(Clone, Copy, Debug)]
pub struct DeviceDescriptor<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> DeviceDescriptor<T> {
    /// Length of a device descriptor.
    pub const LEN: usize = 18;

    /// A view of `buf`, checked for length and type.
    pub fn new_checked(buf: T) -> Result<Self, DescriptorError> {
        check(buf.as_ref(), TYPE_DEVICE, Self::LEN)?;
        Ok(Self { buf })
    }

    fn b(&self) -> &[u8] {
        self.buf.as_ref()
    }

    /// bcdUSB.
    pub fn usb_version(&self) -> u16 {
        le16(self.b(), 2)
    }
    /// bDeviceClass.
    pub fn class(&self) -> u8 {
        self.b()[4]
    }
    /// bDeviceSubClass.
    pub fn subclass(&self) -> u8 {
        self.b()[5]
    }
    /// bDeviceProtocol.
    pub fn protocol(&self) -> u8 {
        self.b()[6]
    }
    /// bMaxPacketSize0.
    pub fn max_packet_size0(&self) -> u8 {
        self.b()[7]
    }
    /// idVendor.
    pub fn vendor_id(&self) -> u16 {
        le16(self.b(), 8)
    }
    /// idProduct.
    pub fn product_id(&self) -> u16 {
        le16(self.b(), 10)
    }
    /// bcdDevice.
    pub fn device_version(&self) -> u16 {
        le16(self.b(), 12)
    }
    /// iSerialNumber (0: none).
    pub fn serial_index(&self) -> u8 {
        self.b()[16]
    }
    /// bNumConfigurations.
    pub fn num_configurations(&self) -> u8 {
        self.b()[17]
    }
}

/// A configuration descriptor with everything that follows it (USB 2.0 §9.6.3).
#[derive(Clone, Copy, Debug)]
pub struct ConfigurationDescriptor<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> ConfigurationDescriptor<T> {
    /// Length of the configuration descriptor's own fields.
    pub const LEN: usize = 9;

    /// A view of `buf`, checked for length and type. `wTotalLength` may exceed the buffer (a
    /// truncated read); iteration then stops at the buffer's end.
    pub fn new_checked(buf: T) -> Result<Self, DescriptorError> {
        check(buf.as_ref(), TYPE_CONFIGURATION, Self::LEN)?;
        Ok(Self { buf })
    }

    fn b(&self) -> &[u8] {
        self.buf.as_ref()
    }

    /// wTotalLength: bytes of this descriptor and all that follow it.
    pub fn total_length(&self) -> u16 {
        le16(self.b(), 2)
    }
    /// bNumInterfaces.
    pub fn num_interfaces(&self) -> u8 {
        self.b()[4]
    }
    /// bConfigurationValue: the value for SET_CONFIGURATION.
    pub fn configuration_value(&self) -> u8 {
        self.b()[5]
    }
    /// bmAttributes.
    pub fn attributes(&self) -> u8 {
        self.b()[7]
    }
    /// bMaxPower in 2 mA units.
    pub fn max_power(&self) -> u8 {
        self.b()[8]
    }

    /// The descriptors after this one, up to `wTotalLength` or the end of the buffer.
    pub fn descriptors(&self) -> Descriptors<'_> {
        let b = self.b();
        let end = usize::from(self.total_length()).min(b.len());
        let own = usize::from(b[0]);
        Descriptors {
            rest: b.get(own..end).unwrap_or(&[]),
        }
    }

    /// The interface descriptor for `number`/`alternate` and its endpoints.
    pub fn interface(&self, number: u8, alternate: u8) -> Option<Interface<'_>> {
        self.interfaces()
            .find(|i| i.descriptor.number() == number && i.descriptor.alternate() == alternate)
    }

    /// Every interface (alternate setting) in order, each with the descriptors that follow it.
    pub fn interfaces(&self) -> Interfaces<'_> {
        Interfaces {
            inner: self.descriptors(),
        }
    }
}

/// One descriptor inside a configuration: its type and its `bLength` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawDescriptor<'a> {
    /// bDescriptorType.
    pub kind: u8,
    /// The whole descriptor, `bLength` bytes.
    pub bytes: &'a [u8],
}

/// Iterator over the descriptors of a configuration; stops at the first malformed one.
#[derive(Clone, Debug)]
pub struct Descriptors<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Descriptors<'a> {
    type Item = RawDescriptor<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        let len = usize::from(*self.rest.first()?);
        if len < 2 || len > self.rest.len() {
            self.rest = &[];
            return None;
        }
        let (bytes, rest) = self.rest.split_at(len);
        self.rest = rest;
        Some(RawDescriptor {
            kind: bytes[1],
            bytes,
        })
    }
}

/// An interface descriptor (USB 2.0 §9.6.5).
#[derive(Clone, Copy, Debug)]
pub struct InterfaceDescriptor<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> InterfaceDescriptor<T> {
    /// Length of an interface descriptor.
    pub const LEN: usize = 9;

    /// A view of `buf`, checked for length and type.
    pub fn new_checked(buf: T) -> Result<Self, DescriptorError> {
        check(buf.as_ref(), TYPE_INTERFACE, Self::LEN)?;
        Ok(Self { buf })
    }

    fn b(&self) -> &[u8] {
        self.buf.as_ref()
    }

    /// bInterfaceNumber.
    pub fn number(&self) -> u8 {
        self.b()[2]
    }
    /// bAlternateSetting.
    pub fn alternate(&self) -> u8 {
        self.b()[3]
    }
    /// bNumEndpoints.
    pub fn num_endpoints(&self) -> u8 {
        self.b()[4]
    }
    /// bInterfaceClass.
    pub fn class(&self) -> u8 {
        self.b()[5]
    }
    /// bInterfaceSubClass.
    pub fn subclass(&self) -> u8 {
        self.b()[6]
    }
    /// bInterfaceProtocol.
    pub fn protocol(&self) -> u8 {
        self.b()[7]
    }
}

/// Transfer type in an endpoint's bmAttributes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndpointType {
    /// Control.
    Control,
    /// Isochronous.
    Isochronous,
    /// Bulk.
    Bulk,
    /// Interrupt.
    Interrupt,
}

/// An endpoint descriptor (USB 2.0 §9.6.6).
#[derive(Clone, Copy, Debug)]
pub struct EndpointDescriptor<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> EndpointDescriptor<T> {
    /// Length of an endpoint descriptor.
    pub const LEN: usize = 7;

    /// A view of `buf`, checked for length and type.
    pub fn new_checked(buf: T) -> Result<Self, DescriptorError> {
        check(buf.as_ref(), TYPE_ENDPOINT, Self::LEN)?;
        Ok(Self { buf })
    }

    fn b(&self) -> &[u8] {
        self.buf.as_ref()
    }

    /// bEndpointAddress: number in bits 3..0, direction in bit 7.
    pub fn address(&self) -> u8 {
        self.b()[2]
    }
    /// Endpoint number, 0 to 15.
    pub fn number(&self) -> u8 {
        self.address() & 0x0f
    }
    /// Direction (bit 7 of the address: 1 is IN).
    pub fn direction(&self) -> Direction {
        if self.address() & 0x80 != 0 {
            Direction::In
        } else {
            Direction::Out
        }
    }
    /// Transfer type from bmAttributes bits 1..0.
    pub fn endpoint_type(&self) -> EndpointType {
        match self.b()[3] & 0x03 {
            0 => EndpointType::Control,
            1 => EndpointType::Isochronous,
            2 => EndpointType::Bulk,
            _ => EndpointType::Interrupt,
        }
    }
    /// wMaxPacketSize bits 10..0 (the packet size without high-bandwidth multipliers).
    pub fn max_packet_size(&self) -> u16 {
        le16(self.b(), 4) & 0x07ff
    }
    /// bInterval.
    pub fn interval(&self) -> u8 {
        self.b()[6]
    }

    /// A [`Pipe`] for this endpoint of `device`, or `None` for control, isochronous or
    /// endpoint-0 descriptors, which are not data pipes.
    pub fn pipe(&self, device: DeviceAddress, speed: Speed) -> Option<Pipe> {
        let kind = match self.endpoint_type() {
            EndpointType::Bulk => TransferType::Bulk,
            EndpointType::Interrupt => TransferType::Interrupt,
            EndpointType::Control | EndpointType::Isochronous => return None,
        };
        if self.number() == 0 {
            return None;
        }
        Some(Pipe {
            device,
            speed,
            endpoint: self.number(),
            direction: self.direction(),
            kind,
            max_packet_size: self.max_packet_size(),
            interval: self.interval(),
        })
    }
}

/// An interface (one alternate setting) and the descriptors up to the next interface.
#[derive(Clone, Debug)]
pub struct Interface<'a> {
    /// The interface descriptor.
    pub descriptor: InterfaceDescriptor<&'a [u8]>,
    /// Class-specific and endpoint descriptors that follow it.
    pub body: Descriptors<'a>,
}

impl<'a> Interface<'a> {
    /// The interface's endpoint descriptors.
    pub fn endpoints(&self) -> impl Iterator<Item = EndpointDescriptor<&'a [u8]>> + 'a {
        self.body
            .clone()
            .filter_map(|d| EndpointDescriptor::new_checked(d.bytes).ok())
    }

    /// The interface's class-specific (`CS_INTERFACE`) descriptors.
    pub fn class_specific(&self) -> impl Iterator<Item = ClassSpecific<&'a [u8]>> + 'a {
        self.body
            .clone()
            .filter_map(|d| ClassSpecific::new_checked(d.bytes).ok())
    }

    /// The data pipes of this interface on `device`.
    pub fn pipes(&self, device: DeviceAddress, speed: Speed) -> InterfacePipes {
        let mut pipes = InterfacePipes::default();
        for ep in self.endpoints() {
            let Some(pipe) = ep.pipe(device, speed) else {
                continue;
            };
            let slot = match (pipe.kind, pipe.direction) {
                (TransferType::Bulk, Direction::In) => &mut pipes.bulk_in,
                (TransferType::Bulk, Direction::Out) => &mut pipes.bulk_out,
                (TransferType::Interrupt, Direction::In) => &mut pipes.interrupt_in,
                (TransferType::Interrupt, Direction::Out) => continue,
            };
            // The first endpoint of each kind wins, as in Linux usbnet_get_endpoints().
            slot.get_or_insert(pipe);
        }
        pipes
    }
}

/// Iterator over the interfaces of a configuration.
#[derive(Clone, Debug)]
pub struct Interfaces<'a> {
    inner: Descriptors<'a>,
}

impl<'a> Iterator for Interfaces<'a> {
    type Item = Interface<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let d = self.inner.next()?;
            let Ok(descriptor) = InterfaceDescriptor::new_checked(d.bytes) else {
                continue;
            };
            let mut body_len = 0;
            for next in self.inner.clone() {
                if next.kind == TYPE_INTERFACE {
                    break;
                }
                body_len += next.bytes.len();
            }
            let (body, rest) = self.inner.rest.split_at(body_len);
            self.inner.rest = rest;
            return Some(Interface {
                descriptor,
                body: Descriptors { rest: body },
            });
        }
    }
}

/// The bulk and interrupt pipes found in one interface.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InterfacePipes {
    /// First bulk IN endpoint.
    pub bulk_in: Option<Pipe>,
    /// First bulk OUT endpoint.
    pub bulk_out: Option<Pipe>,
    /// First interrupt IN endpoint.
    pub interrupt_in: Option<Pipe>,
}

/// A class-specific interface descriptor (`CS_INTERFACE`): subtype in byte 2.
#[derive(Clone, Copy, Debug)]
pub struct ClassSpecific<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> ClassSpecific<T> {
    /// A view of `buf`, checked for length (3 bytes at least) and type.
    pub fn new_checked(buf: T) -> Result<Self, DescriptorError> {
        check(buf.as_ref(), TYPE_CS_INTERFACE, 3)?;
        Ok(Self { buf })
    }

    /// bDescriptorSubtype.
    pub fn subtype(&self) -> u8 {
        self.buf.as_ref()[2]
    }

    /// The whole descriptor.
    pub fn bytes(&self) -> &[u8] {
        let b = self.buf.as_ref();
        &b[..usize::from(b[0]).min(b.len())]
    }
}

/// CDC Union functional descriptor (CDC 1.2 §5.2.3.2, subtype 0x06).
#[derive(Clone, Copy, Debug)]
pub struct CdcUnion<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> CdcUnion<T> {
    /// bDescriptorSubtype of a Union functional descriptor.
    pub const SUBTYPE: u8 = 0x06;

    /// A view of `buf`: a `CS_INTERFACE` descriptor of subtype 0x06 with at least one
    /// subordinate interface.
    pub fn new_checked(buf: T) -> Result<Self, DescriptorError> {
        check(buf.as_ref(), TYPE_CS_INTERFACE, 5)?;
        if buf.as_ref()[2] != Self::SUBTYPE {
            return Err(DescriptorError::WrongType);
        }
        Ok(Self { buf })
    }

    /// bControlInterface.
    pub fn control_interface(&self) -> u8 {
        self.buf.as_ref()[3]
    }

    /// bSubordinateInterface0..N.
    pub fn subordinate_interfaces(&self) -> &[u8] {
        let b = self.buf.as_ref();
        &b[4..usize::from(b[0]).min(b.len())]
    }
}

/// CDC Ethernet Networking functional descriptor (CDC ECM 1.2 §5.4, subtype 0x0f).
#[derive(Clone, Copy, Debug)]
pub struct CdcEthernet<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> CdcEthernet<T> {
    /// bDescriptorSubtype of an Ethernet Networking functional descriptor.
    pub const SUBTYPE: u8 = 0x0f;
    /// Length of the descriptor.
    pub const LEN: usize = 13;

    /// A view of `buf`, checked for length, type and subtype.
    pub fn new_checked(buf: T) -> Result<Self, DescriptorError> {
        check(buf.as_ref(), TYPE_CS_INTERFACE, Self::LEN)?;
        if buf.as_ref()[2] != Self::SUBTYPE {
            return Err(DescriptorError::WrongType);
        }
        Ok(Self { buf })
    }

    fn b(&self) -> &[u8] {
        self.buf.as_ref()
    }

    /// iMACAddress: string descriptor index holding the MAC as 12 hex digits.
    pub fn mac_string_index(&self) -> u8 {
        self.b()[3]
    }
    /// bmEthernetStatistics.
    pub fn statistics(&self) -> u32 {
        let b = self.b();
        u32::from_le_bytes([b[4], b[5], b[6], b[7]])
    }
    /// wMaxSegmentSize.
    pub fn max_segment_size(&self) -> u16 {
        le16(self.b(), 8)
    }
    /// wNumberMCFilters.
    pub fn multicast_filters(&self) -> u16 {
        le16(self.b(), 10)
    }
    /// bNumberPowerFilters.
    pub fn power_filters(&self) -> u8 {
        self.b()[12]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A vendor-class interface with bulk IN 1, bulk OUT 2, interrupt IN 3 (the RTL8152 layout).
    const CONFIG: [u8; 39] = [
        9, 2, 39, 0, 1, 1, 0, 0xa0, 50, // configuration
        9, 4, 0, 0, 3, 0xff, 0xff, 0, 0, // interface 0
        7, 5, 0x81, 2, 0x00, 0x02, 0, // bulk IN 1, 512
        7, 5, 0x02, 2, 0x00, 0x02, 0, // bulk OUT 2, 512
        7, 5, 0x83, 3, 0x02, 0x00, 8, // interrupt IN 3, 2 bytes, interval 8
    ];

    fn dev() -> DeviceAddress {
        DeviceAddress::new(1).unwrap()
    }

    #[test]
    fn device_descriptor_fields() {
        let d = [
            18, 1, 0x00, 0x02, 0, 0, 0, 64, 0xda, 0x0b, 0x52, 0x81, 0x00, 0x20, 1, 2, 3, 1,
        ];
        let v = DeviceDescriptor::new_checked(&d[..]).unwrap();
        assert_eq!(v.vendor_id(), 0x0bda);
        assert_eq!(v.product_id(), 0x8152);
        assert_eq!(v.usb_version(), 0x0200);
        assert_eq!(v.max_packet_size0(), 64);
        assert_eq!(v.serial_index(), 3);
        assert_eq!(v.num_configurations(), 1);
        assert_eq!(
            DeviceDescriptor::new_checked(&d[..17]).unwrap_err(),
            DescriptorError::Truncated
        );
        let mut wrong = d;
        wrong[1] = 2;
        assert_eq!(
            DeviceDescriptor::new_checked(&wrong[..]).unwrap_err(),
            DescriptorError::WrongType
        );
    }

    #[test]
    fn finds_pipes_of_interface() {
        let c = ConfigurationDescriptor::new_checked(&CONFIG[..]).unwrap();
        assert_eq!(c.total_length(), 39);
        assert_eq!(c.configuration_value(), 1);
        assert_eq!(c.descriptors().count(), 4);
        let i = c.interface(0, 0).unwrap();
        assert_eq!(i.descriptor.class(), 0xff);
        let p = i.pipes(dev(), Speed::High);
        let bulk_in = p.bulk_in.unwrap();
        assert_eq!((bulk_in.endpoint, bulk_in.max_packet_size), (1, 512));
        assert_eq!(p.bulk_out.unwrap().endpoint, 2);
        let int = p.interrupt_in.unwrap();
        assert_eq!(
            (int.endpoint, int.interval, int.kind),
            (3, 8, TransferType::Interrupt)
        );
        assert!(c.interface(1, 0).is_none());
    }

    #[test]
    fn hostile_lengths_end_iteration_without_panic() {
        // Every truncation and every corruption of each byte: no panic, bounded output.
        for cut in 0..CONFIG.len() {
            if let Ok(c) = ConfigurationDescriptor::new_checked(&CONFIG[..cut]) {
                assert!(c.descriptors().count() <= 4);
                for i in c.interfaces() {
                    let _ = i.pipes(dev(), Speed::High);
                }
            }
        }
        for at in 0..CONFIG.len() {
            for v in [0u8, 1, 2, 7, 9, 0xff] {
                let mut c = CONFIG;
                c[at] = v;
                if let Ok(c) = ConfigurationDescriptor::new_checked(&c[..]) {
                    assert!(c.descriptors().count() <= 20);
                    for i in c.interfaces() {
                        let _ = i.pipes(dev(), Speed::High);
                        let _ = i.class_specific().count();
                    }
                }
            }
        }
    }

    #[test]
    fn zero_length_descriptor_stops() {
        let mut c = CONFIG;
        c[9] = 0;
        let c = ConfigurationDescriptor::new_checked(&c[..]).unwrap();
        assert_eq!(c.descriptors().count(), 0);
    }

    #[test]
    fn cdc_functional_descriptors() {
        let config = [
            9u8, 2, 43, 0, 2, 1, 0, 0x80, 50, // configuration
            9, 4, 0, 0, 1, 2, 6, 0, 0, // CDC ECM control interface
            5, 0x24, 0x06, 0, 1, // union: control 0, data 1
            13, 0x24, 0x0f, 4, 0, 0, 0, 0, 0xea, 0x05, 0, 0,
            0, // ethernet: MAC string 4, 1514
            7, 5, 0x83, 3, 16, 0, 9, // interrupt IN 3
        ];
        let c = ConfigurationDescriptor::new_checked(&config[..]).unwrap();
        let i = c.interface(0, 0).unwrap();
        let cs: Vec<_> = i.class_specific().collect();
        assert_eq!(cs.len(), 2);
        let u = CdcUnion::new_checked(cs[0].bytes()).unwrap();
        assert_eq!(u.control_interface(), 0);
        assert_eq!(u.subordinate_interfaces(), &[1]);
        let e = CdcEthernet::new_checked(cs[1].bytes()).unwrap();
        assert_eq!(e.mac_string_index(), 4);
        assert_eq!(e.max_segment_size(), 1514);
        assert_eq!(
            CdcEthernet::new_checked(cs[0].bytes()).unwrap_err(),
            DescriptorError::Truncated
        );
        assert_eq!(
            CdcUnion::new_checked(cs[1].bytes()).unwrap_err(),
            DescriptorError::WrongType
        );
        assert_eq!(
            i.pipes(dev(), Speed::High).interrupt_in.unwrap().endpoint,
            3
        );
    }
}
