//! DWC2 register offsets and bits used in host mode.
//!
//! Source: Linux `drivers/usb/dwc2/hw.h` (torvalds/linux), cross-checked against CherryUSB
//! `port/dwc2/usb_dwc2_reg.h`.

use crate::reg::Field;

/// AHB configuration.
pub const GAHBCFG: usize = 0x008;
/// Global interrupt enable (the core's interrupt line).
pub const GAHBCFG_GLBL_INTR_EN: u32 = 1 << 0;
/// AHB burst length.
pub const GAHBCFG_HBSTLEN: Field = Field::new(1, 4);
/// Burst length value: INCR4.
pub const HBSTLEN_INCR4: u32 = 3;
/// Internal DMA enable (buffer DMA unless HCFG.DESCDMA).
pub const GAHBCFG_DMA_EN: u32 = 1 << 5;

/// USB configuration.
pub const GUSBCFG: usize = 0x00c;
/// PHY interface 16 bits wide (UTMI+).
pub const GUSBCFG_PHYIF16: u32 = 1 << 3;
/// ULPI (1) or UTMI+ (0) high-speed PHY.
pub const GUSBCFG_ULPI_UTMI_SEL: u32 = 1 << 4;
/// Full-speed serial transceiver instead of the high-speed PHY.
pub const GUSBCFG_PHYSEL: u32 = 1 << 6;
/// Force host mode.
pub const GUSBCFG_FORCEHOSTMODE: u32 = 1 << 29;
/// Force device mode.
pub const GUSBCFG_FORCEDEVMODE: u32 = 1 << 30;

/// Reset control.
pub const GRSTCTL: usize = 0x010;
/// Core soft reset (self-clearing).
pub const GRSTCTL_CSFTRST: u32 = 1 << 0;
/// RX FIFO flush (self-clearing).
pub const GRSTCTL_RXFFLSH: u32 = 1 << 4;
/// TX FIFO flush (self-clearing).
pub const GRSTCTL_TXFFLSH: u32 = 1 << 5;
/// TX FIFO number to flush; 0x10 flushes all.
pub const GRSTCTL_TXFNUM: Field = Field::new(6, 5);
/// AHB master idle.
pub const GRSTCTL_AHBIDLE: u32 = 1 << 31;

/// Core interrupt status.
pub const GINTSTS: usize = 0x014;
/// Core interrupt mask.
pub const GINTMSK: usize = 0x018;
/// Current mode: 1 = host.
pub const GINTSTS_CURMOD: u32 = 1 << 0;
/// Host port interrupt (summary of HPRT0 change bits).
pub const GINTSTS_PRTINT: u32 = 1 << 24;
/// Host channel interrupt (summary of HAINT).
pub const GINTSTS_HCHINT: u32 = 1 << 25;
/// Disconnect detected (write 1 to clear).
pub const GINTSTS_DISCONNINT: u32 = 1 << 29;

/// RX FIFO size (words).
pub const GRXFSIZ: usize = 0x024;
/// Non-periodic TX FIFO size: depth in 31:16, start in 15:0 (words).
pub const GNPTXFSIZ: usize = 0x028;
/// Synopsys ID: 0x4F54xxxx (HS OTG) or 0x5531xxxx (HS IoT).
pub const GSNPSID: usize = 0x040;
/// Hardware configuration 2.
pub const GHWCFG2: usize = 0x048;
/// Architecture: 2 = internal DMA.
pub const GHWCFG2_ARCH: Field = Field::new(3, 2);
/// High-speed PHY type: 1 UTMI+, 2 ULPI, 3 both.
pub const GHWCFG2_HS_PHY_TYPE: Field = Field::new(6, 2);
/// Number of host channels minus one.
pub const GHWCFG2_NUM_HOST_CHAN: Field = Field::new(14, 4);
/// Hardware configuration 3.
pub const GHWCFG3: usize = 0x04c;
/// Transfer size counter width minus 11.
pub const GHWCFG3_XFER_WIDTH: Field = Field::new(0, 4);
/// Packet counter width minus 4.
pub const GHWCFG3_PKT_WIDTH: Field = Field::new(4, 3);
/// Data FIFO depth (words).
pub const GHWCFG3_DFIFO_DEPTH: Field = Field::new(16, 16);
/// Hardware configuration 4.
pub const GHWCFG4: usize = 0x050;
/// UTMI+ data width: 0 8-bit, 1 16-bit, 2 either.
pub const GHWCFG4_UTMI_WIDTH: Field = Field::new(14, 2);
/// Dedicated TX FIFOs (multiple TX FIFOs) present.
pub const GHWCFG4_DED_FIFO_EN: u32 = 1 << 25;
/// Data FIFO configuration: EP info base (where the core keeps per-channel DMA state).
pub const GDFIFOCFG: usize = 0x05c;
/// GDFIFOCFG: EP info base address (words).
pub const GDFIFOCFG_EPINFOBASE: Field = Field::new(16, 16);
/// First core revision with GDFIFOCFG (2.91a).
pub const SNPSID_2_91A: u32 = 0x4f54_291a;
/// Host periodic TX FIFO size: depth in 31:16, start in 15:0 (words).
pub const HPTXFSIZ: usize = 0x100;

/// Power and clock gating control.
pub const PCGCTL: usize = 0xe00;

/// Host configuration.
pub const HCFG: usize = 0x400;
/// FS/LS PHY clock select (0 = 30/60 MHz, the UTMI+ clock).
pub const HCFG_FSLSPCLKSEL: Field = Field::new(0, 2);
/// FS/LS-only support.
pub const HCFG_FSLSSUPP: u32 = 1 << 2;
/// Descriptor DMA enable.
pub const HCFG_DESCDMA: u32 = 1 << 23;
/// Host frame number.
pub const HFNUM: usize = 0x408;
/// Host all-channels interrupt mask.
pub const HAINTMSK: usize = 0x418;

/// Host port control and status.
pub const HPRT0: usize = 0x440;
/// Port connect status.
pub const HPRT0_CONNSTS: u32 = 1 << 0;
/// Port connect detected (write 1 to clear).
pub const HPRT0_CONNDET: u32 = 1 << 1;
/// Port enabled (write 1 disables the port; the core alone sets it).
pub const HPRT0_ENA: u32 = 1 << 2;
/// Port enable changed (write 1 to clear).
pub const HPRT0_ENACHG: u32 = 1 << 3;
/// Overcurrent changed (write 1 to clear).
pub const HPRT0_OVRCURRCHG: u32 = 1 << 5;
/// Port resume.
pub const HPRT0_RES: u32 = 1 << 6;
/// Port suspend.
pub const HPRT0_SUSP: u32 = 1 << 7;
/// Port reset.
pub const HPRT0_RST: u32 = 1 << 8;
/// Port power.
pub const HPRT0_PWR: u32 = 1 << 12;
/// Port test control.
pub const HPRT0_TSTCTL: Field = Field::new(13, 4);
/// Port speed: 0 high, 1 full, 2 low.
pub const HPRT0_SPD: Field = Field::new(17, 2);
/// HPRT0 bits that are safe to write back as read (neither write-1-to-clear nor ENA).
pub const HPRT0_PRESERVE: u32 = HPRT0_RES | HPRT0_SUSP | HPRT0_RST | HPRT0_PWR | (0xf << 13);

/// Channel `n`'s characteristics register.
pub const fn hcchar(n: usize) -> usize {
    0x500 + 0x20 * n
}
/// Channel `n`'s interrupt register (write 1 to clear).
pub const fn hcint(n: usize) -> usize {
    0x508 + 0x20 * n
}
/// Channel `n`'s interrupt mask.
pub const fn hcintmsk(n: usize) -> usize {
    0x50c + 0x20 * n
}
/// Channel `n`'s transfer size register.
pub const fn hctsiz(n: usize) -> usize {
    0x510 + 0x20 * n
}
/// Channel `n`'s DMA address.
pub const fn hcdma(n: usize) -> usize {
    0x514 + 0x20 * n
}

/// HCCHAR: max packet size.
pub const HCCHAR_MPS: Field = Field::new(0, 11);
/// HCCHAR: endpoint number.
pub const HCCHAR_EPNUM: Field = Field::new(11, 4);
/// HCCHAR: direction, 1 = IN.
pub const HCCHAR_EPDIR_IN: u32 = 1 << 15;
/// HCCHAR: low-speed device.
pub const HCCHAR_LSPDDEV: u32 = 1 << 17;
/// HCCHAR: endpoint type (0 control, 1 isochronous, 2 bulk, 3 interrupt).
pub const HCCHAR_EPTYPE: Field = Field::new(18, 2);
/// HCCHAR: transactions per (micro)frame.
pub const HCCHAR_MULTICNT: Field = Field::new(20, 2);
/// HCCHAR: device address.
pub const HCCHAR_DEVADDR: Field = Field::new(22, 7);
/// HCCHAR: transfer in an odd (micro)frame (periodic).
pub const HCCHAR_ODDFRM: u32 = 1 << 29;
/// HCCHAR: channel disable (with CHENA: halt a running channel).
pub const HCCHAR_CHDIS: u32 = 1 << 30;
/// HCCHAR: channel enable.
pub const HCCHAR_CHENA: u32 = 1 << 31;

/// HCINT: transfer completed.
pub const HCINT_XFERCOMPL: u32 = 1 << 0;
/// HCINT: channel halted.
pub const HCINT_CHHLTD: u32 = 1 << 1;
/// HCINT: AHB error during DMA.
pub const HCINT_AHBERR: u32 = 1 << 2;
/// HCINT: STALL received.
pub const HCINT_STALL: u32 = 1 << 3;
/// HCINT: NAK received.
pub const HCINT_NAK: u32 = 1 << 4;
/// HCINT: NYET received (high-speed OUT: accepted, but the device is not ready for more).
pub const HCINT_NYET: u32 = 1 << 6;
/// HCINT: transaction error (CRC, timeout, bit stuff, false EOP).
pub const HCINT_XACTERR: u32 = 1 << 7;
/// HCINT: babble.
pub const HCINT_BBLERR: u32 = 1 << 8;
/// HCINT: data toggle error.
pub const HCINT_DATATGLERR: u32 = 1 << 10;

/// HCTSIZ: transfer size in bytes.
pub const HCTSIZ_XFERSIZE: Field = Field::new(0, 19);
/// HCTSIZ: packet count.
pub const HCTSIZ_PKTCNT: Field = Field::new(19, 10);
/// HCTSIZ: PID (0 DATA0, 1 DATA2, 2 DATA1, 3 SETUP/MDATA).
pub const HCTSIZ_PID: Field = Field::new(29, 2);
/// HCTSIZ: start with a PING (high-speed bulk/control OUT).
pub const HCTSIZ_DOPNG: u32 = 1 << 31;
