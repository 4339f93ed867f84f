//! A simulated K230 board's network path: the NIC driver over the DWC2 host driver over the DWC2
//! model, with a NIC model ([`NicModel`]: the RTL8152, as on every K230 board, or a CDC-ECM
//! adapter) plugged into the root port and cabled to a [`Wire`].
//!
//! The NIC is brought up as on a board ([`Nic::attach`]: the device on the root port enumerated,
//! then the driver `identify` picks started); only the host controller is [`SimHost`] instead of
//! the K230's DWC2. [`SimBoard`] is a `smoltcp::phy::Device`, so a network
//! stack runs on it unchanged; every frame crosses the same code as on hardware (descriptors,
//! bulk transfers, DMA, channel interrupts), checked by both models. The models have no clock of their own: the NIC model
//! moves queued frames onto the wire when the host talks to it, so keep polling a board (as
//! firmware does) for as long as its frames should flow.
//!
//! The NIC runs under a [`Supervisor`]: pulling the NIC off the root port
//! ([`SimBoard::unplug_usb`]) is a USB disconnect the driver notices, plugging it back
//! ([`SimBoard::replug_usb`]) is re-enumerated and brought up again by [`SimBoard::poll`].
//! The Ethernet cable is pulled and plugged through [`SimBoard::cable`].

use crate::eth::driver::{Counters, Driver};
use crate::eth::nic::{self, Nic};
use crate::eth::rtl8152::Rtl8152;
use crate::eth::supervisor::{LinkEvent, Supervised, Supervisor};
use crate::sim::cdc_ecm::{self, CdcEcmModel};
use crate::sim::dwc2_host::{SimHost, SimHostError};
use crate::sim::dwc2_model::Dwc2Model;
use crate::sim::rtl8152::{Cable, ModelReport, ReportHandle, Rtl8152Model};
use crate::sim::usb_function::UsbFunction;
use crate::sim::wire::Wire;
use smoltcp::phy::{Device, DeviceCapabilities};
use smoltcp::time::Instant;

/// Why a board could not be brought up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BoardError {
    /// The USB host could not start.
    Host(SimHostError),
    /// No NIC came up on the root port (no device enumerated, or its driver failed).
    Nic(nic::Error),
}

/// How long the board waits for the NIC on its root port at bring-up.
const CONNECT_TIMEOUT_MS: u32 = 1000;

/// The NIC model on a board's root port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NicModel {
    /// The RTL8152 ([`Rtl8152Model`]).
    Rtl8152,
    /// A CDC-ECM adapter ([`CdcEcmModel`]).
    CdcEcm,
}

/// What the NIC model on the root port reports.
#[derive(Clone, Debug)]
enum Report {
    Rtl8152(ReportHandle),
    CdcEcm(cdc_ecm::ReportHandle),
}

/// A NIC model of kind `model` with MAC `mac` cabled to `wire`, its report and its cable.
fn nic_model<W: Wire + 'static>(
    model: NicModel,
    wire: W,
    mac: [u8; 6],
) -> (Box<dyn UsbFunction>, Report, Cable) {
    match model {
        NicModel::Rtl8152 => {
            let m = Rtl8152Model::new(wire, mac);
            let (report, cable) = (Report::Rtl8152(m.report()), m.cable());
            (Box::new(m), report, cable)
        }
        NicModel::CdcEcm => {
            let m = CdcEcmModel::new(wire, mac);
            let (report, cable) = (Report::CdcEcm(m.report()), m.cable());
            (Box::new(m), report, cable)
        }
    }
}

/// One simulated board.
pub struct SimBoard {
    controller: Dwc2Model,
    nic: Supervisor<Nic<SimHost>>,
    report: Report,
    cable: Cable,
    /// The NIC model while it is off the root port.
    unplugged: Option<Box<dyn UsbFunction>>,
}

impl SimBoard {
    /// A board whose NIC has MAC `mac` and is cabled to `wire`: the host is started, the NIC
    /// enumerated and probed.
    pub fn new<W: Wire + 'static>(wire: W, mac: [u8; 6]) -> Result<Self, BoardError> {
        Self::with_controller(Dwc2Model::new(), wire, mac)
    }

    /// As [`Self::new`] with a NIC model of kind `model` on the root port.
    pub fn with_nic<W: Wire + 'static>(
        model: NicModel,
        wire: W,
        mac: [u8; 6],
    ) -> Result<Self, BoardError> {
        Self::build(Dwc2Model::new(), model, wire, mac)
    }

    /// As [`Self::new`] on the given controller model (a clone of which lets the caller see
    /// its violations even when the bring-up fails).
    pub fn with_controller<W: Wire + 'static>(
        controller: Dwc2Model,
        wire: W,
        mac: [u8; 6],
    ) -> Result<Self, BoardError> {
        Self::build(controller, NicModel::Rtl8152, wire, mac)
    }

    fn build<W: Wire + 'static>(
        controller: Dwc2Model,
        model: NicModel,
        wire: W,
        mac: [u8; 6],
    ) -> Result<Self, BoardError> {
        let (model, report, cable) = nic_model(model, wire, mac);
        controller.attach(model);
        let host = controller
            .host()
            .map_err(|e| BoardError::Host(SimHostError::Init(e)))?;
        let nic = Nic::attach(host, CONNECT_TIMEOUT_MS).map_err(BoardError::Nic)?;
        Ok(Self {
            controller,
            nic: Supervisor::new(nic),
            report,
            cable,
            unplugged: None,
        })
    }

    /// The NIC driver.
    pub fn nic(&mut self) -> &mut Nic<SimHost> {
        self.nic.nic_mut()
    }

    /// The RTL8152 driver (what the board's NIC model is), for tests that drive it directly;
    /// `None` if another driver picked up the device.
    pub fn rtl8152(&mut self) -> Option<&mut Rtl8152<SimHost>> {
        match self.nic.nic_mut() {
            Nic::Rtl8152(nic) => Some(nic),
            Nic::CdcEcm(_) => None,
        }
    }

    /// The supervisor of the NIC (state, device losses, carrier).
    pub fn supervisor(&self) -> &Supervisor<Nic<SimHost>> {
        &self.nic
    }

    /// Watches the root port and brings a replugged NIC back; call it every round (see
    /// [`Supervisor::poll`]). `now_ms` is the caller's clock.
    pub fn poll(&mut self, now_ms: u64) -> Option<LinkEvent> {
        self.nic.poll(now_ms)
    }

    /// Pulls the NIC off the root port (a USB disconnect). False if it is already off.
    pub fn unplug_usb(&mut self) -> bool {
        if self.unplugged.is_some() {
            return false;
        }
        self.unplugged = self.controller.detach();
        self.unplugged.is_some()
    }

    /// Plugs the NIC back into the root port. False if it is already in.
    pub fn replug_usb(&mut self) -> bool {
        match self.unplugged.take() {
            Some(function) => {
                self.controller.attach(function);
                true
            }
            None => false,
        }
    }

    /// Plugs another adapter into the root port in place of the unplugged one: an RTL8152
    /// with MAC `mac` cabled to `wire`. False if the board's NIC is still plugged in.
    pub fn replug_other<W: Wire + 'static>(&mut self, wire: W, mac: [u8; 6]) -> bool {
        if self.unplugged.take().is_none() {
            return false;
        }
        let (model, report, cable) = nic_model(NicModel::Rtl8152, wire, mac);
        self.report = report;
        self.cable = cable;
        self.controller.attach(model);
        true
    }

    /// The NIC's Ethernet cable.
    pub fn cable(&self) -> Cable {
        self.cable.clone()
    }

    /// The DWC2 controller model (faults, endpoint halts).
    pub fn controller(&self) -> &Dwc2Model {
        &self.controller
    }

    /// The driver's counters.
    pub fn counters(&self) -> Counters {
        self.nic.counters()
    }

    /// What the RTL8152 model saw (its error list must stay empty); empty on a board whose
    /// NIC model is another ([`Self::ecm_report`]).
    pub fn nic_report(&self) -> ModelReport {
        match &self.report {
            Report::Rtl8152(r) => r.snapshot(),
            Report::CdcEcm(_) => ModelReport::default(),
        }
    }

    /// What the CDC-ECM model saw (its error list must stay empty); `None` on a board whose NIC
    /// model is another.
    pub fn ecm_report(&self) -> Option<cdc_ecm::ModelReport> {
        match &self.report {
            Report::CdcEcm(r) => Some(r.snapshot()),
            Report::Rtl8152(_) => None,
        }
    }

    /// Rules the DWC2 host driver broke, as the controller model recorded them.
    pub fn usb_violations(&self) -> Vec<String> {
        self.controller.violations()
    }
}

/// The board's supervised NIC, for the network stack's owner.
impl Supervised for SimBoard {
    type Nic = Nic<SimHost>;
    fn supervisor(&self) -> &Supervisor<Nic<SimHost>> {
        &self.nic
    }
    fn supervisor_mut(&mut self) -> &mut Supervisor<Nic<SimHost>> {
        &mut self.nic
    }
}

impl Device for SimBoard {
    type RxToken<'a>
        = nic::RxToken<'a, SimHost>
    where
        Self: 'a;
    type TxToken<'a>
        = nic::TxToken<'a, SimHost>
    where
        Self: 'a;

    fn receive(&mut self, timestamp: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        self.nic.receive(timestamp)
    }

    fn transmit(&mut self, timestamp: Instant) -> Option<Self::TxToken<'_>> {
        self.nic.transmit(timestamp)
    }

    fn capabilities(&self) -> DeviceCapabilities {
        self.nic.capabilities()
    }
}
