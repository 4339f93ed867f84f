//! The contract between a USB host controller driver and the class drivers above it.
//!
//! Control transfers are blocking and bounded by the controller's timeouts: class drivers use
//! them for register access and setup. Bulk and interrupt transfers are split-phase so that a
//! poll-driven network stack never blocks on a NAKing endpoint: an IN pipe keeps one transfer in
//! flight and [`UsbHost::poll_in`] reports its completion; an OUT pipe takes one transfer at a
//! time through [`UsbHost::submit_out`] and [`UsbHost::poll_out`]. The controller owns the DMA
//! memory of a transfer while it runs; data is copied in at submission and out at completion.

use core::task::Poll;

/// A device address on the bus, 1 to 127 (0 is the default address during enumeration).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DeviceAddress(u8);

impl DeviceAddress {
    /// The address every device answers to before SET_ADDRESS.
    pub const DEFAULT: Self = Self(0);

    /// An address, or `None` outside 0..=127.
    pub const fn new(addr: u8) -> Option<Self> {
        if addr <= 127 {
            Some(Self(addr))
        } else {
            None
        }
    }

    /// The raw 7-bit address.
    pub const fn get(self) -> u8 {
        self.0
    }
}

/// The speed a device was detected at on the root port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Speed {
    /// 1.5 Mbit/s.
    Low,
    /// 12 Mbit/s.
    Full,
    /// 480 Mbit/s.
    High,
}

/// Data direction of an endpoint, seen from the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Device to host.
    In,
    /// Host to device.
    Out,
}

/// Transfer type of a non-control endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransferType {
    /// Bulk: bandwidth as available, retried on NAK.
    Bulk,
    /// Interrupt: polled every `interval` frames (microframes at high speed).
    Interrupt,
}

/// A data pipe: an endpoint of an addressed device, ready for bulk or interrupt transfers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pipe {
    /// The device the endpoint belongs to.
    pub device: DeviceAddress,
    /// Speed of the device (decides split transactions and packet sizes).
    pub speed: Speed,
    /// Endpoint number, 1 to 15.
    pub endpoint: u8,
    /// Direction of the endpoint.
    pub direction: Direction,
    /// Bulk or interrupt.
    pub kind: TransferType,
    /// wMaxPacketSize of the endpoint.
    pub max_packet_size: u16,
    /// bInterval of the endpoint (interrupt pipes).
    pub interval: u8,
}

/// The 8-byte SETUP packet of a control transfer (USB 2.0 §9.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SetupPacket {
    /// bmRequestType: direction, type and recipient.
    pub request_type: u8,
    /// bRequest.
    pub request: u8,
    /// wValue.
    pub value: u16,
    /// wIndex.
    pub index: u16,
    /// wLength: bytes in the data stage.
    pub length: u16,
}

impl SetupPacket {
    /// The packet as sent on the wire (little-endian fields).
    pub fn to_bytes(&self) -> [u8; 8] {
        let [v0, v1] = self.value.to_le_bytes();
        let [i0, i1] = self.index.to_le_bytes();
        let [l0, l1] = self.length.to_le_bytes();
        [self.request_type, self.request, v0, v1, i0, i1, l0, l1]
    }

    /// Parses a SETUP packet from its 8 wire bytes.
    pub fn from_bytes(b: &[u8; 8]) -> Self {
        Self {
            request_type: b[0],
            request: b[1],
            value: u16::from_le_bytes([b[2], b[3]]),
            index: u16::from_le_bytes([b[4], b[5]]),
            length: u16::from_le_bytes([b[6], b[7]]),
        }
    }

    /// True when the data stage (if any) goes device to host.
    pub fn is_in(&self) -> bool {
        self.request_type & 0x80 != 0
    }
}

/// Why a transfer failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UsbError {
    /// The endpoint answered STALL.
    Stall,
    /// No answer within the transfer's time limit (NAKs included, for control transfers).
    Timeout,
    /// The device sent more than the transfer asked for.
    Babble,
    /// CRC, bit-stuff, timeout or PID errors exhausted the controller's retries.
    Transaction,
    /// Data toggle mismatch that could not be recovered.
    DataToggle,
    /// DMA could not reach memory (AHB error).
    Dma,
    /// The device is not (or no longer) connected.
    Disconnected,
    /// A transfer is already in flight on this pipe, or no host channel is free.
    Busy,
    /// The buffer is larger than one transfer can carry, or empty where data is required.
    BadLength,
    /// The request is not valid in the controller's current state (e.g. port not enabled).
    InvalidState,
}

/// What a class driver sees of a USB host controller.
///
/// Implemented by [`dwc2::Dwc2Host`](crate::usb::dwc2) on hardware and in the simulator, and by
/// mocks in class-driver tests.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
pub trait UsbHost {
    /// Runs a control transfer whose data stage (if `data` is non-empty) is device to host.
    /// Returns the bytes received, which may be fewer than `data.len()`.
    fn control_in(
        &mut self,
        device: DeviceAddress,
        setup: SetupPacket,
        data: &mut [u8],
    ) -> Result<usize, UsbError>;

    /// Runs a control transfer whose data stage (if `data` is non-empty) is host to device.
    fn control_out(
        &mut self,
        device: DeviceAddress,
        setup: SetupPacket,
        data: &[u8],
    ) -> Result<(), UsbError>;

    /// Drives the IN pipe: starts a transfer of up to `buf.len()` bytes when none is in flight,
    /// and returns `Ready` with the bytes copied into `buf` once one completes. A short packet
    /// ends a transfer early. `Pending` means the device has not answered with data yet.
    fn poll_in(&mut self, pipe: &Pipe, buf: &mut [u8]) -> Poll<Result<usize, UsbError>>;

    /// Queues `data` as one OUT transfer (ended by a short or zero-length packet as needed).
    /// Fails with [`UsbError::Busy`] while the previous transfer on the pipe is in flight.
    fn submit_out(&mut self, pipe: &Pipe, data: &[u8]) -> Result<(), UsbError>;

    /// The state of the pipe's last OUT transfer: `Pending` while it runs, `Ready(Ok(()))` when
    /// the pipe is idle, `Ready(Err(_))` once for a transfer that failed.
    fn poll_out(&mut self, pipe: &Pipe) -> Poll<Result<(), UsbError>>;

    /// Clears the halt of a STALLed endpoint: CLEAR_FEATURE(ENDPOINT_HALT) to it, and the
    /// pipe's next transfer starts with DATA0, as the device's toggle is reset too (USB 2.0
    /// §9.4.5). Fails with [`UsbError::Busy`] while a transfer is in flight on the pipe.
    fn clear_halt(&mut self, pipe: Pipe) -> Result<(), UsbError>;
}

/// CLEAR_FEATURE(ENDPOINT_HALT) to the endpoint of `pipe` (USB 2.0 §9.4.1, table 9-6:
/// bmRequestType 0x02 (standard, endpoint), bRequest 1, wValue 0 (ENDPOINT_HALT), wIndex the
/// endpoint address with the direction bit).
pub fn clear_halt_request(pipe: &Pipe) -> SetupPacket {
    let direction = match pipe.direction {
        Direction::In => 0x80,
        Direction::Out => 0,
    };
    SetupPacket {
        request_type: 0x02,
        request: 1,
        value: 0,
        index: u16::from(pipe.endpoint & 0x0f) | direction,
        length: 0,
    }
}

/// A change on a root port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortEvent {
    /// A device was plugged in: enumerate it with [`RootPort::connect`].
    Connected,
    /// The device went away (or the port was disabled); its transfers failed.
    Disconnected,
}

/// The root port of a host controller with one device: hot-plug detection and enumeration.
///
/// Implemented by [`dwc2::Dwc2Host`](crate::usb::dwc2::Dwc2Host); a link supervisor
/// ([`crate::eth::supervisor`]) uses it to bring a NIC back after it was unplugged.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
pub trait RootPort {
    /// Looks at the port: a newly plugged device, or the loss of the current one (failing its
    /// transfers). Cheap enough for every poll.
    fn poll_port(&mut self) -> Option<PortEvent>;

    /// Waits up to `timeout_ms` for a device, resets the port and enumerates the device at
    /// `address` (configured, ready for a class driver).
    fn connect(&mut self, address: DeviceAddress, timeout_ms: u32) -> Result<UsbDevice, UsbError>;
}

/// Largest configuration descriptor (with all interface, endpoint and class descriptors) kept.
pub const MAX_CONFIG_DESCRIPTOR: usize = 512;

/// An enumerated device: its address, speed and the raw descriptors read during enumeration.
///
/// Class drivers probe with it: they check the device descriptor's IDs and find their
/// interfaces and endpoints in the configuration descriptor (see [`descriptor`](crate::usb::descriptor)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsbDevice {
    /// The address given with SET_ADDRESS.
    pub address: DeviceAddress,
    /// The speed detected on the port.
    pub speed: Speed,
    /// The 18-byte device descriptor.
    pub device_descriptor: [u8; 18],
    /// The whole configuration descriptor; `config_len` bytes are valid.
    pub config_descriptor: [u8; MAX_CONFIG_DESCRIPTOR],
    /// Valid bytes in `config_descriptor`.
    pub config_len: usize,
}

impl UsbDevice {
    /// idVendor from the device descriptor.
    pub fn vendor_id(&self) -> u16 {
        u16::from_le_bytes([self.device_descriptor[8], self.device_descriptor[9]])
    }

    /// idProduct from the device descriptor.
    pub fn product_id(&self) -> u16 {
        u16::from_le_bytes([self.device_descriptor[10], self.device_descriptor[11]])
    }

    /// bMaxPacketSize0: the packet size of the default control endpoint.
    pub fn max_packet_size0(&self) -> u8 {
        self.device_descriptor[7]
    }

    /// The valid bytes of the configuration descriptor.
    pub fn config(&self) -> &[u8] {
        &self.config_descriptor[..self.config_len.min(MAX_CONFIG_DESCRIPTOR)]
    }
}
