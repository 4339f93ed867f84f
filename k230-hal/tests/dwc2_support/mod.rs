//! A loopback test device for the DWC2 driver tests: bulk OUT messages come back on bulk IN,
//! an interrupt IN endpoint reports queued bytes, vendor requests read and write a scratch
//! buffer. Its state is shared so tests can steer and inspect it.
#![allow(dead_code)] // each test binary uses a different part

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use k230_hal::sim::dwc2_model::Dwc2Model;
use k230_hal::sim::usb_function::{Handshake, InResponse, Stall, UsbFunction};
use k230_hal::sim::SimHost;
use k230_hal::usb::{DeviceAddress, Direction, Pipe, SetupPacket, Speed, TransferType, UsbDevice};

pub const VID: u16 = 0x1209;
pub const PID: u16 = 0x0001;
pub const BULK_IN: u8 = 1;
pub const BULK_OUT: u8 = 2;
pub const INTR_IN: u8 = 3;

/// Vendor request: IN, returns `wLength` bytes of the pattern `i as u8 ^ 0x5a`.
pub const REQ_PATTERN: u8 = 0x01;
/// Vendor request: OUT, stores the data stage in the scratch buffer.
pub const REQ_WRITE: u8 = 0x02;
/// Vendor request: IN, returns the scratch buffer.
pub const REQ_READ: u8 = 0x03;
/// Vendor request: always stalls.
pub const REQ_STALL: u8 = 0x7f;

/// What the device did and what it will do.
#[derive(Default)]
pub struct Shared {
    /// Whole OUT messages received (ended by a short or zero-length packet).
    pub messages: Vec<Vec<u8>>,
    /// The OUT message being received.
    partial: Vec<u8>,
    /// Packet sizes of every OUT packet seen.
    pub out_packets: Vec<usize>,
    /// Messages queued for bulk IN.
    pub to_host: VecDeque<Vec<u8>>,
    /// Bytes of the front `to_host` message already sent.
    sent: usize,
    /// Interrupt IN reports queued.
    pub interrupts: VecDeque<Vec<u8>>,
    /// Stall bulk IN / bulk OUT.
    pub stall_in: bool,
    pub stall_out: bool,
    /// NAK bulk OUT.
    pub nak_out: bool,
    pub scratch: Vec<u8>,
    pub configuration: u8,
    pub resets: u32,
}

/// The test device; clones share state.
#[derive(Clone)]
pub struct Loopback {
    speed: Speed,
    config: Vec<u8>,
    pub shared: Arc<Mutex<Shared>>,
}

impl Loopback {
    pub fn new(speed: Speed) -> Self {
        let (bulk, intr) = match speed {
            Speed::High => (512u16, 16u16),
            Speed::Full => (64, 16),
            // Low speed has no bulk endpoints; the bulk ones are never used at that speed.
            Speed::Low => (64, 8),
        };
        let mut config = vec![9, 2, 0, 0, 1, 1, 0, 0x80, 50];
        config.extend_from_slice(&[9, 4, 0, 0, 3, 0xff, 0, 0, 0]);
        for (addr, attr, mps, interval) in [
            (0x80 | BULK_IN, 2, bulk, 0),
            (BULK_OUT, 2, bulk, 0),
            (0x80 | INTR_IN, 3, intr, 4),
        ] {
            let [m0, m1] = mps.to_le_bytes();
            config.extend_from_slice(&[7, 5, addr, attr, m0, m1, interval]);
        }
        let total = config.len() as u16;
        config[2..4].copy_from_slice(&total.to_le_bytes());
        Self {
            speed,
            config,
            shared: Arc::default(),
        }
    }

    pub fn state(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap()
    }

    pub fn bulk_mps(&self) -> u16 {
        if self.speed == Speed::High {
            512
        } else {
            64
        }
    }

    pub fn descriptor(&self) -> [u8; 18] {
        let [v0, v1] = VID.to_le_bytes();
        let [p0, p1] = PID.to_le_bytes();
        let mps0 = if self.speed == Speed::Low { 8 } else { 64 };
        [
            18, 1, 0x00, 0x02, 0xff, 0, 0, mps0, v0, v1, p0, p1, 0x00, 0x01, 1, 2, 3, 1,
        ]
    }

    pub fn config(&self) -> Vec<u8> {
        self.config.clone()
    }
}

impl UsbFunction for Loopback {
    fn speed(&self) -> Speed {
        self.speed
    }

    fn device_descriptor(&self) -> [u8; 18] {
        self.descriptor()
    }

    fn configuration_descriptor(&self) -> &[u8] {
        &self.config
    }

    fn string_descriptor(&self, index: u8, _language: u16) -> Option<Vec<u8>> {
        (index == 1).then(|| vec![6, 3, b'K', 0, b'2', 0])
    }

    fn set_configuration(&mut self, value: u8) -> Result<(), Stall> {
        self.state().configuration = value;
        Ok(())
    }

    fn set_interface(&mut self, _interface: u8, alternate: u8) -> Result<(), Stall> {
        if alternate == 0 {
            Ok(())
        } else {
            Err(Stall)
        }
    }

    fn control_in(&mut self, setup: &SetupPacket) -> Result<Vec<u8>, Stall> {
        match setup.request {
            REQ_PATTERN => Ok((0..setup.length).map(|i| i as u8 ^ 0x5a).collect()),
            REQ_READ => Ok(self.state().scratch.clone()),
            _ => Err(Stall),
        }
    }

    fn control_out(&mut self, setup: &SetupPacket, data: &[u8]) -> Result<(), Stall> {
        match setup.request {
            REQ_WRITE => {
                self.state().scratch = data.to_vec();
                Ok(())
            }
            _ => Err(Stall),
        }
    }

    fn data_out(&mut self, endpoint: u8, packet: &[u8]) -> Handshake {
        let mps = usize::from(self.bulk_mps());
        let mut s = self.state();
        if endpoint != BULK_OUT || s.stall_out {
            return Handshake::Stall;
        }
        if s.nak_out {
            return Handshake::Nak;
        }
        s.out_packets.push(packet.len());
        s.partial.extend_from_slice(packet);
        if packet.len() < mps {
            let msg = std::mem::take(&mut s.partial);
            s.messages.push(msg);
        }
        Handshake::Ack
    }

    fn data_in(&mut self, endpoint: u8, buf: &mut [u8]) -> InResponse {
        let mut s = self.state();
        match endpoint {
            BULK_IN if s.stall_in => InResponse::Stall,
            BULK_IN => {
                let mps = buf.len();
                let Some(msg) = s.to_host.front().cloned() else {
                    return InResponse::Nak;
                };
                let start = s.sent;
                let len = (msg.len() - start).min(mps);
                buf[..len].copy_from_slice(&msg[start..start + len]);
                s.sent += len;
                // A message of whole packets ends with a zero-length packet.
                if len < mps {
                    s.to_host.pop_front();
                    s.sent = 0;
                }
                InResponse::Data(len)
            }
            INTR_IN => match s.interrupts.pop_front() {
                Some(r) => {
                    buf[..r.len()].copy_from_slice(&r);
                    InResponse::Data(r.len())
                }
                None => InResponse::Nak,
            },
            _ => InResponse::Stall,
        }
    }

    fn bus_reset(&mut self) {
        let mut s = self.state();
        s.resets += 1;
        s.configuration = 0;
    }
}

/// A model with a loopback device at `speed` and the host enumerated over it.
pub fn setup(speed: Speed) -> (Dwc2Model, Loopback, SimHost, UsbDevice) {
    setup_on(Dwc2Model::new(), speed)
}

/// [`setup`] on a given model.
pub fn setup_on(model: Dwc2Model, speed: Speed) -> (Dwc2Model, Loopback, SimHost, UsbDevice) {
    let dev = Loopback::new(speed);
    model.attach(Box::new(dev.clone()));
    let (host, device) = model.connect_host().expect("enumeration");
    (model, dev, host, device)
}

pub fn pipe(
    device: &UsbDevice,
    endpoint: u8,
    direction: Direction,
    kind: TransferType,
    mps: u16,
) -> Pipe {
    Pipe {
        device: device.address,
        speed: device.speed,
        endpoint,
        direction,
        kind,
        max_packet_size: mps,
        interval: 4,
    }
}

pub fn addr(device: &UsbDevice) -> DeviceAddress {
    device.address
}

/// Polls an IN pipe until it is ready, at most `limit` times.
pub fn poll_in_ready(
    host: &mut SimHost,
    pipe: &Pipe,
    buf: &mut [u8],
    limit: usize,
) -> Option<Result<usize, k230_hal::usb::UsbError>> {
    use k230_hal::usb::UsbHost;
    (0..limit).find_map(|_| match host.poll_in(pipe, buf) {
        std::task::Poll::Ready(r) => Some(r),
        std::task::Poll::Pending => None,
    })
}

/// Polls an OUT pipe until it is ready, at most `limit` times.
pub fn poll_out_ready(
    host: &mut SimHost,
    pipe: &Pipe,
    limit: usize,
) -> Option<Result<(), k230_hal::usb::UsbError>> {
    use k230_hal::usb::UsbHost;
    (0..limit).find_map(|_| match host.poll_out(pipe) {
        std::task::Poll::Ready(r) => Some(r),
        std::task::Poll::Pending => None,
    })
}
