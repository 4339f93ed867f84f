//! Host channel programming: start, halt, and reading why a channel halted.

use super::regs::*;
use super::{Dwc2Host, MAX_XACT_ERRORS, POLL_STEP_US};
use crate::reg::dma::Dma;
use crate::reg::RegisterBlock;
use crate::usb::{Speed, UsbError};
use embedded_hal::delay::DelayNs;

/// HCTSIZ PID values.
pub(super) const PID_DATA0: u32 = 0;
pub(super) const PID_DATA1: u32 = 2;
pub(super) const PID_SETUP: u32 = 3;

/// HCCHAR endpoint types.
pub(super) const EPTYPE_CONTROL: u32 = 0;
pub(super) const EPTYPE_BULK: u32 = 2;
pub(super) const EPTYPE_INTERRUPT: u32 = 3;

/// Where a transfer goes: the fixed part of HCCHAR.
#[derive(Clone, Copy, Debug)]
pub(super) struct Endpoint {
    pub address: u8,
    pub number: u8,
    pub is_in: bool,
    pub ep_type: u32,
    pub mps: u16,
    pub speed: Speed,
}

impl Endpoint {
    fn hcchar(&self) -> u32 {
        let mut v = HCCHAR_MPS.val(u32::from(self.mps))
            | HCCHAR_EPNUM.val(u32::from(self.number))
            | HCCHAR_EPTYPE.val(self.ep_type)
            | HCCHAR_MULTICNT.val(1)
            | HCCHAR_DEVADDR.val(u32::from(self.address));
        if self.is_in {
            v |= HCCHAR_EPDIR_IN;
        }
        if self.speed == Speed::Low {
            v |= HCCHAR_LSPDDEV;
        }
        v
    }

    /// Largest piece of a transfer one channel run may carry: whole packets that fit both
    /// HCTSIZ counters of this core (`max_xfer` bytes, `max_packets` packets).
    pub fn chunk_limit(&self, max_xfer: usize, max_packets: usize) -> usize {
        let mps = usize::from(self.mps);
        (max_xfer / mps).min(max_packets) * mps
    }

    /// Packets for `size` bytes: at least one (a zero-length packet).
    pub fn packets(&self, size: usize) -> usize {
        size.div_ceil(usize::from(self.mps)).max(1)
    }
}

/// Why a channel halted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Halt {
    /// All packets moved, or a short packet ended an IN transfer.
    Complete,
    /// NAK on an interrupt endpoint: try again later.
    Nak,
    /// A transaction error: the transfer may be resumed where it stopped.
    XactErr,
    /// NYET on a high-speed OUT: the packet was taken; resume with a PING.
    Nyet,
    /// A fatal error for this transfer.
    Failed(UsbError),
    /// Halted on request, nothing else recorded.
    Stopped,
}

impl Halt {
    fn from_hcint(hcint: u32) -> Self {
        if hcint & HCINT_AHBERR != 0 {
            Self::Failed(UsbError::Dma)
        } else if hcint & HCINT_STALL != 0 {
            Self::Failed(UsbError::Stall)
        } else if hcint & HCINT_BBLERR != 0 {
            Self::Failed(UsbError::Babble)
        } else if hcint & HCINT_DATATGLERR != 0 {
            Self::Failed(UsbError::DataToggle)
        } else if hcint & HCINT_XFERCOMPL != 0 {
            Self::Complete
        } else if hcint & HCINT_XACTERR != 0 {
            Self::XactErr
        } else if hcint & HCINT_NYET != 0 {
            Self::Nyet
        } else if hcint & HCINT_NAK != 0 {
            Self::Nak
        } else {
            Self::Stopped
        }
    }
}

impl<R: RegisterBlock, D: Dma, T: DelayNs> Dwc2Host<R, D, T> {
    /// Programs channel `ch` for `size` bytes at bus address `bus`, starting with `pid`, and
    /// enables it. IN sizes must already be whole packets.
    pub(super) fn start_channel(
        &mut self,
        ch: usize,
        ep: &Endpoint,
        size: usize,
        pid: u32,
        bus: u32,
    ) {
        let packets = ep.packets(size);
        self.regs.write32(hcint(ch), u32::MAX);
        self.regs.write32(
            hctsiz(ch),
            HCTSIZ_XFERSIZE.val(size as u32)
                | HCTSIZ_PKTCNT.val(packets as u32)
                | HCTSIZ_PID.val(pid),
        );
        self.regs.write32(hcdma(ch), bus);
        let mut chars = ep.hcchar() | HCCHAR_CHENA;
        if ep.ep_type == EPTYPE_INTERRUPT && self.regs.read32(HFNUM) & 1 == 0 {
            // Periodic transfers go out in the frame after the current one.
            chars |= HCCHAR_ODDFRM;
        }
        self.regs.write32(hcchar(ch), chars);
    }

    /// Re-enables a channel that halted with NYET, pinging first (Linux `hcd_intr.c`
    /// `dwc2_hc_nyet_intr` sets the ping state for the next start).
    pub(super) fn resume_with_ping(&mut self, ch: usize) {
        self.regs.modify32(hctsiz(ch), 0, HCTSIZ_DOPNG);
        self.resume_channel(ch);
    }

    /// Re-enables a channel that halted with a transaction error; HCTSIZ and HCDMA already
    /// describe what is left.
    pub(super) fn resume_channel(&mut self, ch: usize) {
        let chars = self.regs.read32(hcchar(ch)) & !(HCCHAR_CHDIS | HCCHAR_ODDFRM);
        self.regs.write32(hcint(ch), u32::MAX);
        self.regs.write32(hcchar(ch), chars | HCCHAR_CHENA);
    }

    /// Halts a running channel and waits (bounded) for the halt; clears its interrupts.
    pub(super) fn halt_channel(&mut self, ch: usize) {
        let chars = self.regs.read32(hcchar(ch));
        if chars & HCCHAR_CHENA != 0 {
            self.regs
                .write32(hcchar(ch), chars | HCCHAR_CHENA | HCCHAR_CHDIS);
            if !self.wait_reg(hcint(ch), 10_000, |v| v & HCINT_CHHLTD != 0) {
                log::error!("dwc2: channel {ch} did not halt");
            }
        }
        self.regs.write32(hcint(ch), u32::MAX);
    }

    /// The channel's halt reason, or `None` while it runs.
    pub(super) fn channel_halt(&self, ch: usize) -> Option<Halt> {
        let hcint = self.regs.read32(hcint(ch));
        (hcint & HCINT_CHHLTD != 0).then(|| Halt::from_hcint(hcint))
    }

    /// Bytes moved of a transfer of `size` bytes, and the PID the next one starts with.
    pub(super) fn channel_progress(&self, ch: usize, size: usize) -> (usize, u32) {
        let tsiz = self.regs.read32(hctsiz(ch));
        let left = HCTSIZ_XFERSIZE.get(tsiz) as usize;
        (size.saturating_sub(left), HCTSIZ_PID.get(tsiz))
    }

    /// Runs a programmed transfer on `ch` to its end, within `budget_us` (consumed), resuming
    /// after up to [`MAX_XACT_ERRORS`] consecutive transaction errors. Returns bytes moved and
    /// the next PID.
    pub(super) fn finish_blocking(
        &mut self,
        ch: usize,
        size: usize,
        budget_us: &mut u32,
    ) -> Result<(usize, u32), UsbError> {
        let result = self.wait_blocking(ch, size, budget_us);
        // Acknowledge the halt so the interrupt line drops.
        self.regs.write32(hcint(ch), u32::MAX);
        result
    }

    fn wait_blocking(
        &mut self,
        ch: usize,
        size: usize,
        budget_us: &mut u32,
    ) -> Result<(usize, u32), UsbError> {
        let mut errors = 0;
        loop {
            match self.channel_halt(ch) {
                None => {
                    if !self.connected() {
                        self.halt_channel(ch);
                        return Err(UsbError::Disconnected);
                    }
                    if *budget_us == 0 {
                        log::warn!("dwc2: channel {ch} timed out");
                        self.halt_channel(ch);
                        return Err(UsbError::Timeout);
                    }
                    self.delay.delay_us(POLL_STEP_US);
                    *budget_us = budget_us.saturating_sub(POLL_STEP_US);
                }
                Some(Halt::Complete) => return Ok(self.channel_progress(ch, size)),
                Some(Halt::Nyet) => {
                    errors = 0;
                    self.resume_with_ping(ch);
                }
                Some(Halt::XactErr) if !self.connected() => return Err(UsbError::Disconnected),
                Some(Halt::XactErr) if errors < MAX_XACT_ERRORS => {
                    errors += 1;
                    log::debug!("dwc2: channel {ch} transaction error {errors}, retrying");
                    self.resume_channel(ch);
                }
                Some(Halt::XactErr) => return Err(UsbError::Transaction),
                Some(Halt::Failed(e)) => return Err(e),
                Some(Halt::Nak) | Some(Halt::Stopped) => return Err(UsbError::Transaction),
            }
        }
    }
}
