//! A register and DMA model of a Synopsys DWC2 (DesignWare HS OTG) core in buffer-DMA host mode.
//!
//! Written from the register descriptions in Linux `drivers/usb/dwc2/hw.h` and the host-mode
//! rules in `hcd.c`/`hcd_intr.c` (torvalds/linux) and CherryUSB `port/dwc2/usb_dwc2_reg.h`, not
//! from this crate's driver. What it models:
//!
//! - global registers: GSNPSID/GHWCFG2/GHWCFG3/GHWCFG4 identify a v3.30a core with internal
//!   DMA, 8 host channels, a UTMI+ PHY, dedicated TX FIFOs, a 1024-word data FIFO and 19-bit
//!   transfer / 10-bit packet counters (narrower with [`Dwc2Model::with_counter_widths`]);
//!   GRSTCTL core soft reset (self-clearing after a few microseconds, AHBIDLE; writes during it
//!   are refused) and FIFO flushes (refused while channels run); GUSBCFG forced host mode, which
//!   takes effect 25 ms later (GINTSTS.CURMOD); GINTSTS write-1-to-clear bits and the read-only
//!   summaries PRTINT and HCHINT; PCGCTL clock gating;
//! - FIFO layout, checked when a channel starts: RX, non-periodic and periodic TX FIFOs inside
//!   the data FIFO, not overlapping, below GDFIFOCFG.EPINFOBASE (one word of DMA state per
//!   channel above it), large enough for the channel's packets;
//! - HPRT0: connect status/detect, enable (cleared, never set, by writing 1), enable change,
//!   power, reset (the device sees a reset only when it was held 10 ms or more), speed;
//! - host channels: HCCHAR enable/disable, HCTSIZ transfer size/packet count/PID updated as
//!   packets move, HCDMA advanced, HCINT write-1-to-clear, halting on completion or error with
//!   CHHLTD plus the reason; NAKs on bulk and control retried by the core itself (buffer DMA),
//!   NAK on interrupt endpoints halts the channel; starting a channel checks host mode, DMA
//!   enable, clocks, max packet size for type and speed, LSPDDEV against the device speed,
//!   packet count against transfer size (IN: whole packets), SETUP only as 8 bytes on control
//!   OUT, no split transactions (no hub);
//! - DMA through [`SimDma`]: bus addresses exist only for buffers the driver mapped (handed
//!   out round-robin in a window that ends at 4 GiB, never across its end); anything
//!   else, unaligned addresses, and writes into buffers mapped for the device to read are AHB
//!   errors; taking a buffer back while a channel uses it is refused;
//! - a non-coherent CPU data cache between the driver's buffers and the controller (the
//!   K230's, see `cache.rs`): the controller reads and writes memory, which the CPU's view of a
//!   buffer reaches only through the cache maintenance [`SimDma`] runs (the same rules as on
//!   the target, [`crate::reg::dma::for_device`] and [`crate::reg::dma::for_cpu`]); reading
//!   data the CPU did not clean, writing lines the CPU holds dirty, and giving back written
//!   lines without invalidating them are violations, with their effect on the data;
//! - faults to inject ([`Fault`]): transaction errors, babble, toggle errors, NAKs, AHB errors,
//!   NYET; and attach/detach of the device at any time.
//!
//! Every rule a driver breaks is logged and kept in [`Dwc2Model::violations`]. Time is virtual:
//! it moves only through [`SimDelay`], so runs are deterministic.

use std::sync::{Arc, Mutex, MutexGuard};

use std::ops::Range;

use crate::reg::dma::{self, CacheMaintenance, Dma, DmaDirection, DmaError};
use crate::reg::RegisterBlock;
use crate::sim::cache::CacheModel;
use crate::sim::usb_bus::{DataPid, InToken, OutToken, UsbBus};
use crate::sim::usb_function::UsbFunction;
use crate::usb::Speed;

// Register offsets and bits (Linux drivers/usb/dwc2/hw.h).
const GAHBCFG: usize = 0x008;
const GUSBCFG: usize = 0x00c;
const GRSTCTL: usize = 0x010;
const GINTSTS: usize = 0x014;
const GINTMSK: usize = 0x018;
const GRXFSIZ: usize = 0x024;
const GNPTXFSIZ: usize = 0x028;
const GSNPSID: usize = 0x040;
const GHWCFG1: usize = 0x044;
const GHWCFG2: usize = 0x048;
const GHWCFG3: usize = 0x04c;
const GHWCFG4: usize = 0x050;
const GDFIFOCFG: usize = 0x05c;
const HPTXFSIZ: usize = 0x100;
const HCFG: usize = 0x400;
const HFIR: usize = 0x404;
const HFNUM: usize = 0x408;
const HAINT: usize = 0x414;
const HAINTMSK: usize = 0x418;
const HPRT0: usize = 0x440;
const CHANNEL_BASE: usize = 0x500;
const CHANNEL_STRIDE: usize = 0x20;
const PCGCTL: usize = 0xe00;

const GAHBCFG_GLBL_INTR_EN: u32 = 1 << 0;
const GAHBCFG_DMA_EN: u32 = 1 << 5;
const GUSBCFG_FORCEHOSTMODE: u32 = 1 << 29;
const GUSBCFG_FORCEDEVMODE: u32 = 1 << 30;
const GRSTCTL_CSFTRST: u32 = 1 << 0;
const GRSTCTL_RXFFLSH: u32 = 1 << 4;
const GRSTCTL_TXFFLSH: u32 = 1 << 5;
const GRSTCTL_AHBIDLE: u32 = 1 << 31;
const GINTSTS_CURMOD: u32 = 1 << 0;
const GINTSTS_PRTINT: u32 = 1 << 24;
const GINTSTS_HCHINT: u32 = 1 << 25;
const GINTSTS_DISCONNINT: u32 = 1 << 29;
/// GINTSTS bits that are plain write-1-to-clear status (everything but the summaries and mode).
const GINTSTS_W1C: u32 = !(GINTSTS_CURMOD | GINTSTS_PRTINT | GINTSTS_HCHINT | 0x0c00_0030);
const HCFG_DESCDMA: u32 = 1 << 23;
const HPRT0_CONNSTS: u32 = 1 << 0;
const HPRT0_CONNDET: u32 = 1 << 1;
const HPRT0_ENA: u32 = 1 << 2;
const HPRT0_ENACHG: u32 = 1 << 3;
const HPRT0_OVRCURRCHG: u32 = 1 << 5;
const HPRT0_RST: u32 = 1 << 8;
const HPRT0_PWR: u32 = 1 << 12;
/// HPRT0 bits the application may set and read back: RES, SUSP, RST, PWR, TSTCTL.
const HPRT0_RW: u32 = (1 << 6) | (1 << 7) | HPRT0_RST | HPRT0_PWR | (0xf << 13);
const HCCHAR_CHENA: u32 = 1 << 31;
const HCCHAR_CHDIS: u32 = 1 << 30;
const HCINT_XFERCOMPL: u32 = 1 << 0;
const HCINT_CHHLTD: u32 = 1 << 1;
const HCINT_AHBERR: u32 = 1 << 2;
const HCINT_STALL: u32 = 1 << 3;
const HCINT_NAK: u32 = 1 << 4;
const HCINT_ACK: u32 = 1 << 5;
const HCINT_NYET: u32 = 1 << 6;
const HCINT_XACTERR: u32 = 1 << 7;
const HCINT_BBLERR: u32 = 1 << 8;
const HCINT_DATATGLERR: u32 = 1 << 10;

/// Number of host channels the modelled core has.
pub const CHANNELS: usize = 8;
/// Data FIFO depth in 32-bit words (GHWCFG3.DFIFO_DEPTH).
pub const FIFO_WORDS: u32 = 1024;
/// Core version reported by GSNPSID (v3.30a).
const SNPSID: u32 = 0x4f54_330a;
/// Time from setting GUSBCFG.FORCEHOSTMODE to host mode (Linux `dwc2_force_mode`: 25 ms).
const FORCE_MODE_NS: u64 = 25_000_000;
/// Time the core soft reset takes.
const SOFT_RESET_NS: u64 = 2_000;
/// Shortest port reset a device recognises as such (USB 2.0 TDRST: 10 ms).
const MIN_RESET_NS: u64 = 10_000_000;
/// Largest packet any endpoint may have.
const MAX_PACKET: usize = 1024;
/// First bus address the DMA window hands out.
const DMA_WINDOW: u32 = 0x4000_0000;
/// End of the DMA window: the end of the 32-bit bus HCDMA addresses.
const DMA_WINDOW_END: u64 = 1 << 32;
/// Granule of bus addresses given to one mapping.
const BUS_PAGE: u64 = 4096;
/// Unmapped bytes at least between two mappings, so that a DMA overrun hits no buffer.
const BUS_GUARD: u64 = 64;

/// An injected failure for the next transaction(s), to drive the driver's error paths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The next `n` transactions get no valid answer (CRC error/timeout): XACTERR.
    TransactionErrors(u32),
    /// The next IN data packet is longer than the channel's max packet size: BBLERR.
    Babble,
    /// The next IN data packet carries the wrong DATA PID: DATATGLERR.
    ToggleError,
    /// The next `n` tokens are answered with NAK before they reach the device.
    Naks(u32),
    /// The next DMA access fails on the AHB bus: AHBERR.
    AhbError,
    /// The device answers the next high-speed OUT data packet with NYET: taken, but the
    /// channel halts (buffer DMA) until the driver resumes it with a PING.
    Nyet,
}

/// A buffer the driver mapped for DMA.
struct Region {
    bus: u32,
    ptr: SendPtr,
    len: usize,
    dir: DmaDirection,
}

/// The bus pages a mapped buffer occupies.
fn region_pages(r: &Region) -> (u64, u64) {
    let start = u64::from(r.bus) / BUS_PAGE * BUS_PAGE;
    let end = u64::from(r.bus) + r.len as u64 + BUS_GUARD;
    (start, end.next_multiple_of(BUS_PAGE))
}

/// A host pointer the model may move between threads with the model.
#[derive(Clone, Copy)]
struct SendPtr(*mut u8);

// SAFETY: the pointer is only dereferenced while the region is mapped, i.e. while the driver
// has handed the buffer to the (modelled) controller and does not touch it; the model is behind
// a mutex, so one thread at a time does so.
unsafe impl Send for SendPtr {}

#[derive(Clone, Copy, Default)]
struct Channel {
    hcchar: u32,
    hcsplt: u32,
    hcint: u32,
    hcintmsk: u32,
    hctsiz: u32,
    hcdma: u32,
    /// Transfer running (CHENA as the core sees it).
    active: bool,
}

/// The model's state; shared by [`SimRegs`], [`SimDma`] and [`SimDelay`] through [`Dwc2Model`].
struct State {
    now_ns: u64,
    /// Widths of the HCTSIZ transfer size and packet count counters (GHWCFG3).
    xfer_bits: u32,
    packet_bits: u32,
    gahbcfg: u32,
    gusbcfg: u32,
    grstctl: u32,
    soft_reset_until: Option<u64>,
    host_mode_at: Option<u64>,
    gintsts: u32,
    gintmsk: u32,
    grxfsiz: u32,
    gnptxfsiz: u32,
    gdfifocfg: u32,
    hptxfsiz: u32,
    hcfg: u32,
    hfir: u32,
    haintmsk: u32,
    /// HPRT0 as stored: status bits plus the read/write bits.
    hprt0: u32,
    reset_started: Option<u64>,
    pcgctl: u32,
    channels: [Channel; CHANNELS],
    bus: UsbBus,
    regions: Vec<Region>,
    next_bus: u32,
    faults: Vec<Fault>,
    violations: Vec<String>,
    /// Memory as the controller sees it, behind the CPU's data cache.
    cache: CacheModel,
}

impl State {
    fn new(xfer_bits: u32, packet_bits: u32) -> Self {
        Self {
            now_ns: 0,
            xfer_bits,
            packet_bits,
            gahbcfg: 0,
            gusbcfg: 0x1400,
            grstctl: GRSTCTL_AHBIDLE,
            soft_reset_until: None,
            host_mode_at: None,
            gintsts: 0,
            gintmsk: 0,
            grxfsiz: FIFO_WORDS,
            gnptxfsiz: (FIFO_WORDS << 16) | FIFO_WORDS,
            gdfifocfg: (FIFO_WORDS << 16) | FIFO_WORDS,
            hptxfsiz: 0,
            hcfg: 0,
            hfir: 60_000,
            haintmsk: 0,
            hprt0: 0,
            reset_started: None,
            pcgctl: 0,
            channels: [Channel::default(); CHANNELS],
            bus: UsbBus::new(),
            regions: Vec::new(),
            next_bus: DMA_WINDOW,
            faults: Vec::new(),
            violations: Vec::new(),
            cache: CacheModel::default(),
        }
    }

    fn violation(&mut self, what: String) {
        log::error!("dwc2 model: {what}");
        self.violations.push(what);
    }

    fn host_mode(&self) -> bool {
        matches!(self.host_mode_at, Some(t) if self.now_ns >= t)
    }

    /// Moves the time-driven state on: soft reset completion, the forced mode change.
    fn settle(&mut self) {
        if let Some(t) = self.soft_reset_until {
            if self.now_ns >= t {
                self.soft_reset_until = None;
                self.grstctl = GRSTCTL_AHBIDLE;
            }
        }
    }

    fn soft_reset(&mut self) {
        self.soft_reset_until = Some(self.now_ns + SOFT_RESET_NS);
        self.grstctl = GRSTCTL_CSFTRST;
        self.gintsts = 0;
        for ch in &mut self.channels {
            *ch = Channel::default();
        }
        // The port stays powered and connected, but a reset core has no enabled port.
        self.hprt0 &= HPRT0_CONNSTS | HPRT0_PWR;
    }

    fn port_status(&self) -> u32 {
        let mut v = self.hprt0;
        if let Some(speed) = self.bus.speed().filter(|_| v & HPRT0_ENA != 0) {
            let spd = match speed {
                Speed::High => 0,
                Speed::Full => 1,
                Speed::Low => 2,
            };
            v |= spd << 17;
        }
        if v & HPRT0_CONNSTS != 0 {
            // Line state J (D+ high) on an idle full/high-speed bus.
            v |= 1 << 10;
        }
        v
    }

    fn gintsts_value(&self) -> u32 {
        let mut v = self.gintsts & !(GINTSTS_PRTINT | GINTSTS_HCHINT | GINTSTS_CURMOD);
        if self.host_mode() {
            v |= GINTSTS_CURMOD;
        }
        if self.hprt0 & (HPRT0_CONNDET | HPRT0_ENACHG | HPRT0_OVRCURRCHG) != 0 {
            v |= GINTSTS_PRTINT;
        }
        if self.haint() != 0 {
            v |= GINTSTS_HCHINT;
        }
        v
    }

    fn haint(&self) -> u32 {
        self.channels
            .iter()
            .enumerate()
            .filter(|(_, c)| c.hcint & c.hcintmsk != 0)
            .fold(0, |acc, (i, _)| acc | 1 << i)
    }

    fn read(&mut self, offset: usize) -> u32 {
        self.settle();
        if (CHANNEL_BASE..CHANNEL_BASE + CHANNELS * CHANNEL_STRIDE).contains(&offset) {
            let ch = &self.channels[(offset - CHANNEL_BASE) / CHANNEL_STRIDE];
            return match offset % CHANNEL_STRIDE {
                0x00 => ch.hcchar | if ch.active { HCCHAR_CHENA } else { 0 },
                0x04 => ch.hcsplt,
                0x08 => ch.hcint,
                0x0c => ch.hcintmsk,
                0x10 => ch.hctsiz,
                0x14 => ch.hcdma,
                _ => 0,
            };
        }
        match offset {
            GAHBCFG => self.gahbcfg,
            GUSBCFG => self.gusbcfg,
            GRSTCTL => self.grstctl,
            GINTSTS => self.gintsts_value(),
            GINTMSK => self.gintmsk,
            GRXFSIZ => self.grxfsiz,
            GNPTXFSIZ => self.gnptxfsiz,
            GSNPSID => SNPSID,
            GHWCFG1 => 0,
            // INT_DMA_ARCH, UTMI HS PHY, 8 host channels (field holds count - 1), dynamic FIFO.
            GHWCFG2 => (2 << 3) | (1 << 6) | ((CHANNELS as u32 - 1) << 14) | (1 << 19),
            // Counter widths (transfer size 11 + n, packet count 4 + n), FIFO depth.
            GHWCFG3 => (FIFO_WORDS << 16) | ((self.packet_bits - 4) << 4) | (self.xfer_bits - 11),
            // Dedicated TX FIFOs (so GDFIFOCFG is in use), UTMI+ 8- or 16-bit.
            GHWCFG4 => (1 << 25) | (2 << 14),
            GDFIFOCFG => self.gdfifocfg,
            HPTXFSIZ => self.hptxfsiz,
            HCFG => self.hcfg,
            HFIR => self.hfir,
            HFNUM => ((self.now_ns / 125_000) & 0x3fff) as u32,
            HAINT => self.haint(),
            HAINTMSK => self.haintmsk,
            HPRT0 => self.port_status(),
            PCGCTL => self.pcgctl,
            _ => 0,
        }
    }

    fn write(&mut self, offset: usize, value: u32) {
        self.settle();
        if self.soft_reset_until.is_some() && offset != GRSTCTL {
            self.violation(format!(
                "write {value:#x} to {offset:#x} during core soft reset"
            ));
            return;
        }
        if (CHANNEL_BASE..CHANNEL_BASE + CHANNELS * CHANNEL_STRIDE).contains(&offset) {
            let n = (offset - CHANNEL_BASE) / CHANNEL_STRIDE;
            self.write_channel(n, offset % CHANNEL_STRIDE, value);
            return;
        }
        match offset {
            GAHBCFG => self.gahbcfg = value,
            GUSBCFG => {
                if value & GUSBCFG_FORCEHOSTMODE != 0 && value & GUSBCFG_FORCEDEVMODE != 0 {
                    self.violation("GUSBCFG forces host and device mode at once".into());
                }
                let was = self.gusbcfg & GUSBCFG_FORCEHOSTMODE != 0;
                let now = value & GUSBCFG_FORCEHOSTMODE != 0;
                if now && !was {
                    self.host_mode_at = Some(self.now_ns + FORCE_MODE_NS);
                } else if !now {
                    // ID pin pulled up by the PHY: without forcing, the core is a B-device.
                    self.host_mode_at = None;
                }
                self.gusbcfg = value;
            }
            GRSTCTL => {
                if value & GRSTCTL_CSFTRST != 0 {
                    self.soft_reset();
                }
                // FIFO flushes complete at once (the bits read back as 0), but only while no
                // channel moves data through the FIFOs.
                let flush = value & (GRSTCTL_RXFFLSH | GRSTCTL_TXFFLSH) != 0;
                if flush && self.channels.iter().any(|c| c.active) {
                    self.violation(format!("FIFO flush {value:#x} while channels run"));
                }
            }
            GINTSTS => self.gintsts &= !(value & GINTSTS_W1C),
            GINTMSK => self.gintmsk = value,
            GRXFSIZ => self.grxfsiz = value & 0xffff,
            GNPTXFSIZ => self.gnptxfsiz = value,
            GDFIFOCFG => self.gdfifocfg = value,
            HPTXFSIZ => self.hptxfsiz = value,
            HCFG => self.hcfg = value,
            HFIR => self.hfir = value & 0x1_ffff,
            HAINTMSK => self.haintmsk = value & 0xffff,
            HPRT0 => self.write_hprt0(value),
            PCGCTL => self.pcgctl = value,
            GSNPSID | GHWCFG1 | GHWCFG2 | GHWCFG3 | GHWCFG4 | HFNUM | HAINT => {
                self.violation(format!(
                    "write {value:#x} to read-only register {offset:#x}"
                ));
            }
            _ => self.violation(format!(
                "write {value:#x} to unmodelled register {offset:#x}"
            )),
        }
    }

    fn write_hprt0(&mut self, value: u32) {
        if !self.host_mode() {
            self.violation(format!(
                "HPRT0 write {value:#x} while the core is not in host mode"
            ));
            return;
        }
        // Write-1-to-clear status and change bits; writing ENA=1 disables the port.
        self.hprt0 &= !(value & (HPRT0_CONNDET | HPRT0_ENACHG | HPRT0_OVRCURRCHG));
        if value & HPRT0_ENA != 0 && self.hprt0 & HPRT0_ENA != 0 {
            log::warn!("dwc2 model: HPRT0 written with ENA=1: port disabled");
            self.hprt0 &= !HPRT0_ENA;
            self.hprt0 |= HPRT0_ENACHG;
        }
        let old = self.hprt0;
        self.hprt0 = (self.hprt0 & !HPRT0_RW) | (value & HPRT0_RW);
        if value & HPRT0_PWR != 0 && old & HPRT0_PWR == 0 {
            self.update_connection();
        }
        if value & HPRT0_PWR == 0 && old & HPRT0_PWR != 0 {
            self.hprt0 &= !(HPRT0_CONNSTS | HPRT0_ENA);
        }
        if value & HPRT0_RST != 0 && old & HPRT0_RST == 0 {
            self.reset_started = Some(self.now_ns);
            if self.hprt0 & HPRT0_ENA != 0 {
                self.hprt0 &= !HPRT0_ENA;
            }
        }
        if value & HPRT0_RST == 0 && old & HPRT0_RST != 0 {
            let held = self.now_ns - self.reset_started.take().unwrap_or(self.now_ns);
            if self.hprt0 & HPRT0_CONNSTS == 0 {
                log::warn!("dwc2 model: port reset with nothing connected");
            } else if held < MIN_RESET_NS {
                self.violation(format!(
                    "port reset held {held} ns, less than 10 ms: the device ignores it"
                ));
            } else {
                self.bus.reset();
                self.hprt0 |= HPRT0_ENA | HPRT0_ENACHG;
            }
        }
    }

    /// Follows the bus: a device present on a powered port is connected.
    fn update_connection(&mut self) {
        let present = self.bus.speed().is_some() && self.hprt0 & HPRT0_PWR != 0;
        let connected = self.hprt0 & HPRT0_CONNSTS != 0;
        if present && !connected {
            self.hprt0 |= HPRT0_CONNSTS | HPRT0_CONNDET;
        } else if !present && connected {
            self.hprt0 &= !HPRT0_CONNSTS;
            if self.hprt0 & HPRT0_ENA != 0 {
                self.hprt0 &= !HPRT0_ENA;
                self.hprt0 |= HPRT0_ENACHG;
            }
            self.gintsts |= GINTSTS_DISCONNINT;
            for n in 0..CHANNELS {
                if self.channels[n].active {
                    self.halt(n, HCINT_XACTERR);
                }
            }
        }
    }

    fn write_channel(&mut self, n: usize, reg: usize, value: u32) {
        let active = self.channels[n].active;
        match reg {
            0x00 => {
                if value & HCCHAR_CHDIS != 0 && value & HCCHAR_CHENA != 0 {
                    if active {
                        self.halt(n, 0);
                    } else {
                        self.violation(format!("channel {n}: disable of an idle channel"));
                        self.channels[n].hcint |= HCINT_CHHLTD;
                    }
                    return;
                }
                if active {
                    self.violation(format!(
                        "channel {n}: HCCHAR {value:#x} written while enabled"
                    ));
                    return;
                }
                self.channels[n].hcchar = value & !(HCCHAR_CHENA | HCCHAR_CHDIS);
                if value & HCCHAR_CHENA != 0 {
                    self.start(n);
                }
            }
            0x04 => self.channels[n].hcsplt = value,
            0x08 => self.channels[n].hcint &= !value,
            0x0c => self.channels[n].hcintmsk = value & 0x3fff,
            0x10 | 0x14 if active => {
                self.violation(format!("channel {n}: HCTSIZ/HCDMA written while enabled"));
            }
            0x10 => self.channels[n].hctsiz = value,
            0x14 => self.channels[n].hcdma = value,
            _ => self.violation(format!("channel {n}: write to reserved offset {reg:#x}")),
        }
    }

    /// Halts channel `n` with CHHLTD and the reason bits.
    fn halt(&mut self, n: usize, reason: u32) {
        let ch = &mut self.channels[n];
        ch.active = false;
        ch.hcint |= HCINT_CHHLTD | reason;
    }

    /// Checks a channel's programming as the core would when CHENA is set; starts it if sound.
    fn start(&mut self, n: usize) {
        let ch = self.channels[n];
        let mps = (ch.hcchar & 0x7ff) as usize;
        let ep_type = (ch.hcchar >> 18) & 3;
        let is_in = ch.hcchar & (1 << 15) != 0;
        let size = (ch.hctsiz & 0x7_ffff) as usize;
        let pkts = ((ch.hctsiz >> 19) & 0x3ff) as usize;
        let pid = (ch.hctsiz >> 29) & 3;
        let fail = |s: &mut Self, why: String, reason: u32| {
            s.violation(format!("channel {n}: {why}"));
            s.halt(n, reason);
        };
        if !self.host_mode() {
            return fail(
                self,
                "enabled while the core is not in host mode".into(),
                HCINT_XACTERR,
            );
        }
        if self.pcgctl & 0b11 != 0 {
            return fail(
                self,
                format!("PHY clock or HCLK gated (PCGCTL {:#x})", self.pcgctl),
                HCINT_XACTERR,
            );
        }
        if ch.hcsplt & (1 << 31) != 0 {
            return fail(
                self,
                "split transaction without a hub".into(),
                HCINT_XACTERR,
            );
        }
        if self.gahbcfg & GAHBCFG_DMA_EN == 0 {
            return fail(
                self,
                "enabled without GAHBCFG.DMA_EN (slave mode is not modelled)".into(),
                HCINT_AHBERR,
            );
        }
        if self.hcfg & HCFG_DESCDMA != 0 {
            return fail(self, "descriptor DMA is not modelled".into(), HCINT_AHBERR);
        }
        if let Err(why) = self.check_fifos(mps, is_in) {
            return fail(self, why, HCINT_XACTERR);
        }
        if ch.hcdma % 4 != 0 {
            return fail(
                self,
                format!("HCDMA {:#x} not 4-byte aligned", ch.hcdma),
                HCINT_AHBERR,
            );
        }
        let speed = self.bus.speed().unwrap_or(Speed::Full);
        let lspd = ch.hcchar & (1 << 17) != 0;
        if lspd != (speed == Speed::Low) {
            return fail(
                self,
                format!(
                    "HCCHAR.LSPDDEV={} for a {speed:?}-speed device",
                    u8::from(lspd)
                ),
                HCINT_XACTERR,
            );
        }
        let mps_ok = match (ep_type, speed) {
            (1, _) => false, // isochronous: not modelled
            (0, Speed::Low) => mps == 8,
            (0, Speed::Full) => matches!(mps, 8 | 16 | 32 | 64),
            (0, Speed::High) => mps == 64,
            (2, Speed::Full) => matches!(mps, 8 | 16 | 32 | 64),
            (2, Speed::High) => mps == 512,
            (2, Speed::Low) => false,
            (3, Speed::Low) => (1..=8).contains(&mps),
            (3, Speed::Full) => (1..=64).contains(&mps),
            (_, _) => (1..=MAX_PACKET).contains(&mps),
        };
        // During enumeration (address 0) the control MPS may be 8 whatever the speed.
        let addr0_ctrl = ep_type == 0 && (ch.hcchar >> 22) & 0x7f == 0 && mps == 8;
        if !mps_ok && !addr0_ctrl {
            return fail(
                self,
                format!("max packet {mps} invalid for type {ep_type} at {speed:?}"),
                HCINT_XACTERR,
            );
        }
        if pkts == 0 {
            return fail(self, "packet count 0".into(), HCINT_XACTERR);
        }
        if size >> self.xfer_bits != 0 || pkts >> self.packet_bits != 0 {
            return fail(
                self,
                format!(
                    "transfer size {size} / packet count {pkts} overflow the {}/{}-bit counters",
                    self.xfer_bits, self.packet_bits
                ),
                HCINT_XACTERR,
            );
        }
        let sound = if is_in {
            // Buffer DMA IN: whole packets (USB 2.0 host: the buffer takes pktcnt * mps).
            size == pkts * mps || (size == 0 && pkts == 1)
        } else {
            pkts == size.div_ceil(mps).max(1)
        };
        if !sound {
            return fail(
                self,
                format!("transfer size {size} does not fit packet count {pkts} x {mps}"),
                HCINT_XACTERR,
            );
        }
        if pid == 3 && (is_in || ep_type != 0 || size != 8) {
            return fail(
                self,
                format!("SETUP PID with in={is_in} type={ep_type} size={size}"),
                HCINT_XACTERR,
            );
        }
        if pid == 1 {
            return fail(
                self,
                "DATA2 PID outside high-bandwidth isochronous".into(),
                HCINT_XACTERR,
            );
        }
        self.channels[n].active = true;
        self.channels[n].hcint = 0;
        self.run_channel(n);
    }

    /// The FIFO layout must fit the data FIFO, not overlap, and hold a packet of `mps`.
    fn check_fifos(&self, mps: usize, is_in: bool) -> Result<(), String> {
        let rx = self.grxfsiz & 0xffff;
        let (np_start, np_depth) = (self.gnptxfsiz & 0xffff, self.gnptxfsiz >> 16);
        let (p_start, p_depth) = (self.hptxfsiz & 0xffff, self.hptxfsiz >> 16);
        if np_start < rx || (p_depth != 0 && p_start < np_start + np_depth) {
            return Err(format!(
                "FIFOs overlap: rx {rx}, np {np_start}+{np_depth}, p {p_start}+{p_depth}"
            ));
        }
        // The core keeps one word of DMA state per channel from GDFIFOCFG.EPINFOBASE up.
        let epinfo = self.gdfifocfg >> 16;
        if epinfo + CHANNELS as u32 > FIFO_WORDS {
            return Err(format!(
                "EP info base {epinfo} leaves no room for {CHANNELS} channels"
            ));
        }
        if np_start + np_depth > epinfo || p_start + p_depth > epinfo {
            return Err(format!("FIFOs run into the EP info area at {epinfo}"));
        }
        let words = mps.div_ceil(4) as u32;
        if is_in && rx < words + 2 {
            return Err(format!(
                "RX FIFO of {rx} words cannot take a {mps}-byte packet"
            ));
        }
        if !is_in && np_depth < words {
            return Err(format!(
                "non-periodic TX FIFO of {np_depth} words cannot take a {mps}-byte packet"
            ));
        }
        Ok(())
    }

    /// Finds the mapped region holding `len` bytes at bus address `bus`: the host address of
    /// that byte and the region's host range. `Err(None)` is an injected bus error,
    /// `Err(Some(why))` a driver's mistake.
    fn region(
        &mut self,
        bus: u32,
        len: usize,
        write: bool,
    ) -> Result<(usize, Range<usize>), Option<String>> {
        if self.take_fault(|f| *f == Fault::AhbError).is_some() {
            return Err(None);
        }
        let r = self
            .regions
            .iter()
            .find(|r| bus >= r.bus && (bus - r.bus) as usize + len <= r.len)
            .ok_or_else(|| {
                Some(format!(
                    "DMA of {len} bytes at {bus:#x}: not a mapped buffer"
                ))
            })?;
        if write && r.dir == DmaDirection::ToDevice {
            return Err(Some(format!(
                "DMA write at {bus:#x} into a buffer mapped for the device to read"
            )));
        }
        let start = r.ptr.0 as usize;
        Ok((start + (bus - r.bus) as usize, start..start + r.len))
    }

    /// The controller reads `out.len()` bytes at bus address `bus` (memory behind the CPU's
    /// cache). False (channel halted) when that is not a mapped buffer.
    fn dma_read(&mut self, n: usize, bus: u32, out: &mut [u8]) -> bool {
        let addr = match self.region(bus, out.len(), false) {
            Ok((addr, _)) => addr,
            Err(why) => return self.dma_failed(n, why),
        };
        // SAFETY: `region` checked that the bytes lie in a buffer the driver mapped, which stays
        // in place until it is unmapped.
        if let Err(why) = unsafe { self.cache.device_read(addr, out) } {
            self.violation(format!("channel {n}: {why}"));
        }
        true
    }

    /// The controller writes `data` at bus address `bus`. False (channel halted) when that is
    /// not a buffer mapped for it to write.
    fn dma_write(&mut self, n: usize, bus: u32, data: &[u8]) -> bool {
        let (addr, buffer) = match self.region(bus, data.len(), true) {
            Ok(found) => found,
            Err(why) => return self.dma_failed(n, why),
        };
        // SAFETY: as in `dma_read`; the buffer was mapped for the controller to write.
        if let Err(why) = unsafe { self.cache.device_write(addr, data, buffer) } {
            self.violation(format!("channel {n}: {why}"));
        }
        true
    }

    /// Halts channel `n` with an AHB error for a failed DMA access (recording the driver's
    /// mistake, if it was one).
    fn dma_failed(&mut self, n: usize, why: Option<String>) -> bool {
        if let Some(why) = why {
            self.violation(format!("channel {n}: {why}"));
        }
        self.halt(n, HCINT_AHBERR);
        false
    }

    fn take_fault(&mut self, want: impl Fn(&Fault) -> bool) -> Option<Fault> {
        let i = self.faults.iter().position(want)?;
        let f = self.faults.remove(i);
        match f {
            Fault::TransactionErrors(n) if n > 1 => {
                self.faults.insert(i, Fault::TransactionErrors(n - 1))
            }
            Fault::Naks(n) if n > 1 => self.faults.insert(i, Fault::Naks(n - 1)),
            _ => {}
        }
        Some(f)
    }

    /// Runs channel `n`'s packets until it completes, halts, or is NAKed.
    fn run_channel(&mut self, n: usize) {
        let mut scratch = [0u8; MAX_PACKET];
        // Bounded by the packet count (at most 1023) plus one.
        for _ in 0..=0x3ff {
            let ch = self.channels[n];
            if !ch.active {
                return;
            }
            let mps = (ch.hcchar & 0x7ff) as usize;
            let ep = ((ch.hcchar >> 11) & 0xf) as u8;
            let is_in = ch.hcchar & (1 << 15) != 0;
            let ep_type = (ch.hcchar >> 18) & 3;
            let addr = ((ch.hcchar >> 22) & 0x7f) as u8;
            let size = (ch.hctsiz & 0x7_ffff) as usize;
            let pkts = (ch.hctsiz >> 19) & 0x3ff;
            let pid = (ch.hctsiz >> 29) & 3;
            if self.hprt0 & HPRT0_ENA == 0 {
                self.halt(n, HCINT_XACTERR);
                return;
            }
            if self
                .take_fault(|f| matches!(f, Fault::TransactionErrors(_)))
                .is_some()
            {
                self.halt(n, HCINT_XACTERR);
                return;
            }
            if pid != 3 && self.take_fault(|f| matches!(f, Fault::Naks(_))).is_some() {
                self.nak(n, ep_type);
                return;
            }
            let data_pid = if pid == 2 {
                DataPid::Data1
            } else {
                DataPid::Data0
            };
            let moved;
            let mut short = false;
            if is_in {
                let answer = self.bus.data_in(addr, ep, &mut scratch);
                match answer {
                    InToken::Data { len, pid: got } => {
                        let babble = self.take_fault(|f| *f == Fault::Babble).is_some();
                        if babble || len > mps || len > size {
                            self.halt(n, HCINT_BBLERR);
                            return;
                        }
                        let toggle_fault = self.take_fault(|f| *f == Fault::ToggleError).is_some();
                        if got != data_pid || toggle_fault {
                            self.halt(n, HCINT_DATATGLERR);
                            return;
                        }
                        if len > 0 && !self.dma_write(n, ch.hcdma, &scratch[..len]) {
                            return;
                        }
                        moved = len;
                        short = len < mps;
                    }
                    InToken::Nak => {
                        self.nak(n, ep_type);
                        return;
                    }
                    InToken::Stall => return self.halt(n, HCINT_STALL),
                    InToken::NoResponse => return self.halt(n, HCINT_XACTERR),
                }
            } else {
                let len = size.min(mps);
                if len > 0 && !self.dma_read(n, ch.hcdma, &mut scratch[..len]) {
                    return;
                }
                let answer = if pid == 3 {
                    self.bus.setup(addr, &scratch[..len])
                } else {
                    self.bus.data_out(addr, ep, data_pid, &scratch[..len])
                };
                match answer {
                    OutToken::Ack => moved = len,
                    OutToken::Nak => {
                        self.nak(n, ep_type);
                        return;
                    }
                    OutToken::Stall => return self.halt(n, HCINT_STALL),
                    OutToken::NoResponse => return self.halt(n, HCINT_XACTERR),
                }
            }
            // The packet went through: counters, address and toggle move on.
            let next_pid = if pid == 3 || data_pid == DataPid::Data0 {
                2
            } else {
                0
            };
            let pkts = pkts - 1;
            let size = size - moved;
            let c = &mut self.channels[n];
            c.hctsiz = (c.hctsiz & (1 << 31)) | (next_pid << 29) | (pkts << 19) | size as u32;
            c.hcdma = c.hcdma.wrapping_add(moved as u32);
            c.hcint |= HCINT_ACK;
            if pkts == 0 || short {
                self.halt(n, HCINT_XFERCOMPL);
                return;
            }
            if !is_in && pid != 3 && self.take_fault(|f| *f == Fault::Nyet).is_some() {
                self.halt(n, HCINT_NYET);
                return;
            }
        }
    }

    /// A NAK: buffer-DMA cores retry bulk and control themselves; interrupt transfers halt.
    fn nak(&mut self, n: usize, ep_type: u32) {
        if ep_type == 3 {
            self.halt(n, HCINT_NAK);
        } else {
            self.channels[n].hcint |= HCINT_NAK;
        }
    }

    /// Retries NAKed channels: the core keeps issuing tokens while a channel stays enabled.
    fn retry(&mut self) {
        for n in 0..CHANNELS {
            if self.channels[n].active {
                self.run_channel(n);
            }
        }
    }

    /// Gives `len` bytes at `ptr` a bus address in the DMA window: the next free one after the
    /// last mapping (so a stale address rarely meets a new buffer), wrapping back to the
    /// window's start rather than past the end of the 32-bit bus, never overlapping a mapped
    /// buffer.
    fn map(&mut self, ptr: *mut u8, len: usize, dir: DmaDirection) -> Result<u32, DmaError> {
        // Keep the host pointer's alignment in the bus address so misalignment shows.
        let offset = (ptr as usize % 64) as u64;
        let span = (offset + len as u64 + BUS_GUARD).next_multiple_of(BUS_PAGE);
        if span > DMA_WINDOW_END - u64::from(DMA_WINDOW) {
            return Err(DmaError::Unreachable);
        }
        let mut start = u64::from(self.next_bus);
        let mut wrapped = false;
        // Each step moves past a mapped buffer or wraps (once): every buffer is passed at most
        // once before and once after the wrap.
        for _ in 0..=2 * self.regions.len() + 1 {
            if start + span > DMA_WINDOW_END {
                if wrapped {
                    break;
                }
                wrapped = true;
                start = u64::from(DMA_WINDOW);
            }
            let end = start + span;
            let clash = self.regions.iter().find(|r| {
                let (r_start, r_end) = region_pages(r);
                start < r_end && r_start < end
            });
            match clash {
                Some(r) => start = region_pages(r).1,
                None => {
                    // `end` is at most DMA_WINDOW_END, so the buffer fits the 32-bit bus.
                    self.next_bus = u32::try_from(end).unwrap_or(DMA_WINDOW);
                    let bus = (start + offset) as u32;
                    self.regions.push(Region {
                        bus,
                        ptr: SendPtr(ptr),
                        len,
                        dir,
                    });
                    return Ok(bus);
                }
            }
        }
        self.violation(format!("no room in the DMA window for {len} bytes"));
        Err(DmaError::Unreachable)
    }

    fn unmap(&mut self, ptr: *mut u8, len: usize) {
        let Some(i) = self
            .regions
            .iter()
            .position(|r| r.ptr.0 == ptr && r.len == len)
        else {
            self.violation(format!(
                "unmap of a buffer that was not mapped ({len} bytes)"
            ));
            return;
        };
        let bus = self.regions[i].bus;
        let busy = self
            .channels
            .iter()
            .any(|c| c.active && c.hcdma >= bus && ((c.hcdma - bus) as usize) < len.max(1));
        if busy {
            self.violation("buffer taken back while a channel still uses it".into());
        }
        let r = self.regions.remove(i);
        if r.dir == DmaDirection::FromDevice {
            let start = ptr as usize;
            if let Err(why) = self.cache.taken_back(start..start + len) {
                self.violation(why);
            }
        }
    }
}

/// A handle to the model: clones share one simulated controller.
#[derive(Clone)]
pub struct Dwc2Model {
    state: Arc<Mutex<State>>,
}

impl Default for Dwc2Model {
    fn default() -> Self {
        Self::new()
    }
}

impl Dwc2Model {
    /// A controller just out of reset, nothing attached, at virtual time 0, with the widest
    /// counters (19-bit transfer size, 10-bit packet count).
    pub fn new() -> Self {
        Self::with_counter_widths(19, 10)
    }

    /// As [`Self::new`] with narrower HCTSIZ counters, as a core may be synthesised: transfer
    /// size `xfer_bits` (11 to 19) and packet count `packet_bits` (4 to 10) bits wide.
    /// Out-of-range widths are clamped.
    pub fn with_counter_widths(xfer_bits: u32, packet_bits: u32) -> Self {
        Self {
            state: Arc::new(Mutex::new(State::new(
                xfer_bits.clamp(11, 19),
                packet_bits.clamp(4, 10),
            ))),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Plugs a device into the root port (replacing any present one).
    pub fn attach(&self, function: Box<dyn UsbFunction>) {
        let mut s = self.lock();
        if s.bus.speed().is_some() {
            s.bus.detach();
            s.update_connection();
        }
        s.bus.attach(function);
        s.update_connection();
    }

    /// Unplugs the device: running transfers fail, the port is disabled.
    pub fn detach(&self) -> Option<Box<dyn UsbFunction>> {
        let mut s = self.lock();
        let f = s.bus.detach();
        s.update_connection();
        f
    }

    /// The device halts endpoint `endpoint_address` (bit 7 set for IN): tokens to it get STALL
    /// until the driver sends CLEAR_FEATURE(ENDPOINT_HALT), which also resets its toggle.
    pub fn halt_endpoint(&self, endpoint_address: u8) {
        self.lock().bus.halt(endpoint_address);
    }

    /// Queues a fault for the coming transactions.
    pub fn inject(&self, fault: Fault) {
        self.lock().faults.push(fault);
    }

    /// Every rule the driver broke so far, in order.
    pub fn violations(&self) -> Vec<String> {
        self.lock().violations.clone()
    }

    /// Virtual time in nanoseconds.
    pub fn now_ns(&self) -> u64 {
        self.lock().now_ns
    }

    /// The device's address and configuration as the bus sees them.
    pub fn device_state(&self) -> Option<(u8, u8)> {
        let s = self.lock();
        Some((s.bus.address()?, s.bus.configuration()?))
    }

    /// Number of buffers currently mapped for DMA.
    pub fn mapped_buffers(&self) -> usize {
        self.lock().regions.len()
    }

    /// True when the core would raise its interrupt line (GAHBCFG.GLBL_INTR_EN and an unmasked
    /// GINTSTS bit).
    pub fn irq_pending(&self) -> bool {
        let mut s = self.lock();
        s.retry();
        s.gahbcfg & GAHBCFG_GLBL_INTR_EN != 0 && s.gintsts_value() & s.gintmsk != 0
    }

    /// The register block a driver uses.
    pub fn regs(&self) -> SimRegs {
        SimRegs(self.clone())
    }

    /// The DMA mapper a driver uses.
    pub fn dma(&self) -> SimDma {
        SimDma(self.clone())
    }

    /// A delay that advances the model's virtual clock.
    pub fn delay(&self) -> SimDelay {
        SimDelay(self.clone())
    }
}

/// The model's registers as a [`RegisterBlock`].
#[derive(Clone)]
pub struct SimRegs(Dwc2Model);

impl RegisterBlock for SimRegs {
    // Not inlined: the bench counts the models' instructions as the cost of these calls.
    #[inline(never)]
    fn read32(&self, offset: usize) -> u32 {
        let mut s = self.0.lock();
        s.retry();
        s.read(offset)
    }

    // Not inlined: the bench counts the models' instructions as the cost of these calls.
    #[inline(never)]
    fn write32(&self, offset: usize, value: u32) {
        let mut s = self.0.lock();
        s.write(offset, value);
    }
}

/// DMA mapping into the model's bus window ([`Dma`]), with the cache maintenance every mapper
/// does ([`dma::for_device`], [`dma::for_cpu`]) run against the model's non-coherent cache.
#[derive(Clone)]
pub struct SimDma(Dwc2Model);

impl Dma for SimDma {
    // Not inlined: the bench counts the models' instructions as the cost of these calls.
    #[inline(never)]
    fn map(&mut self, ptr: *mut u8, len: usize, dir: DmaDirection) -> Result<u32, DmaError> {
        dma::for_device(&SimCache(&self.0), ptr as usize, len, dir)?;
        self.0.lock().map(ptr, len, dir)
    }

    // Not inlined: the bench counts the models' instructions as the cost of these calls.
    #[inline(never)]
    fn unmap(&mut self, ptr: *mut u8, len: usize, dir: DmaDirection) {
        dma::for_cpu(&SimCache(&self.0), ptr as usize, len, dir);
        self.0.lock().unmap(ptr, len);
    }
}

/// The CPU's cache maintenance, run on the model's cache ([`CacheModel`]). Only [`SimDma`]
/// uses it, on the buffer being mapped or unmapped (which [`Dma`]'s contract keeps alive).
struct SimCache<'a>(&'a Dwc2Model);

impl CacheMaintenance for SimCache<'_> {
    fn clean(&self, addr: usize, len: usize) {
        // SAFETY: `addr..addr + len` is the buffer `SimDma` is mapping, memory its caller owns.
        unsafe { self.0.lock().cache.clean(addr..addr + len) };
    }

    unsafe fn invalidate(&self, addr: usize, len: usize) {
        let mut s = self.0.lock();
        // SAFETY: the buffer `SimDma` is unmapping, which the controller no longer uses and the
        // caller is about to read.
        if let Err(why) = unsafe { s.cache.invalidate(addr..addr + len) } {
            s.violation(why);
        }
    }
}

/// A delay that advances the model's clock instead of sleeping.
#[derive(Clone)]
pub struct SimDelay(Dwc2Model);

impl embedded_hal::delay::DelayNs for SimDelay {
    // Not inlined: the bench counts the models' instructions as the cost of these calls.
    #[inline(never)]
    fn delay_ns(&mut self, ns: u32) {
        let mut s = self.0.lock();
        s.now_ns += u64::from(ns);
        s.settle();
    }
}
