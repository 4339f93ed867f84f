//! The Realtek RTL8152 USB 10/100 Ethernet NIC, the K230 boards' only Ethernet port.
//!
//! [`Rtl8152`] probes the device (VID 0bda, PID 8152) on any [`UsbHost`], brings the chip up
//! with the register sequence Linux (`drivers/net/usb/r8152.c`: `r8152b_init`,
//! `r8152b_exit_oob`, `rtl8152_enable`, `rtl8152_set_rx_mode`) and CherryUSB
//! (`class/vendor/net/usbh_rtl8152.c`) use, and then moves frames: received frames come out of
//! aggregated bulk-IN transfers ([`rx`]), frames to send are batched into bulk-OUT transfers
//! ([`tx`]); the chip computes TCP and UDP checksums and, with feature `large-send`, cuts large
//! TCP frames into segments ([`offload`]). Nothing blocks after probe: [`Rtl8152::poll`], [`Rtl8152::recv`] and
//! [`Rtl8152::send`] only ever poll the host. The `smoltcp::phy::Device` implementation lives
//! in `device` (feature `smoltcp`).

#[cfg(feature = "smoltcp")]
pub mod device;
mod ocp;
pub mod offload;
pub mod regs;
pub mod rx;
pub mod tx;

use crate::eth::driver::{Counters, Driver, LinkState};
use crate::eth::supervisor::{HotPlug, REATTACH_TIMEOUT_MS};
use crate::usb::descriptor::ConfigurationDescriptor;
use crate::usb::{DeviceAddress, Pipe, PortEvent, RootPort, Speed, UsbDevice, UsbError, UsbHost};
use core::task::Poll;
use ocp::Ocp;
use regs::*;
use rx::RxQueue;
use tx::{TxError, TxQueue};

/// Realtek's USB vendor ID.
pub const VENDOR_ID: u16 = 0x0bda;
/// The RTL8152's product ID.
pub const PRODUCT_ID: u16 = 0x8152;

/// How often a self-clearing or ready bit is re-read before giving up.
const POLL_LIMIT: usize = 100;

/// Why probing or register access failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The device is not an RTL8152.
    NotRtl8152,
    /// The configuration has no vendor interface with bulk IN, bulk OUT and interrupt IN.
    MissingEndpoints,
    /// PLA_TCR1 reports a chip version this driver does not drive.
    UnsupportedVersion(u16),
    /// A register or bit did not reach the expected state in time.
    Timeout,
    /// A register read returned fewer bytes than asked.
    ShortRead,
    /// A register access was not dword aligned (a driver bug).
    Unaligned,
    /// The control transfer failed.
    Usb(UsbError),
}

impl From<UsbError> for Error {
    fn from(e: UsbError) -> Self {
        Error::Usb(e)
    }
}

/// The pipes of the RTL8152's vendor interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Pipes {
    bulk_in: Pipe,
    bulk_out: Pipe,
    interrupt_in: Pipe,
}

/// A probed and running RTL8152.
pub struct Rtl8152<H: UsbHost> {
    host: H,
    device: DeviceAddress,
    pipes: Pipes,
    mac: [u8; 6],
    link: bool,
    rx: RxQueue,
    /// A bulk-IN transfer is in flight (started by a receive, not collected yet).
    rx_waiting: bool,
    tx: TxQueue,
    stats: Counters,
}

impl<H: UsbHost> Rtl8152<H> {
    /// True for an RTL8152 (checked before [`Rtl8152::probe`] takes the host).
    pub fn matches(device: &UsbDevice) -> bool {
        device.vendor_id() == VENDOR_ID && device.product_id() == PRODUCT_ID
    }

    /// Takes over an enumerated and configured RTL8152: finds its pipes, checks the chip
    /// version, initialises it, reads the MAC address and enables RX and TX.
    pub fn probe(mut host: H, device: &UsbDevice) -> Result<Self, Error> {
        let up = bring_up(&mut host, device)?;
        Ok(Self {
            host,
            device: device.address,
            pipes: up.pipes,
            mac: up.mac,
            link: up.link,
            rx: RxQueue::new(),
            rx_waiting: false,
            tx: TxQueue::new(),
            stats: Counters::default(),
        })
    }

    /// Brings the chip up again after it was unplugged and re-enumerated as `device`: the
    /// same steps as [`Self::probe`], keeping this driver's MAC address (written to PLA_IDR
    /// when the chip reports another one, as Linux `rtl8152_set_mac_address` does). Frames
    /// queued for the old device are dropped (counted in `tx_dropped`).
    pub fn restart(&mut self, device: &UsbDevice) -> Result<(), Error> {
        self.forget_device();
        let up = bring_up(&mut self.host, device)?;
        if up.mac != self.mac {
            log::warn!(
                "rtl8152: chip reports MAC {:02x?}, keeping {:02x?}",
                up.mac,
                self.mac
            );
            let mut ocp = Ocp {
                host: &mut self.host,
                device: device.address,
            };
            set_mac_address(&mut ocp, self.mac)?;
        }
        self.device = device.address;
        self.pipes = up.pipes;
        self.link = up.link;
        Ok(())
    }

    /// The device went away: frames queued for it are dropped (counted in `tx_dropped`), the
    /// rest of a received transfer is discarded (counted in `rx_dropped`), and the link is down.
    pub fn forget_device(&mut self) {
        self.stats.tx_dropped += self.tx.clear();
        self.rx.discard(&mut self.stats);
        self.rx_waiting = false;
        self.link = false;
    }

    /// The host controller the driver runs on (e.g. to watch its root port).
    pub fn host_mut(&mut self) -> &mut H {
        &mut self.host
    }

    /// Reads PLA_PHYSTATUS (a blocking control transfer) and updates the link state.
    pub fn refresh_link(&mut self) -> Result<bool, Error> {
        let mut ocp = Ocp {
            host: &mut self.host,
            device: self.device,
        };
        self.link = ocp.read_word(Mcu::Pla, PLA_PHYSTATUS)? & LINK_STATUS != 0;
        Ok(self.link)
    }

    /// Drives the interrupt endpoint (link changes) and the bulk-OUT pipe (batched frames).
    pub fn poll(&mut self) {
        let mut status = [0; 2];
        if let Poll::Ready(r) = self.host.poll_in(&self.pipes.interrupt_in, &mut status) {
            match r {
                // The status word's INTR_LINK bit (Linux `intr_callback`).
                Ok(n) if n >= 2 => {
                    let up = u16::from_le_bytes(status) & INTR_LINK != 0;
                    if up != self.link {
                        log::info!("rtl8152: link {}", if up { "up" } else { "down" });
                    }
                    self.link = up;
                }
                Ok(_) => {}
                Err(UsbError::Stall) => self.clear_halt(self.pipes.interrupt_in),
                Err(e) => log::warn!("rtl8152: interrupt endpoint: {e:?}"),
            }
        }
        self.tx
            .flush(&mut self.host, &self.pipes.bulk_out, &mut self.stats);
    }

    /// Hands the next received frame (CRC stripped) to `f`, or returns `None` when none is
    /// waiting.
    pub fn recv<R>(&mut self, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        let r = self.next_rx()?;
        Some(f(&self.rx.buf[r]))
    }

    /// Queues a frame of `len` bytes that `f` writes; it goes out with the next bulk-OUT
    /// transfer. Fails with [`TxError::Full`] while the batch is full (backpressure).
    pub fn send<R>(&mut self, len: usize, f: impl FnOnce(&mut [u8]) -> R) -> Result<R, TxError> {
        self.tx
            .flush(&mut self.host, &self.pipes.bulk_out, &mut self.stats);
        let r = match self.tx.push(len, f) {
            Ok(r) => r,
            Err((e, _)) => {
                if e == TxError::BadLength {
                    self.stats.tx_dropped += 1;
                }
                return Err(e);
            }
        };
        self.tx
            .flush(&mut self.host, &self.pipes.bulk_out, &mut self.stats);
        Ok(r)
    }

    /// The range of the next good frame in the receive buffer, fetching a new transfer from
    /// the host when the current one is used up.
    fn next_rx(&mut self) -> Option<core::ops::Range<usize>> {
        // Two rounds: the rest of the current transfer, then one freshly completed.
        for _ in 0..2 {
            if let Some(r) = self.rx.next_frame(&mut self.stats) {
                return Some(r);
            }
            if !self.fetch_rx() {
                return None;
            }
        }
        None
    }

    /// Loads the bulk-IN transfer into the (used up) receive queue if it completed, starting
    /// one if none is in flight; false when there is nothing new.
    fn fetch_rx(&mut self) -> bool {
        let polled = self.host.poll_in(&self.pipes.bulk_in, &mut self.rx.buf);
        self.rx_waiting = polled.is_pending();
        match polled {
            Poll::Pending => false,
            Poll::Ready(Ok(n)) => {
                self.rx.load(n);
                true
            }
            // The device left the bus: a state the supervisor acts on, not an error.
            Poll::Ready(Err(UsbError::Disconnected)) => false,
            Poll::Ready(Err(e)) => {
                log::warn!("rtl8152: bulk IN failed: {e:?}");
                self.stats.rx_errors += 1;
                if e == UsbError::Stall {
                    // The next poll starts the transfer again.
                    self.clear_halt(self.pipes.bulk_in);
                }
                false
            }
        }
    }

    /// Clears the halt of a STALLed IN pipe so that its transfer can be started again.
    fn clear_halt(&mut self, pipe: Pipe) {
        match self.host.clear_halt(pipe) {
            Ok(()) => log::info!("rtl8152: endpoint {} halt cleared", pipe.endpoint),
            Err(e) => log::warn!("rtl8152: clearing endpoint {} halt: {e:?}", pipe.endpoint),
        }
    }
}

/// Unplug and replug: the root port of the host the driver runs on, a fresh bring-up on the
/// re-enumerated device at the same address.
impl<H: UsbHost + RootPort> HotPlug for Rtl8152<H> {
    type Error = Error;

    /// A bulk-IN transfer the controller completed since the last receive holds frames the
    /// device sent; if the port now shows the device gone, the host's abort would discard them
    /// uncounted. So a transfer in flight is collected first: its frames are handed up if the
    /// device stays, counted as dropped by [`HotPlug::detached`] if it went.
    fn poll_port(&mut self) -> Option<PortEvent> {
        if self.rx_waiting && self.rx.is_empty() {
            self.fetch_rx();
        }
        self.host.poll_port()
    }

    fn detached(&mut self) {
        self.forget_device();
    }

    fn reattach(&mut self) -> Result<(), Error> {
        let device = self.host.connect(self.device, REATTACH_TIMEOUT_MS)?;
        self.restart(&device)
    }

    fn maintain(&mut self) {
        self.poll();
    }
}

/// The MAC address read from PLA_IDR at probe (kept across replugs); the link as last seen
/// (probe, interrupt endpoint, or [`Rtl8152::refresh_link`]).
impl<H: UsbHost> Driver for Rtl8152<H> {
    fn mac(&self) -> [u8; 6] {
        self.mac
    }

    fn link_state(&self) -> LinkState {
        LinkState::from_up(self.link)
    }

    fn counters(&self) -> Counters {
        self.stats
    }
}

/// What a bring-up found.
struct BringUp {
    pipes: Pipes,
    mac: [u8; 6],
    link: bool,
}

/// Finds the pipes, checks the chip version, initialises it, reads the MAC address and
/// enables RX and TX.
fn bring_up<H: UsbHost>(host: &mut H, device: &UsbDevice) -> Result<BringUp, Error> {
    if !Rtl8152::<H>::matches(device) {
        return Err(Error::NotRtl8152);
    }
    let pipes = find_pipes(device).ok_or(Error::MissingEndpoints)?;
    let mut ocp = Ocp {
        host,
        device: device.address,
    };
    let version = (ocp.read_dword(Mcu::Pla, PLA_TCR0)? >> 16) as u16 & VERSION_MASK;
    if !RTL8152_VERSIONS.contains(&version) {
        return Err(Error::UnsupportedVersion(version));
    }
    // The order of Linux: probe (`r8152b_init`), open (`rtl8152_up`), then enable, the
    // receive filter and auto-negotiation.
    init(&mut ocp)?;
    exit_oob(&mut ocp, device.speed)?;
    let mut idr = [0; 8];
    ocp.read_block(Mcu::Pla, PLA_IDR, &mut idr)?;
    enable(&mut ocp)?;
    set_rx_mode(&mut ocp)?;
    autonegotiate(&mut ocp)?;
    let link = ocp.read_word(Mcu::Pla, PLA_PHYSTATUS)? & LINK_STATUS != 0;
    let mut mac = [0; 6];
    mac.copy_from_slice(&idr[..6]);
    log::info!("rtl8152: version {version:#06x}, MAC {mac:02x?}, link {link}");
    Ok(BringUp { pipes, mac, link })
}

/// Writes the station address (Linux `rtl8152_set_mac_address`: PLA_IDR is writable only
/// while PLA_CRWECR is in configuration mode).
fn set_mac_address<H: UsbHost>(ocp: &mut Ocp<'_, H>, mac: [u8; 6]) -> Result<(), Error> {
    ocp.write_byte(Mcu::Pla, PLA_CRWECR, CRWECR_CONFIG)?;
    ocp.write_six(Mcu::Pla, PLA_IDR, mac)?;
    ocp.write_byte(Mcu::Pla, PLA_CRWECR, CRWECR_NORMAL)
}

/// The pipes of the first vendor-class interface with bulk IN, bulk OUT and interrupt IN.
fn find_pipes(device: &UsbDevice) -> Option<Pipes> {
    let config = ConfigurationDescriptor::new_checked(device.config()).ok()?;
    config.interfaces().find_map(|i| {
        if i.descriptor.class() != 0xff {
            return None;
        }
        let p = i.pipes(device.address, device.speed);
        Some(Pipes {
            bulk_in: p.bulk_in?,
            bulk_out: p.bulk_out?,
            interrupt_in: p.interrupt_in?,
        })
    })
}

/// Waits (by bounded re-reading) for PLA_OOB_CTRL.LINK_LIST_READY.
fn wait_link_list_ready<H: UsbHost>(ocp: &mut Ocp<'_, H>) -> Result<(), Error> {
    for _ in 0..POLL_LIMIT {
        if ocp.read_byte(Mcu::Pla, PLA_OOB_CTRL)? & LINK_LIST_READY != 0 {
            return Ok(());
        }
    }
    Err(Error::Timeout)
}

/// Leaves out-of-band mode and configures FIFOs and aggregation (Linux `r8152b_exit_oob`).
fn exit_oob<H: UsbHost>(ocp: &mut Ocp<'_, H>, speed: Speed) -> Result<(), Error> {
    ocp.modify_dword(Mcu::Pla, PLA_RCR, RCR_ACPT_ALL, 0)?;
    ocp.modify_word(Mcu::Pla, PLA_MISC_1, 0, RXDY_GATED_EN)?;
    ocp.write_byte(Mcu::Pla, PLA_CRWECR, CRWECR_NORMAL)?;
    ocp.write_byte(Mcu::Pla, PLA_CR, 0)?;
    ocp.modify_byte(Mcu::Pla, PLA_OOB_CTRL, NOW_IS_OOB, 0)?;
    ocp.modify_word(Mcu::Pla, PLA_SFF_STS_7, MCU_BORW_EN, 0)?;
    wait_link_list_ready(ocp)?;
    ocp.modify_word(Mcu::Pla, PLA_SFF_STS_7, 0, RE_INIT_LL)?;
    wait_link_list_ready(ocp)?;
    // NIC reset (Linux `rtl8152_nic_reset` for RTL_VER_01/02/07): CR_RST self-clears.
    ocp.write_byte(Mcu::Pla, PLA_CR, CR_RST)?;
    let mut reset_done = false;
    for _ in 0..POLL_LIMIT {
        if ocp.read_byte(Mcu::Pla, PLA_CR)? & CR_RST == 0 {
            reset_done = true;
            break;
        }
    }
    if !reset_done {
        return Err(Error::Timeout);
    }
    ocp.write_dword(Mcu::Pla, PLA_RXFIFO_CTRL0, RXFIFO_THR1_NORMAL)?;
    let (thr2, thr3) = match speed {
        Speed::High => (RXFIFO_THR2_HIGH, RXFIFO_THR3_HIGH),
        Speed::Full | Speed::Low => (RXFIFO_THR2_FULL, RXFIFO_THR3_FULL),
    };
    ocp.write_dword(Mcu::Pla, PLA_RXFIFO_CTRL1, thr2)?;
    ocp.write_dword(Mcu::Pla, PLA_RXFIFO_CTRL2, thr3)?;
    ocp.write_dword(Mcu::Pla, PLA_TXFIFO_CTRL, TXFIFO_THR_NORMAL2)?;
    ocp.write_byte(Mcu::Usb, USB_TX_AGG, TX_AGG_MAX_THRESHOLD)?;
    ocp.write_dword(Mcu::Usb, USB_RX_BUF_TH, RX_THR_HIGH)?;
    ocp.write_dword(Mcu::Usb, USB_TX_DMA, TX_DMA_CONFIG)?;
    ocp.modify_word(Mcu::Pla, PLA_CPCR, 0, CPCR_RX_VLAN)?;
    ocp.write_word(Mcu::Pla, PLA_RMS, RMS)?;
    ocp.modify_word(Mcu::Pla, PLA_TCR0, 0, TCR0_AUTO_FIFO)
}

/// PHY powered up, power-cut off, counters reset, RX aggregation on (Linux `r8152b_init`;
/// the PHY power-saving (ALDPS, EEE) tweaks are left at their reset values).
fn init<H: UsbHost>(ocp: &mut Ocp<'_, H>) -> Result<(), Error> {
    let bmcr = ocp.phy_read(MII_BMCR)?;
    if bmcr & BMCR_PDOWN != 0 {
        ocp.phy_write(MII_BMCR, bmcr & !BMCR_PDOWN)?;
    }
    ocp.modify_word(Mcu::Usb, USB_UPS_CTRL, POWER_CUT, 0)?;
    ocp.modify_word(Mcu::Usb, USB_PM_CTRL_STATUS, RESUME_INDICATE, 0)?;
    ocp.modify_word(Mcu::Pla, PLA_RSTTALLY, 0, TALLY_RESET)?;
    ocp.modify_word(Mcu::Usb, USB_USB_CTRL, RX_AGG_DISABLE | RX_ZERO_EN, 0)
}

/// Packet filter reset, RX and TX on, RX ungated (Linux `rtl_enable`).
fn enable<H: UsbHost>(ocp: &mut Ocp<'_, H>) -> Result<(), Error> {
    let fmc = ocp.read_word(Mcu::Pla, PLA_FMC)?;
    ocp.write_word(Mcu::Pla, PLA_FMC, fmc & !FMC_FCR_MCU_EN)?;
    ocp.write_word(Mcu::Pla, PLA_FMC, fmc | FMC_FCR_MCU_EN)?;
    ocp.modify_byte(Mcu::Pla, PLA_CR, 0, CR_RE | CR_TE)?;
    ocp.modify_word(Mcu::Pla, PLA_MISC_1, RXDY_GATED_EN, 0)
}

/// Advertise 10/100 half and full duplex and restart auto-negotiation (Linux
/// `rtl8152_set_speed` with `AUTONEG_ENABLE`, `SPEED_100`, `DUPLEX_FULL`).
fn autonegotiate<H: UsbHost>(ocp: &mut Ocp<'_, H>) -> Result<(), Error> {
    let anar = ocp.phy_read(MII_ADVERTISE)?;
    ocp.phy_write(MII_ADVERTISE, anar | ADVERTISE_10_100)?;
    ocp.phy_write(MII_BMCR, BMCR_ANENABLE | BMCR_ANRESTART)
}

/// Accept broadcast, our address and all multicast (Linux `rtl8152_set_rx_mode` with
/// `IFF_ALLMULTI`: the hash filter all ones).
fn set_rx_mode<H: UsbHost>(ocp: &mut Ocp<'_, H>) -> Result<(), Error> {
    ocp.write_block(Mcu::Pla, PLA_MAR, &[0xff; 8])?;
    ocp.modify_dword(Mcu::Pla, PLA_RCR, RCR_ACPT_ALL, RCR_AB | RCR_APM | RCR_AM)
}

#[cfg(test)]
mod tests;
