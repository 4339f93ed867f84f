//! Control transfers on channel 0 (SETUP, DATA, STATUS stages) and enumeration.

use super::channel::{Endpoint, EPTYPE_CONTROL, PID_DATA1, PID_SETUP};
use super::{mapped_len, Dwc2Host, CONTROL_BUFFER, CONTROL_TIMEOUT_US};
use crate::reg::dma::{Dma, DmaDirection};
use crate::reg::RegisterBlock;
use crate::usb::{DeviceAddress, SetupPacket, UsbDevice, UsbError, MAX_CONFIG_DESCRIPTOR};
use embedded_hal::delay::DelayNs;

/// The control channel.
const CONTROL_CHANNEL: usize = 0;

/// The data stage of a control transfer.
enum DataStage<'a> {
    None,
    In(&'a mut [u8]),
    Out(&'a [u8]),
}

impl<R: RegisterBlock, D: Dma, T: DelayNs> Dwc2Host<R, D, T> {
    fn control_endpoint(&self, device: DeviceAddress, is_in: bool) -> Result<Endpoint, UsbError> {
        let port = self.port()?;
        Ok(Endpoint {
            address: device.get(),
            number: 0,
            is_in,
            ep_type: EPTYPE_CONTROL,
            mps: port.ep0_mps,
            speed: port.speed,
        })
    }

    /// One stage through the control buffer: `len` bytes (IN: rounded up to whole packets).
    /// Returns the bytes moved.
    fn control_stage(
        &mut self,
        ep: &Endpoint,
        len: usize,
        pid: u32,
        budget_us: &mut u32,
    ) -> Result<usize, UsbError> {
        let size = if ep.is_in {
            len.next_multiple_of(usize::from(ep.mps))
        } else {
            len
        };
        if size > CONTROL_BUFFER {
            return Err(UsbError::BadLength);
        }
        let dir = if ep.is_in {
            DmaDirection::FromDevice
        } else {
            DmaDirection::ToDevice
        };
        let ptr = self.mem.control.0.as_mut_ptr();
        let map_len = mapped_len(size, dir);
        let bus = self.map_buffer(ptr, map_len, dir)?;
        let result = self.run_chunks(ep, size, pid, bus, budget_us);
        self.dma.unmap(ptr, map_len, dir);
        result
    }

    /// Runs `size` bytes at `bus` on the control channel in pieces the core's counters hold;
    /// a short IN packet ends it early. Returns the bytes moved.
    fn run_chunks(
        &mut self,
        ep: &Endpoint,
        size: usize,
        mut pid: u32,
        bus: u32,
        budget_us: &mut u32,
    ) -> Result<usize, UsbError> {
        let limit = ep.chunk_limit(self.max_xfer, self.max_packets);
        if limit == 0 {
            return Err(UsbError::BadLength);
        }
        let mut done = 0;
        loop {
            let chunk = (size - done).min(limit);
            self.start_channel(CONTROL_CHANNEL, ep, chunk, pid, bus + done as u32);
            let (moved, next) = self.finish_blocking(CONTROL_CHANNEL, chunk, budget_us)?;
            done += moved;
            pid = next;
            if moved < chunk || done >= size {
                return Ok(done);
            }
        }
    }

    /// A whole control transfer.
    fn control(
        &mut self,
        device: DeviceAddress,
        setup: SetupPacket,
        data: DataStage<'_>,
    ) -> Result<usize, UsbError> {
        let want = usize::from(setup.length);
        if want > CONTROL_BUFFER {
            return Err(UsbError::BadLength);
        }
        match &data {
            DataStage::In(buf) if !setup.is_in() || buf.len() < want => {
                return Err(UsbError::BadLength)
            }
            DataStage::Out(buf) if setup.is_in() || buf.len() != want => {
                return Err(UsbError::BadLength)
            }
            DataStage::None if want != 0 => return Err(UsbError::BadLength),
            _ => {}
        }
        let mut budget = CONTROL_TIMEOUT_US;
        let out = self.control_endpoint(device, false)?;
        let inp = self.control_endpoint(device, true)?;

        self.mem.control.0[..8].copy_from_slice(&setup.to_bytes());
        if self.control_stage(&out, 8, PID_SETUP, &mut budget)? != 8 {
            return Err(UsbError::Transaction);
        }
        let (received, status_in) = match data {
            DataStage::None => (0, true),
            DataStage::In(buf) => {
                let got = self.control_stage(&inp, want, PID_DATA1, &mut budget)?;
                if got > want {
                    return Err(UsbError::Babble);
                }
                buf[..got].copy_from_slice(&self.mem.control.0[..got]);
                (got, false)
            }
            DataStage::Out(buf) => {
                self.mem.control.0[..want].copy_from_slice(buf);
                if self.control_stage(&out, want, PID_DATA1, &mut budget)? != want {
                    return Err(UsbError::Transaction);
                }
                (want, true)
            }
        };
        // Status stage: a zero-length DATA1 in the direction opposite to the data.
        let status = if status_in { &inp } else { &out };
        self.control_stage(status, 0, PID_DATA1, &mut budget)?;
        Ok(received)
    }

    /// GET_DESCRIPTOR of `kind` into `buf`; returns the bytes read.
    fn get_descriptor(
        &mut self,
        device: DeviceAddress,
        kind: u8,
        buf: &mut [u8],
    ) -> Result<usize, UsbError> {
        let setup = SetupPacket {
            request_type: 0x80,
            request: 6,
            value: u16::from(kind) << 8,
            index: 0,
            length: buf.len() as u16,
        };
        self.control(device, setup, DataStage::In(buf))
    }

    fn set_request(
        &mut self,
        device: DeviceAddress,
        request: u8,
        value: u16,
    ) -> Result<(), UsbError> {
        let setup = SetupPacket {
            request_type: 0x00,
            request,
            value,
            index: 0,
            length: 0,
        };
        self.control(device, setup, DataStage::None).map(|_| ())
    }

    /// Enumerates the device on the enabled port: device descriptor (8 bytes, then 18) at
    /// address 0, SET_ADDRESS, configuration descriptor (9 bytes, then wTotalLength),
    /// SET_CONFIGURATION with the first configuration.
    pub(super) fn enumerate(&mut self, address: DeviceAddress) -> Result<UsbDevice, UsbError> {
        let mut head = [0u8; 8];
        let n = self.get_descriptor(DeviceAddress::DEFAULT, 1, &mut head)?;
        if n < 8 || head[1] != 1 || !matches!(head[7], 8 | 16 | 32 | 64) {
            log::error!("dwc2: bad device descriptor head {head:02x?}");
            return Err(UsbError::InvalidState);
        }
        if let Some(port) = &mut self.port {
            port.ep0_mps = u16::from(head[7]);
        }
        self.set_request(DeviceAddress::DEFAULT, 5, u16::from(address.get()))?;
        // SET_ADDRESS recovery interval (USB 2.0 §9.2.6.3).
        self.delay.delay_ms(2);

        let mut device_descriptor = [0u8; 18];
        if self.get_descriptor(address, 1, &mut device_descriptor)? != 18
            || device_descriptor[0] != 18
        {
            return Err(UsbError::InvalidState);
        }
        let mut config_descriptor = [0u8; MAX_CONFIG_DESCRIPTOR];
        if self.get_descriptor(address, 2, &mut config_descriptor[..9])? != 9
            || config_descriptor[1] != 2
        {
            return Err(UsbError::InvalidState);
        }
        let total = usize::from(u16::from_le_bytes([
            config_descriptor[2],
            config_descriptor[3],
        ]));
        if !(9..=MAX_CONFIG_DESCRIPTOR).contains(&total) {
            log::error!("dwc2: configuration descriptor of {total} bytes");
            return Err(UsbError::BadLength);
        }
        let config_len = self.get_descriptor(address, 2, &mut config_descriptor[..total])?;
        if config_len != total {
            return Err(UsbError::InvalidState);
        }
        self.set_request(address, 9, u16::from(config_descriptor[5]))?;
        let port = self.port()?;
        Ok(UsbDevice {
            address,
            speed: port.speed,
            device_descriptor,
            config_descriptor,
            config_len,
        })
    }

    /// A control transfer with an IN (or no) data stage.
    pub(super) fn control_in_impl(
        &mut self,
        device: DeviceAddress,
        setup: SetupPacket,
        data: &mut [u8],
    ) -> Result<usize, UsbError> {
        let want = usize::from(setup.length);
        if want == 0 {
            return self.control(device, setup, DataStage::None);
        }
        let buf = data.get_mut(..want).ok_or(UsbError::BadLength)?;
        self.control(device, setup, DataStage::In(buf))
    }

    /// A control transfer with an OUT (or no) data stage.
    pub(super) fn control_out_impl(
        &mut self,
        device: DeviceAddress,
        setup: SetupPacket,
        data: &[u8],
    ) -> Result<(), UsbError> {
        let stage = if data.is_empty() {
            DataStage::None
        } else {
            DataStage::Out(data)
        };
        self.control(device, setup, stage).map(|_| ())
    }
}
