//! Test support: a `UsbHost` that drives a simulated `UsbFunction` directly, packet by packet,
//! standing in for the DWC2 host in driver-over-model tests. It splits transfers into
//! max-packet-size packets, ends OUT transfers with a short or zero-length packet, retries on
//! NAK, and reports STALL and babble like a host controller would.

use k230_hal::sim::usb_function::{Handshake, InResponse, UsbFunction};
use k230_hal::usb::{
    DeviceAddress, Pipe, SetupPacket, UsbDevice, UsbError, UsbHost, MAX_CONFIG_DESCRIPTOR,
};
use std::collections::HashMap;
use std::task::Poll;

/// An OUT transfer being sent.
struct OutTransfer {
    data: Vec<u8>,
    sent: usize,
    zlp_due: bool,
}

/// A host with the function attached at address 1, already configured.
pub struct DirectHost<F: UsbFunction> {
    pub function: F,
    in_progress: HashMap<u8, Vec<u8>>,
    out: HashMap<u8, OutTransfer>,
    /// Control transfers run.
    pub control_transfers: usize,
}

pub const ADDRESS: u8 = 1;

impl<F: UsbFunction> DirectHost<F> {
    /// Attaches `function` and configures it (configuration 1).
    pub fn new(mut function: F) -> (Self, UsbDevice) {
        function.bus_reset();
        function.set_configuration(1).expect("configuration 1");
        let config = function.configuration_descriptor().to_vec();
        let mut device = UsbDevice {
            address: DeviceAddress::new(ADDRESS).unwrap(),
            speed: function.speed(),
            device_descriptor: function.device_descriptor(),
            config_descriptor: [0; MAX_CONFIG_DESCRIPTOR],
            config_len: config.len(),
        };
        device.config_descriptor[..config.len()].copy_from_slice(&config);
        let host = Self {
            function,
            in_progress: HashMap::new(),
            out: HashMap::new(),
            control_transfers: 0,
        };
        (host, device)
    }

    fn check(&self, device: DeviceAddress) -> Result<(), UsbError> {
        if device.get() == ADDRESS {
            Ok(())
        } else {
            Err(UsbError::Timeout)
        }
    }
}

/// Packets tried per poll before reporting `Pending` (bounds each call).
const PACKETS_PER_POLL: usize = 64;

impl<F: UsbFunction> UsbHost for DirectHost<F> {
    fn control_in(
        &mut self,
        device: DeviceAddress,
        setup: SetupPacket,
        data: &mut [u8],
    ) -> Result<usize, UsbError> {
        self.check(device)?;
        self.control_transfers += 1;
        let reply = self
            .function
            .control_in(&setup)
            .map_err(|_| UsbError::Stall)?;
        let n = reply.len().min(usize::from(setup.length)).min(data.len());
        data[..n].copy_from_slice(&reply[..n]);
        Ok(n)
    }

    fn control_out(
        &mut self,
        device: DeviceAddress,
        setup: SetupPacket,
        data: &[u8],
    ) -> Result<(), UsbError> {
        self.check(device)?;
        self.control_transfers += 1;
        self.function
            .control_out(&setup, data)
            .map_err(|_| UsbError::Stall)
    }

    fn poll_in(&mut self, pipe: &Pipe, buf: &mut [u8]) -> Poll<Result<usize, UsbError>> {
        let mps = usize::from(pipe.max_packet_size);
        let mut packet = vec![0; mps];
        let acc = self.in_progress.entry(pipe.endpoint).or_default();
        for _ in 0..PACKETS_PER_POLL {
            match self.function.data_in(pipe.endpoint, &mut packet) {
                InResponse::Nak => return Poll::Pending,
                InResponse::Stall => {
                    acc.clear();
                    return Poll::Ready(Err(UsbError::Stall));
                }
                InResponse::Data(n) => {
                    if acc.len() + n > buf.len() {
                        acc.clear();
                        return Poll::Ready(Err(UsbError::Babble));
                    }
                    acc.extend_from_slice(&packet[..n]);
                    if n < mps || acc.len() == buf.len() {
                        let len = acc.len();
                        buf[..len].copy_from_slice(acc);
                        acc.clear();
                        return Poll::Ready(Ok(len));
                    }
                }
            }
        }
        Poll::Pending
    }

    fn submit_out(&mut self, pipe: &Pipe, data: &[u8]) -> Result<(), UsbError> {
        if self.out.contains_key(&pipe.endpoint) {
            return Err(UsbError::Busy);
        }
        let mps = usize::from(pipe.max_packet_size);
        self.out.insert(
            pipe.endpoint,
            OutTransfer {
                data: data.to_vec(),
                sent: 0,
                zlp_due: data.len() % mps == 0,
            },
        );
        Ok(())
    }

    fn poll_out(&mut self, pipe: &Pipe) -> Poll<Result<(), UsbError>> {
        let Some(t) = self.out.get_mut(&pipe.endpoint) else {
            return Poll::Ready(Ok(()));
        };
        let mps = usize::from(pipe.max_packet_size);
        for _ in 0..PACKETS_PER_POLL {
            let rest = t.data.len() - t.sent;
            if rest == 0 && !t.zlp_due {
                self.out.remove(&pipe.endpoint);
                return Poll::Ready(Ok(()));
            }
            let n = rest.min(mps);
            match self
                .function
                .data_out(pipe.endpoint, &t.data[t.sent..t.sent + n])
            {
                Handshake::Ack => {
                    t.sent += n;
                    if n == 0 {
                        t.zlp_due = false;
                    }
                }
                Handshake::Nak => return Poll::Pending,
                Handshake::Stall => {
                    self.out.remove(&pipe.endpoint);
                    return Poll::Ready(Err(UsbError::Stall));
                }
            }
        }
        Poll::Pending
    }

    /// The function has no standard framework here (no halt feature, no toggles): the request
    /// only counts as a control transfer.
    fn clear_halt(&mut self, pipe: Pipe) -> Result<(), UsbError> {
        self.check(pipe.device)?;
        self.control_transfers += 1;
        Ok(())
    }
}
