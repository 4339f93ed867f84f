//! The board's console: its UART ([`Console`], a 16550 over the right kind of register access or
//! a PL011), and the queue its received bytes wait in ([`RxQueue`]).

use crate::board::{ConsoleSpec, UartLine};
use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use k230_hal::pl011::{self, Pl011};
use k230_hal::reg::{Mmio, RegisterBlock};
use k230_hal::uart::{ByteMmio, Config, ConfigError, Stride, Uart};

/// Register access for either 16550 wiring.
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

/// The board's console UART.
#[derive(Debug)]
pub enum Console {
    /// A 16550, and how its line is set up.
    Ns16550(Uart<ConsoleRegs>, UartLine),
    /// A PL011.
    Pl011(Pl011<Mmio>),
}

/// The console described by `spec`, taken over as it is (no register is touched).
///
/// # Safety
/// `spec` must describe a UART that exists at its base address on this machine, and nothing else
/// may use those registers as memory.
pub unsafe fn open(spec: &ConsoleSpec) -> Console {
    match spec {
        ConsoleSpec::Ns16550(uart) => {
            let regs = match uart.stride {
                // SAFETY: the caller guarantees a 16550 register file at `uart.base`; 8
                // registers of 4 bytes each.
                Stride::Word => ConsoleRegs::Word(unsafe { Mmio::new(uart.base, 8 * 4) }),
                // SAFETY: as above, byte-wide registers.
                Stride::Byte => ConsoleRegs::Byte(unsafe { ByteMmio::new(uart.base) }),
            };
            Console::Ns16550(Uart::new(regs, uart.stride), uart.line)
        }
        // SAFETY: the caller guarantees a PL011 register window at `base`.
        ConsoleSpec::Pl011 { base } => {
            Console::Pl011(Pl011::new(unsafe { Mmio::new(*base, pl011::LEN) }))
        }
    }
}

/// Why the console's line could not be set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetupError {
    /// The 16550's configuration cannot be programmed.
    Config(Config, ConfigError),
}

impl Console {
    /// Sets the line up as the board asks: a 16550 is programmed or kept as the boot loader
    /// left it, a PL011 is switched on for 8N1 at its current rate.
    pub fn setup(&mut self) -> Result<(), SetupError> {
        match self {
            Console::Ns16550(_, UartLine::Keep) => Ok(()),
            Console::Ns16550(uart, UartLine::Program(config)) => uart
                .init(config)
                .map_err(|e| SetupError::Config(*config, e)),
            Console::Pl011(uart) => {
                uart.enable();
                Ok(())
            }
        }
    }

    /// Sends every byte of `bytes`, waiting for room as needed.
    pub fn write_all(&mut self, bytes: &[u8]) {
        match self {
            Console::Ns16550(u, _) => u.write_all(bytes),
            Console::Pl011(u) => u.write_all(bytes),
        }
    }

    /// Waits until the transmitter has sent everything.
    pub fn flush(&mut self) {
        match self {
            Console::Ns16550(u, _) => u.flush(),
            Console::Pl011(u) => u.flush(),
        }
    }

    /// The next received byte if one is waiting (`Err(())` for a byte with a line error:
    /// framing, parity, break, overrun); never waits.
    pub fn read_byte(&mut self) -> Option<Result<u8, ()>> {
        match self {
            Console::Ns16550(u, _) => u.read_byte().map(|r| r.map_err(|_| ())),
            Console::Pl011(u) => u.read_byte().map(|r| r.map_err(|_| ())),
        }
    }
}

impl core::fmt::Write for Console {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        match self {
            Console::Ns16550(u, _) => u.write_str(s),
            Console::Pl011(u) => u.write_str(s),
        }
    }
}

/// Received console bytes between the timer interrupt, which moves them out of the UART's small
/// FIFO, and MicroPython, which reads them: a single-producer single-consumer ring of `N - 1`
/// bytes. A byte that finds the ring full is dropped (and counted).
pub struct RxQueue<const N: usize> {
    bytes: [AtomicU8; N],
    /// Next slot the producer writes.
    head: AtomicUsize,
    /// Next slot the consumer reads.
    tail: AtomicUsize,
    dropped: AtomicUsize,
}

impl<const N: usize> RxQueue<N> {
    /// An empty queue.
    pub const fn new() -> Self {
        Self {
            bytes: [const { AtomicU8::new(0) }; N],
            head: AtomicUsize::new(0),
            tail: AtomicUsize::new(0),
            dropped: AtomicUsize::new(0),
        }
    }

    /// Producer side (the interrupt): queues `byte`; false (and counted) when the ring is full.
    pub fn push(&self, byte: u8) -> bool {
        let head = self.head.load(Ordering::Relaxed);
        let next = (head + 1) % N;
        if next == self.tail.load(Ordering::Acquire) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        self.bytes[head].store(byte, Ordering::Relaxed);
        self.head.store(next, Ordering::Release);
        true
    }

    /// Consumer side: the oldest byte, if any.
    pub fn pop(&self) -> Option<u8> {
        let tail = self.tail.load(Ordering::Relaxed);
        if tail == self.head.load(Ordering::Acquire) {
            return None;
        }
        let byte = self.bytes[tail].load(Ordering::Relaxed);
        self.tail.store((tail + 1) % N, Ordering::Release);
        Some(byte)
    }

    /// Whether a byte is waiting.
    pub fn is_empty(&self) -> bool {
        self.tail.load(Ordering::Relaxed) == self.head.load(Ordering::Acquire)
    }

    /// Bytes dropped because the ring was full.
    pub fn dropped(&self) -> usize {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl<const N: usize> Default for RxQueue<N> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::board::UartSpec;
    use core::fmt::Write as _;

    /// LSR bit 5 (room to send) and bit 6 (idle), always set in these fake register files.
    const LSR_READY: u8 = 0x60;

    #[test]
    fn rx_queue_keeps_order_across_the_wrap_and_counts_what_it_drops() {
        let q = RxQueue::<4>::new();
        assert!(q.is_empty() && q.pop().is_none());
        for round in 0..5u8 {
            assert!(q.push(round) && q.push(round + 100));
            assert!(!q.is_empty());
            assert_eq!(
                (q.pop(), q.pop(), q.pop()),
                (Some(round), Some(round + 100), None)
            );
        }
        assert!(q.push(1) && q.push(2) && q.push(3));
        assert!(!q.push(4), "three bytes fill a ring of four slots");
        assert_eq!(q.dropped(), 1);
        assert_eq!(
            (q.pop(), q.pop(), q.pop(), q.pop()),
            (Some(1), Some(2), Some(3), None)
        );
    }

    #[test]
    fn byte_console_writes_thr_at_offset_zero() {
        let mut mem = [0u8; 8];
        mem[5] = LSR_READY;
        let spec = ConsoleSpec::Ns16550(UartSpec {
            base: mem.as_mut_ptr() as usize,
            stride: Stride::Byte,
            line: UartLine::Keep,
        });
        // SAFETY: `mem` stands in for the register file and outlives the console.
        let mut console = unsafe { open(&spec) };
        console.write_str("A").unwrap();
        assert_eq!(mem[0], b'A');
    }

    #[test]
    fn word_console_writes_thr_as_a_word() {
        let mut mem = [0u32; 8];
        mem[5] = u32::from(LSR_READY);
        let spec = ConsoleSpec::Ns16550(UartSpec {
            base: mem.as_mut_ptr() as usize,
            stride: Stride::Word,
            line: UartLine::Keep,
        });
        // SAFETY: `mem` stands in for the register file and outlives the console.
        let mut console = unsafe { open(&spec) };
        console.write_str("Z").unwrap();
        assert_eq!(mem[0], u32::from(b'Z'));
    }
}
