//! The DesignWare USB 2.0 (DWC2) host controller in buffer-DMA host mode.
//!
//! [`Dwc2Host`] drives one root port with one device (no hubs): core reset and host-mode setup
//! ([`Dwc2Host::init`]), port power, reset and speed detection, enumeration
//! ([`Dwc2Host::connect`]), and the [`UsbHost`](crate::usb::UsbHost) transfers. It is generic
//! over the register block, the DMA mapper and the delay, and holds no SoC constants: the K230
//! base addresses and the reset/PHY setup that must run first live in [`crate::sysctl`].
//!
//! Channel 0 carries control transfers; each bulk or interrupt pipe gets its own channel and
//! DMA buffer on first use. In buffer-DMA mode the core retries NAKed bulk and control
//! transactions by itself, so a bulk IN transfer simply stays in flight until the device has
//! data; interrupt transfers halt on NAK and are restarted on the next poll.
//!
//! Facts: Linux `drivers/usb/dwc2/` (`hw.h`, `core.c`, `hcd.c`, `hcd_intr.c`) and CherryUSB
//! `port/dwc2/usb_hc_dwc2.c`; timings from USB 2.0 §7.1.7.3 and §9.2.6.
//!
//! On the K230 (USB1, where the RTL8152 is):
//!
//! ```no_run
//! use k230_hal::reg::dma::{Coherent, IdentityDma};
//! use k230_hal::reg::Mmio;
//! use k230_hal::sysctl::{k230, Sysctl, UsbPort};
//! use k230_hal::usb::dwc2::{Dwc2Host, Dwc2Memory};
//! use k230_hal::usb::DeviceAddress;
//! # struct Delay;
//! # impl embedded_hal::delay::DelayNs for Delay { fn delay_ns(&mut self, _: u32) {} }
//! static mut MEM: Dwc2Memory = Dwc2Memory::new();
//!
//! // SAFETY: the K230's reset, PHY-control and USB1 register windows, used by nothing else.
//! let (rst, phy, usb) = unsafe {
//!     (
//!         Mmio::new(k230::SYSCTL_RST_BASE, k230::SYSCTL_RST_LEN),
//!         Mmio::new(k230::USB_PHY_CTL_BASE, k230::USB_PHY_CTL_LEN),
//!         Mmio::new(UsbPort::Usb1.base(), k230::USB_REG_LEN),
//!     )
//! };
//! Sysctl::new(rst, phy).usb_host_init(UsbPort::Usb1, &mut Delay).expect("USB1 reset");
//! // SAFETY: the only reference ever made to MEM.
//! let mem = unsafe { &mut *core::ptr::addr_of_mut!(MEM) };
//! // On the K230 with caches on: IdentityDma::new(k230_hal::c908::C908Cache).
//! let mut host = Dwc2Host::new(usb, IdentityDma::new(Coherent), Delay, mem);
//! host.init().expect("DWC2 core");
//! let nic = host.connect(DeviceAddress::new(1).unwrap(), 1000).expect("device");
//! assert_eq!(nic.vendor_id(), 0x0bda);
//! ```

mod channel;
mod control;
mod pipe;
pub mod regs;

use crate::reg::dma::{Dma, DmaDirection, CACHE_LINE};
use crate::reg::RegisterBlock;
use crate::usb::{DeviceAddress, RootPort, Speed, UsbDevice, UsbError};
use embedded_hal::delay::DelayNs;
use pipe::PipeSlot;
use regs::*;

/// Bytes of DMA memory for control transfers (SETUP and data stages).
pub const CONTROL_BUFFER: usize = 1024;
/// Bytes of DMA memory per bulk/interrupt pipe: the largest single transfer.
pub const PIPE_BUFFER: usize = 16 * 1024;
/// Bulk/interrupt pipes open at once (each takes a host channel after channel 0).
pub const PIPES: usize = 4;
/// Limit of a control transfer (every stage together), as USB 2.0 §9.2.6.4 allows 5 s for a
/// data stage but a network stack cannot wait that long.
pub const CONTROL_TIMEOUT_US: u32 = 500_000;

/// Step between two looks at a register while waiting.
const POLL_STEP_US: u32 = 10;
/// Consecutive transaction errors tolerated before a transfer fails (Linux `hcd_intr.c`: 3).
const MAX_XACT_ERRORS: u8 = 3;

/// DMA-capable memory of one buffer, aligned to a cache line ([`CACHE_LINE`], the C908's) and
/// a whole number of lines long, so that cache maintenance never touches a neighbour.
#[repr(C, align(64))]
pub struct DmaBuffer<const N: usize>([u8; N]);

const _: () = assert!(core::mem::align_of::<DmaBuffer<CACHE_LINE>>() == CACHE_LINE);
const _: () = assert!(CONTROL_BUFFER % CACHE_LINE == 0 && PIPE_BUFFER % CACHE_LINE == 0);

/// The bytes to map for a transfer of `size` bytes: a buffer the controller writes is handed
/// over in whole cache lines (its [`DmaBuffer`] owns them); one it reads as it is, at least the
/// 4 bytes HCDMA addresses.
fn mapped_len(size: usize, dir: DmaDirection) -> usize {
    match dir {
        DmaDirection::ToDevice => size.max(4),
        DmaDirection::FromDevice => size.max(1).next_multiple_of(CACHE_LINE),
    }
}

impl<const N: usize> DmaBuffer<N> {
    const fn new() -> Self {
        Self([0; N])
    }
}

/// The DMA memory the driver owns: one control buffer and one buffer per pipe.
///
/// Give the driver a `&'static mut` (a `static` on the target, a leaked `Box` in the host
/// models): the controller writes into it while transfers run, so it must never move.
pub struct Dwc2Memory {
    control: DmaBuffer<CONTROL_BUFFER>,
    pipes: [DmaBuffer<PIPE_BUFFER>; PIPES],
}

impl Dwc2Memory {
    /// Zeroed memory (usable as a `static` initialiser).
    pub const fn new() -> Self {
        Self {
            control: DmaBuffer::new(),
            pipes: [const { DmaBuffer::new() }; PIPES],
        }
    }
}

impl Default for Dwc2Memory {
    fn default() -> Self {
        Self::new()
    }
}

/// Why the core could not be brought up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitError {
    /// GSNPSID does not identify a DWC2 core (the value read).
    NotDwc2(u32),
    /// The core was built without internal DMA.
    NoDma,
    /// The core did not finish its soft reset or FIFO flush.
    ResetTimeout,
    /// The core did not switch to host mode.
    HostModeTimeout,
    /// The core has fewer host channels than the driver needs (control plus one pipe).
    TooFewChannels,
}

pub use crate::usb::PortEvent;

/// The enabled root port and its device.
#[derive(Clone, Copy, Debug)]
struct Port {
    speed: Speed,
    /// bMaxPacketSize0 of the device.
    ep0_mps: u16,
}

/// A DWC2 core in host mode with one device on its root port.
pub struct Dwc2Host<R, D, T> {
    regs: R,
    dma: D,
    delay: T,
    mem: &'static mut Dwc2Memory,
    port: Option<Port>,
    /// Host channels the core has.
    channels: usize,
    /// Largest HCTSIZ transfer size and packet count the core's counters hold.
    max_xfer: usize,
    max_packets: usize,
    pipes: [PipeSlot; PIPES],
}

impl<R: RegisterBlock, D: Dma, T: DelayNs> Dwc2Host<R, D, T> {
    /// A driver for the core behind `regs`. Run [`Self::init`] before anything else.
    pub fn new(regs: R, dma: D, delay: T, mem: &'static mut Dwc2Memory) -> Self {
        Self {
            regs,
            dma,
            delay,
            mem,
            port: None,
            channels: 0,
            max_xfer: 0,
            max_packets: 0,
            pipes: Default::default(),
        }
    }

    /// Waits (bounded) until `done` holds for the register at `offset`.
    fn wait_reg(&mut self, offset: usize, timeout_us: u32, done: impl Fn(u32) -> bool) -> bool {
        for _ in 0..=timeout_us / POLL_STEP_US {
            if done(self.regs.read32(offset)) {
                return true;
            }
            self.delay.delay_us(POLL_STEP_US);
        }
        false
    }

    /// Core soft reset, host mode, buffer DMA, FIFO sizing, channel cleanup, port power.
    pub fn init(&mut self) -> Result<(), InitError> {
        let id = self.regs.read32(GSNPSID);
        if id >> 16 != 0x4f54 && id >> 16 != 0x5531 {
            log::error!("dwc2: GSNPSID {id:#010x} is not a DWC2 core");
            return Err(InitError::NotDwc2(id));
        }
        let hwcfg2 = self.regs.read32(GHWCFG2);
        if GHWCFG2_ARCH.get(hwcfg2) != 2 {
            return Err(InitError::NoDma);
        }
        self.channels = GHWCFG2_NUM_HOST_CHAN.get(hwcfg2) as usize + 1;
        if self.channels < 2 {
            return Err(InitError::TooFewChannels);
        }
        let hwcfg3 = self.regs.read32(GHWCFG3);
        self.max_xfer = (1 << (11 + GHWCFG3_XFER_WIDTH.get(hwcfg3))) - 1;
        self.max_packets = (1 << (4 + GHWCFG3_PKT_WIDTH.get(hwcfg3))) - 1;

        self.select_phy(hwcfg2);
        self.soft_reset()?;

        // Forced host mode takes up to 25 ms (Linux dwc2_force_mode); wait for CURMOD.
        self.regs.modify32(
            GUSBCFG,
            GUSBCFG_FORCEDEVMODE | GUSBCFG_FORCEHOSTMODE,
            GUSBCFG_FORCEHOSTMODE,
        );
        self.delay.delay_ms(25);
        if !self.wait_reg(GINTSTS, 100_000, |v| v & GINTSTS_CURMOD != 0) {
            return Err(InitError::HostModeTimeout);
        }

        // Restart the PHY clock in case earlier firmware gated it (Linux core_host_init).
        self.regs.write32(PCGCTL, 0);
        self.regs
            .write32(GAHBCFG, GAHBCFG_DMA_EN | GAHBCFG_HBSTLEN.val(HBSTLEN_INCR4));
        self.regs.modify32(
            HCFG,
            HCFG_DESCDMA | HCFG_FSLSSUPP | HCFG_FSLSPCLKSEL.mask(),
            HCFG_FSLSPCLKSEL.val(0),
        );
        let dedicated = self.regs.read32(GHWCFG4) & GHWCFG4_DED_FIFO_EN != 0;
        self.size_fifos(
            GHWCFG3_DFIFO_DEPTH.get(hwcfg3),
            dedicated && id >= SNPSID_2_91A,
        )?;

        for ch in 0..self.channels {
            if self.regs.read32(hcchar(ch)) & HCCHAR_CHENA != 0 {
                self.halt_channel(ch);
            }
            self.regs.write32(hcint(ch), u32::MAX);
            self.regs.write32(hcintmsk(ch), HCINT_CHHLTD | HCINT_AHBERR);
        }
        self.regs.write32(HAINTMSK, (1 << self.channels) - 1);
        self.regs.write32(GINTSTS, u32::MAX);
        self.regs.write32(
            GINTMSK,
            GINTSTS_PRTINT | GINTSTS_HCHINT | GINTSTS_DISCONNINT,
        );
        self.write_hprt0(HPRT0_PWR, 0);
        self.port = None;
        Ok(())
    }

    /// Selects a UTMI+ high-speed PHY the way Linux does by default (`params.c`: 16-bit unless
    /// GHWCFG4 says the PHY is 8-bit only; `core.c` `dwc2_hs_phy_init`). Cores with a ULPI-only
    /// PHY keep their reset configuration.
    fn select_phy(&mut self, hwcfg2: u32) {
        if !matches!(GHWCFG2_HS_PHY_TYPE.get(hwcfg2), 1 | 3) {
            return;
        }
        let wide = GHWCFG4_UTMI_WIDTH.get(self.regs.read32(GHWCFG4)) != 0;
        self.regs.modify32(
            GUSBCFG,
            GUSBCFG_PHYSEL | GUSBCFG_ULPI_UTMI_SEL | GUSBCFG_PHYIF16,
            if wide { GUSBCFG_PHYIF16 } else { 0 },
        );
    }

    /// Core soft reset (Linux `core.c` `dwc2_core_reset`): wait for AHB idle, set CSFTRST, wait
    /// for it to clear.
    fn soft_reset(&mut self) -> Result<(), InitError> {
        if !self.wait_reg(GRSTCTL, 100_000, |v| v & GRSTCTL_AHBIDLE != 0) {
            return Err(InitError::ResetTimeout);
        }
        self.regs.write32(GRSTCTL, GRSTCTL_CSFTRST);
        if !self.wait_reg(GRSTCTL, 100_000, |v| {
            v & GRSTCTL_CSFTRST == 0 && v & GRSTCTL_AHBIDLE != 0
        }) {
            return Err(InitError::ResetTimeout);
        }
        Ok(())
    }

    /// Splits the data FIFO (`depth` words) as half for RX and a quarter each for the
    /// non-periodic and periodic TX FIFOs, after setting aside one word per channel at the top
    /// for the core's DMA state when GDFIFOCFG exists (Linux core.c `dwc2_config_fifos`), then
    /// flushes the FIFOs.
    fn size_fifos(&mut self, depth: u32, epinfo: bool) -> Result<(), InitError> {
        let usable = if epinfo {
            depth.saturating_sub(self.channels as u32)
        } else {
            depth
        };
        let rx = usable / 2;
        let np = usable / 4;
        let p = usable - rx - np;
        self.regs.write32(GRXFSIZ, rx);
        self.regs.write32(GNPTXFSIZ, (np << 16) | rx);
        self.regs.write32(HPTXFSIZ, (p << 16) | (rx + np));
        if epinfo {
            self.regs.modify32(
                GDFIFOCFG,
                GDFIFOCFG_EPINFOBASE.mask(),
                GDFIFOCFG_EPINFOBASE.val(rx + np + p),
            );
        }
        self.regs
            .write32(GRSTCTL, GRSTCTL_TXFFLSH | GRSTCTL_TXFNUM.val(0x10));
        if !self.wait_reg(GRSTCTL, 10_000, |v| v & GRSTCTL_TXFFLSH == 0) {
            return Err(InitError::ResetTimeout);
        }
        self.regs.write32(GRSTCTL, GRSTCTL_RXFFLSH);
        if !self.wait_reg(GRSTCTL, 10_000, |v| v & GRSTCTL_RXFFLSH == 0) {
            return Err(InitError::ResetTimeout);
        }
        Ok(())
    }

    /// Writes HPRT0 keeping its plain bits, setting `set` and clearing the change bits in
    /// `clear`. Never writes ENA (which would disable the port) by accident.
    fn write_hprt0(&mut self, set: u32, clear: u32) {
        let keep = self.regs.read32(HPRT0) & HPRT0_PRESERVE;
        self.regs.write32(HPRT0, keep | set | clear);
    }

    fn connected(&self) -> bool {
        self.regs.read32(HPRT0) & HPRT0_CONNSTS != 0
    }

    /// Looks at the root port: reports a newly plugged device or the loss of the current one
    /// (failing its transfers). Cheap enough to call from every poll.
    pub fn poll_port(&mut self) -> Option<PortEvent> {
        let hprt = self.regs.read32(HPRT0);
        let lost = self.port.is_some() && (hprt & HPRT0_CONNSTS == 0 || hprt & HPRT0_ENA == 0);
        if lost {
            log::warn!("dwc2: device disconnected");
            self.port = None;
            self.abort_pipes();
            self.write_hprt0(0, hprt & (HPRT0_ENACHG | HPRT0_OVRCURRCHG));
            self.regs.write32(GINTSTS, GINTSTS_DISCONNINT);
            return Some(PortEvent::Disconnected);
        }
        if hprt & HPRT0_CONNDET != 0 {
            self.write_hprt0(0, HPRT0_CONNDET);
            if hprt & HPRT0_CONNSTS != 0 && self.port.is_none() {
                return Some(PortEvent::Connected);
            }
        }
        None
    }

    /// Lets the core drive its interrupt line (GAHBCFG.GLBL_INTR_EN) for completed or failed
    /// transfers and port changes, so firmware can sleep until there is work for a poll.
    /// The driver still does all its work in its calls; each consumed event is acknowledged.
    pub fn enable_interrupt(&mut self, on: bool) {
        let bit = GAHBCFG_GLBL_INTR_EN;
        self.regs.modify32(GAHBCFG, bit, if on { bit } else { 0 });
    }

    /// True while an event the driver has not consumed yet is pending (what the interrupt
    /// line shows when enabled).
    pub fn interrupt_pending(&self) -> bool {
        self.regs.read32(GINTSTS) & self.regs.read32(GINTMSK) != 0
    }

    /// The speed of the enumerated device, if one is.
    pub fn speed(&self) -> Option<Speed> {
        self.port.map(|p| p.speed)
    }

    /// Waits up to `timeout_ms` for a device, resets the port, and enumerates the device at
    /// `address` (USB 2.0 §7.1.7.3: 100 ms debounce, 50 ms root-port reset, 10 ms recovery).
    pub fn connect(
        &mut self,
        address: DeviceAddress,
        timeout_ms: u32,
    ) -> Result<UsbDevice, UsbError> {
        if address == DeviceAddress::DEFAULT {
            return Err(UsbError::InvalidState);
        }
        self.abort_pipes();
        self.port = None;
        if !self.wait_reg(HPRT0, timeout_ms.saturating_mul(1000), |v| {
            v & HPRT0_CONNSTS != 0
        }) {
            return Err(UsbError::Disconnected);
        }
        self.delay.delay_ms(100);
        if !self.connected() {
            return Err(UsbError::Disconnected);
        }
        self.write_hprt0(HPRT0_RST, HPRT0_CONNDET | HPRT0_ENACHG);
        self.delay.delay_ms(50);
        let keep = self.regs.read32(HPRT0) & HPRT0_PRESERVE & !HPRT0_RST;
        self.regs.write32(HPRT0, keep);
        if !self.wait_reg(HPRT0, 20_000, |v| v & HPRT0_ENA != 0) {
            log::error!("dwc2: port did not enable after reset");
            return Err(if self.connected() {
                UsbError::Timeout
            } else {
                UsbError::Disconnected
            });
        }
        let hprt = self.regs.read32(HPRT0);
        self.write_hprt0(0, hprt & (HPRT0_ENACHG | HPRT0_CONNDET));
        let speed = match HPRT0_SPD.get(hprt) {
            0 => Speed::High,
            1 => Speed::Full,
            _ => Speed::Low,
        };
        self.delay.delay_ms(10);
        log::info!("dwc2: {speed:?}-speed device on the root port");
        let ep0_mps = if speed == Speed::Low { 8 } else { 64 };
        self.port = Some(Port { speed, ep0_mps });
        let device = self.enumerate(address);
        if device.is_err() {
            self.port = None;
        }
        device
    }

    /// Maps `len` bytes at `ptr` for the controller. HCDMA is 32 bits wide and the core
    /// advances it with every packet, so a bus range running past 4 GiB would wrap the DMA to
    /// address 0: such a mapping (a mapper breaking the [`Dma`] contract) is taken back and
    /// refused.
    fn map_buffer(&mut self, ptr: *mut u8, len: usize, dir: DmaDirection) -> Result<u32, UsbError> {
        let bus = self.dma.map(ptr, len, dir).map_err(|e| {
            log::error!("dwc2: buffer not mappable: {e:?}");
            UsbError::Dma
        })?;
        if u64::from(bus) + len as u64 > 1 << 32 {
            log::error!("dwc2: {len} bytes mapped at {bus:#x} run past the 32-bit bus");
            self.dma.unmap(ptr, len, dir);
            return Err(UsbError::Dma);
        }
        Ok(bus)
    }

    /// Current device state for transfers: the port, or why there is none.
    fn port(&self) -> Result<Port, UsbError> {
        self.port.ok_or(UsbError::Disconnected)
    }
}

impl<R: RegisterBlock, D: Dma, T: DelayNs> RootPort for Dwc2Host<R, D, T> {
    fn poll_port(&mut self) -> Option<PortEvent> {
        Dwc2Host::poll_port(self)
    }

    fn connect(&mut self, address: DeviceAddress, timeout_ms: u32) -> Result<UsbDevice, UsbError> {
        Dwc2Host::connect(self, address, timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reg::dma::MockDma;
    use crate::reg::MockRegisterBlock;

    struct NoDelay;

    impl DelayNs for NoDelay {
        fn delay_ns(&mut self, _ns: u32) {}
    }

    fn host(regs: MockRegisterBlock) -> Dwc2Host<MockRegisterBlock, MockDma, NoDelay> {
        Dwc2Host::new(regs, MockDma::new(), NoDelay, Box::leak(Box::default()))
    }

    #[test]
    fn init_refuses_a_core_that_is_not_dwc2() {
        let mut regs = MockRegisterBlock::new();
        regs.expect_read32()
            .withf(|&o| o == GSNPSID)
            .return_const(0x1234_5678u32);
        assert_eq!(host(regs).init(), Err(InitError::NotDwc2(0x1234_5678)));
    }

    #[test]
    fn init_refuses_a_slave_only_core() {
        let mut regs = MockRegisterBlock::new();
        regs.expect_read32()
            .withf(|&o| o == GSNPSID)
            .return_const(0x4f54_400au32);
        // Architecture 0 (slave only), 8 channels.
        regs.expect_read32()
            .withf(|&o| o == GHWCFG2)
            .return_const(7u32 << 14);
        assert_eq!(host(regs).init(), Err(InitError::NoDma));
    }

    #[test]
    fn a_mapping_running_past_the_32_bit_bus_is_taken_back_and_refused() {
        let mut dma = MockDma::new();
        // 16 KiB at 0xffff_f000 would wrap HCDMA to 0 after 4 KiB; 4 KiB there ends at 4 GiB.
        dma.expect_map().return_const(Ok(0xffff_f000u32));
        dma.expect_unmap()
            .withf(|_, &len, _| len == PIPE_BUFFER)
            .times(1)
            .return_const(());
        let mut host = Dwc2Host::new(
            MockRegisterBlock::new(),
            dma,
            NoDelay,
            Box::leak(Box::default()),
        );
        let ptr = host.mem.pipes[0].0.as_mut_ptr();
        let dir = DmaDirection::FromDevice;
        assert_eq!(host.map_buffer(ptr, PIPE_BUFFER, dir), Err(UsbError::Dma));
        assert_eq!(host.map_buffer(ptr, 4096, dir), Ok(0xffff_f000));
    }

    #[test]
    fn port_writes_never_carry_enable_or_other_change_bits() {
        let mut regs = MockRegisterBlock::new();
        let status = HPRT0_CONNSTS | HPRT0_CONNDET | HPRT0_ENA | HPRT0_ENACHG | HPRT0_PWR;
        regs.expect_read32()
            .withf(|&o| o == HPRT0)
            .return_const(status);
        // Clearing CONNDET writes PWR back and CONNDET as 1, nothing else.
        regs.expect_write32()
            .withf(|&o, &v| o == HPRT0 && v == HPRT0_PWR | HPRT0_CONNDET)
            .times(1)
            .return_const(());
        assert_eq!(host(regs).poll_port(), Some(PortEvent::Connected));
    }
}
