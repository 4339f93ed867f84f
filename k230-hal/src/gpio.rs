//! GPIO on the K230: two Synopsys DesignWare APB GPIO controllers, and the IOMUX that routes a
//! pad to them.
//!
//! Facts (canmv-k230/rtsmart):
//! - `bsp/maix3/board/board.h`: GPIO0 at 0x9140_B000, GPIO1 at 0x9140_C000 (0x1000 each), IOMUX
//!   at 0x9110_5000;
//! - `drivers/interdrv/gpio/drv_gpio.c`: pins 0-31 are GPIO0 port A, 32-63 GPIO1 port A, 64-71
//!   GPIO1 port B; port A's data register at +0x00, its direction register at +0x04 (1 =
//!   output), its pad levels at +0x50 (the DW APB GPIO `swporta_dr`, `swporta_ddr` and
//!   `ext_porta`);
//! - `drivers/interdrv/fpioa/drv_fpioa.{c,h}`: one 32-bit IOMUX register per pad 0-63 at
//!   IOMUX + 4 * pad: ST (Schmitt trigger) bit 0, DS (drive strength) bits 1-4, PD bit 5, PU
//!   bit 6, OE bit 7, IE bit 8, MSC (pad voltage) bit 9, which every write keeps, IO_SEL
//!   (function) bits 11-13, function 0 being the GPIO for pads 0-63; `kd_pin_mode` for an
//!   output sets OE, IE, PU, PD and ST and selects function 0, keeping the drive strength.
//!
//! Pads 64-71 belong to the PMU, whose IOMUX (0x9100_0080) has another layout: not supported.

use crate::reg::{Field, RegisterBlock};

/// K230 addresses of the GPIO path.
pub mod k230 {
    /// GPIO0 (pins 0-31).
    pub const GPIO0_BASE: usize = 0x9140_B000;
    /// GPIO1 (pins 32-71).
    pub const GPIO1_BASE: usize = 0x9140_C000;
    /// Size of one GPIO controller's window.
    pub const GPIO_LEN: usize = 0x1000;
    /// IOMUX (one register per pad 0-63).
    pub const IOMUX_BASE: usize = 0x9110_5000;
    /// Size of the IOMUX window used here.
    pub const IOMUX_LEN: usize = 0x100;
}

/// Port A's data register (`swporta_dr`): the level an output drives.
const SWPORTA_DR: usize = 0x00;
/// Port A's direction register (`swporta_ddr`): 1 = output.
const SWPORTA_DDR: usize = 0x04;
/// Port A's pad levels (`ext_porta`).
const EXT_PORTA: usize = 0x50;

/// IOMUX: Schmitt trigger.
const IOMUX_ST: u32 = 1 << 0;
/// IOMUX: pull-down.
const IOMUX_PD: u32 = 1 << 5;
/// IOMUX: pull-up.
const IOMUX_PU: u32 = 1 << 6;
/// IOMUX: output enable.
const IOMUX_OE: u32 = 1 << 7;
/// IOMUX: input enable.
const IOMUX_IE: u32 = 1 << 8;
/// IOMUX: function select.
const IOMUX_IO_SEL: Field = Field::new(11, 3);

/// A pad that can be a GPIO through the main IOMUX: 0 to 63.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pin(u8);

impl Pin {
    /// Pin `n`, if it is one of 0-63.
    pub const fn new(n: u8) -> Option<Self> {
        if n < 64 {
            Some(Self(n))
        } else {
            None
        }
    }

    /// The pin's number.
    pub const fn number(self) -> u8 {
        self.0
    }

    /// Which controller (0: GPIO0, 1: GPIO1) drives it, and its bit in that controller's
    /// port A.
    const fn place(self) -> (usize, u32) {
        let n = self.0 as usize;
        (n / 32, 1 << (n % 32))
    }
}

/// A pin's logic level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// 0 V.
    Low,
    /// The pad's supply voltage.
    High,
}

/// The K230's GPIO: both controllers and the IOMUX.
pub struct Gpio<R, M> {
    controllers: [R; 2],
    iomux: M,
}

impl<R: RegisterBlock, M: RegisterBlock> Gpio<R, M> {
    /// The GPIO behind GPIO0 ([`k230::GPIO0_BASE`]), GPIO1 ([`k230::GPIO1_BASE`]) and the IOMUX
    /// ([`k230::IOMUX_BASE`]).
    pub fn new(gpio0: R, gpio1: R, iomux: M) -> Self {
        Self {
            controllers: [gpio0, gpio1],
            iomux,
        }
    }

    /// Makes `pin` a GPIO output driving `level`: the level is latched first, then the
    /// direction set, then the pad routed to the GPIO as the vendor's `kd_pin_mode` does (so
    /// the pad never drives another level on the way).
    pub fn set_output(&mut self, pin: Pin, level: Level) {
        self.write(pin, level);
        let (c, bit) = pin.place();
        self.controllers[c].modify32(SWPORTA_DDR, 0, bit);
        let pad = 4 * usize::from(pin.number());
        self.iomux.modify32(
            pad,
            IOMUX_IO_SEL.mask(),
            IOMUX_OE | IOMUX_IE | IOMUX_PU | IOMUX_PD | IOMUX_ST,
        );
    }

    /// Drives `pin` (an output) to `level`.
    pub fn write(&mut self, pin: Pin, level: Level) {
        let (c, bit) = pin.place();
        let set = if level == Level::High { bit } else { 0 };
        self.controllers[c].modify32(SWPORTA_DR, bit, set);
    }

    /// The level on `pin`'s pad.
    pub fn read(&self, pin: Pin) -> Level {
        let (c, bit) = pin.place();
        if self.controllers[c].read32(EXT_PORTA) & bit != 0 {
            Level::High
        } else {
            Level::Low
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::BTreeMap;
    use std::rc::Rc;

    /// One register write: (block, offset, value).
    type Write = (&'static str, usize, u32);

    /// Registers as plain memory, every write logged.
    #[derive(Clone)]
    struct Regs {
        name: &'static str,
        mem: Rc<RefCell<BTreeMap<usize, u32>>>,
        log: Rc<RefCell<Vec<Write>>>,
    }

    impl RegisterBlock for Regs {
        fn read32(&self, offset: usize) -> u32 {
            self.mem.borrow().get(&offset).copied().unwrap_or(0)
        }
        fn write32(&self, offset: usize, value: u32) {
            self.mem.borrow_mut().insert(offset, value);
            self.log.borrow_mut().push((self.name, offset, value));
        }
    }

    fn gpio() -> (Gpio<Regs, Regs>, [Regs; 3]) {
        let log = Rc::new(RefCell::new(Vec::new()));
        let block = |name| Regs {
            name,
            mem: Rc::default(),
            log: Rc::clone(&log),
        };
        let regs = [block("gpio0"), block("gpio1"), block("iomux")];
        let g = Gpio::new(regs[0].clone(), regs[1].clone(), regs[2].clone());
        (g, regs)
    }

    #[test]
    fn pins_map_to_controller_port_and_bit_as_the_vendor_numbers_them() {
        assert_eq!(Pin::new(10).unwrap().place(), (0, 1 << 10));
        assert_eq!(Pin::new(31).unwrap().place(), (0, 1 << 31));
        assert_eq!(Pin::new(32).unwrap().place(), (1, 1 << 0));
        assert_eq!(Pin::new(52).unwrap().place(), (1, 1 << 20));
        assert_eq!(Pin::new(64), None);
    }

    #[test]
    fn an_output_latches_its_level_then_turns_the_pad_to_gpio_keeping_other_bits() {
        let (mut g, regs) = gpio();
        // Drive strength 7, pad at 1.8 V (MSC), function 2, another pin's output bit.
        regs[2]
            .mem
            .borrow_mut()
            .insert(4 * 52, (7 << 1) | (1 << 9) | (2 << 11));
        regs[1].mem.borrow_mut().insert(0x00, 1 << 3);
        g.set_output(Pin::new(52).unwrap(), Level::High);
        let log = regs[0].log.borrow().clone();
        assert_eq!(
            log,
            [
                ("gpio1", 0x00, 1 << 3 | 1 << 20),
                ("gpio1", 0x04, 1 << 20),
                // OE, IE, PU, PD, ST; drive strength and MSC kept; function 0.
                ("iomux", 4 * 52, 0x1e1 | (7 << 1) | (1 << 9)),
            ]
        );
        g.write(Pin::new(52).unwrap(), Level::Low);
        assert_eq!(regs[1].read32(0x00), 1 << 3);
    }

    #[test]
    fn pad_levels_are_read_from_the_external_port() {
        let (g, regs) = gpio();
        regs[0].mem.borrow_mut().insert(0x50, 1 << 10);
        assert_eq!(g.read(Pin::new(10).unwrap()), Level::High);
        assert_eq!(g.read(Pin::new(11).unwrap()), Level::Low);
    }
}
