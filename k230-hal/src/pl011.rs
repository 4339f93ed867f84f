//! An ARM PrimeCell PL011 UART: the console of QEMU's raspi3b (the BCM2837's UART0 at
//! `0x3F20_1000`, QEMU `hw/arm/bcm2835_peripherals.c`), where the firmware and the
//! `qemu-usb-test` image run our USB drivers against QEMU's own models.
//!
//! Polling only, like [`crate::uart`]: [`Pl011::write_byte`] waits for room in the transmit
//! FIFO, [`Pl011::read_byte`] never waits. Registers and bits from the PL011 Technical Reference
//! Manual (ARM DDI 0183): UARTDR at 0x00 (data in bits 7:0, the received byte's framing,
//! parity, break and overrun errors in bits 11:8), UARTFR at 0x18, UARTLCR_H at 0x2C, UARTCR at
//! 0x30. The line rate is kept as the boot loader (or QEMU, which needs none) left it.

use crate::reg::RegisterBlock;

/// Data register: a received byte and its error bits (read), the byte to send (write).
const DR: usize = 0x00;
/// Flag register.
const FR: usize = 0x18;
/// Line control.
const LCR_H: usize = 0x2C;
/// Control.
const CR: usize = 0x30;

/// DR: framing, parity, break and overrun error of the byte read with it.
const DR_ERRORS: u32 = 0xF << 8;
/// FR: the transmitter is sending (or has bytes queued).
const FR_BUSY: u32 = 1 << 3;
/// FR: nothing received.
const FR_RXFE: u32 = 1 << 4;
/// FR: the transmit FIFO is full.
const FR_TXFF: u32 = 1 << 5;
/// LCR_H: 8 data bits (WLEN = 0b11), FIFOs on; no parity, one stop bit.
const LCR_H_8N1_FIFO: u32 = (0b11 << 5) | (1 << 4);
/// CR: UART, transmitter and receiver on.
const CR_ENABLE: u32 = (1 << 0) | (1 << 8) | (1 << 9);

/// Bytes of the PL011's register window.
pub const LEN: usize = 0x1000;

/// A received byte that arrived damaged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineError {
    /// The byte as received (possibly garbage).
    pub byte: u8,
    /// DR's error bits, shifted down: framing 0, parity 1, break 2, overrun 3.
    pub errors: u8,
}

/// A PL011 behind a register block.
#[derive(Debug)]
pub struct Pl011<R> {
    regs: R,
}

impl<R: RegisterBlock> Pl011<R> {
    /// Takes over a PL011 as it is; [`Pl011::enable`] switches it on for 8N1.
    pub fn new(regs: R) -> Self {
        Self { regs }
    }

    /// Switches the UART off, sets 8N1 with FIFOs, and on again with transmitter and receiver
    /// (the TRM's order: line control is written while the UART is disabled). The rate divisors
    /// are left alone.
    pub fn enable(&mut self) {
        self.flush();
        self.regs.write32(CR, 0);
        self.regs.write32(LCR_H, LCR_H_8N1_FIFO);
        self.regs.write32(CR, CR_ENABLE);
    }

    /// Sends one byte, waiting for room in the transmit FIFO.
    pub fn write_byte(&mut self, byte: u8) {
        while self.regs.read32(FR) & FR_TXFF != 0 {
            core::hint::spin_loop();
        }
        self.regs.write32(DR, u32::from(byte));
    }

    /// Sends every byte of `bytes`, waiting for room as needed.
    pub fn write_all(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_byte(b);
        }
    }

    /// Waits until the transmitter has sent everything.
    pub fn flush(&mut self) {
        while self.regs.read32(FR) & FR_BUSY != 0 {
            core::hint::spin_loop();
        }
    }

    /// The next received byte, if one is waiting; never waits.
    pub fn read_byte(&mut self) -> Option<Result<u8, LineError>> {
        if self.regs.read32(FR) & FR_RXFE != 0 {
            return None;
        }
        let dr = self.regs.read32(DR);
        let byte = (dr & 0xff) as u8;
        if dr & DR_ERRORS != 0 {
            return Some(Err(LineError {
                byte,
                errors: ((dr & DR_ERRORS) >> 8) as u8,
            }));
        }
        Some(Ok(byte))
    }
}

/// Console text: `\n` goes out as `\r\n`.
impl<R: RegisterBlock> core::fmt::Write for Pl011<R> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        crate::uart::console_text(s, |b| self.write_byte(b));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::RefCell;
    use core::fmt::Write as _;
    use std::collections::VecDeque;

    /// A PL011 model: a receive FIFO of (byte, error bits), a transmit FIFO that drains one byte
    /// per FR poll, and a record of control writes.
    #[derive(Default)]
    struct Model {
        state: RefCell<State>,
    }

    #[derive(Default)]
    struct State {
        rx: VecDeque<(u8, u32)>,
        tx_fifo: VecDeque<u8>,
        sent: Vec<u8>,
        fifo_depth: usize,
        control: Vec<(usize, u32)>,
    }

    impl RegisterBlock for Model {
        fn read32(&self, offset: usize) -> u32 {
            let mut s = self.state.borrow_mut();
            match offset {
                FR => {
                    let mut fr = 0;
                    if s.rx.is_empty() {
                        fr |= FR_RXFE;
                    }
                    if s.tx_fifo.len() >= s.fifo_depth {
                        fr |= FR_TXFF;
                    }
                    if !s.tx_fifo.is_empty() {
                        fr |= FR_BUSY;
                    }
                    // One byte leaves the FIFO per poll.
                    if let Some(b) = s.tx_fifo.pop_front() {
                        s.sent.push(b);
                    }
                    fr
                }
                DR => {
                    s.rx.pop_front()
                        .map_or(0, |(b, errors)| u32::from(b) | errors << 8)
                }
                other => panic!("read of {other:#x}"),
            }
        }

        fn write32(&self, offset: usize, value: u32) {
            let mut s = self.state.borrow_mut();
            match offset {
                DR => {
                    assert!(s.tx_fifo.len() < s.fifo_depth, "write to a full FIFO");
                    s.tx_fifo.push_back(value as u8);
                }
                CR | LCR_H => s.control.push((offset, value)),
                other => panic!("write of {other:#x}"),
            }
        }
    }

    fn model(fifo_depth: usize) -> Model {
        let m = Model::default();
        m.state.borrow_mut().fifo_depth = fifo_depth;
        m
    }

    #[test]
    fn text_waits_for_fifo_room_and_expands_newlines() {
        let mut uart = Pl011::new(model(2));
        write!(uart, "ab\ncd").unwrap();
        uart.flush();
        let m = uart.regs.state.borrow();
        assert_eq!(m.sent, b"ab\r\ncd");
        assert!(m.tx_fifo.is_empty(), "flush waits for the FIFO to drain");
    }

    #[test]
    fn enable_writes_line_control_while_disabled() {
        let mut uart = Pl011::new(model(16));
        uart.enable();
        assert_eq!(
            uart.regs.state.borrow().control,
            [(CR, 0), (LCR_H, LCR_H_8N1_FIFO), (CR, CR_ENABLE)]
        );
    }

    #[test]
    fn received_bytes_in_order_with_their_errors() {
        let mut uart = Pl011::new(model(16));
        uart.regs
            .state
            .borrow_mut()
            .rx
            .extend([(b'x', 0), (0x55, 0b0001), (b'y', 0b1000)]);
        assert_eq!(uart.read_byte(), Some(Ok(b'x')));
        assert_eq!(
            uart.read_byte(),
            Some(Err(LineError {
                byte: 0x55,
                errors: 0b0001
            }))
        );
        assert_eq!(
            uart.read_byte(),
            Some(Err(LineError {
                byte: b'y',
                errors: 0b1000
            }))
        );
        assert_eq!(uart.read_byte(), None);
    }
}
