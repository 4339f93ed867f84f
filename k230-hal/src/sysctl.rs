//! System controller: USB resets and USB PHY host-mode setup, plus the K230's USB constants.
//!
//! Facts: canmv-k230/rtsmart `drivers/interdrv/sysctl/sysctl_reset/sysctl_rst.c` (reset register
//! 0x3c: reset bits are write-1-to-trigger, done bits write-1-to-clear, `sysctl_reset_hw_done`:
//! clear done, trigger reset, wait, check done) and CherryUSB `port/dwc2/usb_glue_kendryte.c`
//! (PHY "test ctl3" registers at 0x9158_5000 + 0x7C / + 0x9C; host mode sets IDPULLUP and the
//! DM/DP pull-downs).

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
}

/// Offset of the USB reset control register in the reset block.
pub const USB_RST_CTL: usize = 0x3c;
/// PHY ctl3 bit: ID pin pull-up (reads the ID pin so the port can act as host).
pub const PHY_IDPULLUP: u32 = 1 << 4;
/// PHY ctl3 bit: D- pull-down (15 kΩ, required of a host).
pub const PHY_DMPULLDOWN: u32 = 1 << 8;
/// PHY ctl3 bit: D+ pull-down (15 kΩ, required of a host).
pub const PHY_DPPULLDOWN: u32 = 1 << 9;

/// Time given to the reset logic between steps, as the vendor code waits (100 µs).
const RESET_STEP_US: u32 = 100;

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

    const fn done_bit(self) -> u32 {
        match self {
            Self::Usb0 => 1 << 28,
            Self::Usb1 => 1 << 29,
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
    /// The reset-done bit did not come up.
    ResetTimeout,
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

    /// Pulses the controller's reset and checks the done flag.
    ///
    /// The register's bits are write-1 (trigger / clear), so single bits are written rather than
    /// read-modified: writing back another port's pending done bit would clear it.
    pub fn reset_usb(
        &mut self,
        port: UsbPort,
        delay: &mut impl DelayNs,
    ) -> Result<(), SysctlError> {
        self.rst.write32(USB_RST_CTL, port.done_bit());
        delay.delay_us(RESET_STEP_US);
        self.rst.write32(USB_RST_CTL, port.reset_bit());
        delay.delay_us(RESET_STEP_US);
        if self.rst.read32(USB_RST_CTL) & port.done_bit() != 0 {
            Ok(())
        } else {
            log::error!("sysctl: {port:?} reset did not report done");
            Err(SysctlError::ResetTimeout)
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reg::MockRegisterBlock;
    use mockall::Sequence;

    #[derive(Default)]
    struct CountingDelay(u64);

    impl DelayNs for CountingDelay {
        fn delay_ns(&mut self, ns: u32) {
            self.0 += u64::from(ns);
        }
    }

    fn reset_block(
        seq: &mut Sequence,
        clear: u32,
        trigger: u32,
        readback: u32,
    ) -> MockRegisterBlock {
        let mut rst = MockRegisterBlock::new();
        rst.expect_write32()
            .withf(move |&o, &v| o == 0x3c && v == clear)
            .times(1)
            .in_sequence(seq)
            .return_const(());
        rst.expect_write32()
            .withf(move |&o, &v| o == 0x3c && v == trigger)
            .times(1)
            .in_sequence(seq)
            .return_const(());
        rst.expect_read32()
            .withf(|&o| o == 0x3c)
            .times(1)
            .in_sequence(seq)
            .return_const(readback);
        rst
    }

    #[test]
    fn usb1_reset_clears_done_triggers_and_checks_bit_29() {
        let mut seq = Sequence::new();
        let rst = reset_block(&mut seq, 1 << 29, 1 << 1, 1 << 29);
        let mut sc = Sysctl::new(rst, MockRegisterBlock::new());
        let mut delay = CountingDelay::default();
        assert_eq!(sc.reset_usb(UsbPort::Usb1, &mut delay), Ok(()));
        assert!(delay.0 >= 200_000, "waited {} ns", delay.0);
    }

    #[test]
    fn usb0_reset_uses_bits_0_and_28() {
        let mut seq = Sequence::new();
        let rst = reset_block(&mut seq, 1 << 28, 1 << 0, 1 << 28);
        let mut sc = Sysctl::new(rst, MockRegisterBlock::new());
        assert_eq!(
            sc.reset_usb(UsbPort::Usb0, &mut CountingDelay::default()),
            Ok(())
        );
    }

    #[test]
    fn reset_without_done_fails() {
        let mut seq = Sequence::new();
        // USB0's done bit is set, USB1's is not: USB1 must not take it for its own.
        let rst = reset_block(&mut seq, 1 << 29, 1 << 1, 1 << 28);
        let mut sc = Sysctl::new(rst, MockRegisterBlock::new());
        assert_eq!(
            sc.reset_usb(UsbPort::Usb1, &mut CountingDelay::default()),
            Err(SysctlError::ResetTimeout)
        );
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
    fn ports_know_their_base_and_irq() {
        assert_eq!(UsbPort::Usb1.base(), 0x9154_0000);
        assert_eq!(UsbPort::Usb1.irq(), 174);
        assert_eq!(UsbPort::Usb0.base(), 0x9150_0000);
        assert_eq!(UsbPort::Usb0.irq(), 173);
    }
}
