//! A simulated USB bus with one device behind the standard device framework (USB 2.0 ch. 9).
//!
//! The bus answers tokens the way a device's serial interface engine would: it keeps the
//! device address, the configuration, the data toggles of every endpoint and the stage of the
//! control transfer on endpoint 0; it serves GET_DESCRIPTOR, SET_ADDRESS, SET_CONFIGURATION,
//! SET_INTERFACE, GET_STATUS and CLEAR_FEATURE(ENDPOINT_HALT) itself and hands class and vendor
//! requests and data packets to the [`UsbFunction`]. The controller model drives it one
//! transaction at a time.

use crate::sim::usb_function::{Handshake, InResponse, UsbFunction};
use crate::usb::{SetupPacket, Speed};

/// Data packet PID (the toggle).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataPid {
    /// DATA0.
    Data0,
    /// DATA1.
    Data1,
}

impl DataPid {
    /// The other toggle.
    pub fn flipped(self) -> Self {
        match self {
            Self::Data0 => Self::Data1,
            Self::Data1 => Self::Data0,
        }
    }
}

/// What came back for an IN token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InToken {
    /// A data packet of `len` bytes (written to the caller's buffer) with this PID.
    Data {
        /// Bytes in the packet.
        len: usize,
        /// Its PID.
        pid: DataPid,
    },
    /// NAK handshake.
    Nak,
    /// STALL handshake.
    Stall,
    /// Nothing: no device at that address, or the device is gone (the host times out).
    NoResponse,
}

/// What came back for an OUT or SETUP transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutToken {
    /// ACK handshake.
    Ack,
    /// NAK handshake.
    Nak,
    /// STALL handshake.
    Stall,
    /// Nothing: no device at that address, or the packet was malformed.
    NoResponse,
}

/// Standard request codes (USB 2.0 table 9-4).
mod request {
    pub const GET_STATUS: u8 = 0;
    pub const CLEAR_FEATURE: u8 = 1;
    pub const SET_ADDRESS: u8 = 5;
    pub const GET_DESCRIPTOR: u8 = 6;
    pub const GET_CONFIGURATION: u8 = 8;
    pub const SET_CONFIGURATION: u8 = 9;
    pub const GET_INTERFACE: u8 = 10;
    pub const SET_INTERFACE: u8 = 11;
}

/// Stage of the control transfer on endpoint 0, seen from the device.
#[derive(Debug)]
enum Control {
    Idle,
    /// Sending `data`; `sent` bytes were delivered; `want` is wLength.
    InData {
        data: Vec<u8>,
        sent: usize,
        want: usize,
        toggle: DataPid,
    },
    /// Receiving the OUT data stage.
    OutData {
        setup: SetupPacket,
        data: Vec<u8>,
        toggle: DataPid,
    },
    /// Waiting for the host's IN status stage; `address` is applied once it completes.
    StatusIn {
        address: Option<u8>,
    },
    /// Waiting for the host's OUT status stage.
    StatusOut,
    /// The request was refused: data and status tokens get STALL until the next SETUP.
    Stalled,
}

/// The attached device: its function and the framework state the bus keeps for it.
struct Device {
    function: Box<dyn UsbFunction>,
    address: u8,
    configuration: u8,
    control: Control,
    in_toggle: [DataPid; 16],
    out_toggle: [DataPid; 16],
    /// ENDPOINT_HALT features: set when the function STALLs a data token (or on request),
    /// cleared by CLEAR_FEATURE(ENDPOINT_HALT) or a new configuration (USB 2.0 §9.4.5).
    in_halted: [bool; 16],
    out_halted: [bool; 16],
}

impl Device {
    fn new(function: Box<dyn UsbFunction>) -> Self {
        Self {
            function,
            address: 0,
            configuration: 0,
            control: Control::Idle,
            in_toggle: [DataPid::Data0; 16],
            out_toggle: [DataPid::Data0; 16],
            in_halted: [false; 16],
            out_halted: [false; 16],
        }
    }

    fn ep0_max_packet(&self) -> usize {
        usize::from(self.function.device_descriptor()[7].max(8))
    }

    /// wMaxPacketSize of a non-control endpoint from the configuration descriptor.
    fn endpoint_max_packet(&self, endpoint_address: u8) -> Option<usize> {
        let config = self.function.configuration_descriptor();
        let mut at = 0;
        while at + 2 <= config.len() {
            let len = usize::from(config[at]);
            if len < 2 || at + len > config.len() {
                return None;
            }
            if config[at + 1] == 5 && len >= 7 && config[at + 2] == endpoint_address {
                return Some(usize::from(
                    u16::from_le_bytes([config[at + 4], config[at + 5]]) & 0x7ff,
                ));
            }
            at += len;
        }
        None
    }

    /// Toggles to DATA0 and halts cleared, as a (re)configuration does.
    fn reset_toggles(&mut self) {
        self.in_toggle = [DataPid::Data0; 16];
        self.out_toggle = [DataPid::Data0; 16];
        self.in_halted = [false; 16];
        self.out_halted = [false; 16];
    }

    /// A standard request with an IN data stage.
    fn standard_in(&mut self, setup: &SetupPacket) -> Option<Vec<u8>> {
        match setup.request {
            request::GET_DESCRIPTOR => {
                let [index, kind] = setup.value.to_le_bytes();
                match kind {
                    1 => Some(self.function.device_descriptor().to_vec()),
                    2 if index == 0 => Some(self.function.configuration_descriptor().to_vec()),
                    3 => self.function.string_descriptor(index, setup.index),
                    _ => None,
                }
            }
            request::GET_CONFIGURATION => Some(vec![self.configuration]),
            // Endpoint status: bit 0 is the halt feature (USB 2.0 §9.4.5, figure 9-6).
            request::GET_STATUS if setup.request_type == 0x82 => {
                let ep = usize::from(setup.index as u8 & 0x0f);
                let halted = if setup.index & 0x80 != 0 {
                    self.in_halted[ep]
                } else {
                    self.out_halted[ep]
                };
                Some(vec![u8::from(halted), 0])
            }
            request::GET_STATUS => Some(vec![0, 0]),
            request::GET_INTERFACE if self.configuration != 0 => Some(vec![0]),
            _ => None,
        }
    }

    /// A standard request without a data stage. `Ok(Some(a))` is a SET_ADDRESS to apply after
    /// the status stage.
    fn standard_no_data(&mut self, setup: &SetupPacket) -> Result<Option<u8>, ()> {
        match setup.request {
            request::SET_ADDRESS if setup.value <= 127 && setup.index == 0 => {
                Ok(Some(setup.value as u8))
            }
            request::SET_CONFIGURATION => {
                let value = setup.value as u8;
                let own = self.function.configuration_descriptor().get(5).copied();
                if value != 0 && Some(value) != own {
                    log::error!("usb bus: SET_CONFIGURATION {value} not offered by the device");
                    return Err(());
                }
                self.function.set_configuration(value).map_err(|_| ())?;
                self.configuration = value;
                self.reset_toggles();
                Ok(None)
            }
            request::SET_INTERFACE if self.configuration != 0 => {
                self.function
                    .set_interface(setup.index as u8, setup.value as u8)
                    .map_err(|_| ())?;
                self.reset_toggles();
                Ok(None)
            }
            // CLEAR_FEATURE(ENDPOINT_HALT) to an endpoint: the halt is cleared and its toggle
            // goes back to DATA0 (USB 2.0 §9.4.5).
            request::CLEAR_FEATURE if setup.request_type == 0x02 && setup.value == 0 => {
                let ep = usize::from(setup.index as u8 & 0x0f);
                if setup.index & 0x80 != 0 {
                    self.in_toggle[ep] = DataPid::Data0;
                    self.in_halted[ep] = false;
                } else {
                    self.out_toggle[ep] = DataPid::Data0;
                    self.out_halted[ep] = false;
                }
                Ok(None)
            }
            _ => Err(()),
        }
    }

    fn setup(&mut self, setup: SetupPacket) {
        let standard = setup.request_type & 0x60 == 0;
        self.control = if setup.is_in() && setup.length > 0 {
            let data = if standard {
                self.standard_in(&setup)
            } else {
                self.function.control_in(&setup).ok()
            };
            match data {
                Some(mut data) => {
                    data.truncate(usize::from(setup.length));
                    Control::InData {
                        data,
                        sent: 0,
                        want: usize::from(setup.length),
                        toggle: DataPid::Data1,
                    }
                }
                None => Control::Stalled,
            }
        } else if setup.length > 0 {
            Control::OutData {
                setup,
                data: Vec::new(),
                toggle: DataPid::Data1,
            }
        } else {
            let done = if standard {
                self.standard_no_data(&setup)
            } else {
                self.function
                    .control_out(&setup, &[])
                    .map(|_| None)
                    .map_err(|_| ())
            };
            match done {
                Ok(address) => Control::StatusIn { address },
                Err(()) => Control::Stalled,
            }
        };
        if matches!(self.control, Control::Stalled) {
            log::debug!("usb bus: request {setup:?} stalled");
        }
    }

    fn control_in(&mut self, buf: &mut [u8]) -> InToken {
        let mps = self.ep0_max_packet();
        match &mut self.control {
            Control::InData {
                data,
                sent,
                want,
                toggle,
            } => {
                let len = (data.len() - *sent).min(mps).min(buf.len());
                buf[..len].copy_from_slice(&data[*sent..*sent + len]);
                let pid = *toggle;
                *sent += len;
                *toggle = toggle.flipped();
                // The data stage ends with a short packet or once wLength bytes went out.
                if len < mps || *sent == *want {
                    self.control = Control::StatusOut;
                }
                InToken::Data { len, pid }
            }
            Control::StatusIn { address } => {
                if let Some(address) = *address {
                    self.address = address;
                }
                self.control = Control::Idle;
                InToken::Data {
                    len: 0,
                    pid: DataPid::Data1,
                }
            }
            _ => InToken::Stall,
        }
    }

    fn control_out(&mut self, pid: DataPid, packet: &[u8]) -> OutToken {
        let mps = self.ep0_max_packet();
        match &mut self.control {
            Control::OutData {
                setup,
                data,
                toggle,
            } => {
                if packet.len() > mps {
                    log::error!("usb bus: {}-byte packet on ep0 (max {mps})", packet.len());
                    return OutToken::NoResponse;
                }
                if pid != *toggle {
                    // A retransmission of a packet already taken: ACK and drop it.
                    return OutToken::Ack;
                }
                *toggle = toggle.flipped();
                data.extend_from_slice(packet);
                let want = usize::from(setup.length);
                if data.len() > want {
                    log::error!("usb bus: OUT data stage longer than wLength {want}");
                    self.control = Control::Stalled;
                    return OutToken::Stall;
                }
                if data.len() == want || packet.len() < mps {
                    let setup = *setup;
                    let data = core::mem::take(data);
                    let ok = if setup.request_type & 0x60 == 0 {
                        false // no standard request with an OUT data stage is supported
                    } else {
                        self.function.control_out(&setup, &data).is_ok()
                    };
                    self.control = if ok {
                        Control::StatusIn { address: None }
                    } else {
                        Control::Stalled
                    };
                }
                OutToken::Ack
            }
            // Status stage (possibly early, after a short read): a zero-length DATA1.
            Control::StatusOut | Control::InData { .. } if packet.is_empty() => {
                self.control = Control::Idle;
                OutToken::Ack
            }
            _ => OutToken::Stall,
        }
    }

    fn data_in(&mut self, endpoint: u8, buf: &mut [u8]) -> InToken {
        let ep = usize::from(endpoint);
        let Some(mps) = self.endpoint_max_packet(0x80 | endpoint) else {
            log::error!("usb bus: IN token to ep {endpoint}, which the device does not have");
            return InToken::Stall;
        };
        if self.in_halted[ep] {
            return InToken::Stall;
        }
        let mut packet = vec![0; mps];
        match self.function.data_in(endpoint, &mut packet) {
            InResponse::Data(len) => {
                let len = len.min(mps);
                let len = if len > buf.len() {
                    // The host will see babble; deliver what fits.
                    buf.len()
                } else {
                    len
                };
                buf[..len].copy_from_slice(&packet[..len]);
                let pid = self.in_toggle[ep];
                self.in_toggle[ep] = pid.flipped();
                InToken::Data { len, pid }
            }
            InResponse::Nak => InToken::Nak,
            InResponse::Stall => {
                self.in_halted[ep] = true;
                InToken::Stall
            }
        }
    }

    fn data_out(&mut self, endpoint: u8, pid: DataPid, packet: &[u8]) -> OutToken {
        let ep = usize::from(endpoint);
        let Some(mps) = self.endpoint_max_packet(endpoint) else {
            log::error!("usb bus: OUT to ep {endpoint}, which the device does not have");
            return OutToken::Stall;
        };
        if packet.len() > mps {
            log::error!(
                "usb bus: {}-byte packet to ep {endpoint} (max {mps})",
                packet.len()
            );
            return OutToken::NoResponse;
        }
        if self.out_halted[ep] {
            return OutToken::Stall;
        }
        if pid != self.out_toggle[ep] {
            return OutToken::Ack;
        }
        match self.function.data_out(endpoint, packet) {
            Handshake::Ack => {
                self.out_toggle[ep] = pid.flipped();
                OutToken::Ack
            }
            Handshake::Nak => OutToken::Nak,
            Handshake::Stall => {
                self.out_halted[ep] = true;
                OutToken::Stall
            }
        }
    }
}

/// The bus on the root port: at most one device, attachable and detachable at run time.
#[derive(Default)]
pub struct UsbBus {
    device: Option<Device>,
}

impl UsbBus {
    /// An empty bus.
    pub fn new() -> Self {
        Self::default()
    }

    /// Plugs a device in (replacing any present one). It starts unaddressed and unconfigured.
    pub fn attach(&mut self, function: Box<dyn UsbFunction>) {
        self.device = Some(Device::new(function));
    }

    /// Unplugs the device, returning its function (powered off).
    pub fn detach(&mut self) -> Option<Box<dyn UsbFunction>> {
        self.device.take().map(|mut d| {
            d.function.power_off();
            d.function
        })
    }

    /// The attached device's speed, if one is attached.
    pub fn speed(&self) -> Option<Speed> {
        self.device.as_ref().map(|d| d.function.speed())
    }

    /// The device's current address, if one is attached.
    pub fn address(&self) -> Option<u8> {
        self.device.as_ref().map(|d| d.address)
    }

    /// The device's current configuration value, if one is attached.
    pub fn configuration(&self) -> Option<u8> {
        self.device.as_ref().map(|d| d.configuration)
    }

    /// The function halts endpoint `endpoint_address` (bit 7 set for IN), as a device does on
    /// an internal error: its tokens get STALL until CLEAR_FEATURE(ENDPOINT_HALT).
    pub fn halt(&mut self, endpoint_address: u8) {
        if let Some(d) = &mut self.device {
            let ep = usize::from(endpoint_address & 0x0f);
            if endpoint_address & 0x80 != 0 {
                d.in_halted[ep] = true;
            } else {
                d.out_halted[ep] = true;
            }
        }
    }

    /// Bus reset (SE0 for at least 10 ms): the device returns to the default state.
    pub fn reset(&mut self) {
        if let Some(d) = &mut self.device {
            d.address = 0;
            d.configuration = 0;
            d.control = Control::Idle;
            d.reset_toggles();
            d.function.bus_reset();
        }
    }

    fn device_at(&mut self, address: u8) -> Option<&mut Device> {
        self.device.as_mut().filter(|d| d.address == address)
    }

    /// A SETUP transaction to endpoint 0 of `address` (always DATA0, 8 bytes).
    pub fn setup(&mut self, address: u8, packet: &[u8]) -> OutToken {
        let Some(d) = self.device_at(address) else {
            return OutToken::NoResponse;
        };
        let Ok(bytes) = <&[u8; 8]>::try_from(packet) else {
            log::error!("usb bus: SETUP packet of {} bytes", packet.len());
            return OutToken::NoResponse;
        };
        d.setup(SetupPacket::from_bytes(bytes));
        OutToken::Ack
    }

    /// An IN transaction; the data (if any) lands in `buf`.
    pub fn data_in(&mut self, address: u8, endpoint: u8, buf: &mut [u8]) -> InToken {
        let Some(d) = self.device_at(address) else {
            return InToken::NoResponse;
        };
        if endpoint == 0 {
            d.control_in(buf)
        } else if d.configuration == 0 {
            InToken::Stall
        } else {
            d.data_in(endpoint, buf)
        }
    }

    /// An OUT transaction carrying `packet` with `pid`.
    pub fn data_out(&mut self, address: u8, endpoint: u8, pid: DataPid, packet: &[u8]) -> OutToken {
        let Some(d) = self.device_at(address) else {
            return OutToken::NoResponse;
        };
        if endpoint == 0 {
            d.control_out(pid, packet)
        } else if d.configuration == 0 {
            OutToken::Stall
        } else {
            d.data_out(endpoint, pid, packet)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::usb_function::Stall;

    /// A full-speed device with ep0 of 8 bytes and one bulk OUT endpoint 2 (64 bytes).
    struct Dev {
        taken: std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
        config: Vec<u8>,
    }

    impl Dev {
        fn new() -> Self {
            let mut config = vec![9, 2, 25, 0, 1, 3, 0, 0x80, 50];
            config.extend_from_slice(&[9, 4, 0, 0, 1, 0xff, 0, 0, 0]);
            config.extend_from_slice(&[7, 5, 0x02, 2, 64, 0, 0]);
            Self {
                taken: Default::default(),
                config,
            }
        }
    }

    impl UsbFunction for Dev {
        fn speed(&self) -> Speed {
            Speed::Full
        }
        fn device_descriptor(&self) -> [u8; 18] {
            [18, 1, 0, 2, 0, 0, 0, 8, 1, 2, 3, 4, 0, 1, 0, 0, 0, 1]
        }
        fn configuration_descriptor(&self) -> &[u8] {
            &self.config
        }
        fn string_descriptor(&self, _: u8, _: u16) -> Option<Vec<u8>> {
            None
        }
        fn set_configuration(&mut self, _: u8) -> Result<(), Stall> {
            Ok(())
        }
        fn set_interface(&mut self, _: u8, _: u8) -> Result<(), Stall> {
            Err(Stall)
        }
        fn control_in(&mut self, _: &SetupPacket) -> Result<Vec<u8>, Stall> {
            Err(Stall)
        }
        fn control_out(&mut self, _: &SetupPacket, _: &[u8]) -> Result<(), Stall> {
            Err(Stall)
        }
        fn data_out(&mut self, _: u8, packet: &[u8]) -> Handshake {
            self.taken.lock().unwrap().push(packet.to_vec());
            Handshake::Ack
        }
        fn data_in(&mut self, _: u8, _: &mut [u8]) -> InResponse {
            InResponse::Nak
        }
        fn bus_reset(&mut self) {}
    }

    fn setup(bus: &mut UsbBus, addr: u8, req: [u8; 8]) -> OutToken {
        bus.setup(addr, &req)
    }

    #[test]
    fn set_address_takes_effect_after_the_status_stage() {
        let mut bus = UsbBus::new();
        bus.attach(Box::new(Dev::new()));
        assert_eq!(setup(&mut bus, 0, [0, 5, 9, 0, 0, 0, 0, 0]), OutToken::Ack);
        assert_eq!(bus.address(), Some(0), "not before the status stage");
        let mut buf = [0u8; 64];
        assert_eq!(
            bus.data_in(0, 0, &mut buf),
            InToken::Data {
                len: 0,
                pid: DataPid::Data1
            }
        );
        assert_eq!(bus.address(), Some(9));
        assert_eq!(
            bus.data_in(0, 0, &mut buf),
            InToken::NoResponse,
            "old address gone"
        );
    }

    #[test]
    fn descriptor_reads_come_in_ep0_packets_with_alternating_toggles() {
        let mut bus = UsbBus::new();
        bus.attach(Box::new(Dev::new()));
        assert_eq!(
            setup(&mut bus, 0, [0x80, 6, 0, 1, 0, 0, 18, 0]),
            OutToken::Ack
        );
        let mut buf = [0u8; 64];
        let mut got = Vec::new();
        for pid in [DataPid::Data1, DataPid::Data0, DataPid::Data1] {
            match bus.data_in(0, 0, &mut buf) {
                InToken::Data { len, pid: p } => {
                    assert_eq!(p, pid);
                    got.extend_from_slice(&buf[..len]);
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(got.len(), 18);
        assert_eq!(got[7], 8);
        assert_eq!(
            bus.data_out(0, 0, DataPid::Data1, &[]),
            OutToken::Ack,
            "status"
        );
        // An unknown descriptor type stalls the data stage.
        assert_eq!(
            setup(&mut bus, 0, [0x80, 6, 0, 9, 0, 0, 8, 0]),
            OutToken::Ack
        );
        assert_eq!(bus.data_in(0, 0, &mut buf), InToken::Stall);
    }

    #[test]
    fn configured_endpoints_drop_retransmissions_and_oversized_packets() {
        let mut bus = UsbBus::new();
        let dev = Dev::new();
        let taken = dev.taken.clone();
        bus.attach(Box::new(dev));
        assert_eq!(
            bus.data_out(0, 2, DataPid::Data0, &[1]),
            OutToken::Stall,
            "unconfigured"
        );
        assert_eq!(setup(&mut bus, 0, [0, 9, 3, 0, 0, 0, 0, 0]), OutToken::Ack);
        let mut buf = [0u8; 8];
        assert!(matches!(
            bus.data_in(0, 0, &mut buf),
            InToken::Data { len: 0, .. }
        ));
        assert_eq!(bus.configuration(), Some(3));
        assert_eq!(bus.data_out(0, 2, DataPid::Data0, &[1]), OutToken::Ack);
        assert_eq!(
            bus.data_out(0, 2, DataPid::Data0, &[1]),
            OutToken::Ack,
            "duplicate"
        );
        assert_eq!(bus.data_out(0, 2, DataPid::Data1, &[2]), OutToken::Ack);
        assert_eq!(
            bus.data_out(0, 2, DataPid::Data0, &[0; 65]),
            OutToken::NoResponse
        );
        assert_eq!(
            bus.data_out(0, 5, DataPid::Data0, &[0]),
            OutToken::Stall,
            "no such ep"
        );
        // SET_CONFIGURATION with a value the device does not offer stalls.
        assert_eq!(setup(&mut bus, 0, [0, 9, 7, 0, 0, 0, 0, 0]), OutToken::Ack);
        assert_eq!(bus.data_in(0, 0, &mut buf), InToken::Stall);
        assert_eq!(*taken.lock().unwrap(), vec![vec![1], vec![2]]);
        assert!(bus.detach().is_some());
        assert_eq!(bus.speed(), None);
    }

    #[test]
    fn malformed_setup_gets_no_answer() {
        let mut bus = UsbBus::new();
        bus.attach(Box::new(Dev::new()));
        assert_eq!(bus.setup(0, &[0x80, 6, 0, 1]), OutToken::NoResponse);
    }
}
