//! A high-speed check of the DWC2 driver with QEMU's `usb-storage` (`hw/usb/dev-storage.c`):
//! 512-byte bulk packets, and bulk IN transfers above 1536 bytes, which QEMU's DWC2 model hands
//! to the device whole and completes asynchronously (`hcd-dwc2.c`, the "small" transfer hack
//! and `dwc2_async_packet_complete`).
//!
//! It reads the first [`READ_BYTES`] of the disk with SCSI READ(10) over Bulk-Only Transport
//! and prints an FNV-1a checksum that the test compares with the disk file's. Layouts: USB Mass
//! Storage Class Bulk-Only Transport 1.0 §5.1 (CBW, 31 bytes) and §5.2 (CSW, 13 bytes); SCSI
//! Block Commands READ(10) (opcode 0x28, big-endian LBA and length), SCSI Primary Commands
//! TEST UNIT READY (opcode 0x00). Only reads: BOT data-out
//! stages of whole packets must not end with a zero-length packet, and `UsbHost::submit_out`
//! always ends such transfers with one, as CDC-ECM needs.

use core::task::Poll;

use k230_hal::usb::descriptor::ConfigurationDescriptor;
use k230_hal::usb::{Pipe, SetupPacket, UsbDevice, UsbError, UsbHost};

use crate::{println, timer};

/// Bytes of the disk read and checksummed.
pub const READ_BYTES: usize = 64 * 1024;
/// Bytes per READ(10): one pipe buffer of the driver.
const CHUNK: usize = 16 * 1024;
/// Sector size of QEMU's SCSI disk.
const SECTOR: usize = 512;
/// Limit for one bulk transfer.
const TRANSFER_TIMEOUT_US: u64 = 2_000_000;
/// CBW and CSW signatures ("USBC", "USBS").
const CBW_SIGNATURE: u32 = 0x4342_5355;
const CSW_SIGNATURE: u32 = 0x5342_5355;
/// Mass storage class, SCSI transparent subclass, bulk-only protocol.
const CLASS_MASS_STORAGE: u8 = 0x08;

/// Why the storage check failed.
pub enum StorageError {
    /// No mass-storage interface with a bulk IN and a bulk OUT endpoint.
    NoInterface,
    /// A transfer failed.
    Usb(&'static str, UsbError),
    /// A transfer did not finish in time.
    Timeout(&'static str),
    /// The CSW was malformed or reported a failure.
    BadStatus,
}

impl core::fmt::Display for StorageError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NoInterface => f.write_str("no bulk-only mass-storage interface"),
            Self::Usb(what, e) => write!(f, "{what}: {e:?}"),
            Self::Timeout(what) => write!(f, "{what}: timed out"),
            Self::BadStatus => f.write_str("bad command status"),
        }
    }
}

fn receive<H: UsbHost>(
    host: &mut H,
    pipe: &Pipe,
    buf: &mut [u8],
    what: &'static str,
) -> Result<usize, StorageError> {
    let deadline = timer::now_us() + TRANSFER_TIMEOUT_US;
    while timer::now_us() < deadline {
        match host.poll_in(pipe, buf) {
            Poll::Pending => {}
            Poll::Ready(r) => return r.map_err(|e| StorageError::Usb(what, e)),
        }
    }
    Err(StorageError::Timeout(what))
}

fn send<H: UsbHost>(host: &mut H, pipe: &Pipe, data: &[u8]) -> Result<(), StorageError> {
    host.submit_out(pipe, data)
        .map_err(|e| StorageError::Usb("CBW", e))?;
    let deadline = timer::now_us() + TRANSFER_TIMEOUT_US;
    while timer::now_us() < deadline {
        match host.poll_out(pipe) {
            Poll::Pending => {}
            Poll::Ready(r) => return r.map_err(|e| StorageError::Usb("CBW", e)),
        }
    }
    Err(StorageError::Timeout("CBW"))
}

/// One BOT command: CBW out, `data.len()` bytes in (none when empty), CSW in. Returns the
/// CSW status (0 = passed, 1 = failed).
fn command<H: UsbHost>(
    host: &mut H,
    (bulk_in, bulk_out): (&Pipe, &Pipe),
    tag: u32,
    cdb: &[u8],
    data: &mut [u8],
) -> Result<u8, StorageError> {
    let len = u32::try_from(data.len()).map_err(|_| StorageError::BadStatus)?;
    let mut cbw = [0u8; 31];
    cbw[0..4].copy_from_slice(&CBW_SIGNATURE.to_le_bytes());
    cbw[4..8].copy_from_slice(&tag.to_le_bytes());
    cbw[8..12].copy_from_slice(&len.to_le_bytes());
    cbw[12] = 0x80; // data in
    cbw[14] = cdb.len().min(16) as u8;
    cbw[15..15 + cdb.len().min(16)].copy_from_slice(&cdb[..cdb.len().min(16)]);
    send(host, bulk_out, &cbw)?;
    if !data.is_empty() {
        let got = receive(host, bulk_in, data, "data in")?;
        if got != data.len() {
            println!("qemu-usb-test: storage: {got} of {} bytes", data.len());
            return Err(StorageError::BadStatus);
        }
    }
    let mut csw = [0u8; 13];
    let n = receive(host, bulk_in, &mut csw, "CSW")?;
    let field = |at: usize| u32::from_le_bytes([csw[at], csw[at + 1], csw[at + 2], csw[at + 3]]);
    if n != 13 || field(0) != CSW_SIGNATURE || field(4) != tag {
        println!("qemu-usb-test: storage: CSW {:02x?}", &csw[..n.min(13)]);
        return Err(StorageError::BadStatus);
    }
    Ok(csw[12])
}

/// READ(10) of `buf.len()` bytes from sector `lba`; the command must pass with no residue.
fn read<H: UsbHost>(
    host: &mut H,
    pipes: (&Pipe, &Pipe),
    tag: u32,
    lba: u32,
    buf: &mut [u8],
) -> Result<(), StorageError> {
    let sectors = u16::try_from(buf.len() / SECTOR).map_err(|_| StorageError::BadStatus)?;
    let mut cdb = [0u8; 10];
    cdb[0] = 0x28;
    cdb[2..6].copy_from_slice(&lba.to_be_bytes());
    cdb[7..9].copy_from_slice(&sectors.to_be_bytes());
    match command(host, pipes, tag, &cdb, buf)? {
        0 => Ok(()),
        _ => Err(StorageError::BadStatus),
    }
}

/// FNV-1a, 64 bits.
fn fnv1a(hash: u64, data: &[u8]) -> u64 {
    data.iter().fold(hash, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Configures the device and reads [`READ_BYTES`], printing the checksum.
pub fn run<H: UsbHost>(host: &mut H, dev: &UsbDevice) -> Result<(), StorageError> {
    let config = ConfigurationDescriptor::new_checked(dev.config())
        .map_err(|_| StorageError::NoInterface)?;
    let pipes = config
        .interfaces()
        .find(|i| i.descriptor.class() == CLASS_MASS_STORAGE)
        .map(|i| i.pipes(dev.address, dev.speed))
        .ok_or(StorageError::NoInterface)?;
    let (Some(bulk_in), Some(bulk_out)) = (pipes.bulk_in, pipes.bulk_out) else {
        return Err(StorageError::NoInterface);
    };
    let set_config = SetupPacket {
        request_type: 0x00,
        request: 0x09,
        value: u16::from(config.configuration_value()),
        index: 0,
        length: 0,
    };
    host.control_out(dev.address, set_config, &[])
        .map_err(|e| StorageError::Usb("SET_CONFIGURATION", e))?;
    println!(
        "qemu-usb-test: storage: bulk IN {} / OUT {}, {} bytes per packet",
        bulk_in.endpoint, bulk_out.endpoint, bulk_in.max_packet_size
    );
    // The disk reports a unit attention (power on) on its first command: TEST UNIT READY
    // until it passes (SCSI Primary Commands, unit attention condition).
    let pipes_pair = (&bulk_in, &bulk_out);
    let mut ready = false;
    for tag in 1..=3 {
        ready = command(host, pipes_pair, tag, &[0u8; 6], &mut [])? == 0;
        if ready {
            break;
        }
    }
    if !ready {
        return Err(StorageError::BadStatus);
    }
    let started = timer::now_us();
    let mut hash = 0xcbf2_9ce4_8422_2325;
    let mut buf = [0u8; CHUNK];
    // One sector first (a single full packet), then whole pipe buffers.
    read(host, pipes_pair, 10, 0, &mut buf[..SECTOR])?;
    let first = fnv1a(0xcbf2_9ce4_8422_2325, &buf[..SECTOR]);
    for (i, lba) in (0..READ_BYTES / SECTOR).step_by(CHUNK / SECTOR).enumerate() {
        let tag = 11 + i as u32;
        read(host, pipes_pair, tag, lba as u32, &mut buf)?;
        hash = fnv1a(hash, &buf);
    }
    println!(
        "qemu-usb-test: storage: sector 0 fnv1a64 {first:016x}, {READ_BYTES} bytes fnv1a64 {hash:016x} in {} us",
        timer::now_us() - started
    );
    Ok(())
}
