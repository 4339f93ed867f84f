//! The board's console: its UART as a [`Uart`] over the right kind of register access.

use crate::board::UartSpec;
use k230_hal::reg::{Mmio, RegisterBlock};
use k230_hal::uart::{ByteMmio, Stride, Uart};

/// Register access for either console wiring.
#[derive(Debug)]
pub enum ConsoleRegs {
    /// 32-bit registers (DesignWare APB UART).
    Word(Mmio),
    /// Byte-wide registers (QEMU's 16550).
    Byte(ByteMmio),
}

impl RegisterBlock for ConsoleRegs {
    fn read32(&self, offset: usize) -> u32 {
        match self {
            ConsoleRegs::Word(r) => r.read32(offset),
            ConsoleRegs::Byte(r) => r.read32(offset),
        }
    }

    fn write32(&self, offset: usize, value: u32) {
        match self {
            ConsoleRegs::Word(r) => r.write32(offset, value),
            ConsoleRegs::Byte(r) => r.write32(offset, value),
        }
    }
}

/// The console UART described by `spec`, taken over as it is (no register is touched).
///
/// # Safety
/// `spec` must describe a UART that exists at `spec.base` on this machine, and nothing else may
/// use those registers as memory.
pub unsafe fn open(spec: &UartSpec) -> Uart<ConsoleRegs> {
    let regs = match spec.stride {
        // SAFETY: the caller guarantees a 16550 register file at `spec.base`; 8 registers of
        // 4 bytes each.
        Stride::Word => ConsoleRegs::Word(unsafe { Mmio::new(spec.base, 8 * 4) }),
        // SAFETY: as above, byte-wide registers.
        Stride::Byte => ConsoleRegs::Byte(unsafe { ByteMmio::new(spec.base) }),
    };
    Uart::new(regs, spec.stride)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::board::UartLine;
    use core::fmt::Write as _;

    /// LSR bit 5 (room to send) and bit 6 (idle), always set in these fake register files.
    const LSR_READY: u8 = 0x60;

    #[test]
    fn byte_console_writes_thr_at_offset_zero() {
        let mut mem = [0u8; 8];
        mem[5] = LSR_READY;
        let spec = UartSpec {
            base: mem.as_mut_ptr() as usize,
            stride: Stride::Byte,
            line: UartLine::Keep,
        };
        // SAFETY: `mem` stands in for the register file and outlives the console.
        let mut console = unsafe { open(&spec) };
        console.write_str("A").unwrap();
        assert_eq!(mem[0], b'A');
    }

    #[test]
    fn word_console_writes_thr_as_a_word() {
        let mut mem = [0u32; 8];
        mem[5] = u32::from(LSR_READY);
        let spec = UartSpec {
            base: mem.as_mut_ptr() as usize,
            stride: Stride::Word,
            line: UartLine::Keep,
        };
        // SAFETY: `mem` stands in for the register file and outlives the console.
        let mut console = unsafe { open(&spec) };
        console.write_str("Z").unwrap();
        assert_eq!(mem[0], u32::from(b'Z'));
    }
}
