//! [`BootRomLink`] over a real USB device (nusb, Linux usbfs).

use crate::flash::bootrom::{BootRomLink, LinkError, BULK_OUT, PID, VID};
use nusb::transfer::{Buffer, Bulk, ControlIn, ControlOut, ControlType, Out, Recipient};
use nusb::MaybeFuture;
use std::time::Duration;

/// Per-transfer timeout (the vendor tools use 1–5 s).
const TIMEOUT: Duration = Duration::from_secs(5);

/// A K230 in USB boot mode, interface 0 claimed.
pub struct UsbLink {
    device: nusb::Device,
    out: nusb::Endpoint<Bulk, Out>,
    /// Bus and port chain, for messages.
    pub location: String,
}

fn link_err(what: &str, e: impl std::fmt::Display) -> LinkError {
    LinkError(format!("{what}: {e}"))
}

/// Opens the first device with the boot ROM's VID:PID; `Ok(None)` if none is attached.
pub fn open_boot_rom() -> Result<Option<UsbLink>, LinkError> {
    let devices = nusb::list_devices().wait().map_err(|e| {
        link_err(
            "this machine shows no USB bus (connect the K230 to one that does)",
            e,
        )
    })?;
    let Some(info) = devices
        .into_iter()
        .find(|d| d.vendor_id() == VID && d.product_id() == PID)
    else {
        return Ok(None);
    };
    let location = format!("bus {} port {:?}", info.bus_id(), info.port_chain());
    let device = info.open().wait().map_err(|e| {
        link_err(
            "opening the K230 (permissions? try as root or add a udev rule)",
            e,
        )
    })?;
    let interface = device
        .detach_and_claim_interface(0)
        .wait()
        .map_err(|e| link_err("claiming interface 0", e))?;
    let out = interface
        .endpoint::<Bulk, Out>(BULK_OUT)
        .map_err(|e| link_err("opening bulk OUT 0x01", e))?;
    Ok(Some(UsbLink {
        device,
        out,
        location,
    }))
}

impl BootRomLink for UsbLink {
    fn control_in(
        &mut self,
        request: u8,
        value: u16,
        index: u16,
        len: u16,
    ) -> Result<Vec<u8>, LinkError> {
        self.device
            .control_in(
                ControlIn {
                    control_type: ControlType::Vendor,
                    recipient: Recipient::Device,
                    request,
                    value,
                    index,
                    length: len,
                },
                TIMEOUT,
            )
            .wait()
            .map_err(|e| link_err("control IN", e))
    }

    fn control_out(&mut self, request: u8, value: u16, index: u16) -> Result<(), LinkError> {
        self.device
            .control_out(
                ControlOut {
                    control_type: ControlType::Vendor,
                    recipient: Recipient::Device,
                    request,
                    value,
                    index,
                    data: &[],
                },
                TIMEOUT,
            )
            .wait()
            .map_err(|e| link_err("control OUT", e))
    }

    fn bulk_out(&mut self, data: &[u8]) -> Result<usize, LinkError> {
        let done = self
            .out
            .transfer_blocking(Buffer::from(data.to_vec()), TIMEOUT);
        done.status.map_err(|e| link_err("bulk OUT", e))?;
        Ok(done.actual_len)
    }
}
