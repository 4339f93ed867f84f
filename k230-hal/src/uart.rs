//! The console UART: a 16550-compatible port, as the K230's DesignWare APB UART presents it.
//!
//! The driver is generic over [`RegisterBlock`], so the same code runs on the K230 (UART0 at
//! `0x9140_0000`, 32-bit registers every 4 bytes), on QEMU `virt` (a byte-wide 16550 at
//! `0x1000_0000`, stride 1, served by [`ByteMmio`]) and against a model in host tests.
//!
//! Polling only: [`Uart::write_byte`] waits for room in the transmit FIFO, [`Uart::read_byte`]
//! never waits. Register layout and bits: the 16550 register set (RBR/THR/DLL at 0, IER/DLH at 1,
//! FCR at 2, LCR at 3, MCR at 4, LSR at 5), as the DesignWare DW_apb_uart databook and Linux
//! `drivers/tty/serial/8250` use it; K230 address, stride and the (unconfirmed) 50 MHz clock
//! from canmv-k230/rtsmart `drivers/interdrv/uart/drv_uart.c` and the vendor `k230.dtsi`.

use crate::reg::RegisterBlock;

/// Receive buffer (read) / transmit holding (write) / divisor low byte (with DLAB).
const RBR_THR_DLL: usize = 0;
/// Interrupt enable / divisor high byte (with DLAB).
const IER_DLH: usize = 1;
/// FIFO control (write).
const FCR: usize = 2;
/// Line control.
const LCR: usize = 3;
/// Modem control.
const MCR: usize = 4;
/// Line status.
const LSR: usize = 5;

/// LCR: divisor latch access.
const LCR_DLAB: u32 = 1 << 7;
/// LCR: 8 data bits, no parity, 1 stop bit.
const LCR_8N1: u32 = 0b11;
/// FCR: FIFOs on, both cleared.
const FCR_ENABLE_AND_CLEAR: u32 = 0b111;
/// MCR: DTR and RTS asserted.
const MCR_DTR_RTS: u32 = 0b11;
/// LSR: a received byte is waiting.
const LSR_DATA_READY: u32 = 1 << 0;
/// LSR: overrun, parity, framing error or break on the byte at the head of the FIFO.
const LSR_RX_ERRORS: u32 = 0b1_1110;
/// LSR: the transmit holding register (or FIFO) has room.
const LSR_THR_EMPTY: u32 = 1 << 5;
/// LSR: transmitter idle, everything sent.
const LSR_TX_IDLE: u32 = 1 << 6;

/// How the 16550 register file is spread over the bus.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stride {
    /// One register per byte (QEMU `virt`, PC-style 16550).
    Byte,
    /// One 32-bit register every 4 bytes (DesignWare APB UART, K230).
    Word,
}

impl Stride {
    /// Byte offset of register number `index`.
    const fn offset(self, index: usize) -> usize {
        match self {
            Stride::Byte => index,
            Stride::Word => index * 4,
        }
    }
}

/// Line settings for [`Uart::init`]: always 8N1 with FIFOs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// The UART's input clock in Hz (50 MHz on the K230, unconfirmed; 3.6864 MHz on QEMU virt).
    pub clock_hz: u32,
    /// Line rate in bit/s.
    pub baud: u32,
}

/// Why a [`Config`] cannot be programmed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// The baud rate is zero.
    ZeroBaud,
    /// `clock_hz / (16 * baud)` does not fit the 16-bit divisor latch (or rounds to zero).
    DivisorOutOfRange,
}

impl Config {
    /// The divisor latch value, rounded to the nearest integer.
    pub fn divisor(&self) -> Result<u16, ConfigError> {
        if self.baud == 0 {
            return Err(ConfigError::ZeroBaud);
        }
        let den = 16 * u64::from(self.baud);
        let divisor = (u64::from(self.clock_hz) + den / 2) / den;
        match u16::try_from(divisor) {
            Ok(0) | Err(_) => Err(ConfigError::DivisorOutOfRange),
            Ok(d) => Ok(d),
        }
    }
}

/// A received byte that arrived damaged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineError {
    /// The byte as received (possibly garbage).
    pub byte: u8,
    /// The LSR error bits (overrun 1, parity 2, framing 3, break 4).
    pub lsr: u8,
}

/// A 16550-compatible UART behind a register block.
#[derive(Debug)]
pub struct Uart<R> {
    regs: R,
    stride: Stride,
}

impl<R: RegisterBlock> Uart<R> {
    /// Takes over a UART as it is (for example as the boot loader left it); call
    /// [`Uart::init`] to program the line.
    pub fn new(regs: R, stride: Stride) -> Self {
        Self { regs, stride }
    }

    fn reg_read(&self, index: usize) -> u32 {
        self.regs.read32(self.stride.offset(index))
    }

    fn reg_write(&self, index: usize, value: u32) {
        self.regs.write32(self.stride.offset(index), value)
    }

    /// Programs baud rate, 8N1 and FIFOs; interrupts off (the driver polls).
    ///
    /// Waits for the transmitter to drain first: the DesignWare UART ignores LCR writes while
    /// busy, and changing the rate mid-byte garbles it.
    pub fn init(&mut self, config: &Config) -> Result<(), ConfigError> {
        let divisor = config.divisor()?;
        self.flush();
        self.reg_write(IER_DLH, 0);
        self.reg_write(FCR, FCR_ENABLE_AND_CLEAR);
        self.reg_write(LCR, LCR_DLAB | LCR_8N1);
        self.reg_write(RBR_THR_DLL, u32::from(divisor & 0xff));
        self.reg_write(IER_DLH, u32::from(divisor >> 8));
        self.reg_write(LCR, LCR_8N1);
        self.reg_write(MCR, MCR_DTR_RTS);
        log::debug!("uart: divisor {divisor} for {} baud", config.baud);
        Ok(())
    }

    /// Whether [`Uart::write_byte`] would return without waiting.
    pub fn write_ready(&self) -> bool {
        self.reg_read(LSR) & LSR_THR_EMPTY != 0
    }

    /// Whether a received byte is waiting.
    pub fn read_ready(&self) -> bool {
        self.reg_read(LSR) & LSR_DATA_READY != 0
    }

    /// Sends one byte, waiting for room in the transmit FIFO.
    pub fn write_byte(&mut self, byte: u8) {
        while !self.write_ready() {
            core::hint::spin_loop();
        }
        self.reg_write(RBR_THR_DLL, u32::from(byte));
    }

    /// Sends every byte of `bytes`, waiting for room as needed.
    pub fn write_all(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_byte(b);
        }
    }

    /// Waits until the transmitter has sent everything.
    pub fn flush(&mut self) {
        while self.reg_read(LSR) & LSR_TX_IDLE == 0 {
            core::hint::spin_loop();
        }
    }

    /// The next received byte, if one is waiting; never waits.
    pub fn read_byte(&mut self) -> Option<Result<u8, LineError>> {
        let lsr = self.reg_read(LSR);
        if lsr & LSR_DATA_READY == 0 {
            return None;
        }
        // The register is 8 bits wide; the upper bits of the bus word carry nothing.
        let byte = (self.reg_read(RBR_THR_DLL) & 0xff) as u8;
        if lsr & LSR_RX_ERRORS != 0 {
            return Some(Err(LineError {
                byte,
                lsr: (lsr & LSR_RX_ERRORS) as u8,
            }));
        }
        Some(Ok(byte))
    }

    /// Reads the bytes already received into `buf` without waiting; returns how many (damaged
    /// bytes are dropped). 0 means nothing is waiting.
    pub fn read(&mut self, buf: &mut [u8]) -> usize {
        let mut n = 0;
        while n < buf.len() {
            match self.read_byte() {
                None => break,
                Some(Ok(b)) => {
                    buf[n] = b;
                    n += 1;
                }
                Some(Err(e)) => {
                    log::warn!("uart: dropped byte {:#04x}, LSR {:#04x}", e.byte, e.lsr)
                }
            }
        }
        n
    }

    /// The register block, given back.
    pub fn into_inner(self) -> R {
        self.regs
    }
}

/// Console text: `\n` goes out as `\r\n`.
impl<R: RegisterBlock> core::fmt::Write for Uart<R> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        console_text(s, |b| self.write_byte(b));
        Ok(())
    }
}

/// Sends `s` as console text through `put`, one byte at a time: `\n` goes out as `\r\n` (the
/// consoles' `core::fmt::Write`).
pub(crate) fn console_text(s: &str, mut put: impl FnMut(u8)) {
    for b in s.bytes() {
        if b == b'\n' {
            put(b'\r');
        }
        put(b);
    }
}

/// A 16550 wired with byte-wide registers, one per byte address (QEMU `virt`): each access is a
/// single 8-bit volatile load or store at `base + offset`.
#[derive(Debug)]
pub struct ByteMmio {
    base: usize,
}

impl ByteMmio {
    /// The 8-register block at `base`.
    ///
    /// # Safety
    /// `base..base + 8` must be a byte-addressable device register region, mapped for as long as
    /// the value lives, and not used as ordinary memory.
    pub const unsafe fn new(base: usize) -> Self {
        Self { base }
    }
}

impl RegisterBlock for ByteMmio {
    fn read32(&self, offset: usize) -> u32 {
        debug_assert!(offset < 8, "16550 register offset {offset}");
        // SAFETY: `ByteMmio::new`'s contract makes `base + offset` (offset < 8) a byte-wide
        // device register; a volatile byte load is the access it expects.
        u32::from(unsafe { core::ptr::read_volatile((self.base + offset) as *const u8) })
    }

    fn write32(&self, offset: usize, value: u32) {
        debug_assert!(offset < 8, "16550 register offset {offset}");
        // SAFETY: as for `read32`; a volatile byte store is the access the register expects.
        unsafe { core::ptr::write_volatile((self.base + offset) as *mut u8, value as u8) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reg::MockRegisterBlock;
    use core::cell::RefCell;
    use core::fmt::Write as _;
    use mockall::{predicate::eq, Sequence};
    use std::collections::VecDeque;

    /// A 16550 model: a receive queue, a transmit FIFO that drains one byte per LSR poll, the
    /// divisor latch behind DLAB. Registers at 4-byte stride.
    #[derive(Default)]
    struct Model {
        state: RefCell<ModelState>,
    }

    #[derive(Default)]
    struct ModelState {
        lcr: u32,
        dll: u32,
        dlh: u32,
        ier: u32,
        mcr: u32,
        fcr_writes: Vec<u32>,
        tx_fifo: VecDeque<u8>,
        sent: Vec<u8>,
        rx: VecDeque<(u8, u32)>,
        fifo_depth: usize,
        lsr_polls: usize,
    }

    impl Model {
        fn new(fifo_depth: usize) -> Self {
            let m = Model::default();
            m.state.borrow_mut().fifo_depth = fifo_depth;
            m
        }
    }

    impl RegisterBlock for Model {
        fn read32(&self, offset: usize) -> u32 {
            assert_eq!(offset % 4, 0, "DW UART registers are word aligned");
            let mut s = self.state.borrow_mut();
            match offset / 4 {
                RBR_THR_DLL if s.lcr & LCR_DLAB != 0 => s.dll,
                RBR_THR_DLL => s.rx.pop_front().map_or(0, |(b, _)| u32::from(b)),
                IER_DLH if s.lcr & LCR_DLAB != 0 => s.dlh,
                IER_DLH => s.ier,
                LCR => s.lcr,
                LSR => {
                    s.lsr_polls += 1;
                    // The line shifts out one byte between polls.
                    if let Some(b) = s.tx_fifo.pop_front() {
                        s.sent.push(b);
                    }
                    let mut lsr = 0;
                    if let Some(&(_, err)) = s.rx.front() {
                        lsr |= LSR_DATA_READY | err;
                    }
                    if s.tx_fifo.len() < s.fifo_depth {
                        lsr |= LSR_THR_EMPTY;
                    }
                    if s.tx_fifo.is_empty() {
                        lsr |= LSR_TX_IDLE;
                    }
                    lsr
                }
                other => panic!("read of register {other}"),
            }
        }

        fn write32(&self, offset: usize, value: u32) {
            assert_eq!(offset % 4, 0, "DW UART registers are word aligned");
            let mut s = self.state.borrow_mut();
            match offset / 4 {
                RBR_THR_DLL if s.lcr & LCR_DLAB != 0 => s.dll = value,
                RBR_THR_DLL => {
                    assert!(s.tx_fifo.len() < s.fifo_depth, "THR written while full");
                    s.tx_fifo.push_back(value as u8);
                }
                IER_DLH if s.lcr & LCR_DLAB != 0 => s.dlh = value,
                IER_DLH => s.ier = value,
                FCR => s.fcr_writes.push(value),
                LCR => s.lcr = value,
                MCR => s.mcr = value,
                other => panic!("write of register {other}"),
            }
        }
    }

    #[test]
    fn divisor_rounds_and_rejects_out_of_range() {
        let k230 = Config {
            clock_hz: 50_000_000,
            baud: 115_200,
        };
        // 50e6 / (16 * 115200) = 27.13
        assert_eq!(k230.divisor(), Ok(27));
        let qemu = Config {
            clock_hz: 3_686_400,
            baud: 115_200,
        };
        assert_eq!(qemu.divisor(), Ok(2));
        let zero = Config { baud: 0, ..k230 };
        assert_eq!(zero.divisor(), Err(ConfigError::ZeroBaud));
        let too_fast = Config {
            clock_hz: 1_000_000,
            baud: 1_000_000,
        };
        assert_eq!(too_fast.divisor(), Err(ConfigError::DivisorOutOfRange));
        let too_slow = Config {
            clock_hz: u32::MAX,
            baud: 1,
        };
        assert_eq!(too_slow.divisor(), Err(ConfigError::DivisorOutOfRange));
    }

    #[test]
    fn init_programs_divisor_8n1_and_fifo() {
        let mut uart = Uart::new(Model::new(16), Stride::Word);
        uart.init(&Config {
            clock_hz: 50_000_000,
            baud: 115_200,
        })
        .unwrap();
        let s = uart.into_inner().state.into_inner();
        assert_eq!((s.dll, s.dlh), (27, 0));
        assert_eq!(s.lcr, LCR_8N1, "DLAB cleared, 8N1");
        assert_eq!(s.ier, 0, "interrupts off");
        assert_eq!(s.fcr_writes, vec![FCR_ENABLE_AND_CLEAR]);
        assert_eq!(s.mcr, MCR_DTR_RTS);
    }

    #[test]
    fn init_sets_dlab_around_divisor_writes_in_order() {
        let mut regs = MockRegisterBlock::new();
        let mut seq = Sequence::new();
        regs.expect_read32()
            .with(eq(LSR * 4))
            .times(1)
            .in_sequence(&mut seq)
            .return_const(LSR_TX_IDLE | LSR_THR_EMPTY);
        for (reg, value) in [
            (IER_DLH, 0),
            (FCR, FCR_ENABLE_AND_CLEAR),
            (LCR, LCR_DLAB | LCR_8N1),
            (RBR_THR_DLL, 0x45),
            (IER_DLH, 0x01),
            (LCR, LCR_8N1),
            (MCR, MCR_DTR_RTS),
        ] {
            regs.expect_write32()
                .with(eq(reg * 4), eq(value))
                .times(1)
                .in_sequence(&mut seq)
                .return_const(());
        }
        let mut uart = Uart::new(regs, Stride::Word);
        // 0x145 = 325 -> 50e6 / (16 * 325) ~ 9615 baud.
        uart.init(&Config {
            clock_hz: 50_000_000,
            baud: 9_615,
        })
        .unwrap();
    }

    #[test]
    fn bad_config_touches_no_register() {
        let regs = MockRegisterBlock::new();
        let mut uart = Uart::new(regs, Stride::Word);
        let err = uart.init(&Config {
            clock_hz: 50_000_000,
            baud: 0,
        });
        assert_eq!(err, Err(ConfigError::ZeroBaud));
    }

    #[test]
    fn writes_wait_for_fifo_room_and_translate_newlines() {
        let mut uart = Uart::new(Model::new(2), Stride::Word);
        write!(uart, "hi\nK230 {}\n", 7).unwrap();
        uart.flush();
        let s = uart.into_inner().state.into_inner();
        assert_eq!(s.sent, b"hi\r\nK230 7\r\n");
        assert!(s.tx_fifo.is_empty());
    }

    #[test]
    fn byte_stride_addresses_consecutive_bytes() {
        let mut regs = MockRegisterBlock::new();
        regs.expect_read32()
            .with(eq(LSR))
            .return_const(LSR_THR_EMPTY);
        regs.expect_write32()
            .with(eq(RBR_THR_DLL), eq(u32::from(b'x')))
            .times(1)
            .return_const(());
        let mut uart = Uart::new(regs, Stride::Byte);
        uart.write_byte(b'x');
    }

    #[test]
    fn reads_never_wait_and_report_line_errors() {
        let model = Model::new(16);
        model.state.borrow_mut().rx.extend([
            (b'a', 0),
            (0xff, 1 << 3), // framing error
            (b'b', 0),
        ]);
        let mut uart = Uart::new(model, Stride::Word);
        assert!(uart.read_ready());
        assert_eq!(uart.read_byte(), Some(Ok(b'a')));
        assert_eq!(
            uart.read_byte(),
            Some(Err(LineError {
                byte: 0xff,
                lsr: 1 << 3
            }))
        );
        assert_eq!(uart.read_byte(), Some(Ok(b'b')));
        assert_eq!(uart.read_byte(), None);
        assert!(!uart.read_ready());
    }

    #[test]
    fn read_fills_buffer_with_what_is_waiting_and_drops_damaged_bytes() {
        let model = Model::new(16);
        model
            .state
            .borrow_mut()
            .rx
            .extend([(b'o', 0), (0, 1 << 1), (b'k', 0), (b'!', 0)]);
        let mut uart = Uart::new(model, Stride::Word);
        let mut buf = [0u8; 2];
        assert_eq!(uart.read(&mut buf), 2);
        assert_eq!(&buf, b"ok");
        let mut rest = [0u8; 8];
        assert_eq!(uart.read(&mut rest), 1);
        assert_eq!(rest[0], b'!');
        assert_eq!(uart.read(&mut rest), 0);
    }

    #[test]
    fn byte_mmio_uses_single_bytes() {
        let mut bytes = [0u8; 8];
        // SAFETY: plain memory stands in for the register block and outlives `regs`.
        let regs = unsafe { ByteMmio::new(bytes.as_mut_ptr() as usize) };
        regs.write32(3, 0x1_83);
        regs.write32(4, 0x03);
        assert_eq!(regs.read32(3), 0x83);
        assert_eq!(bytes, [0, 0, 0, 0x83, 0x03, 0, 0, 0]);
    }
}
