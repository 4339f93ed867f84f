//! The PL011 UART of the BCM2837 at 0x3F20_1000 (QEMU `hw/arm/bcm2835_peripherals.c`: UART0 at
//! peripheral offset 0x201000, peripherals at 0x3F00_0000 on raspi3b), driven by
//! `k230_hal::pl011`, used as console and as the `log` sink. QEMU's PL011 transmits without
//! baud-rate setup.

use core::fmt::{self, Write};

use k230_hal::pl011::{self, Pl011};
use k230_hal::reg::Mmio;

/// The PL011 of QEMU raspi3b, enabled for 8N1.
fn console() -> Pl011<Mmio> {
    // SAFETY: 0x3F20_1000..+0x1000 is the PL011's register window on raspi3b, used only
    // through this value (the image is single-threaded and creates one at a time).
    let mut uart = Pl011::new(unsafe { Mmio::new(0x3F20_1000, pl011::LEN) });
    uart.enable();
    uart
}

/// Writes formatted text to the console.
pub fn print(args: fmt::Arguments<'_>) {
    // The register writes are idempotent; re-creating the handle keeps this free of statics.
    let _ = console().write_fmt(args);
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
