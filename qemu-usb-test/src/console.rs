//! The PL011 UART of the BCM2837 at 0x3F20_1000 (QEMU `hw/arm/bcm2835_peripherals.c`: UART0 at
//! peripheral offset 0x201000, peripherals at 0x3F00_0000 on raspi3b), used as console and as
//! the `log` sink. QEMU's PL011 transmits without baud-rate setup.

use core::fmt::{self, Write};

use k230_hal::reg::{Mmio, RegisterBlock};

/// Data register.
const DR: usize = 0x00;
/// Flag register; bit 5 = transmit FIFO full.
const FR: usize = 0x18;
const FR_TXFF: u32 = 1 << 5;
/// Line control: 8 data bits (WLEN = 0b11), FIFOs on.
const LCRH: usize = 0x2C;
const LCRH_8N1_FIFO: u32 = (0b11 << 5) | (1 << 4);
/// Control: UART, TX and RX enable.
const CR: usize = 0x30;
const CR_ENABLE: u32 = (1 << 0) | (1 << 8) | (1 << 9);

/// The console UART.
pub struct Console(Mmio);

impl Console {
    /// The PL011 of QEMU raspi3b, enabled for 8N1.
    pub fn new() -> Self {
        // SAFETY: 0x3F20_1000..+0x1000 is the PL011's register window on raspi3b, used only
        // through this value (the image is single-threaded and creates one at a time).
        let regs = unsafe { Mmio::new(0x3F20_1000, 0x1000) };
        regs.write32(CR, 0);
        regs.write32(LCRH, LCRH_8N1_FIFO);
        regs.write32(CR, CR_ENABLE);
        Self(regs)
    }

    fn put(&self, byte: u8) {
        while self.0.read32(FR) & FR_TXFF != 0 {}
        self.0.write32(DR, u32::from(byte));
    }
}

impl Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                self.put(b'\r');
            }
            self.put(b);
        }
        Ok(())
    }
}

/// Writes formatted text to the console.
pub fn print(args: fmt::Arguments<'_>) {
    // The register writes are idempotent; re-creating the handle keeps this free of statics.
    let _ = Console::new().write_fmt(args);
}

/// `print!` to the PL011.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::console::print(format_args!($($arg)*)) };
}

/// `println!` to the PL011.
#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => { $crate::console::print(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `log` records go to the console, prefixed by level.
pub struct Logger;

impl log::Log for Logger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            print(format_args!("[{}] {}\n", record.level(), record.args()));
        }
    }

    fn flush(&self) {}
}
