//! The contract between the simulated USB bus and a simulated USB device's function.
//!
//! The bus model (driven by the DWC2 model) runs the standard device framework: control-transfer
//! stages, SET_ADDRESS, GET_DESCRIPTOR, SET_CONFIGURATION and SET_INTERFACE bookkeeping, data
//! toggles. A function (the RTL8152 model, a CDC-ECM model) supplies its descriptors and answers
//! class/vendor requests and data transactions, one packet at a time.

use crate::usb::{SetupPacket, Speed};

/// A function's answer to an OUT data packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handshake {
    /// Packet accepted.
    Ack,
    /// Not ready: the host retries later.
    Nak,
    /// Endpoint halted or request not supported.
    Stall,
}

/// A function's answer to an IN token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InResponse {
    /// A data packet of this many bytes was written to the buffer (at most max packet size).
    Data(usize),
    /// Nothing to send now.
    Nak,
    /// Endpoint halted.
    Stall,
}

/// A control request the function refuses: the bus answers STALL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stall;

/// A simulated USB device function behind the standard device framework.
pub trait UsbFunction: Send {
    /// The speed the device connects at.
    fn speed(&self) -> Speed;
    /// The 18-byte device descriptor.
    fn device_descriptor(&self) -> [u8; 18];
    /// The whole configuration descriptor (wTotalLength bytes).
    fn configuration_descriptor(&self) -> &[u8];
    /// A string descriptor, or `None` (the bus stalls).
    fn string_descriptor(&self, index: u8, language: u16) -> Option<Vec<u8>>;
    /// SET_CONFIGURATION with this value (0 deconfigures).
    fn set_configuration(&mut self, value: u8) -> Result<(), Stall>;
    /// SET_INTERFACE.
    fn set_interface(&mut self, interface: u8, alternate: u8) -> Result<(), Stall>;
    /// A class or vendor request with an IN data stage: the data to return (the bus truncates
    /// it to wLength).
    fn control_in(&mut self, setup: &SetupPacket) -> Result<Vec<u8>, Stall>;
    /// A class or vendor request with an OUT (or no) data stage.
    fn control_out(&mut self, setup: &SetupPacket, data: &[u8]) -> Result<(), Stall>;
    /// One OUT data packet on a non-control endpoint.
    fn data_out(&mut self, endpoint: u8, packet: &[u8]) -> Handshake;
    /// One IN token on a non-control endpoint; `buf` holds max packet size bytes.
    fn data_in(&mut self, endpoint: u8, buf: &mut [u8]) -> InResponse;
    /// USB bus reset: back to the default state.
    fn bus_reset(&mut self);
    /// Unplugged from the bus: the device loses its power (VBUS) and with it any state a
    /// bus reset keeps. Nothing by default.
    fn power_off(&mut self) {}
}
