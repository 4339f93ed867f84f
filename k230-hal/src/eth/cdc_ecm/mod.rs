//! USB CDC Ethernet Control Model (ECM) class driver.
//!
//! [`probe`] finds the ECM function among all of a device's configurations (a device may offer
//! several: QEMU's `usb-net` lists RNDIS as configuration index 0, value 2, and ECM as index 1,
//! value 1, per `hw/usb/dev-network.c`), selects it, reads the MAC address string, resets the
//! data interface (alternate setting 0), selects its alternate setting with the bulk endpoints
//! and sets the packet filter.
//! [`CdcEcm`] then moves raw Ethernet frames (no header, no FCS) over the bulk pipes and tracks
//! the link from notifications on the interrupt pipe. With feature `smoltcp` it is a
//! `smoltcp::phy::Device` (see its `phy` module).
//!
//! Sources of facts: USB CDC 1.2 and ECM 1.2 specifications (request and notification codes,
//! descriptor layouts); Linux `drivers/net/usb/cdc_ether.c` and `usbnet.c` (probe order, the
//! packet filter whose failure is ignored); CherryUSB `class/cdc/usbh_cdc_ecm.c` (alternate
//! setting selection, notification handling on a bare-metal host).

mod function;
mod hotplug;
mod mac;
mod notification;
#[cfg(feature = "smoltcp")]
pub mod phy;

pub use function::{EcmFunction, Endpoint, FunctionError, CLASS_COMMUNICATIONS, SUBCLASS_ECM};
pub use mac::{parse_mac_string, MacError};
pub use notification::{Event, Notification, NotificationError};

use core::task::Poll;

use crate::eth::driver::{self, Counters, Driver};
use crate::usb::descriptor::{TYPE_CONFIGURATION, TYPE_STRING};
use crate::usb::UsbHost;
use crate::usb::{
    DeviceAddress, Direction, Pipe, SetupPacket, Speed, TransferType, UsbDevice, UsbError,
    MAX_CONFIG_DESCRIPTOR,
};

/// GET_DESCRIPTOR (USB 2.0 Table 9-4).
const GET_DESCRIPTOR: u8 = 0x06;
/// SET_CONFIGURATION.
const SET_CONFIGURATION: u8 = 0x09;
/// SET_INTERFACE.
const SET_INTERFACE: u8 = 0x0B;
/// SET_ETHERNET_PACKET_FILTER (CDC 1.2 Table 19 / ECM 1.2 §6.2.4).
const SET_ETHERNET_PACKET_FILTER: u8 = 0x43;
/// Packet filter bits (ECM 1.2 Table 8): promiscuous, all multicast, directed, broadcast.
const FILTER_PROMISCUOUS: u16 = 1 << 0;
const FILTER_ALL_MULTICAST: u16 = 1 << 1;
const FILTER_DIRECTED: u16 = 1 << 2;
const FILTER_BROADCAST: u16 = 1 << 3;
/// US English, used when the device's language table cannot be read.
const LANG_EN_US: u16 = 0x0409;
/// Configurations looked at, at most (bNumConfigurations is a u8 a hostile device controls).
const MAX_CONFIGURATIONS: u8 = 8;

/// Largest Ethernet frame without FCS carried in one bulk transfer.
pub const MAX_FRAME: usize = 1514;
/// Smallest Ethernet frame accepted from the device: destination, source and EtherType.
const MIN_FRAME: usize = 14;
/// Bytes requested per bulk IN transfer: above [`MAX_FRAME`] and a multiple of 64 and 512, so a
/// full-size frame always ends with a short packet.
const RX_TRANSFER: usize = 1536;
/// Bytes requested per interrupt IN transfer: a header and CONNECTION_SPEED_CHANGE's 8 bytes.
const NOTIFY_TRANSFER: usize = 16;

/// Why a CDC-ECM device could not be brought up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// A control transfer failed.
    Usb(UsbError),
    /// No configuration of the device has a usable ECM function; the error is the last
    /// configuration's.
    NoFunction(FunctionError),
    /// The device descriptor names no configuration.
    NoConfiguration,
    /// The Ethernet functional descriptor names no MAC address string.
    NoMacString,
    /// The MAC address string is unusable.
    BadMac(MacError),
    /// The device plugged in after an unplug is not a CDC-ECM function
    /// ([`identify`](crate::eth::probe::identify) picks another driver, or none).
    NotEcm,
}

impl From<UsbError> for Error {
    fn from(e: UsbError) -> Self {
        Self::Usb(e)
    }
}

/// An ECM function that [`probe`] has set up: ready for [`CdcEcm::new`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EcmDevice {
    /// The device's bus address.
    pub address: DeviceAddress,
    /// The device's speed.
    pub speed: Speed,
    /// The interfaces and endpoints of the function.
    pub function: EcmFunction,
    /// The MAC address from iMACAddress.
    pub mac: [u8; 6],
}

fn get_descriptor(kind: u8, index: u8, language: u16, length: usize) -> SetupPacket {
    SetupPacket {
        request_type: 0x80,
        request: GET_DESCRIPTOR,
        value: u16::from(kind) << 8 | u16::from(index),
        index: language,
        length: u16::try_from(length).unwrap_or(u16::MAX),
    }
}

/// Finds the device's ECM function, selects its configuration and data alternate setting, reads
/// the MAC address and sets the packet filter (directed, broadcast, all multicast).
///
/// The enumerated configuration (`dev.config()`) is used if it holds an ECM function; otherwise
/// every configuration is read with GET_DESCRIPTOR. A STALL of SET_ETHERNET_PACKET_FILTER is
/// logged and ignored, as Linux does (`usbnet_cdc_update_filter` ignores the result): the request
/// is optional for a function, and older QEMU `usb-net` revisions stall every ECM class request.
pub fn probe<H: UsbHost>(host: &mut H, dev: &UsbDevice) -> Result<EcmDevice, Error> {
    let function = find_function(host, dev)?;
    let address = dev.address;
    host.control_out(
        address,
        SetupPacket {
            request_type: 0x00,
            request: SET_CONFIGURATION,
            value: u16::from(function.configuration),
            index: 0,
            length: 0,
        },
        &[],
    )?;
    let mac = read_mac(host, address, function.mac_string)?;
    // Alternate setting 0 has no endpoints: selecting it first stops and resets the data path
    // (say, left running by an earlier boot), the setting with the bulk endpoints starts it. Linux
    // `cdc_ncm.c` ("reset data interface") and iPXE `drivers/net/ecm.c` do the same.
    for alt in [0, function.data_alt_setting] {
        let set_interface = SetupPacket {
            request_type: 0x01,
            request: SET_INTERFACE,
            value: u16::from(alt),
            index: u16::from(function.data_interface),
            length: 0,
        };
        host.control_out(address, set_interface, &[])?;
    }
    set_packet_filter(
        host,
        address,
        &function,
        FILTER_DIRECTED | FILTER_BROADCAST | FILTER_ALL_MULTICAST,
    )?;
    log::info!(
        "cdc-ecm: configuration {}, data interface {} alt {}, MAC {:02x?}",
        function.configuration,
        function.data_interface,
        function.data_alt_setting,
        mac
    );
    Ok(EcmDevice {
        address,
        speed: dev.speed,
        function,
        mac,
    })
}

/// SET_ETHERNET_PACKET_FILTER with `filter`; a STALL is logged and ignored (see [`probe`]).
fn set_packet_filter<H: UsbHost>(
    host: &mut H,
    address: DeviceAddress,
    function: &EcmFunction,
    filter: u16,
) -> Result<(), Error> {
    let setup = SetupPacket {
        request_type: 0x21,
        request: SET_ETHERNET_PACKET_FILTER,
        value: filter,
        index: u16::from(function.control_interface),
        length: 0,
    };
    match host.control_out(address, setup, &[]) {
        Err(UsbError::Stall) => {
            log::warn!("cdc-ecm: SET_ETHERNET_PACKET_FILTER stalled; ignored");
            Ok(())
        }
        other => Ok(other?),
    }
}

fn find_function<H: UsbHost>(host: &mut H, dev: &UsbDevice) -> Result<EcmFunction, Error> {
    let mut last = match EcmFunction::find(dev.config()) {
        Ok(function) => return Ok(function),
        Err(e) => e,
    };
    let count = dev.device_descriptor[17].min(MAX_CONFIGURATIONS);
    if count == 0 {
        return Err(Error::NoConfiguration);
    }
    let mut buf = [0u8; MAX_CONFIG_DESCRIPTOR];
    for index in 0..count {
        let setup = get_descriptor(TYPE_CONFIGURATION, index, 0, buf.len());
        let len = host.control_in(dev.address, setup, &mut buf)?;
        match EcmFunction::find(&buf[..len.min(buf.len())]) {
            Ok(function) => return Ok(function),
            Err(e) => {
                log::debug!("cdc-ecm: configuration index {index}: {e}");
                last = e;
            }
        }
    }
    Err(Error::NoFunction(last))
}

fn read_mac<H: UsbHost>(host: &mut H, address: DeviceAddress, index: u8) -> Result<[u8; 6], Error> {
    if index == 0 {
        return Err(Error::NoMacString);
    }
    // String descriptor 0 lists the language IDs; take the first (USB 2.0 §9.6.7).
    let mut langs = [0u8; 4];
    let language = match host.control_in(address, get_descriptor(TYPE_STRING, 0, 0, 4), &mut langs)
    {
        Ok(4) if langs[1] == TYPE_STRING => u16::from_le_bytes([langs[2], langs[3]]),
        other => {
            log::debug!("cdc-ecm: no language table ({other:?}); using en-US");
            LANG_EN_US
        }
    };
    let mut desc = [0u8; 64];
    let len = host.control_in(
        address,
        get_descriptor(TYPE_STRING, index, language, desc.len()),
        &mut desc,
    )?;
    parse_mac_string(&desc[..len.min(desc.len())]).map_err(Error::BadMac)
}

/// Link state as reported by NETWORK_CONNECTION notifications.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkState {
    /// No notification yet. Treated as up: the notification endpoint is optional (ECM 1.2
    /// §3.3), and a function without one never reports the link.
    Unknown,
    /// The device reported a connection.
    Up,
    /// The device reported no connection: transmission is held back.
    Down,
    /// The device left the bus (a transfer failed with [`UsbError::Disconnected`]): nothing is
    /// polled or sent until [`CdcEcm::rebind`], except that a bulk-IN transfer already running
    /// is collected once (the device may have sent a frame before it went).
    Gone,
}

impl LinkState {
    /// Notes that the device left the bus.
    fn set_gone(&mut self) {
        if *self != Self::Gone {
            log::warn!("cdc-ecm: device disconnected");
        }
        *self = Self::Gone;
    }
}

/// Bit rates from the last CONNECTION_SPEED_CHANGE notification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkSpeed {
    /// Device to host, bit/s.
    pub downstream: u32,
    /// Host to device, bit/s.
    pub upstream: u32,
}

/// Why [`CdcEcm::send`] did not take a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendError {
    /// The transmit slot is occupied, or the link is down or gone: poll and retry.
    Busy,
    /// The frame is longer than [`MAX_FRAME`] or shorter than an Ethernet header.
    BadLength,
}

/// The receive slot: one frame copied out of the controller, waiting to be handed up.
struct RxSlot {
    buf: [u8; RX_TRANSFER],
    len: usize,
    /// A bulk-IN transfer is in flight (started by a receive, not collected yet).
    waiting: bool,
}

impl RxSlot {
    /// Hands the frame up: counted in `rx_frames` and `rx_bytes` (as the RTL8152 driver counts
    /// a frame it hands out), and the slot is free again.
    fn take(&mut self, stats: &mut Counters) -> &[u8] {
        let len = core::mem::take(&mut self.len);
        stats.rx_frames += 1;
        stats.rx_bytes += len as u64;
        &self.buf[..len]
    }

    /// Empties the slot for another device: a frame not handed up counts as dropped.
    fn discard(&mut self, stats: &mut Counters) {
        if core::mem::take(&mut self.len) != 0 {
            stats.rx_dropped += 1;
        }
        self.waiting = false;
    }
}

/// The transmit side: one frame waiting for the OUT pipe, and the length of the frame whose
/// transfer is running (0: none).
struct TxSlot {
    buf: [u8; MAX_FRAME],
    pending: usize,
    in_flight: usize,
}

/// A running CDC-ECM NIC over a USB host controller it owns.
pub struct CdcEcm<H: UsbHost> {
    host: H,
    mac: [u8; 6],
    function: EcmFunction,
    bulk_in: Pipe,
    bulk_out: Pipe,
    notify: Option<Pipe>,
    notify_buf: [u8; NOTIFY_TRANSFER],
    link: LinkState,
    speed: Option<LinkSpeed>,
    rx: RxSlot,
    tx: TxSlot,
    stats: Counters,
}

impl<H: UsbHost> CdcEcm<H> {
    /// Takes over `host` for the function [`probe`] set up.
    pub fn new(host: H, dev: EcmDevice) -> Self {
        let pipes = Pipes::of(&dev);
        Self {
            host,
            mac: dev.mac,
            function: dev.function,
            bulk_in: pipes.bulk_in,
            bulk_out: pipes.bulk_out,
            notify: pipes.notify,
            notify_buf: [0; NOTIFY_TRANSFER],
            link: LinkState::Unknown,
            speed: None,
            rx: RxSlot {
                buf: [0; RX_TRANSFER],
                len: 0,
                waiting: false,
            },
            tx: TxSlot {
                buf: [0; MAX_FRAME],
                pending: 0,
                in_flight: 0,
            },
            stats: Counters::default(),
        }
    }

    /// Starts over with a device [`probe`] set up again (after it left the bus and was
    /// enumerated anew). A frame still waiting to be sent is dropped and counted in
    /// [`Counters::tx_dropped`], a received one not handed up yet in [`Counters::rx_dropped`];
    /// the counters otherwise carry on.
    pub fn rebind(&mut self, dev: EcmDevice) {
        let pipes = Pipes::of(&dev);
        self.mac = dev.mac;
        self.function = dev.function;
        self.bulk_in = pipes.bulk_in;
        self.bulk_out = pipes.bulk_out;
        self.notify = pipes.notify;
        self.link = LinkState::Unknown;
        self.speed = None;
        self.rx.discard(&mut self.stats);
        if self.tx.pending != 0 {
            log::warn!(
                "cdc-ecm: frame of {} bytes dropped at rebind",
                self.tx.pending
            );
            self.stats.tx_dropped += 1;
        }
        self.tx.pending = 0;
        self.tx.in_flight = 0;
    }

    /// The host controller, e.g. to watch its port while the NIC runs.
    pub fn host_mut(&mut self) -> &mut H {
        &mut self.host
    }

    /// The function the driver runs: its configuration, interfaces and endpoints.
    pub fn function(&self) -> EcmFunction {
        self.function
    }

    /// The link state from the last NETWORK_CONNECTION notification.
    pub fn link(&self) -> LinkState {
        self.link
    }

    /// The bit rates from the last CONNECTION_SPEED_CHANGE notification.
    pub fn speed(&self) -> Option<LinkSpeed> {
        self.speed
    }

    /// True while a frame waits in the transmit slot for the OUT pipe.
    pub fn tx_pending(&self) -> bool {
        self.tx.pending != 0
    }

    /// Housekeeping: reaps the OUT transfer, submits a waiting frame, reads notifications.
    pub fn poll(&mut self) {
        self.flush_tx();
        self.poll_notify();
    }

    fn flush_tx(&mut self) {
        if self.link != LinkState::Gone
            && self
                .tx
                .flush(&mut self.host, &self.bulk_out, &mut self.stats)
                .is_err()
        {
            self.link.set_gone();
        }
    }

    fn poll_notify(&mut self) {
        let Some(pipe) = self.notify.filter(|_| self.link != LinkState::Gone) else {
            return;
        };
        match self.host.poll_in(&pipe, &mut self.notify_buf) {
            Poll::Pending => {}
            Poll::Ready(Ok(len)) => self.apply_notification(len),
            Poll::Ready(Err(UsbError::Disconnected)) => self.link.set_gone(),
            Poll::Ready(Err(e)) => log::warn!("cdc-ecm: notification endpoint: {e:?}"),
        }
    }

    fn apply_notification(&mut self, len: usize) {
        let bytes = &self.notify_buf[..len.min(NOTIFY_TRANSFER)];
        let event = match Notification::new_checked(bytes) {
            Ok(n) => n.event(),
            Err(e) => {
                log::warn!("cdc-ecm: bad notification {bytes:02x?}: {e:?}");
                return;
            }
        };
        match event {
            // Functions may repeat a notification on every poll (QEMU's usb-net does):
            // only changes are logged.
            Some(Event::Connection(up)) => {
                let link = if up { LinkState::Up } else { LinkState::Down };
                if link != self.link {
                    log::info!("cdc-ecm: link {}", if up { "up" } else { "down" });
                }
                self.link = link;
            }
            Some(Event::Speed {
                downstream,
                upstream,
            }) => {
                let speed = Some(LinkSpeed {
                    downstream,
                    upstream,
                });
                if speed != self.speed {
                    log::info!("cdc-ecm: speed {downstream}/{upstream} bit/s");
                }
                self.speed = speed;
            }
            other => log::debug!("cdc-ecm: notification {other:?} ignored"),
        }
    }

    /// Fills the receive slot from the bulk IN pipe if it is empty; true when it holds a frame.
    fn fill_rx(&mut self) -> bool {
        if self.rx.len != 0 {
            return true;
        }
        if self.link == LinkState::Gone && !self.rx.waiting {
            return false;
        }
        let polled = self.host.poll_in(&self.bulk_in, &mut self.rx.buf);
        self.rx.waiting = polled.is_pending();
        match polled {
            Poll::Pending => false,
            // A zero-length packet ends a frame whose length is a multiple of the packet size
            // when the transfer asked for exactly that many bytes; it carries nothing.
            Poll::Ready(Ok(0)) => false,
            Poll::Ready(Ok(len)) if (MIN_FRAME..=RX_TRANSFER).contains(&len) => {
                self.rx.len = len;
                true
            }
            Poll::Ready(Ok(len)) => {
                log::warn!("cdc-ecm: runt transfer of {len} bytes dropped");
                self.stats.rx_malformed += 1;
                false
            }
            Poll::Ready(Err(UsbError::Disconnected)) => {
                self.link.set_gone();
                false
            }
            Poll::Ready(Err(e)) => {
                log::warn!("cdc-ecm: bulk IN: {e:?}");
                self.stats.rx_errors += 1;
                false
            }
        }
    }

    /// True when the transmit slot is free and the link is neither down nor gone.
    fn tx_ready(&mut self) -> bool {
        self.flush_tx();
        self.tx.pending == 0 && !matches!(self.link, LinkState::Down | LinkState::Gone)
    }

    /// Calls `f` with the next received frame, if one has arrived.
    pub fn recv<R>(&mut self, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        self.poll_notify();
        if !self.fill_rx() {
            return None;
        }
        Some(f(self.rx.take(&mut self.stats)))
    }

    /// Queues one Ethernet frame (without FCS) for transmission.
    /// A frame of a bad length is refused and counted in [`Counters::tx_dropped`].
    pub fn send(&mut self, frame: &[u8]) -> Result<(), SendError> {
        if !(MIN_FRAME..=MAX_FRAME).contains(&frame.len()) {
            self.stats.tx_dropped += 1;
            return Err(SendError::BadLength);
        }
        if !self.tx_ready() {
            return Err(SendError::Busy);
        }
        self.tx.buf[..frame.len()].copy_from_slice(frame);
        self.tx.pending = frame.len();
        self.flush_tx();
        Ok(())
    }
}

/// The device left the bus: a transfer failed with [`UsbError::Disconnected`].
struct Gone;

/// The data pipes of a function on its device.
struct Pipes {
    bulk_in: Pipe,
    bulk_out: Pipe,
    notify: Option<Pipe>,
}

impl Pipes {
    fn of(dev: &EcmDevice) -> Self {
        let pipe = |ep: Endpoint, direction, kind| Pipe {
            device: dev.address,
            speed: dev.speed,
            endpoint: ep.number,
            direction,
            kind,
            max_packet_size: ep.max_packet_size,
            interval: ep.interval,
        };
        let f = dev.function;
        Self {
            bulk_in: pipe(f.bulk_in, Direction::In, TransferType::Bulk),
            bulk_out: pipe(f.bulk_out, Direction::Out, TransferType::Bulk),
            notify: f
                .notify
                .map(|ep| pipe(ep, Direction::In, TransferType::Interrupt)),
        }
    }
}

impl TxSlot {
    /// Reaps a finished OUT transfer and submits the waiting frame when the pipe is idle. When
    /// the device has left the bus, the waiting frame is dropped (and counted).
    fn flush<H: UsbHost>(
        &mut self,
        host: &mut H,
        pipe: &Pipe,
        stats: &mut Counters,
    ) -> Result<(), Gone> {
        if self.in_flight != 0 {
            let sent = core::mem::take(&mut self.in_flight);
            match host.poll_out(pipe) {
                Poll::Pending => {
                    self.in_flight = sent;
                    return Ok(());
                }
                Poll::Ready(Ok(())) => {
                    stats.tx_frames += 1;
                    stats.tx_bytes += sent as u64;
                }
                Poll::Ready(Err(UsbError::Disconnected)) => {
                    Self::lost(stats, sent, UsbError::Disconnected);
                    return self.drop_pending(stats);
                }
                Poll::Ready(Err(e)) => Self::lost(stats, sent, e),
            }
        }
        if self.pending == 0 {
            return Ok(());
        }
        // The controller copies the frame at submission and ends it with a zero-length packet
        // when its length is a multiple of the packet size (UsbHost::submit_out), which ECM
        // requires (ECM 1.2 §3.3.1).
        match host.submit_out(pipe, &self.buf[..self.pending]) {
            Ok(()) => self.in_flight = core::mem::take(&mut self.pending),
            Err(UsbError::Busy) => {}
            Err(UsbError::Disconnected) => {
                Self::lost(
                    stats,
                    core::mem::take(&mut self.pending),
                    UsbError::Disconnected,
                );
                return Err(Gone);
            }
            Err(e) => Self::lost(stats, core::mem::take(&mut self.pending), e),
        }
        Ok(())
    }

    /// A transfer of a `len`-byte frame failed with `e`: the transfer and its frame counted.
    fn lost(stats: &mut Counters, len: usize, e: UsbError) {
        log::warn!("cdc-ecm: frame of {len} bytes not sent: {e:?}");
        stats.tx_errors += 1;
        stats.tx_dropped += 1;
    }

    /// The device left the bus: the waiting frame is dropped (and counted).
    fn drop_pending(&mut self, stats: &mut Counters) -> Result<(), Gone> {
        if self.pending != 0 {
            log::warn!(
                "cdc-ecm: frame of {} bytes dropped: device gone",
                self.pending
            );
            stats.tx_dropped += 1;
            self.pending = 0;
        }
        Err(Gone)
    }
}

/// The station address from iMACAddress (kept across replugs), the link as notified (a
/// function that never reported is taken as up; down while gone), and the counters.
impl<H: UsbHost> Driver for CdcEcm<H> {
    fn mac(&self) -> [u8; 6] {
        self.mac
    }

    fn link_state(&self) -> driver::LinkState {
        driver::LinkState::from_up(matches!(self.link, LinkState::Up | LinkState::Unknown))
    }

    fn counters(&self) -> Counters {
        self.stats
    }
}

#[cfg(test)]
mod tests;
