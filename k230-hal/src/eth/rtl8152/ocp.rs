//! Register access over vendor control requests (the chip's "OCP" register buses).
//!
//! A read is request 0x05 IN with wValue = address, wIndex = bus (PLA 0x0100, USB 0x0000);
//! a write is request 0x05 OUT with wIndex = bus | byte enables. The chip moves whole dwords:
//! address and length must be multiples of 4, and byte and word writes select their bytes with
//! the enable mask (bit n of each nibble enables byte n of the dword). Source: Linux
//! `drivers/net/usb/r8152.c` `generic_ocp_read`/`generic_ocp_write`/`ocp_write_word`, CherryUSB
//! `class/vendor/net/usbh_rtl8152.c` (same helpers).

use super::regs::{
    Mcu, BYTE_EN_BYTE, BYTE_EN_DWORD, BYTE_EN_SIX_BYTES, BYTE_EN_WORD, MAX_READ, OCP_BASE_MII,
    OCP_WINDOW, PLA_OCP_GPHY_BASE, REQUEST_REGS, REQUEST_TYPE_READ, REQUEST_TYPE_WRITE,
};
use super::Error;
use crate::usb::{DeviceAddress, SetupPacket, UsbHost};

/// Register access to one RTL8152 through a borrowed host.
pub struct Ocp<'h, H: UsbHost> {
    /// The host controller.
    pub host: &'h mut H,
    /// The NIC's address.
    pub device: DeviceAddress,
}

impl<H: UsbHost> Ocp<'_, H> {
    /// Reads `buf.len()` bytes (a multiple of 4, at most 64) from dword-aligned `addr`;
    /// `byte_enable` is passed in wIndex bits 7..0 as Linux does for word reads.
    fn read_raw(
        &mut self,
        mcu: Mcu,
        addr: u16,
        byte_enable: u8,
        buf: &mut [u8],
    ) -> Result<(), Error> {
        if addr % 4 != 0 || buf.is_empty() || buf.len() % 4 != 0 || buf.len() > MAX_READ {
            return Err(Error::Unaligned);
        }
        let setup = SetupPacket {
            request_type: REQUEST_TYPE_READ,
            request: REQUEST_REGS,
            value: addr,
            index: mcu.index() | u16::from(byte_enable),
            length: buf.len() as u16,
        };
        let n = self.host.control_in(self.device, setup, buf)?;
        if n != buf.len() {
            return Err(Error::ShortRead);
        }
        Ok(())
    }

    /// Writes one dword at aligned `addr` with the given byte enables.
    fn write_raw(
        &mut self,
        mcu: Mcu,
        addr: u16,
        byte_enable: u8,
        data: &[u8],
    ) -> Result<(), Error> {
        if addr % 4 != 0 || data.is_empty() || data.len() % 4 != 0 {
            return Err(Error::Unaligned);
        }
        let setup = SetupPacket {
            request_type: REQUEST_TYPE_WRITE,
            request: REQUEST_REGS,
            value: addr,
            index: mcu.index() | u16::from(byte_enable),
            length: data.len() as u16,
        };
        self.host.control_out(self.device, setup, data)?;
        Ok(())
    }

    /// Reads bytes from a dword-aligned block (e.g. the MAC address).
    pub fn read_block(&mut self, mcu: Mcu, addr: u16, buf: &mut [u8]) -> Result<(), Error> {
        self.read_raw(mcu, addr, 0, buf)
    }

    /// Writes whole dwords to a dword-aligned block (e.g. the multicast filter).
    pub fn write_block(&mut self, mcu: Mcu, addr: u16, data: &[u8]) -> Result<(), Error> {
        self.write_raw(mcu, addr, BYTE_EN_DWORD, data)
    }

    /// Writes six bytes (a MAC address) at dword-aligned `addr`, leaving the next two alone.
    pub fn write_six(&mut self, mcu: Mcu, addr: u16, bytes: [u8; 6]) -> Result<(), Error> {
        let mut b = [0u8; 8];
        b[..6].copy_from_slice(&bytes);
        self.write_raw(mcu, addr, BYTE_EN_SIX_BYTES, &b)
    }

    /// Reads the dword at aligned `addr`.
    pub fn read_dword(&mut self, mcu: Mcu, addr: u16) -> Result<u32, Error> {
        let mut b = [0; 4];
        self.read_raw(mcu, addr, 0, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    /// Writes the dword at aligned `addr`.
    pub fn write_dword(&mut self, mcu: Mcu, addr: u16, value: u32) -> Result<(), Error> {
        self.write_raw(mcu, addr, BYTE_EN_DWORD, &value.to_le_bytes())
    }

    /// Reads the word at even `addr` (from the dword that holds it).
    pub fn read_word(&mut self, mcu: Mcu, addr: u16) -> Result<u16, Error> {
        let shift = addr & 2;
        let mut b = [0; 4];
        self.read_raw(mcu, addr & !3, BYTE_EN_WORD << shift, &mut b)?;
        let s = usize::from(shift);
        Ok(u16::from_le_bytes([b[s], b[s + 1]]))
    }

    /// Writes the word at even `addr`, enabling only its two bytes.
    pub fn write_word(&mut self, mcu: Mcu, addr: u16, value: u16) -> Result<(), Error> {
        let shift = addr & 2;
        let dword = u32::from(value) << (8 * shift);
        self.write_raw(mcu, addr & !3, BYTE_EN_WORD << shift, &dword.to_le_bytes())
    }

    /// Reads the byte at `addr`.
    pub fn read_byte(&mut self, mcu: Mcu, addr: u16) -> Result<u8, Error> {
        let mut b = [0; 4];
        self.read_raw(mcu, addr & !3, 0, &mut b)?;
        Ok(b[usize::from(addr & 3)])
    }

    /// Writes the byte at `addr`, enabling only that byte.
    pub fn write_byte(&mut self, mcu: Mcu, addr: u16, value: u8) -> Result<(), Error> {
        let shift = addr & 3;
        let dword = u32::from(value) << (8 * shift);
        self.write_raw(mcu, addr & !3, BYTE_EN_BYTE << shift, &dword.to_le_bytes())
    }

    /// Read-modify-write of a word: clears `clear`, then sets `set`.
    pub fn modify_word(&mut self, mcu: Mcu, addr: u16, clear: u16, set: u16) -> Result<(), Error> {
        let v = self.read_word(mcu, addr)?;
        self.write_word(mcu, addr, (v & !clear) | set)
    }

    /// Read-modify-write of a byte: clears `clear`, then sets `set`.
    pub fn modify_byte(&mut self, mcu: Mcu, addr: u16, clear: u8, set: u8) -> Result<(), Error> {
        let v = self.read_byte(mcu, addr)?;
        self.write_byte(mcu, addr, (v & !clear) | set)
    }

    /// Read-modify-write of a dword: clears `clear`, then sets `set`.
    pub fn modify_dword(&mut self, mcu: Mcu, addr: u16, clear: u32, set: u32) -> Result<(), Error> {
        let v = self.read_dword(mcu, addr)?;
        self.write_dword(mcu, addr, (v & !clear) | set)
    }

    /// Reads PHY (MII) register `reg` through the OCP window (Linux `r8152_mdio_read`): the
    /// page base goes to PLA_OCP_GPHY_BASE, the register is read at 0xb000 + offset.
    pub fn phy_read(&mut self, reg: u16) -> Result<u16, Error> {
        let addr = OCP_BASE_MII + reg * 2;
        self.write_word(Mcu::Pla, PLA_OCP_GPHY_BASE, addr & 0xf000)?;
        self.read_word(Mcu::Pla, OCP_WINDOW | (addr & 0x0fff))
    }

    /// Writes PHY (MII) register `reg` through the OCP window (Linux `r8152_mdio_write`).
    pub fn phy_write(&mut self, reg: u16, value: u16) -> Result<(), Error> {
        let addr = OCP_BASE_MII + reg * 2;
        self.write_word(Mcu::Pla, PLA_OCP_GPHY_BASE, addr & 0xf000)?;
        self.write_word(Mcu::Pla, OCP_WINDOW | (addr & 0x0fff), value)
    }
}
