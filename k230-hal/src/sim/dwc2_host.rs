//! [`SimHost`]: the DWC2 driver over the DWC2 model, for building simulated boards.
//!
//! ```
//! use k230_hal::sim::dwc2_model::Dwc2Model;
//! # use k230_hal::sim::usb_function::{Handshake, InResponse, Stall, UsbFunction};
//! # use k230_hal::usb::{SetupPacket, Speed};
//! # struct Dev;
//! # const CONFIG: [u8; 9] = [9, 2, 9, 0, 0, 1, 0, 0x80, 50];
//! # impl UsbFunction for Dev {
//! #     fn speed(&self) -> Speed { Speed::High }
//! #     fn device_descriptor(&self) -> [u8; 18] {
//! #         [18, 1, 0, 2, 0, 0, 0, 64, 0xda, 0x0b, 0x52, 0x81, 0, 1, 0, 0, 0, 1]
//! #     }
//! #     fn configuration_descriptor(&self) -> &[u8] { &CONFIG }
//! #     fn string_descriptor(&self, _: u8, _: u16) -> Option<Vec<u8>> { None }
//! #     fn set_configuration(&mut self, _: u8) -> Result<(), Stall> { Ok(()) }
//! #     fn set_interface(&mut self, _: u8, _: u8) -> Result<(), Stall> { Ok(()) }
//! #     fn control_in(&mut self, _: &SetupPacket) -> Result<Vec<u8>, Stall> { Err(Stall) }
//! #     fn control_out(&mut self, _: &SetupPacket, _: &[u8]) -> Result<(), Stall> { Err(Stall) }
//! #     fn data_out(&mut self, _: u8, _: &[u8]) -> Handshake { Handshake::Stall }
//! #     fn data_in(&mut self, _: u8, _: &mut [u8]) -> InResponse { InResponse::Nak }
//! #     fn bus_reset(&mut self) {}
//! # }
//! let model = Dwc2Model::new();
//! model.attach(Box::new(Dev));
//! let (host, device) = model.connect_host().unwrap();
//! assert_eq!(device.vendor_id(), 0x0bda);
//! assert!(model.violations().is_empty());
//! # drop(host);
//! ```

use crate::eth::nic::NIC_ADDRESS;
use crate::sim::dwc2_model::{Dwc2Model, SimDelay, SimDma, SimRegs};
use crate::usb::dwc2::{Dwc2Host, Dwc2Memory, InitError};
use crate::usb::{UsbDevice, UsbError};

/// The DWC2 driver over the model: implements [`crate::usb::UsbHost`].
pub type SimHost = Dwc2Host<SimRegs, SimDma, SimDelay>;

/// Why [`Dwc2Model::connect_host`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SimHostError {
    /// The driver could not bring the core up.
    Init(InitError),
    /// Enumeration failed.
    Usb(UsbError),
}

impl Dwc2Model {
    /// A driver over this model with the core initialised and the port powered, nothing
    /// enumerated yet. Its DMA memory is leaked (it must never move; hosts live for the test).
    pub fn host(&self) -> Result<SimHost, InitError> {
        let mem: &'static mut Dwc2Memory = Box::leak(Box::default());
        let mut host = Dwc2Host::new(self.regs(), self.dma(), self.delay(), mem);
        host.init()?;
        Ok(host)
    }

    /// [`Self::host`], then the attached device reset and enumerated at the address a board
    /// gives its NIC ([`NIC_ADDRESS`]): ready for a class driver.
    pub fn connect_host(&self) -> Result<(SimHost, UsbDevice), SimHostError> {
        let mut host = self.host().map_err(SimHostError::Init)?;
        let device = host.connect(NIC_ADDRESS, 1000).map_err(SimHostError::Usb)?;
        Ok((host, device))
    }
}
