//! A model of a USB CDC-ECM Ethernet adapter (an LTE modem's or a gadget's Ethernet function)
//! as a [`UsbFunction`], attached to a [`Wire`].
//!
//! Written from the USB CDC 1.2 and ECM 1.2 specifications and the facts of QEMU's
//! `hw/usb/dev-network.c` (the `usb-net` device), not from our driver:
//! - descriptors (CDC 1.2 §5.2.3, ECM 1.2 §5.4): VID 0525 PID a4a2 (QEMU's, the Linux gadget's);
//!   one configuration with the communications interface 0 (class 02, subclass 06 ECM) carrying
//!   the Header (bcdCDC 1.10), Union (master 0, slave 1) and Ethernet Networking (iMACAddress
//!   string 3, wMaxSegmentSize 1514, no multicast or power filters, no statistics) functional
//!   descriptors and the interrupt IN endpoint 1 (16 bytes, as QEMU's status endpoint), then
//!   the data interface 1 (class 0a) whose alternate setting 0 has no endpoints and 1 has bulk
//!   IN 2 and bulk OUT 2 (ECM 1.2 §3.3: data moves only in alternate setting 1). String 3 is
//!   the MAC as 12 upper-case hex digits (ECM 1.2 §5.4).
//! - SET_ETHERNET_PACKET_FILTER (ECM 1.2 §6.2.4: request 0x43 to the communications interface,
//!   the filter bitmap in wValue, no data stage): promiscuous, all multicast, directed,
//!   broadcast, multicast (bits 0–4). Until the host sets it the filter passes directed,
//!   broadcast and multicast frames. Other class requests are refused (STALL) and logged:
//!   the functional descriptor announces no multicast filters and no statistics.
//! - notifications (ECM 1.2 §6.3) on the interrupt endpoint, after each change of the link and
//!   once after configuration: NETWORK_CONNECTION (bmRequestType a1, code 00, wValue 1 connected
//!   / 0 disconnected, wIndex 0, no data), then on a connect CONNECTION_SPEED_CHANGE (code 2a,
//!   8 data bytes: downlink and uplink bit rates, 100 Mbit/s).
//! - data (ECM 1.2 §3.3.1): one Ethernet frame (no FCS) per bulk transfer, ended by a short
//!   packet, or by a zero-length packet when its length is a multiple of the packet size.
//!   Frames from the wire are padded to the 60-byte minimum as a MAC receives them; frames to
//!   the wire are padded to 60 bytes as a MAC sends them. A transfer of fewer than 14 or more
//!   than 1514 bytes is dropped and logged.

use super::rtl8152::Cable;
use super::usb_function::{Handshake, InResponse, Stall, UsbFunction};
use super::wire::Wire;
use crate::usb::{SetupPacket, Speed};
use std::collections::VecDeque;
use std::io;

/// The communications interface (control requests and notifications).
pub const COMM_INTERFACE: u8 = 0;
/// The data interface (bulk endpoints in alternate setting 1).
pub const DATA_INTERFACE: u8 = 1;
/// Interrupt IN endpoint number (notifications).
pub const EP_NOTIFY: u8 = 1;
/// Bulk IN and bulk OUT endpoint number.
pub const EP_DATA: u8 = 2;
/// Bulk max packet size at high speed.
pub const BULK_MPS: usize = 512;
/// Interrupt max packet size (QEMU's `STATUS_BYTECOUNT`).
pub const NOTIFY_MPS: usize = 16;
/// Largest frame without FCS (wMaxSegmentSize).
pub const MAX_SEGMENT: usize = 1514;
/// The MAC address string's index (iMACAddress).
pub const STRING_MAC: u8 = 3;
/// SET_ETHERNET_PACKET_FILTER (ECM 1.2 Table 6).
const SET_ETHERNET_PACKET_FILTER: u8 = 0x43;
/// Packet filter bits (ECM 1.2 Table 8).
const FILTER_PROMISCUOUS: u16 = 1 << 0;
const FILTER_ALL_MULTICAST: u16 = 1 << 1;
const FILTER_DIRECTED: u16 = 1 << 2;
const FILTER_BROADCAST: u16 = 1 << 3;
const FILTER_MULTICAST: u16 = 1 << 4;
/// The filter before the host sets one.
const FILTER_DEFAULT: u16 = FILTER_DIRECTED | FILTER_BROADCAST | FILTER_MULTICAST;
/// Notification codes (ECM 1.2 Table 11).
const NETWORK_CONNECTION: u8 = 0x00;
const CONNECTION_SPEED_CHANGE: u8 = 0x2a;
/// The link's bit rate in both directions, as the speed notification reports it.
const BIT_RATE: u32 = 100_000_000;
/// Ethernet minimum frame without FCS.
const MIN_FRAME: usize = 60;
/// Destination, source and EtherType.
const HEADER: usize = 14;
/// Frames from the wire waiting for the host (a small device buffer; more are dropped).
const RX_QUEUE: usize = 32;

/// A host error the model detected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelError {
    /// A class or vendor request the function does not support (answered STALL).
    UnsupportedControl(SetupPacket),
    /// SET_ETHERNET_PACKET_FILTER with a data stage, to another interface, or with bits the
    /// specification does not define.
    BadPacketFilter(SetupPacket),
    /// SET_INTERFACE to an interface or alternate setting that does not exist.
    BadInterface(u8, u8),
    /// Data on an endpoint before SET_CONFIGURATION.
    NotConfigured(u8),
    /// Data on a bulk endpoint while the data interface is in alternate setting 0.
    DataInterfaceIdle(u8),
    /// Data for an endpoint the function does not have.
    NoSuchEndpoint(u8),
    /// An OUT packet longer than the max packet size.
    PacketTooLong(usize),
    /// A bulk-OUT transfer (frame) shorter than an Ethernet header.
    FrameTooShort(usize),
    /// A bulk-OUT transfer (frame) longer than wMaxSegmentSize.
    FrameTooLong(usize),
}

/// What the model saw; shared so tests can read it while the bus owns the model.
#[derive(Clone, Debug, Default)]
pub struct ModelReport {
    /// Host errors, in order.
    pub errors: Vec<ModelError>,
    /// The packet filter the host set last (`None`: never set).
    pub packet_filter: Option<u16>,
    /// Frames delivered to the host.
    pub rx_frames: u64,
    /// Frames from the wire the filter dropped (or that arrived while the link was down or
    /// the data interface idle).
    pub rx_filtered: u64,
    /// Frames from the wire dropped because the host did not take them fast enough.
    pub rx_overflow: u64,
    /// Frames put on the wire.
    pub tx_frames: u64,
    /// Notifications sent.
    pub notifications: u64,
    /// Wire I/O errors.
    pub wire_errors: u64,
}

/// A handle on a model's [`ModelReport`].
pub type ReportHandle = super::report::ReportHandle<ModelReport>;

/// A frame being sent on bulk IN, packet by packet.
struct InFlight {
    frame: Vec<u8>,
    sent: usize,
}

/// The simulated CDC-ECM function.
pub struct CdcEcmModel<W: Wire> {
    wire: W,
    mac: [u8; 6],
    config: Vec<u8>,
    configured: bool,
    /// The data interface's alternate setting 1 is selected.
    data_active: bool,
    filter: u16,
    rx: VecDeque<Vec<u8>>,
    rx_frame: Option<InFlight>,
    tx_frame: Vec<u8>,
    /// Frames the wire would not take yet.
    tx_queue: VecDeque<Vec<u8>>,
    /// The link state last notified (`None`: notify the current one).
    notified: Option<bool>,
    /// Notifications waiting for the interrupt endpoint.
    notifications: VecDeque<Vec<u8>>,
    cable: Cable,
    report: ReportHandle,
}

impl<W: Wire> CdcEcmModel<W> {
    /// A powered-on adapter with MAC `mac` linked to `wire`.
    pub fn new(wire: W, mac: [u8; 6]) -> Self {
        Self {
            wire,
            mac,
            config: configuration_descriptor(),
            configured: false,
            data_active: false,
            filter: FILTER_DEFAULT,
            rx: VecDeque::new(),
            rx_frame: None,
            tx_frame: Vec::new(),
            tx_queue: VecDeque::new(),
            notified: None,
            notifications: VecDeque::new(),
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

    fn error(&self, e: ModelError) {
        log::error!("cdc-ecm model: {e:?}");
        self.report.with(|r| r.errors.push(e));
    }

    /// Whether the filter passes a frame to `dest`.
    fn accepts(&self, dest: &[u8; 6]) -> bool {
        let f = self.filter;
        if f & FILTER_PROMISCUOUS != 0 {
            return true;
        }
        if *dest == [0xff; 6] {
            return f & FILTER_BROADCAST != 0;
        }
        if dest[0] & 1 != 0 {
            // No multicast filter list (wNumberMCFilters 0): MULTICAST passes them all.
            return f & (FILTER_ALL_MULTICAST | FILTER_MULTICAST) != 0;
        }
        *dest == self.mac && f & FILTER_DIRECTED != 0
    }

    /// Takes frames from the wire into the receive queue; frames are dropped while the link is
    /// down or the data interface idle, as a device with nowhere to put them does.
    fn pump_rx(&mut self) {
        loop {
            let frame = match self.wire.recv() {
                Ok(Some(f)) => f,
                Ok(None) => return,
                Err(e) => {
                    log::warn!("cdc-ecm model: wire recv: {e}");
                    self.report.with(|r| r.wire_errors += 1);
                    return;
                }
            };
            let passes = frame.len() >= HEADER
                && frame.len() <= MAX_SEGMENT
                && self.cable.is_plugged()
                && self.configured
                && self.data_active
                && self.accepts(&frame[..6].try_into().unwrap_or([0; 6]));
            if !passes {
                self.report.with(|r| r.rx_filtered += 1);
            } else if self.rx.len() >= RX_QUEUE {
                self.report.with(|r| r.rx_overflow += 1);
            } else {
                let mut frame = frame;
                if frame.len() < MIN_FRAME {
                    frame.resize(MIN_FRAME, 0);
                }
                self.rx.push_back(frame);
            }
        }
    }

    /// Sends queued frames until the wire backs up.
    fn pump_tx(&mut self) {
        while let Some(frame) = self.tx_queue.front() {
            match self.wire.send(frame) {
                Ok(()) => {
                    self.tx_queue.pop_front();
                    self.report.with(|r| r.tx_frames += 1);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    log::warn!("cdc-ecm model: wire send: {e}");
                    self.tx_queue.pop_front();
                    self.report.with(|r| r.wire_errors += 1);
                }
            }
        }
    }

    /// Queues the notifications of a link change (or of the link at configuration).
    fn sense_link(&mut self) {
        let up = self.cable.is_plugged();
        if !self.configured || self.notified == Some(up) {
            return;
        }
        self.notified = Some(up);
        let mut connection = vec![0xa1, NETWORK_CONNECTION];
        connection.extend_from_slice(&u16::from(up).to_le_bytes());
        connection.extend_from_slice(&u16::from(COMM_INTERFACE).to_le_bytes());
        connection.extend_from_slice(&0u16.to_le_bytes());
        self.notifications.push_back(connection);
        if up {
            let mut speed = vec![0xa1, CONNECTION_SPEED_CHANGE];
            speed.extend_from_slice(&0u16.to_le_bytes());
            speed.extend_from_slice(&u16::from(COMM_INTERFACE).to_le_bytes());
            speed.extend_from_slice(&8u16.to_le_bytes());
            speed.extend_from_slice(&BIT_RATE.to_le_bytes());
            speed.extend_from_slice(&BIT_RATE.to_le_bytes());
            self.notifications.push_back(speed);
        }
    }

    fn notify_in(&mut self, buf: &mut [u8]) -> InResponse {
        let Some(n) = self.notifications.front() else {
            return InResponse::Nak;
        };
        let len = n.len().min(buf.len()).min(NOTIFY_MPS);
        buf[..len].copy_from_slice(&n[..len]);
        self.notifications.pop_front();
        self.report.with(|r| r.notifications += 1);
        InResponse::Data(len)
    }

    fn bulk_in(&mut self, buf: &mut [u8]) -> InResponse {
        if self.rx_frame.is_none() {
            self.rx_frame = self.rx.pop_front().map(|frame| InFlight { frame, sent: 0 });
        }
        let Some(t) = &mut self.rx_frame else {
            return InResponse::Nak;
        };
        let mps = BULK_MPS.min(buf.len());
        let n = (t.frame.len() - t.sent).min(mps);
        buf[..n].copy_from_slice(&t.frame[t.sent..t.sent + n]);
        t.sent += n;
        // A short packet ends the frame; after a full last packet comes a zero-length one.
        if n < mps {
            self.rx_frame = None;
            self.report.with(|r| r.rx_frames += 1);
        }
        InResponse::Data(n)
    }

    fn bulk_out(&mut self, packet: &[u8]) -> Handshake {
        if packet.len() > BULK_MPS {
            self.error(ModelError::PacketTooLong(packet.len()));
            return Handshake::Stall;
        }
        self.pump_tx();
        if self.tx_queue.len() >= RX_QUEUE {
            // The transmitter is still busy: the host retries.
            return Handshake::Nak;
        }
        if self.tx_frame.len() + packet.len() > MAX_SEGMENT {
            // Keep swallowing the oversized transfer until its end, then report it once.
            self.tx_frame.truncate(MAX_SEGMENT + 1);
            if packet.len() == BULK_MPS {
                self.tx_frame.resize(MAX_SEGMENT + 1, 0);
                return Handshake::Ack;
            }
        } else {
            self.tx_frame.extend_from_slice(packet);
            if packet.len() == BULK_MPS {
                return Handshake::Ack;
            }
        }
        let mut frame = std::mem::take(&mut self.tx_frame);
        if frame.len() > MAX_SEGMENT {
            self.error(ModelError::FrameTooLong(frame.len()));
        } else if frame.len() < HEADER {
            self.error(ModelError::FrameTooShort(frame.len()));
        } else {
            if frame.len() < MIN_FRAME {
                frame.resize(MIN_FRAME, 0);
            }
            self.tx_queue.push_back(frame);
            self.pump_tx();
        }
        Handshake::Ack
    }

    /// The data interface back to alternate setting 0: whatever was in flight is lost.
    fn idle_data(&mut self) {
        self.data_active = false;
        self.rx.clear();
        self.rx_frame = None;
        self.tx_frame.clear();
    }
}

impl<W: Wire> UsbFunction for CdcEcmModel<W> {
    fn speed(&self) -> Speed {
        Speed::High
    }

    fn device_descriptor(&self) -> [u8; 18] {
        [
            18, 1, 0x00, 0x02, // bcdUSB 2.00
            0x02, 0, 0, 64, // class CDC, EP0 64 bytes
            0x25, 0x05, 0xa2, 0xa4, // 0525:a4a2
            0x00, 0x01, // bcdDevice 1.00
            1, 2, 0, 1, // manufacturer, product, no serial, one configuration
        ]
    }

    fn configuration_descriptor(&self) -> &[u8] {
        &self.config
    }

    fn string_descriptor(&self, index: u8, _language: u16) -> Option<Vec<u8>> {
        let mac: String;
        let s = match index {
            0 => return Some(vec![4, 3, 0x09, 0x04]),
            1 => "k230-net simulator",
            2 => "CDC Ethernet",
            STRING_MAC => {
                mac = self.mac.iter().map(|b| format!("{b:02X}")).collect();
                &mac
            }
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
        self.idle_data();
        self.notified = None;
        self.notifications.clear();
        Ok(())
    }

    fn set_interface(&mut self, interface: u8, alternate: u8) -> Result<(), Stall> {
        match (interface, alternate) {
            (COMM_INTERFACE, 0) => Ok(()),
            (DATA_INTERFACE, 0) => {
                self.idle_data();
                Ok(())
            }
            (DATA_INTERFACE, 1) => {
                self.idle_data();
                self.data_active = true;
                Ok(())
            }
            _ => {
                self.error(ModelError::BadInterface(interface, alternate));
                Err(Stall)
            }
        }
    }

    fn control_in(&mut self, setup: &SetupPacket) -> Result<Vec<u8>, Stall> {
        self.error(ModelError::UnsupportedControl(*setup));
        Err(Stall)
    }

    fn control_out(&mut self, setup: &SetupPacket, data: &[u8]) -> Result<(), Stall> {
        if setup.request_type != 0x21 || setup.request != SET_ETHERNET_PACKET_FILTER {
            self.error(ModelError::UnsupportedControl(*setup));
            return Err(Stall);
        }
        let defined = FILTER_PROMISCUOUS
            | FILTER_ALL_MULTICAST
            | FILTER_DIRECTED
            | FILTER_BROADCAST
            | FILTER_MULTICAST;
        if setup.index != u16::from(COMM_INTERFACE)
            || setup.length != 0
            || !data.is_empty()
            || setup.value & !defined != 0
        {
            self.error(ModelError::BadPacketFilter(*setup));
            return Err(Stall);
        }
        self.filter = setup.value;
        self.report.with(|r| r.packet_filter = Some(setup.value));
        Ok(())
    }

    fn data_out(&mut self, endpoint: u8, packet: &[u8]) -> Handshake {
        if !self.configured {
            self.error(ModelError::NotConfigured(endpoint));
            return Handshake::Stall;
        }
        if endpoint != EP_DATA {
            self.error(ModelError::NoSuchEndpoint(endpoint));
            return Handshake::Stall;
        }
        if !self.data_active {
            self.error(ModelError::DataInterfaceIdle(endpoint));
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
        self.pump_rx();
        match endpoint {
            EP_NOTIFY => self.notify_in(buf),
            EP_DATA if self.data_active => self.bulk_in(buf),
            EP_DATA => {
                self.error(ModelError::DataInterfaceIdle(endpoint));
                InResponse::Stall
            }
            _ => {
                self.error(ModelError::NoSuchEndpoint(endpoint));
                InResponse::Stall
            }
        }
    }

    fn bus_reset(&mut self) {
        self.configured = false;
        self.idle_data();
        self.notified = None;
        self.notifications.clear();
        self.filter = FILTER_DEFAULT;
    }

    /// Unplugged: everything queued is lost; the MAC stays (it is the device's own).
    fn power_off(&mut self) {
        self.bus_reset();
        self.tx_queue.clear();
    }
}

/// The configuration descriptor: the communications interface with its functional descriptors
/// and interrupt endpoint, the data interface's two alternate settings.
fn configuration_descriptor() -> Vec<u8> {
    let mut d = vec![
        9,
        2,
        0,
        0,
        2,
        1,
        0,
        0xc0,
        50, // configuration 1, 2 interfaces, self powered, 100 mA
        9,
        4,
        COMM_INTERFACE,
        0,
        1,
        0x02,
        0x06,
        0x00,
        0, // communications, ECM, 1 endpoint
        5,
        0x24,
        0x00,
        0x10,
        0x01, // Header: bcdCDC 1.10
        5,
        0x24,
        0x06,
        COMM_INTERFACE,
        DATA_INTERFACE, // Union
        13,
        0x24,
        0x0f,
        STRING_MAC,
        0,
        0,
        0,
        0, // Ethernet Networking: MAC string, no statistics
        (MAX_SEGMENT & 0xff) as u8,
        (MAX_SEGMENT >> 8) as u8,
        0,
        0,
        0, // 1514, no filters
        7,
        5,
        0x80 | EP_NOTIFY,
        0x03,
        NOTIFY_MPS as u8,
        0,
        8, // interrupt IN 1
        9,
        4,
        DATA_INTERFACE,
        0,
        0,
        0x0a,
        0,
        0,
        0, // data, alternate 0: no endpoints
        9,
        4,
        DATA_INTERFACE,
        1,
        2,
        0x0a,
        0,
        0,
        0, // data, alternate 1: bulk IN and OUT
        7,
        5,
        0x80 | EP_DATA,
        0x02,
        0x00,
        0x02,
        0, // bulk IN 2, 512
        7,
        5,
        EP_DATA,
        0x02,
        0x00,
        0x02,
        0, // bulk OUT 2, 512
    ];
    let total = d.len() as u16;
    d[2..4].copy_from_slice(&total.to_le_bytes());
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::wire::pair::pair;

    fn setup(request_type: u8, request: u8, value: u16, index: u16, length: u16) -> SetupPacket {
        SetupPacket {
            request_type,
            request,
            value,
            index,
            length,
        }
    }

    fn configured() -> (CdcEcmModel<impl Wire>, impl Wire) {
        let (a, b) = pair(64);
        let mut m = CdcEcmModel::new(a, [2, 0, 0, 0, 0xec, 1]);
        m.set_configuration(1).unwrap();
        m.set_interface(DATA_INTERFACE, 1).unwrap();
        (m, b)
    }

    #[test]
    fn descriptors_follow_cdc_and_ecm() {
        let (a, _b) = pair(64);
        let m = CdcEcmModel::new(a, [2, 0, 0, 0, 0xec, 1]);
        let c = m.configuration_descriptor();
        assert_eq!(usize::from(u16::from_le_bytes([c[2], c[3]])), c.len());
        // The Ethernet Networking functional descriptor: subtype 0f, 13 bytes.
        let eth = c.windows(3).position(|w| w == [13, 0x24, 0x0f]).unwrap();
        assert_eq!(c[eth + 3], STRING_MAC);
        assert_eq!(u16::from_le_bytes([c[eth + 8], c[eth + 9]]), 1514);
        let mac = m.string_descriptor(STRING_MAC, 0x0409).unwrap();
        let text: String =
            char::decode_utf16(mac[2..].chunks(2).map(|p| u16::from_le_bytes([p[0], p[1]])))
                .map(Result::unwrap)
                .collect();
        assert_eq!(text, "02000000EC01");
    }

    #[test]
    fn frames_move_both_ways_with_short_packet_and_zlp_ends() {
        let (mut m, mut wire) = configured();
        for len in [60, 512, 1024, 1514] {
            let frame: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut f = frame.clone();
            f[..6].copy_from_slice(&[2, 0, 0, 0, 0xec, 1]);
            wire.send(&f).unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; BULK_MPS];
            loop {
                let InResponse::Data(n) = m.data_in(EP_DATA, &mut buf) else {
                    panic!("no data");
                };
                got.extend_from_slice(&buf[..n]);
                if n < BULK_MPS {
                    break;
                }
            }
            assert_eq!(got, f);
            // And out: packets of 512, then the short (or zero-length) end.
            for chunk in f.chunks(BULK_MPS) {
                assert_eq!(m.data_out(EP_DATA, chunk), Handshake::Ack);
            }
            if f.len() % BULK_MPS == 0 {
                assert_eq!(m.data_out(EP_DATA, &[]), Handshake::Ack);
            }
            assert_eq!(wire.recv().unwrap(), Some(f));
        }
        assert!(m.report().snapshot().errors.is_empty());
    }

    #[test]
    fn the_filter_drops_what_it_should_and_promiscuous_takes_all() {
        let (mut m, mut wire) = configured();
        let mut other = vec![0u8; 60];
        other[..6].copy_from_slice(&[2, 9, 9, 9, 9, 9]);
        wire.send(&other).unwrap();
        let mut buf = [0u8; BULK_MPS];
        assert_eq!(m.data_in(EP_DATA, &mut buf), InResponse::Nak);
        let filter = setup(0x21, SET_ETHERNET_PACKET_FILTER, 0x000f, 0, 0);
        m.control_out(&filter, &[]).unwrap();
        wire.send(&other).unwrap();
        assert_eq!(m.data_in(EP_DATA, &mut buf), InResponse::Data(60));
        let bad = setup(0x21, SET_ETHERNET_PACKET_FILTER, 0x0100, 0, 0);
        assert_eq!(m.control_out(&bad, &[]), Err(Stall));
        assert_eq!(
            m.report().snapshot().errors,
            [ModelError::BadPacketFilter(bad)]
        );
    }

    #[test]
    fn link_changes_are_notified() {
        let (mut m, _wire) = configured();
        let mut buf = [0u8; NOTIFY_MPS];
        assert_eq!(m.data_in(EP_NOTIFY, &mut buf), InResponse::Data(8));
        assert_eq!(buf[..8], [0xa1, 0, 1, 0, 0, 0, 0, 0]);
        assert_eq!(m.data_in(EP_NOTIFY, &mut buf), InResponse::Data(16));
        assert_eq!(buf[1], CONNECTION_SPEED_CHANGE);
        assert_eq!(m.data_in(EP_NOTIFY, &mut buf), InResponse::Nak);
        m.cable().unplug();
        assert_eq!(m.data_in(EP_NOTIFY, &mut buf), InResponse::Data(8));
        assert_eq!(buf[..8], [0xa1, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn bulk_data_needs_the_data_interface_active() {
        let (a, _b) = pair(64);
        let mut m = CdcEcmModel::new(a, [2, 0, 0, 0, 0xec, 1]);
        m.set_configuration(1).unwrap();
        assert_eq!(m.data_out(EP_DATA, &[0; 60]), Handshake::Stall);
        assert_eq!(
            m.report().snapshot().errors,
            [ModelError::DataInterfaceIdle(EP_DATA)]
        );
    }
}
