//! RTL8152 register addresses and bits used by the driver.
//!
//! Source for every value: Linux `drivers/net/usb/r8152.c` (torvalds/linux) and CherryUSB
//! `class/vendor/net/usbh_rtl8152.c` (cherry-embedded/CherryUSB), which agree on them.

/// Vendor request number for register reads and writes (`RTL8152_REQ_GET_REGS`/`SET_REGS`).
pub const REQUEST_REGS: u8 = 0x05;
/// bmRequestType of a register read: IN, vendor, device (`RTL8152_REQT_READ`).
pub const REQUEST_TYPE_READ: u8 = 0xc0;
/// bmRequestType of a register write: OUT, vendor, device (`RTL8152_REQT_WRITE`).
pub const REQUEST_TYPE_WRITE: u8 = 0x40;

/// Byte enables of a six-byte write over two dwords, e.g. a MAC address
/// (`BYTE_EN_SIX_BYTES`).
pub const BYTE_EN_SIX_BYTES: u8 = 0x3f;
/// Byte enables of a whole-dword write (`BYTE_EN_DWORD`).
pub const BYTE_EN_DWORD: u8 = 0xff;
/// Byte enables of a word write at offset 0 of a dword (`BYTE_EN_WORD`).
pub const BYTE_EN_WORD: u8 = 0x33;
/// Byte enables of a byte write at offset 0 of a dword (`BYTE_EN_BYTE`).
pub const BYTE_EN_BYTE: u8 = 0x11;
/// Most bytes one read request may carry (`generic_ocp_read` limit).
pub const MAX_READ: usize = 64;

/// Which on-chip bus a register lives on: the value of wIndex bits 15..8.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mcu {
    /// The packet/MAC block (`MCU_TYPE_PLA`, 0x0100).
    Pla,
    /// The USB block (`MCU_TYPE_USB`, 0x0000).
    Usb,
}

impl Mcu {
    /// The wIndex base of the bus.
    pub const fn index(self) -> u16 {
        match self {
            Mcu::Pla => 0x0100,
            Mcu::Usb => 0x0000,
        }
    }
}

/// MAC address (6 bytes, dword aligned).
pub const PLA_IDR: u16 = 0xc000;
/// Receive configuration.
pub const PLA_RCR: u16 = 0xc010;
/// Receive maximum size.
pub const PLA_RMS: u16 = 0xc016;
/// RX FIFO thresholds.
pub const PLA_RXFIFO_CTRL0: u16 = 0xc0a0;
/// RX FIFO near-full threshold.
pub const PLA_RXFIFO_CTRL1: u16 = 0xc0a4;
/// RX FIFO near-full threshold 2.
pub const PLA_RXFIFO_CTRL2: u16 = 0xc0a8;
/// Packet filter MCU control.
pub const PLA_FMC: u16 = 0xc0b4;
/// Multicast hash filter (8 bytes).
pub const PLA_MAR: u16 = 0xcd00;
/// Transmit configuration 0; its high word (PLA_TCR1) holds the chip version.
pub const PLA_TCR0: u16 = 0xe610;
/// TX FIFO threshold.
pub const PLA_TXFIFO_CTRL: u16 = 0xe618;
/// Statistics counter reset.
pub const PLA_RSTTALLY: u16 = 0xe800;
/// Command register (byte).
pub const PLA_CR: u16 = 0xe813;
/// Configuration write enable (byte).
pub const PLA_CRWECR: u16 = 0xe81c;
/// Out-of-band control (byte).
pub const PLA_OOB_CTRL: u16 = 0xe84f;
/// C+ command register.
pub const PLA_CPCR: u16 = 0xe854;
/// Misc 1.
pub const PLA_MISC_1: u16 = 0xe85a;
/// Base (bits 15..12) of the PHY OCP window at 0xb000..0xbfff.
pub const PLA_OCP_GPHY_BASE: u16 = 0xe86c;
/// Status register 7.
pub const PLA_SFF_STS_7: u16 = 0xe8de;
/// PHY status: link, speed, duplex.
pub const PLA_PHYSTATUS: u16 = 0xe908;

/// USB block control.
pub const USB_USB_CTRL: u16 = 0xd406;
/// TX aggregation.
pub const USB_TX_AGG: u16 = 0xd40a;
/// RX buffer threshold.
pub const USB_RX_BUF_TH: u16 = 0xd40c;
/// Power management status.
pub const USB_PM_CTRL_STATUS: u16 = 0xd432;
/// TX DMA control.
pub const USB_TX_DMA: u16 = 0xd434;
/// UPS control.
pub const USB_UPS_CTRL: u16 = 0xd800;

/// PLA_RCR: accept all physical addresses (promiscuous).
pub const RCR_AAP: u32 = 0x01;
/// PLA_RCR: accept frames to our MAC.
pub const RCR_APM: u32 = 0x02;
/// PLA_RCR: accept multicast.
pub const RCR_AM: u32 = 0x04;
/// PLA_RCR: accept broadcast.
pub const RCR_AB: u32 = 0x08;
/// PLA_RCR: all accept bits.
pub const RCR_ACPT_ALL: u32 = RCR_AAP | RCR_APM | RCR_AM | RCR_AB;

/// PLA_CR: software reset, self-clearing.
pub const CR_RST: u8 = 0x10;
/// PLA_CR: receiver enable.
pub const CR_RE: u8 = 0x08;
/// PLA_CR: transmitter enable.
pub const CR_TE: u8 = 0x04;
/// PLA_CRWECR: normal mode.
pub const CRWECR_NORMAL: u8 = 0x00;
/// PLA_CRWECR: configuration mode (PLA_IDR writable).
pub const CRWECR_CONFIG: u8 = 0xc0;
/// PLA_OOB_CTRL: out-of-band mode.
pub const NOW_IS_OOB: u8 = 0x80;
/// PLA_OOB_CTRL: link list ready.
pub const LINK_LIST_READY: u8 = 0x02;
/// PLA_MISC_1: RX gated (no data to the bulk-IN endpoint).
pub const RXDY_GATED_EN: u16 = 0x0008;
/// PLA_SFF_STS_7: re-initialise the link list.
pub const RE_INIT_LL: u16 = 0x8000;
/// PLA_SFF_STS_7: MCU borrow enable.
pub const MCU_BORW_EN: u16 = 0x4000;
/// PLA_CPCR: strip VLAN tags on receive.
pub const CPCR_RX_VLAN: u16 = 0x0040;
/// PLA_TCR0: automatic FIFO.
pub const TCR0_AUTO_FIFO: u16 = 0x0080;
/// PLA_TCR1 bits holding the chip version.
pub const VERSION_MASK: u16 = 0x7cf0;
/// PLA_FMC: packet filter MCU enable.
pub const FMC_FCR_MCU_EN: u16 = 0x0001;
/// PLA_RSTTALLY: reset the tally counters.
pub const TALLY_RESET: u16 = 0x0001;
/// PLA_PHYSTATUS: link up.
pub const LINK_STATUS: u16 = 0x02;

/// PLA_RXFIFO_CTRL0 value for normal operation.
pub const RXFIFO_THR1_NORMAL: u32 = 0x0008_0002;
/// PLA_RXFIFO_CTRL1 value at high speed.
pub const RXFIFO_THR2_HIGH: u32 = 0x0000_0038;
/// PLA_RXFIFO_CTRL2 value at high speed.
pub const RXFIFO_THR3_HIGH: u32 = 0x0000_0048;
/// PLA_RXFIFO_CTRL1 value at full speed.
pub const RXFIFO_THR2_FULL: u32 = 0x0000_0060;
/// PLA_RXFIFO_CTRL2 value at full speed.
pub const RXFIFO_THR3_FULL: u32 = 0x0000_0078;
/// PLA_TXFIFO_CTRL value.
pub const TXFIFO_THR_NORMAL2: u32 = 0x0100_0008;
/// USB_TX_AGG value.
pub const TX_AGG_MAX_THRESHOLD: u8 = 0x03;
/// USB_RX_BUF_TH value at high speed.
pub const RX_THR_HIGH: u32 = 0x7a12_0180;
/// USB_TX_DMA value.
pub const TX_DMA_CONFIG: u32 = 0x0000_0001 | 0x0000_0100; // TEST_MODE_DISABLE | TX_SIZE_ADJUST1
/// USB_USB_CTRL: RX aggregation disabled.
pub const RX_AGG_DISABLE: u16 = 0x0010;
/// USB_USB_CTRL: zero-length packet after an aggregate.
pub const RX_ZERO_EN: u16 = 0x0080;
/// USB_UPS_CTRL: power cut.
pub const POWER_CUT: u16 = 0x0100;
/// USB_PM_CTRL_STATUS: resume indication.
pub const RESUME_INDICATE: u16 = 0x0001;

/// OCP address of the PHY's MII register 0 (`OCP_BASE_MII`); register n is at + 2n.
pub const OCP_BASE_MII: u16 = 0xa400;
/// Start of the PLA window that shows the OCP page selected by PLA_OCP_GPHY_BASE.
pub const OCP_WINDOW: u16 = 0xb000;
/// MII basic mode control register.
pub const MII_BMCR: u16 = 0;
/// MII auto-negotiation advertisement register.
pub const MII_ADVERTISE: u16 = 4;
/// BMCR: power down.
pub const BMCR_PDOWN: u16 = 0x0800;
/// BMCR: auto-negotiation enable.
pub const BMCR_ANENABLE: u16 = 0x1000;
/// BMCR: restart auto-negotiation.
pub const BMCR_ANRESTART: u16 = 0x0200;
/// ADVERTISE: 10/100 half and full duplex.
pub const ADVERTISE_10_100: u16 = 0x0020 | 0x0040 | 0x0080 | 0x0100;

/// PLA_RMS value: 1518-byte VLAN frame plus 4 CRC bytes (`RTL8152_RMS`).
pub const RMS: u16 = 1518 + 4;

/// Interrupt endpoint status word: link up (`INTR_LINK`).
pub const INTR_LINK: u16 = 0x0004;

/// PLA_TCR1 versions of RTL8152 silicon (Linux `RTL_VER_01`, `_02`, `_07`).
pub const RTL8152_VERSIONS: [u16; 3] = [0x4c00, 0x4c10, 0x4800];
