//! The RTL8152 model's register space: the PLA and USB OCP buses behind vendor request 0x05.
//!
//! Hardware facts (Linux `drivers/net/usb/r8152.c`, CherryUSB
//! `class/vendor/net/usbh_rtl8152.c`): request 0x05, bmRequestType 0xc0 to read and 0x40 to
//! write; wValue is the register address, wIndex bits 15..8 select the bus (0x01 PLA, 0x00 USB)
//! and, for writes, bits 7..0 are byte enables: the low nibble for the first dword, the high
//! nibble for the last, every dword between written whole. Transfers move whole dwords from
//! dword-aligned addresses. This model refuses anything else with a STALL and records why.

use crate::usb::SetupPacket;

/// The vendor request that reads and writes registers.
const REQ_REGS: u8 = 0x05;
/// Vendor, device recipient, IN.
const READ_TYPE: u8 = 0xc0;
/// Vendor, device recipient, OUT.
const WRITE_TYPE: u8 = 0x40;

/// PLA registers the model gives meaning to.
pub mod pla {
    /// MAC address, 6 bytes (+2 reserved); writable only with CRWECR in config mode.
    pub const IDR: u16 = 0xc000;
    /// Receive configuration: accept bits 0..3 (all/physical/multicast/broadcast).
    pub const RCR: u16 = 0xc010;
    /// Receive maximum size (frame plus CRC).
    pub const RMS: u16 = 0xc016;
    /// Multicast filter, 8 bytes.
    pub const MAR: u16 = 0xcd00;
    /// TCR0: bit 11 TX FIFO empty (read-only).
    pub const TCR0: u16 = 0xe610;
    /// TCR1: chip version in bits 14..4 (read-only).
    pub const TCR1: u16 = 0xe612;
    /// Command: bit 4 reset (self-clearing), bit 3 RX enable, bit 2 TX enable.
    pub const CR: u16 = 0xe813;
    /// Config write enable: 0xc0 unlocks IDR.
    pub const CRWECR: u16 = 0xe81c;
    /// OOB control: bit 7 OOB mode, bits 5/4 FIFOs empty, bit 1 link list ready.
    pub const OOB_CTRL: u16 = 0xe84f;
    /// Misc 1: bit 3 RX gated.
    pub const MISC_1: u16 = 0xe85a;
    /// PHY status: bit 1 link, bit 3 100 Mbit/s, bit 0 full duplex (read-only).
    pub const PHYSTATUS: u16 = 0xe908;
}

/// USB-bus registers the model gives meaning to.
pub mod usb {
    /// USB control: bit 4 RX aggregation disabled.
    pub const USB_CTRL: u16 = 0xd406;
}

/// The version this model reports in TCR1 (`RTL_VER_02`, an RTL8152B).
pub const VERSION: u16 = 0x4c10;

/// Which bus a request addressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bus {
    /// The packet/MAC block.
    Pla,
    /// The USB block.
    Usb,
}

/// A register request the chip would refuse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegFault {
    /// bmRequestType is not vendor/device with the right direction.
    BadRequestType(u8),
    /// bRequest is not 0x05.
    BadRequest(u8),
    /// wIndex selects no bus.
    BadIndex(u16),
    /// Address not dword aligned, or length zero or not a multiple of 4.
    Unaligned {
        /// wValue.
        address: u16,
        /// wLength.
        length: u16,
    },
    /// The access runs past the end of the 64 KiB bus.
    OutOfRange,
    /// A write enables no byte, or a one-dword write with different first/last enables.
    BadByteEnable(u8),
    /// The data stage length differs from wLength.
    LengthMismatch,
    /// A write to the MAC address while CRWECR is not in config mode.
    IdrLocked,
}

/// Both register buses.
pub struct Registers {
    pla: Vec<u8>,
    usb: Vec<u8>,
    link_up: bool,
}

impl Registers {
    /// Registers at power-on: MAC in IDR, version in TCR1, chip in OOB mode with RX gated and
    /// aggregation off, receive filter closed.
    pub fn new(mac: [u8; 6], link_up: bool) -> Self {
        let mut r = Self {
            pla: vec![0; 0x10000],
            usb: vec![0; 0x10000],
            link_up,
        };
        r.pla[usize::from(pla::IDR)..][..6].copy_from_slice(&mac);
        r.pla[usize::from(pla::TCR1)..][..2].copy_from_slice(&VERSION.to_le_bytes());
        r.pla[usize::from(pla::OOB_CTRL)] = 0x80 | 0x30 | 0x02;
        r.pla[usize::from(pla::MISC_1)] = 0x08;
        r.usb[usize::from(usb::USB_CTRL)] = 0x10;
        r
    }

    /// Sets the PHY's link state.
    pub fn set_link(&mut self, up: bool) {
        self.link_up = up;
    }

    /// The PHY's link state.
    pub fn link_up(&self) -> bool {
        self.link_up
    }

    /// A PLA byte.
    pub fn pla_byte(&self, addr: u16) -> u8 {
        self.read_byte(Bus::Pla, addr)
    }

    /// A PLA little-endian word.
    pub fn pla_word(&self, addr: u16) -> u16 {
        u16::from_le_bytes([self.pla_byte(addr), self.pla_byte(addr.wrapping_add(1))])
    }

    /// A USB-bus little-endian word.
    pub fn usb_word(&self, addr: u16) -> u16 {
        u16::from_le_bytes([
            self.read_byte(Bus::Usb, addr),
            self.read_byte(Bus::Usb, addr.wrapping_add(1)),
        ])
    }

    /// The MAC address in IDR.
    pub fn mac(&self) -> [u8; 6] {
        let mut m = [0; 6];
        m.copy_from_slice(&self.pla[usize::from(pla::IDR)..][..6]);
        m
    }

    fn read_byte(&self, bus: Bus, addr: u16) -> u8 {
        let a = usize::from(addr);
        match bus {
            Bus::Usb => self.usb[a],
            Bus::Pla => match addr {
                // TX FIFO always drains at once in the model.
                a if a == pla::TCR0 + 1 => self.pla[usize::from(a)] | 0x08,
                a if a == pla::OOB_CTRL => self.pla[usize::from(a)] | 0x30 | 0x02,
                a if a == pla::PHYSTATUS => {
                    if self.link_up {
                        0x02 | 0x08 | 0x01
                    } else {
                        0
                    }
                }
                _ => self.pla[a],
            },
        }
    }

    /// Checks the parts common to reads and writes; returns the bus.
    fn check(setup: &SetupPacket, request_type: u8) -> Result<Bus, RegFault> {
        if setup.request_type != request_type {
            return Err(RegFault::BadRequestType(setup.request_type));
        }
        if setup.request != REQ_REGS {
            return Err(RegFault::BadRequest(setup.request));
        }
        let bus = match setup.index >> 8 {
            0x01 => Bus::Pla,
            0x00 => Bus::Usb,
            _ => return Err(RegFault::BadIndex(setup.index)),
        };
        if setup.value % 4 != 0 || setup.length == 0 || setup.length % 4 != 0 {
            return Err(RegFault::Unaligned {
                address: setup.value,
                length: setup.length,
            });
        }
        if usize::from(setup.value) + usize::from(setup.length) > 0x10000 {
            return Err(RegFault::OutOfRange);
        }
        Ok(bus)
    }

    /// A register read: the bytes of the addressed dwords.
    pub fn read(&self, setup: &SetupPacket) -> Result<Vec<u8>, RegFault> {
        let bus = Self::check(setup, READ_TYPE)?;
        Ok((0..setup.length)
            .map(|i| self.read_byte(bus, setup.value + i))
            .collect())
    }

    /// A register write, honouring the byte enables and the registers' side effects.
    pub fn write(&mut self, setup: &SetupPacket, data: &[u8]) -> Result<(), RegFault> {
        let bus = Self::check(setup, WRITE_TYPE)?;
        if data.len() != usize::from(setup.length) {
            return Err(RegFault::LengthMismatch);
        }
        let enables = (setup.index & 0xff) as u8;
        let (first, last) = (enables & 0x0f, enables >> 4);
        let dwords = data.len() / 4;
        if first == 0 || last == 0 || (dwords == 1 && first != last) {
            return Err(RegFault::BadByteEnable(enables));
        }
        for (i, &b) in data.iter().enumerate() {
            let dword = i / 4;
            let mask = if dword == 0 {
                first
            } else if dword == dwords - 1 {
                last
            } else {
                0x0f
            };
            if mask & (1 << (i % 4)) == 0 {
                continue;
            }
            self.write_byte(bus, setup.value + i as u16, b)?;
        }
        Ok(())
    }

    fn write_byte(&mut self, bus: Bus, addr: u16, value: u8) -> Result<(), RegFault> {
        let a = usize::from(addr);
        if bus == Bus::Usb {
            self.usb[a] = value;
            return Ok(());
        }
        match addr {
            a if (pla::IDR..pla::IDR + 8).contains(&a) => {
                if self.pla[usize::from(pla::CRWECR)] != 0xc0 {
                    return Err(RegFault::IdrLocked);
                }
                self.pla[usize::from(a)] = value;
            }
            // Read-only: version, PHY status.
            a if a == pla::TCR1 || a == pla::TCR1 + 1 => {}
            a if a == pla::PHYSTATUS || a == pla::PHYSTATUS + 1 => {}
            a if a == pla::CR => {
                if value & 0x10 != 0 {
                    // Reset: RX and TX off; the reset bit clears itself.
                    self.pla[usize::from(a)] = 0;
                } else {
                    self.pla[usize::from(a)] = value & 0x0c;
                }
            }
            _ => self.pla[a] = value,
        }
        Ok(())
    }

    /// RX enabled: CR.RE set and RX not gated.
    pub fn rx_enabled(&self) -> bool {
        self.pla_byte(pla::CR) & 0x08 != 0 && self.pla_byte(pla::MISC_1) & 0x08 == 0
    }

    /// TX enabled: CR.TE set.
    pub fn tx_enabled(&self) -> bool {
        self.pla_byte(pla::CR) & 0x04 != 0
    }

    /// RX aggregation on (USB_CTRL bit 4 clear).
    pub fn aggregation(&self) -> bool {
        self.usb_word(usb::USB_CTRL) & 0x10 == 0
    }

    /// Whether the receive filter (RCR accept bits, IDR) takes a frame for `dest`.
    pub fn accepts(&self, dest: &[u8; 6]) -> bool {
        let rcr = self.pla_byte(pla::RCR);
        let all = rcr & 0x01 != 0;
        let physical = rcr & 0x02 != 0;
        let multicast = rcr & 0x04 != 0;
        let broadcast = rcr & 0x08 != 0;
        if all {
            return true;
        }
        if dest == &[0xff; 6] {
            return broadcast;
        }
        if dest[0] & 1 != 0 {
            // The 64-bit hash filter is not modelled: any set MAR bit opens it.
            let mar = &self.pla[usize::from(pla::MAR)..][..8];
            return multicast && mar.iter().any(|&b| b != 0);
        }
        physical && dest == &self.mac()
    }

    /// The largest frame (CRC included) the receiver takes, from RMS (0: 1522 default).
    pub fn max_rx_len(&self) -> usize {
        match self.pla_word(pla::RMS) {
            0 => 1522,
            n => usize::from(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rd(addr: u16, index: u16, length: u16) -> SetupPacket {
        SetupPacket {
            request_type: READ_TYPE,
            request: REQ_REGS,
            value: addr,
            index,
            length,
        }
    }

    fn wr(addr: u16, index: u16, length: u16) -> SetupPacket {
        SetupPacket {
            request_type: WRITE_TYPE,
            ..rd(addr, index, length)
        }
    }

    const MAC: [u8; 6] = [0x00, 0xe0, 0x4c, 1, 2, 3];

    #[test]
    fn reads_mac_and_version() {
        let r = Registers::new(MAC, true);
        assert_eq!(r.read(&rd(pla::IDR, 0x100, 8)).unwrap()[..6], MAC);
        let tcr = r.read(&rd(pla::TCR0, 0x100, 4)).unwrap();
        assert_eq!(u16::from_le_bytes([tcr[2], tcr[3]]), VERSION);
        // The USB bus at the same address is a different register.
        assert_eq!(r.read(&rd(pla::IDR, 0x000, 8)).unwrap(), vec![0; 8]);
    }

    #[test]
    fn refuses_what_silicon_would() {
        let mut r = Registers::new(MAC, true);
        let mut bad_type = rd(pla::IDR, 0x100, 4);
        bad_type.request_type = 0xc1;
        assert_eq!(r.read(&bad_type), Err(RegFault::BadRequestType(0xc1)));
        let mut bad_req = rd(pla::IDR, 0x100, 4);
        bad_req.request = 0x04;
        assert_eq!(r.read(&bad_req), Err(RegFault::BadRequest(0x04)));
        assert_eq!(
            r.read(&rd(pla::IDR, 0x200, 4)),
            Err(RegFault::BadIndex(0x200))
        );
        assert!(matches!(
            r.read(&rd(0xc002, 0x100, 4)),
            Err(RegFault::Unaligned { .. })
        ));
        assert!(matches!(
            r.read(&rd(0xc000, 0x100, 6)),
            Err(RegFault::Unaligned { .. })
        ));
        assert!(matches!(
            r.read(&rd(0xc000, 0x100, 0)),
            Err(RegFault::Unaligned { .. })
        ));
        assert_eq!(r.read(&rd(0xfffc, 0x100, 8)), Err(RegFault::OutOfRange));
        assert_eq!(
            r.write(&wr(0xe810, 0x100, 4), &[0; 4]),
            Err(RegFault::BadByteEnable(0))
        );
        assert_eq!(
            r.write(&wr(0xe810, 0x1f3, 4), &[0; 4]),
            Err(RegFault::BadByteEnable(0xf3))
        );
        assert_eq!(
            r.write(&wr(0xe810, 0x1ff, 4), &[0; 8]),
            Err(RegFault::LengthMismatch)
        );
        // A read request type on a write.
        assert_eq!(
            r.write(&rd(0xe810, 0x1ff, 4), &[0; 4]),
            Err(RegFault::BadRequestType(READ_TYPE))
        );
        assert_eq!(
            r.write(&wr(pla::IDR, 0x1ff, 4), &[1; 4]),
            Err(RegFault::IdrLocked)
        );
        assert_eq!(r.mac(), MAC);
    }

    #[test]
    fn byte_enables_select_bytes() {
        let mut r = Registers::new(MAC, true);
        r.write(&wr(0xe000, 0x1ff, 4), &[1, 2, 3, 4]).unwrap();
        // Word at offset 2: enables 0xcc.
        r.write(&wr(0xe000, 0x1cc, 4), &[9, 9, 7, 8]).unwrap();
        assert_eq!(r.read(&rd(0xe000, 0x100, 4)).unwrap(), vec![1, 2, 7, 8]);
        // Byte at offset 1: 0x22.
        r.write(&wr(0xe000, 0x122, 4), &[9, 5, 9, 9]).unwrap();
        assert_eq!(r.read(&rd(0xe000, 0x100, 4)).unwrap(), vec![1, 5, 7, 8]);
        // Six bytes over two dwords: first 0xf, last 0x3.
        r.write(&wr(0xe100, 0x13f, 8), &[1, 2, 3, 4, 5, 6, 7, 8])
            .unwrap();
        assert_eq!(
            r.read(&rd(0xe100, 0x100, 8)).unwrap(),
            vec![1, 2, 3, 4, 5, 6, 0, 0]
        );
    }

    #[test]
    fn command_register_and_filters() {
        let mut r = Registers::new(MAC, false);
        assert_eq!(r.pla_word(pla::PHYSTATUS) & 0x02, 0);
        r.set_link(true);
        assert_eq!(r.pla_word(pla::PHYSTATUS) & 0x02, 0x02);
        r.write(&wr(0xe810, 0x188, 4), &[0, 0, 0, 0x0c]).unwrap();
        assert!(r.tx_enabled());
        assert!(!r.rx_enabled(), "RX stays gated by MISC_1");
        r.write(&wr(0xe858, 0x1cc, 4), &[0, 0, 0, 0]).unwrap();
        assert!(r.rx_enabled());
        r.write(&wr(0xe810, 0x188, 4), &[0, 0, 0, 0x10]).unwrap();
        assert_eq!(r.pla_byte(pla::CR), 0, "reset clears itself and RE/TE");
        assert!(!r.accepts(&[0xff; 6]));
        r.write(&wr(pla::RCR, 0x1ff, 4), &[0x0a, 0, 0, 0]).unwrap();
        assert!(r.accepts(&[0xff; 6]));
        assert!(r.accepts(&MAC));
        assert!(!r.accepts(&[0, 1, 2, 3, 4, 5]));
        assert!(!r.accepts(&[1, 0, 0x5e, 0, 0, 1]));
    }
}
