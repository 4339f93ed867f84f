//! A model of the Realtek RTL8152 USB 10/100 NIC as a [`UsbFunction`], attached to a [`Wire`].
//!
//! Written from the hardware facts (Linux `drivers/net/usb/r8152.c`, CherryUSB
//! `class/vendor/net/usbh_rtl8152.c`, USB 2.0), not from our driver:
//! - descriptors: VID 0bda PID 8152, one vendor interface (class ff) with bulk IN 1, bulk OUT 2
//!   (512 bytes at high speed) and interrupt IN 3 (2-byte link status); string 3 is the MAC in
//!   hex, as CherryUSB reads it. (Silicon has a second, CDC-ECM configuration; not modelled.)
//! - registers: see [`rtl8152_regs`](super::rtl8152_regs); bad requests STALL and are logged.
//! - receive: frames from the wire that pass the filter are padded to the 60-byte Ethernet
//!   minimum, get their 4 CRC bytes, and go behind a 24-byte descriptor (length incl. CRC in
//!   opts1 bits 14..0); several are aggregated (each descriptor 8-byte aligned) into one
//!   bulk-IN transfer of at most 16 KiB, ended by a short packet (or a zero-length packet
//!   when the aggregate fills whole packets: a modelling choice, the silicon's behaviour there
//!   is unconfirmed).
//! - transmit: bulk-OUT transfers (ended by a short packet) carry 8-byte descriptors (FS bit 31,
//!   LS bit 30, length bits 17..0), each 4-byte aligned, each followed by its frame. Malformed
//!   descriptors are logged and the rest of the transfer dropped. Frames are padded to 60 bytes
//!   as a MAC does and sent to the wire; while the wire backs up, bulk OUT answers NAK.
//! - checksums: the TX descriptor's requests are carried out and every received frame's RX
//!   descriptor reports its IPv4, TCP and UDP checksums, see [`rtl8152_csum`](super::rtl8152_csum).
//! - large send: a TX descriptor with `GTSENDV4` (opts1 bit 28) may carry a frame up to the
//!   transfer's size, which goes on the wire cut into segments, see
//!   [`rtl8152_large_send`](super::rtl8152_large_send); a request the model cannot carry out
//!   drops that frame (a driver error) and parsing goes on with the next descriptor.

use super::rtl8152_csum::{self, TxChecksumError};
use super::rtl8152_large_send::{self, LargeSendError, TX_GTSENDV4};
use super::rtl8152_regs::{RegFault, Registers};
use super::usb_function::{Handshake, InResponse, Stall, UsbFunction};
use super::wire::Wire;
use crate::usb::{SetupPacket, Speed};
use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Bulk IN endpoint number.
pub const EP_BULK_IN: u8 = 1;
/// Bulk OUT endpoint number.
pub const EP_BULK_OUT: u8 = 2;
/// Interrupt IN endpoint number.
pub const EP_INTERRUPT_IN: u8 = 3;
/// Bulk max packet size at high speed.
pub const BULK_MPS: usize = 512;
/// Largest RX aggregate (Linux `rx_buf_sz` for RTL8152: 16 KiB).
pub const RX_AGG_LIMIT: usize = 16 * 1024;
/// Largest bulk-OUT transfer the model buffers (Linux `agg_buf_sz`: 20 KiB).
pub const TX_TRANSFER_LIMIT: usize = 20 * 1024;
/// Ethernet minimum frame without CRC.
const MIN_FRAME: usize = 60;
/// Largest frame the transmitter takes (1500-byte MTU, VLAN tag allowed).
const MAX_TX_FRAME: usize = 1518;

/// A driver error the model detected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelError {
    /// A register request the silicon would refuse (answered STALL).
    Register(RegFault),
    /// A vendor request with an unexpected request number on the IN or OUT path.
    UnsupportedControl(SetupPacket),
    /// Data on a bulk or interrupt endpoint before SET_CONFIGURATION (answered STALL).
    NotConfigured(u8),
    /// Data for an endpoint the device does not have, or in the wrong direction.
    NoSuchEndpoint(u8),
    /// An OUT packet longer than the max packet size.
    PacketTooLong(usize),
    /// A TX descriptor that is cut off.
    TxTruncatedDescriptor,
    /// A TX descriptor without both FS and LS (segmented frames are not modelled).
    TxNotWholeFrame(u32),
    /// A TX descriptor length of 0 or above the maximum.
    TxBadLength(usize),
    /// A TX descriptor whose frame runs past the end of the transfer.
    TxTruncatedFrame,
    /// A bulk-OUT transfer beyond the model's buffer.
    TxTransferTooLong,
    /// Frames sent while CR.TE is off (dropped).
    TxDisabled,
    /// A checksum request the frame does not match (the frame is sent as it is).
    TxChecksum(TxChecksumError),
    /// A large send the model cannot carry out (the frame is not sent).
    TxLargeSend(LargeSendError),
}

/// What the model saw; shared so tests can read it while the bus owns the model.
#[derive(Clone, Debug, Default)]
pub struct ModelReport {
    /// Driver errors, in order.
    pub errors: Vec<ModelError>,
    /// Frames delivered to the host in bulk-IN transfers.
    pub rx_frames: u64,
    /// Bulk-IN transfers (aggregates) delivered.
    pub rx_transfers: u64,
    /// Frames from the wire the receive filter or RX-disabled state dropped.
    pub rx_filtered: u64,
    /// Frames from the wire longer than RMS.
    pub rx_oversize: u64,
    /// Frames taken from the wire for the next aggregate, lost when the device was powered off.
    pub rx_held_lost: u64,
    /// Frames of aggregates a reset or power-off cut before they were delivered whole (counted
    /// in `rx_frames` too).
    pub rx_cut: u64,
    /// Frames put on the wire.
    pub tx_frames: u64,
    /// Frames taken from the host and still waiting for the wire when the device was powered
    /// off (lost).
    pub tx_lost: u64,
    /// Bulk-OUT transfers parsed.
    pub tx_transfers: u64,
    /// TX descriptors taken (whole frames and large sends).
    pub tx_descriptors: u64,
    /// TX descriptors carried out as large sends (their segments are in `tx_frames`).
    pub tx_large_sends: u64,
    /// Wire I/O errors.
    pub wire_errors: u64,
}

/// A handle on a model's [`ModelReport`].
pub type ReportHandle = super::report::ReportHandle<ModelReport>;

/// A NIC's Ethernet cable (the RTL8152's and the CDC-ECM model's): clones share it, so a test can pull it while the bus owns the
/// model. Unplugged, the PHY reports no link and no frames arrive.
#[derive(Clone, Debug)]
pub struct Cable(Arc<AtomicBool>);

impl Cable {
    /// A cable plugged in.
    pub(crate) fn plugged() -> Self {
        Self(Arc::new(AtomicBool::new(true)))
    }

    /// Plugs the cable in (link up).
    pub fn plug(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Pulls the cable (link down).
    pub fn unplug(&self) {
        self.0.store(false, Ordering::Relaxed);
    }

    /// True while plugged in.
    pub fn is_plugged(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// The aggregate being sent on bulk IN; its buffer is kept for the next one.
#[derive(Default)]
struct RxTransfer {
    data: Vec<u8>,
    sent: usize,
    /// Frames in `data`.
    frames: u64,
    /// Whether `data` is being sent (else it is free).
    active: bool,
}

/// The simulated RTL8152.
pub struct Rtl8152Model<W: Wire> {
    wire: W,
    mac: [u8; 6],
    regs: Registers,
    configured: bool,
    config: Vec<u8>,
    serial: String,
    rx: RxTransfer,
    /// The last frame taken from the wire (padded, with CRC); reused for every frame.
    rx_frame: Vec<u8>,
    /// Whether `rx_frame` waits for the next aggregate (it did not fit the last one).
    rx_held: bool,
    tx_transfer: Vec<u8>,
    tx_fifo: VecDeque<Vec<u8>>,
    reported_link: Option<bool>,
    cable: Cable,
    report: ReportHandle,
}

impl<W: Wire> Rtl8152Model<W> {
    /// A powered-on RTL8152 with MAC `mac` whose PHY is linked to `wire`.
    pub fn new(wire: W, mac: [u8; 6]) -> Self {
        Self {
            wire,
            mac,
            regs: Registers::new(mac, true),
            configured: false,
            config: configuration_descriptor(),
            serial: mac.iter().map(|b| format!("{b:02X}")).collect(),
            rx: RxTransfer::default(),
            rx_frame: Vec::new(),
            rx_held: false,
            tx_transfer: Vec::new(),
            tx_fifo: VecDeque::new(),
            reported_link: None,
            cable: Cable::plugged(),
            report: ReportHandle::default(),
        }
    }

    /// The shared report of what the model saw.
    pub fn report(&self) -> ReportHandle {
        self.report.clone()
    }

    /// The cable (plugged in at first).
    pub fn cable(&self) -> Cable {
        self.cable.clone()
    }

    /// Brings the PHY's link state in line with the cable.
    fn sense_link(&mut self) {
        self.regs.set_link(self.cable.is_plugged());
    }

    fn error(&self, e: ModelError) {
        log::error!("rtl8152 model: {e:?}");
        self.report.with(|r| r.errors.push(e));
    }

    /// Sends queued TX frames until the wire backs up.
    fn pump_tx(&mut self) {
        while let Some(frame) = self.tx_fifo.front() {
            match self.wire.send(frame) {
                Ok(()) => {
                    self.tx_fifo.pop_front();
                    self.report.with(|r| r.tx_frames += 1);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    log::warn!("rtl8152 model: wire send: {e}");
                    self.tx_fifo.pop_front();
                    self.report.with(|r| r.wire_errors += 1);
                }
            }
        }
    }

    /// Takes the next frame from the wire that the receiver accepts into `rx_frame`, padded,
    /// with CRC; false when none is waiting.
    fn next_rx_frame(&mut self) -> bool {
        if std::mem::take(&mut self.rx_held) {
            return true;
        }
        // Bounded: at most this many filtered frames are skipped per call.
        for _ in 0..64 {
            let frame = &mut self.rx_frame;
            frame.clear();
            match self.wire.recv_into(frame) {
                Ok(Some(_)) => {}
                Ok(None) => return false,
                Err(e) => {
                    log::warn!("rtl8152 model: wire recv: {e}");
                    self.report.with(|r| r.wire_errors += 1);
                    return false;
                }
            }
            if frame.len() < 14 || !self.regs.rx_enabled() || !self.regs.link_up() {
                self.report.with(|r| r.rx_filtered += 1);
                continue;
            }
            let dest: [u8; 6] = frame[..6].try_into().unwrap_or([0; 6]);
            if !self.regs.accepts(&dest) {
                self.report.with(|r| r.rx_filtered += 1);
                continue;
            }
            if frame.len() < MIN_FRAME {
                frame.resize(MIN_FRAME, 0);
            }
            if frame.len() + 4 > self.regs.max_rx_len() {
                self.report.with(|r| r.rx_oversize += 1);
                continue;
            }
            let crc = crc32(frame);
            frame.extend_from_slice(&crc.to_le_bytes());
            return true;
        }
        false
    }

    /// Builds the next aggregate from waiting frames into `rx`; false when nothing is waiting.
    fn build_aggregate(&mut self) -> bool {
        self.rx.data.clear();
        self.rx.sent = 0;
        let mut frames = 0;
        while self.next_rx_frame() {
            let (data, frame) = (&mut self.rx.data, &self.rx_frame);
            let at = data.len().next_multiple_of(8);
            if at + 24 + frame.len() > RX_AGG_LIMIT {
                self.rx_held = true;
                break;
            }
            data.resize(at, 0);
            let mut desc = [0u8; 24];
            desc[..4].copy_from_slice(&(frame.len() as u32 & 0x7fff).to_le_bytes());
            let (opts2, opts3) = rtl8152_csum::receive(&frame[..frame.len() - 4]);
            desc[4..8].copy_from_slice(&opts2.to_le_bytes());
            desc[8..12].copy_from_slice(&opts3.to_le_bytes());
            data.extend_from_slice(&desc);
            data.extend_from_slice(frame);
            frames += 1;
            if !self.regs.aggregation() {
                break;
            }
        }
        if frames == 0 {
            return false;
        }
        self.report.with(|r| {
            r.rx_frames += frames;
            r.rx_transfers += 1;
        });
        self.rx.frames = frames;
        self.rx.active = true;
        true
    }

    fn bulk_in(&mut self, buf: &mut [u8]) -> InResponse {
        if !self.rx.active && !self.build_aggregate() {
            return InResponse::Nak;
        }
        let t = &mut self.rx;
        let mps = BULK_MPS.min(buf.len());
        let n = (t.data.len() - t.sent).min(mps);
        buf[..n].copy_from_slice(&t.data[t.sent..t.sent + n]);
        t.sent += n;
        // Done after a short packet; a full last packet needs a zero-length one after it,
        // unless the aggregate reached the limit (the host's buffer is full then).
        let done = n < mps || (t.sent == t.data.len() && t.data.len() >= RX_AGG_LIMIT);
        if done {
            t.active = false;
        }
        InResponse::Data(n)
    }

    fn interrupt_in(&mut self, buf: &mut [u8]) -> InResponse {
        let up = self.regs.link_up();
        if self.reported_link == Some(up) || buf.len() < 2 {
            return InResponse::Nak;
        }
        self.reported_link = Some(up);
        // Status word: INTR_LINK (bit 2) when the link is up.
        let status: u16 = if up { 0x0004 } else { 0 };
        buf[..2].copy_from_slice(&status.to_le_bytes());
        InResponse::Data(2)
    }

    fn bulk_out(&mut self, packet: &[u8]) -> Handshake {
        if packet.len() > BULK_MPS {
            self.error(ModelError::PacketTooLong(packet.len()));
            return Handshake::Stall;
        }
        self.pump_tx();
        if !self.tx_fifo.is_empty() && self.tx_transfer.is_empty() {
            // The transmitter is still busy with the previous transfer.
            return Handshake::Nak;
        }
        if self.tx_transfer.len() + packet.len() > TX_TRANSFER_LIMIT {
            self.error(ModelError::TxTransferTooLong);
            self.tx_transfer.clear();
            return Handshake::Ack;
        }
        self.tx_transfer.extend_from_slice(packet);
        if packet.len() == BULK_MPS {
            return Handshake::Ack;
        }
        let transfer = std::mem::take(&mut self.tx_transfer);
        self.parse_tx(&transfer);
        self.pump_tx();
        Handshake::Ack
    }

    /// Pads `frame` to the Ethernet minimum, as a MAC does, and queues it for the wire.
    fn queue_tx(&mut self, mut frame: Vec<u8>) {
        if frame.len() < MIN_FRAME {
            frame.resize(MIN_FRAME, 0);
        }
        self.tx_fifo.push_back(frame);
    }

    /// Splits a bulk-OUT transfer into frames for the TX FIFO.
    fn parse_tx(&mut self, t: &[u8]) {
        self.report.with(|r| r.tx_transfers += 1);
        let mut pos = 0usize;
        loop {
            pos = pos.next_multiple_of(4);
            if pos >= t.len() {
                return;
            }
            let Some(desc) = t.get(pos..pos + 8) else {
                return self.error(ModelError::TxTruncatedDescriptor);
            };
            let opts1 = u32::from_le_bytes([desc[0], desc[1], desc[2], desc[3]]);
            if opts1 & 0xc000_0000 != 0xc000_0000 {
                return self.error(ModelError::TxNotWholeFrame(opts1));
            }
            let len = (opts1 & 0x3ffff) as usize;
            let large_send = opts1 & TX_GTSENDV4 != 0;
            // A large send's frame is bounded by the transfer alone.
            if len == 0 || (len > MAX_TX_FRAME && !large_send) {
                return self.error(ModelError::TxBadLength(len));
            }
            let Some(frame) = t.get(pos + 8..pos + 8 + len) else {
                return self.error(ModelError::TxTruncatedFrame);
            };
            if !self.regs.tx_enabled() {
                return self.error(ModelError::TxDisabled);
            }
            let opts2 = u32::from_le_bytes([desc[4], desc[5], desc[6], desc[7]]);
            self.report.with(|r| r.tx_descriptors += 1);
            pos += 8 + len;
            if large_send {
                match rtl8152_large_send::segment(frame, opts1, opts2, MAX_TX_FRAME) {
                    Ok(segments) => {
                        self.report.with(|r| r.tx_large_sends += 1);
                        segments.into_iter().for_each(|s| self.queue_tx(s));
                    }
                    Err(e) => self.error(ModelError::TxLargeSend(e)),
                }
                continue;
            }
            let mut frame = frame.to_vec();
            if let Err(e) = rtl8152_csum::transmit(&mut frame, opts2) {
                self.error(ModelError::TxChecksum(e));
            }
            self.queue_tx(frame);
        }
    }
}

impl<W: Wire> UsbFunction for Rtl8152Model<W> {
    fn speed(&self) -> Speed {
        Speed::High
    }

    fn device_descriptor(&self) -> [u8; 18] {
        [
            18, 1, 0x10, 0x02, // bcdUSB 2.10
            0, 0, 0, 64, // class per interface, EP0 64 bytes
            0xda, 0x0b, 0x52, 0x81, // 0bda:8152
            0x00, 0x20, // bcdDevice 20.00
            1, 2, 3, 1, // strings, one configuration
        ]
    }

    fn configuration_descriptor(&self) -> &[u8] {
        &self.config
    }

    fn string_descriptor(&self, index: u8, _language: u16) -> Option<Vec<u8>> {
        let s = match index {
            0 => return Some(vec![4, 3, 0x09, 0x04]),
            1 => "Realtek",
            2 => "USB 10/100 LAN",
            3 => &self.serial,
            _ => return None,
        };
        let mut d = vec![0, 3];
        d.extend(s.encode_utf16().flat_map(u16::to_le_bytes));
        d[0] = d.len() as u8;
        Some(d)
    }

    fn set_configuration(&mut self, value: u8) -> Result<(), Stall> {
        match value {
            0 => self.configured = false,
            1 => self.configured = true,
            _ => return Err(Stall),
        }
        self.reported_link = None;
        Ok(())
    }

    fn set_interface(&mut self, interface: u8, alternate: u8) -> Result<(), Stall> {
        if interface == 0 && alternate == 0 {
            Ok(())
        } else {
            Err(Stall)
        }
    }

    fn control_in(&mut self, setup: &SetupPacket) -> Result<Vec<u8>, Stall> {
        self.sense_link();
        self.regs.read(setup).map_err(|e| {
            self.error(ModelError::Register(e));
            Stall
        })
    }

    fn control_out(&mut self, setup: &SetupPacket, data: &[u8]) -> Result<(), Stall> {
        self.regs.write(setup, data).map_err(|e| {
            self.error(ModelError::Register(e));
            Stall
        })
    }

    fn data_out(&mut self, endpoint: u8, packet: &[u8]) -> Handshake {
        if !self.configured {
            self.error(ModelError::NotConfigured(endpoint));
            return Handshake::Stall;
        }
        if endpoint != EP_BULK_OUT {
            self.error(ModelError::NoSuchEndpoint(endpoint));
            return Handshake::Stall;
        }
        self.bulk_out(packet)
    }

    fn data_in(&mut self, endpoint: u8, buf: &mut [u8]) -> InResponse {
        if !self.configured {
            self.error(ModelError::NotConfigured(endpoint));
            return InResponse::Stall;
        }
        self.sense_link();
        self.pump_tx();
        match endpoint {
            EP_BULK_IN => self.bulk_in(buf),
            EP_INTERRUPT_IN => self.interrupt_in(buf),
            _ => {
                self.error(ModelError::NoSuchEndpoint(endpoint));
                InResponse::Stall
            }
        }
    }

    fn bus_reset(&mut self) {
        self.configured = false;
        if std::mem::take(&mut self.rx.active) {
            let cut = self.rx.frames;
            self.report.with(|r| r.rx_cut += cut);
        }
        self.tx_transfer.clear();
        self.reported_link = None;
    }

    /// Unplugged: registers back to their power-on values (the MAC comes from the EEPROM
    /// again), everything queued is lost.
    fn power_off(&mut self) {
        self.bus_reset();
        self.regs = Registers::new(self.mac, self.cable.is_plugged());
        let held = u64::from(std::mem::take(&mut self.rx_held));
        let queued = self.tx_fifo.len() as u64;
        self.report.with(|r| {
            r.rx_held_lost += held;
            r.tx_lost += queued;
        });
        self.tx_fifo.clear();
    }
}

/// The configuration descriptor: one vendor interface, bulk IN 1, bulk OUT 2, interrupt IN 3.
fn configuration_descriptor() -> Vec<u8> {
    vec![
        9, 2, 39, 0, 1, 1, 0, 0xa0, 50, // configuration 1, bus powered, remote wakeup, 100 mA
        9, 4, 0, 0, 3, 0xff, 0xff, 0x00, 0, // interface 0: vendor specific
        7, 5, 0x81, 0x02, 0x00, 0x02, 0, // bulk IN 1, 512
        7, 5, 0x02, 0x02, 0x00, 0x02, 0, // bulk OUT 2, 512
        7, 5, 0x83, 0x03, 0x02, 0x00, 8, // interrupt IN 3, 2 bytes, 2^(8-1) microframes
    ]
}

/// The Ethernet FCS: CRC-32 (reflected polynomial 0xedb88320) of the frame.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc = (crc >> 8) ^ CRC32_TABLE[usize::from(crc as u8 ^ b)];
    }
    !crc
}

/// The reflected CRC-32 (polynomial 0xedb88320) of every byte value: one table look-up per
/// byte instead of eight shifts (the model computes the FCS of every frame it moves).
const CRC32_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = (crc >> 1) ^ (0xedb8_8320 & (crc & 1).wrapping_neg());
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_check_value() {
        // The CRC-32 check value of "123456789".
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(crc32(b""), 0);
        // A frame followed by its FCS (little-endian) leaves the CRC-32 residue.
        let mut frame: Vec<u8> = (0..1514u32).map(|i| (i * 7 + 3) as u8).collect();
        let fcs = crc32(&frame);
        frame.extend_from_slice(&fcs.to_le_bytes());
        assert_eq!(!crc32(&frame), 0xdebb_20e3);
    }
}
