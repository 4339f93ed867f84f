//! DWC2 driver checks the CDC-ECM bring-up does not reach, run against QEMU's `usb-net` in its
//! RNDIS configuration (value 2) before CDC-ECM takes the device:
//!
//! - an interrupt IN endpoint that NAKs (the RNDIS status endpoint with no response queued): the
//!   channel halts with NAK and `poll_in` stays `Pending`;
//! - a control transfer with an OUT data stage (SEND_ENCAPSULATED_COMMAND carrying
//!   REMOTE_NDIS_INITIALIZE_MSG);
//! - the interrupt endpoint then delivering data (the 8-byte RESPONSE_AVAILABLE notification);
//! - a class control IN transfer whose reply is shorter than asked (GET_ENCAPSULATED_RESPONSE:
//!   the 52-byte REMOTE_NDIS_INITIALIZE_CMPLT for a 256-byte request).
//!
//! Message layouts and values: the RNDIS 1.0 specification (MS-RNDIS §2.2.2, §2.2.3), as QEMU
//! `hw/usb/dev-network.c` implements them.

use core::task::Poll;

use k230_hal::usb::{
    DeviceAddress, Direction, Pipe, SetupPacket, Speed, TransferType, UsbError, UsbHost,
};

use crate::println;

/// bConfigurationValue of QEMU usb-net's RNDIS configuration.
const RNDIS_CONFIGURATION: u16 = 2;
/// REMOTE_NDIS_INITIALIZE_MSG and its completion.
const RNDIS_INITIALIZE_MSG: u32 = 2;
const RNDIS_INITIALIZE_CMPLT: u32 = 0x8000_0002;
/// Polls of the interrupt endpoint allowed before giving up.
const POLLS: usize = 1000;

/// Why a check failed.
pub enum CheckError {
    /// A transfer failed.
    Usb(&'static str, UsbError),
    /// The device answered, but not as expected.
    Unexpected(&'static str),
}

impl core::fmt::Display for CheckError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Usb(what, e) => write!(f, "{what}: {e:?}"),
            Self::Unexpected(what) => f.write_str(what),
        }
    }
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Runs the checks on the device at `address` (QEMU's usb-net, full speed).
pub fn rndis_control_and_interrupt<H: UsbHost>(
    host: &mut H,
    address: DeviceAddress,
) -> Result<(), CheckError> {
    let set_config = SetupPacket {
        request_type: 0x00,
        request: 0x09,
        value: RNDIS_CONFIGURATION,
        index: 0,
        length: 0,
    };
    host.control_out(address, set_config, &[])
        .map_err(|e| CheckError::Usb("SET_CONFIGURATION 2", e))?;
    // The status endpoint of the RNDIS control interface: interrupt IN 1, 16 bytes.
    let status = Pipe {
        device: address,
        speed: Speed::Full,
        endpoint: 1,
        direction: Direction::In,
        kind: TransferType::Interrupt,
        max_packet_size: 16,
        interval: 32,
    };
    let mut note = [0u8; 16];
    for _ in 0..3 {
        match host.poll_in(&status, &mut note) {
            Poll::Pending => {}
            Poll::Ready(r) => {
                println!("qemu-usb-test: interrupt endpoint answered {r:?} with nothing queued");
                return Err(CheckError::Unexpected("interrupt IN did not NAK"));
            }
        }
    }
    println!("qemu-usb-test: check interrupt NAK ok (pending while nothing is queued)");

    let mut init = [0u8; 24];
    for (i, v) in [RNDIS_INITIALIZE_MSG, 24, 1, 1, 0, 0x4000]
        .into_iter()
        .enumerate()
    {
        init[i * 4..i * 4 + 4].copy_from_slice(&v.to_le_bytes());
    }
    let send = SetupPacket {
        request_type: 0x21,
        request: 0x00,
        value: 0,
        index: 0,
        length: init.len() as u16,
    };
    host.control_out(address, send, &init)
        .map_err(|e| CheckError::Usb("SEND_ENCAPSULATED_COMMAND", e))?;
    println!(
        "qemu-usb-test: check control OUT data stage ok ({} bytes)",
        init.len()
    );

    let mut got = None;
    for _ in 0..POLLS {
        match host.poll_in(&status, &mut note) {
            Poll::Pending => {}
            Poll::Ready(Ok(n)) => {
                got = Some(n);
                break;
            }
            Poll::Ready(Err(e)) => return Err(CheckError::Usb("status endpoint", e)),
        }
    }
    // RESPONSE_AVAILABLE in RNDIS form: u32 1, u32 0.
    match got {
        Some(8) if le32(&note, 0) == 1 && le32(&note, 4) == 0 => {}
        _ => {
            return Err(CheckError::Unexpected(
                "no RESPONSE_AVAILABLE on the status endpoint",
            ))
        }
    }
    println!(
        "qemu-usb-test: check interrupt data ok ({:02x?})",
        &note[..8]
    );

    let mut response = [0u8; 256];
    let get = SetupPacket {
        request_type: 0xA1,
        request: 0x01,
        value: 0,
        index: 0,
        length: response.len() as u16,
    };
    let n = host
        .control_in(address, get, &mut response)
        .map_err(|e| CheckError::Usb("GET_ENCAPSULATED_RESPONSE", e))?;
    // MessageType, MessageLength, RequestID, Status (0 = success).
    let ok = n >= 52
        && le32(&response, 0) == RNDIS_INITIALIZE_CMPLT
        && le32(&response, 4) as usize == n
        && le32(&response, 8) == 1
        && le32(&response, 12) == 0;
    if !ok {
        println!(
            "qemu-usb-test: INITIALIZE_CMPLT {:02x?}",
            &response[..n.min(64)]
        );
        return Err(CheckError::Unexpected("bad REMOTE_NDIS_INITIALIZE_CMPLT"));
    }
    println!(
        "qemu-usb-test: check control IN short reply ok ({n} of {} bytes)",
        response.len()
    );
    Ok(())
}
