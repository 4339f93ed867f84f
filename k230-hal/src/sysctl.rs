//! System controller: USB resets and USB PHY host-mode setup, the K230's USB constants, and the
//! whole-chip reset ([`reset_soc`]).
//!
//! Facts: canmv-k230/rtsmart `drivers/interdrv/sysctl/sysctl_reset/sysctl_rst.c` (reset register
//! 0x3c: reset bits are write-1-to-trigger, done bits write-1-to-clear; USB0 reset bit 0, done
//! bit 28, its AHB side done bit 30; USB1 reset bit 1, done bits 29 and 31; `sysctl_reset` for a
//! USB port: clear both done bits, trigger the reset, `rt_thread_delay(1)` (one tick, 1 ms with
//! the K230 configs' `RT_TICK_PER_SECOND` 1000), then poll until both done bits are set, giving
//! up after a bounded loop) and CherryUSB `port/dwc2/usb_glue_kendryte.c` (PHY "test ctl3"
//! registers at 0x9158_5000 + 0x7C / + 0x9C; host mode sets IDPULLUP and the DM/DP pull-downs).
//!
//! The chip reset: the system controller's boot block at 0x9110_2000 holds `soc_glb_rst` at
//! offset 0x60, whose bit 0 resets the SoC and bit 16 enables the write of bit 0 (the K230's
//! pattern of bit n + 16 enabling bit n, which the vendor's Linux reset driver notes for the CPU
//! reset registers: kendryte/k230_sdk `src/little/linux/drivers/reset/canaan/reset-k230.c`).
//! Every vendor reboot path sets those two bits: U-Boot's `do_reset` and CanMV's MicroPython `machine.reset`
//! write 0x10001 (canmv-k230/u-boot `arch/riscv/lib/reset.c`, base in
//! `include/kendryte/k230_platform.h`; canmv-k230/canmv `port/machine/modmachine.c`), RT-Smart's
//! `reboot` (`rt_hw_cpu_reset` in `board/board.c`) and the later CanMV `machine.reset`
//! (kendryte/canmv_k230 `port/machine/modmachine.c`, `utils_reboot`) OR them into what they read
//! (canmv-k230/rtsmart `drivers/interdrv/sysctl/sysctl_boot/sysctl_boot.c`, `sysctl_boot.h`).
//! [`reset_soc`] writes, as U-Boot and canmv-k230/canmv's MicroPython do.
use crate::reg::RegisterBlock;
use embedded_hal::delay::DelayNs;

/// K230 addresses and interrupt numbers of the USB path (k230.dtsi, CherryUSB kendryte glue).
pub mod k230 {
    /// USB0 DWC2 controller registers.
    pub const USB0_BASE: usize = 0x9150_0000;
    /// USB1 DWC2 controller registers (the RTL8152 hangs off this one).
    pub const USB1_BASE: usize = 0x9154_0000;
    /// Size of one DWC2 register window.
    pub const USB_REG_LEN: usize = 0x4_0000;
    /// PLIC interrupt of USB0.
    pub const USB0_IRQ: u32 = 173;
    /// PLIC interrupt of USB1.
    pub const USB1_IRQ: u32 = 174;
    /// Reset control block of the system controller.
    pub const SYSCTL_RST_BASE: usize = 0x9110_1000;
    /// Size of the reset control block window used here.
    pub const SYSCTL_RST_LEN: usize = 0x100;
    /// USB PHY control block (holds the per-port "test ctl3" registers).
    pub const USB_PHY_CTL_BASE: usize = 0x9158_5000;
    /// Size of the PHY control window used here.
    pub const USB_PHY_CTL_LEN: usize = 0x100;
    /// Boot control block of the system controller (PLLs, boot mode, the SoC global reset).
    pub const SYSCTL_BOOT_BASE: usize = 0x9110_2000;
    /// Size of the boot control block window used here.
    pub const SYSCTL_BOOT_LEN: usize = 0x100;
}

/// Offset of the USB reset control register in the reset block.
pub const USB_RST_CTL: usize = 0x3c;
/// PHY ctl3 bit: ID pin pull-up (reads the ID pin so the port can act as host).
pub const PHY_IDPULLUP: u32 = 1 << 4;
/// PHY ctl3 bit: D- pull-down (15 kΩ, required of a host).
pub const PHY_DMPULLDOWN: u32 = 1 << 8;
/// PHY ctl3 bit: D+ pull-down (15 kΩ, required of a host).
pub const PHY_DPPULLDOWN: u32 = 1 << 9;

/// Offset of the SoC global reset register (`soc_glb_rst`) in the boot block.
pub const SOC_GLB_RST: usize = 0x60;
/// `soc_glb_rst` bit 0: reset the SoC.
pub const SOC_RESET: u32 = 1 << 0;
/// `soc_glb_rst` bit 16: the write enable of bit 0.
pub const SOC_RESET_WRITE_ENABLE: u32 = 1 << 16;

/// Wait after triggering a USB reset before looking at the done bits: the vendor waits one
/// RT-Smart tick (1 ms).
pub const RESET_TICK_US: u32 = 1_000;
/// How long the done bits are polled after that (the vendor's loop runs about 1.1 ms; this
/// leaves room for a slower reset).
pub const RESET_TIMEOUT_US: u32 = 10_000;
/// Step between two looks at the done bits.
const RESET_POLL_US: u32 = 10;

/// One of the K230's two USB controllers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UsbPort {
    /// USB0 at 0x9150_0000.
    Usb0,
    /// USB1 at 0x9154_0000.
    Usb1,
}

impl UsbPort {
    /// The controller's register base.
    pub const fn base(self) -> usize {
        match self {
            Self::Usb0 => k230::USB0_BASE,
            Self::Usb1 => k230::USB1_BASE,
        }
    }

    /// The controller's PLIC interrupt.
    pub const fn irq(self) -> u32 {
        match self {
            Self::Usb0 => k230::USB0_IRQ,
            Self::Usb1 => k230::USB1_IRQ,
        }
    }

    const fn reset_bit(self) -> u32 {
        match self {
            Self::Usb0 => 1 << 0,
            Self::Usb1 => 1 << 1,
        }
    }

    /// The done bits of the controller and of its AHB side.
    const fn done_bits(self) -> u32 {
        match self {
            Self::Usb0 => 1 << 28 | 1 << 30,
            Self::Usb1 => 1 << 29 | 1 << 31,
        }
    }

    const fn phy_ctl3(self) -> usize {
        match self {
            Self::Usb0 => 0x7c,
            Self::Usb1 => 0x9c,
        }
    }
}

/// Why a system-controller operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SysctlError {
    /// The port's reset did not report done within [`RESET_TIMEOUT_US`] after the tick:
    /// `missing` holds the done bits (controller, AHB side) that stayed clear.
    ResetTimeout {
        /// The port being reset.
        port: UsbPort,
        /// Done bits of register 0x3c that never came up.
        missing: u32,
    },
}

/// The parts of the system controller the USB path needs: the reset block and the PHY controls.
pub struct Sysctl<R, P> {
    rst: R,
    phy: P,
}

impl<R: RegisterBlock, P: RegisterBlock> Sysctl<R, P> {
    /// Wraps the reset block (at [`k230::SYSCTL_RST_BASE`]) and the USB PHY control block (at
    /// [`k230::USB_PHY_CTL_BASE`]).
    pub fn new(rst: R, phy: P) -> Self {
        Self { rst, phy }
    }

    /// Resets the controller the vendor's way: clears its two done bits, triggers the reset,
    /// waits [`RESET_TICK_US`], then polls (bounded by [`RESET_TIMEOUT_US`]) until both done
    /// bits are set.
    ///
    /// The register's bits are write-1 (trigger / clear), so single bits are written rather than
    /// read-modified: writing back another port's pending done bit would clear it.
    pub fn reset_usb(
        &mut self,
        port: UsbPort,
        delay: &mut impl DelayNs,
    ) -> Result<(), SysctlError> {
        let done = port.done_bits();
        self.rst.write32(USB_RST_CTL, done);
        self.rst.write32(USB_RST_CTL, port.reset_bit());
        delay.delay_us(RESET_TICK_US);
        let mut seen = 0;
        for _ in 0..=RESET_TIMEOUT_US / RESET_POLL_US {
            seen = self.rst.read32(USB_RST_CTL) & done;
            if seen == done {
                return Ok(());
            }
            delay.delay_us(RESET_POLL_US);
        }
        let missing = done & !seen;
        log::error!("sysctl: {port:?} reset did not report done (bits {missing:#x} clear)");
        Err(SysctlError::ResetTimeout { port, missing })
    }

    /// Configures the port's PHY for host mode: ID pull-up and both data-line pull-downs.
    pub fn usb_phy_host_mode(&mut self, port: UsbPort) {
        self.phy.modify32(
            port.phy_ctl3(),
            0,
            PHY_IDPULLUP | PHY_DMPULLDOWN | PHY_DPPULLDOWN,
        );
    }

    /// Resets the controller and puts its PHY in host mode: what the DWC2 driver expects
    /// before [`crate::usb::dwc2`] initialises the core.
    pub fn usb_host_init(
        &mut self,
        port: UsbPort,
        delay: &mut impl DelayNs,
    ) -> Result<(), SysctlError> {
        self.reset_usb(port, delay)?;
        self.usb_phy_host_mode(port);
        Ok(())
    }
}

/// Resets the whole chip as the vendor's reboot does: writes the reset bit of the boot block's
/// `soc_glb_rst` (at [`k230::SYSCTL_BOOT_BASE`]) together with its write enable. On the silicon
/// the chip restarts from its boot ROM; the caller waits for that and never resumes.
pub fn reset_soc(boot: &impl RegisterBlock) {
    boot.write32(SOC_GLB_RST, SOC_RESET_WRITE_ENABLE | SOC_RESET);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reg::MockRegisterBlock;
    use std::cell::{Cell, RefCell};
    use std::rc::Rc;

    /// The reset register as the vendor code treats it: done bits are write-1-to-clear, reset
    /// bits write-1-to-trigger; a triggered reset reports done (controller and AHB bits)
    /// `latency_us` later, or never for the bits in `stuck`. Time moves only through the
    /// delay ([`Clock`]).
    struct ResetRegister {
        clock: Clock,
        value: Cell<u32>,
        latency_us: u64,
        stuck: u32,
        pending: Cell<Option<(u64, u32)>>,
        /// (time, value) of every write.
        writes: RefCell<Vec<(u64, u32)>>,
        first_read_after_trigger: Cell<Option<u64>>,
    }

    #[derive(Clone, Default)]
    struct Clock(Rc<Cell<u64>>);

    impl DelayNs for Clock {
        fn delay_ns(&mut self, ns: u32) {
            self.0.set(self.0.get() + u64::from(ns));
        }
    }

    impl Clock {
        fn us(&self) -> u64 {
            self.0.get() / 1000
        }
    }

    /// (reset bit, controller done bit, AHB done bit) of each port (rtsmart `sysctl_rst.c`).
    const BITS: [(u32, u32, u32); 2] = [(0, 28, 30), (1, 29, 31)];

    impl ResetRegister {
        fn new(clock: &Clock, initial: u32, latency_us: u64, stuck: u32) -> Self {
            Self {
                clock: clock.clone(),
                value: Cell::new(initial),
                latency_us,
                stuck,
                pending: Cell::new(None),
                writes: RefCell::new(Vec::new()),
                first_read_after_trigger: Cell::new(None),
            }
        }

        fn settle(&self) {
            if let Some((at, bits)) = self.pending.get() {
                if self.clock.us() >= at {
                    self.value.set(self.value.get() | (bits & !self.stuck));
                    self.pending.set(None);
                }
            }
        }
    }

    impl RegisterBlock for ResetRegister {
        fn read32(&self, offset: usize) -> u32 {
            assert_eq!(offset, USB_RST_CTL);
            self.settle();
            if self.first_read_after_trigger.get().is_none() && !self.writes.borrow().is_empty() {
                self.first_read_after_trigger.set(Some(self.clock.us()));
            }
            self.value.get()
        }

        fn write32(&self, offset: usize, value: u32) {
            assert_eq!(offset, USB_RST_CTL);
            self.settle();
            self.writes.borrow_mut().push((self.clock.us(), value));
            let done_mask = BITS.iter().fold(0, |m, b| m | 1 << b.1 | 1 << b.2);
            self.value.set(self.value.get() & !(value & done_mask));
            for (reset, done, ahb) in BITS {
                if value & (1 << reset) != 0 {
                    let at = self.clock.us() + self.latency_us;
                    self.pending.set(Some((at, 1 << done | 1 << ahb)));
                    self.first_read_after_trigger.set(None);
                }
            }
        }
    }

    fn reset_on(
        reg: ResetRegister,
        clock: &Clock,
        port: UsbPort,
    ) -> (Result<(), SysctlError>, ResetRegister) {
        let mut sc = Sysctl::new(reg, MockRegisterBlock::new());
        let result = sc.reset_usb(port, &mut clock.clone());
        (result, sc.rst)
    }

    #[test]
    fn usb1_reset_clears_both_done_bits_triggers_waits_a_tick_and_polls_both() {
        let clock = Clock::default();
        // Done bits left set by an earlier reset must not count: done comes 3 ms after the trigger.
        let reg = ResetRegister::new(&clock, 1 << 29 | 1 << 31 | 1 << 28, 3_000, 0);
        let (result, reg) = reset_on(reg, &clock, UsbPort::Usb1);
        assert_eq!(result, Ok(()));
        let writes = reg.writes.borrow().clone();
        assert_eq!(writes.len(), 2, "{writes:x?}");
        assert_eq!(
            writes[0].1,
            1 << 29 | 1 << 31,
            "clear USB1's done and AHB done bits only"
        );
        assert_eq!(writes[1].1, 1 << 1, "trigger USB1's reset only");
        let first_read = reg.first_read_after_trigger.get().expect("polled");
        assert!(
            first_read >= writes[1].0 + 1_000,
            "read at {first_read} us, before a 1 ms tick"
        );
        assert!(clock.us() >= 3_000, "done only once the reset finished");
        assert_eq!(
            reg.value.get() & 1 << 28,
            1 << 28,
            "USB0's done bit untouched"
        );
    }

    #[test]
    fn usb0_reset_uses_bits_0_28_and_30() {
        let clock = Clock::default();
        let reg = ResetRegister::new(&clock, 1 << 29, 200, 0);
        let (result, reg) = reset_on(reg, &clock, UsbPort::Usb0);
        assert_eq!(result, Ok(()));
        let writes: Vec<u32> = reg.writes.borrow().iter().map(|w| w.1).collect();
        assert_eq!(writes, [1 << 28 | 1 << 30, 1 << 0]);
        assert_eq!(
            reg.value.get() & 1 << 29,
            1 << 29,
            "USB1's done bit untouched"
        );
    }

    #[test]
    fn a_done_bit_that_never_comes_is_a_bounded_timeout_naming_it() {
        for (stuck, missing) in [
            (1 << 31, 1 << 31),
            (1 << 29, 1 << 29),
            (3 << 30 | 1 << 29, 5 << 29),
        ] {
            let clock = Clock::default();
            let reg = ResetRegister::new(&clock, 0, 100, stuck);
            let (result, _) = reset_on(reg, &clock, UsbPort::Usb1);
            assert_eq!(
                result,
                Err(SysctlError::ResetTimeout {
                    port: UsbPort::Usb1,
                    missing: missing & (5 << 29)
                })
            );
            let limit = u64::from(RESET_TICK_US + RESET_TIMEOUT_US) + 1_000;
            assert!(clock.us() <= limit, "gave up after {} us", clock.us());
        }
    }

    #[test]
    fn phy_host_mode_sets_pullup_and_pulldowns_keeping_other_bits() {
        for (port, off) in [(UsbPort::Usb0, 0x7c), (UsbPort::Usb1, 0x9c)] {
            let mut phy = MockRegisterBlock::new();
            phy.expect_modify32()
                .withf(move |&o, &c, &s| o == off && c == 0 && s == (1 << 4) | (1 << 8) | (1 << 9))
                .times(1)
                .return_const(());
            let mut sc = Sysctl::new(MockRegisterBlock::new(), phy);
            sc.usb_phy_host_mode(port);
        }
    }

    #[test]
    fn soc_reset_writes_bit_0_and_its_write_enable_to_0x9110_2060_without_reading() {
        // A mock without read expectations: a read (as RT-Smart's `|=` does) would panic.
        let mut boot = MockRegisterBlock::new();
        boot.expect_write32()
            .withf(|&offset, &value| offset == 0x60 && value == 0x1_0001)
            .times(1)
            .return_const(());
        reset_soc(&boot);
        const { assert!(k230::SYSCTL_BOOT_BASE + SOC_GLB_RST == 0x9110_2060) };
        const { assert!(SOC_GLB_RST + 4 <= k230::SYSCTL_BOOT_LEN) };
    }

    #[test]
    fn ports_know_their_base_and_irq() {
        assert_eq!(UsbPort::Usb1.base(), 0x9154_0000);
        assert_eq!(UsbPort::Usb1.irq(), 174);
        assert_eq!(UsbPort::Usb0.base(), 0x9150_0000);
        assert_eq!(UsbPort::Usb0.irq(), 173);
    }
}
