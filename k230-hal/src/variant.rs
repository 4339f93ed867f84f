//! K230 boards, and the GPIO that powers their RJ45 NIC (the RTL8152 on USB1).
//!
//! Some boards switch the NIC's VBUS with a GPIO; the vendor firmware drives it inactive,
//! starts the USB host (its thread resets the controller and puts the PHY in host mode), waits
//! 100 ms and drives it active, so that every boot looks like a cold one to the NIC (after a
//! reset-button press the GPIO latch keeps VBUS up and an enumerated NIC would keep its old
//! address); releases before the power cycle also drove it active only after the reset and PHY
//! set-up. [`Vbus::around`] does the same around the controller's start.
//!
//! Facts: canmv-k230/rtsmart `bsp/maix3/configs/*_defconfig` (`CONFIG_CANMV_USB_PWR_PIN`: 10 on
//! `k230_canmv_lckfb`, `k230_canmv_yahboom` and `k230_labplus_1956`, 52 on `k230_evb`; not set,
//! so no switch, on `k230_canmv`, `k230_canmv_v3p0` and `k230_canmv_01studio`),
//! `components/Kconfig` (`CANMV_USB_PWR_PIN_VALID_VAL`, default 1: active high, no board
//! overrides it), `app_canmv/main.c` (the power cycle around `usbh_initialize_async`,
//! `CANMV_USB_PWR_CYCLE_MS` 100), CherryUSB `port/dwc2/usb_glue_kendryte*.c`
//! (`usb_hc_low_level_init`: reset, PHY ctl3, then VBUS on).

use crate::gpio::{Gpio, Level, Pin};
use crate::reg::RegisterBlock;
use embedded_hal::delay::DelayNs;

/// How long VBUS stays off in a power cycle.
pub const VBUS_CYCLE_MS: u32 = 100;

/// A K230 board.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BoardVariant {
    /// CanMV-K230 v1.0/v1.1 (`k230_canmv`).
    CanMvV1,
    /// CanMV-K230 v3.0 (`k230_canmv_v3p0`).
    CanMvV3,
    /// 01Studio CanMV-K230 (`k230_canmv_01studio`).
    Studio01,
    /// LCKFB (LiangShanPi) K230 (`k230_canmv_lckfb`).
    Lckfb,
    /// Yahboom K230 (`k230_canmv_yahboom`).
    Yahboom,
    /// LabPlus 1956 (`k230_labplus_1956`).
    LabPlus1956,
    /// Canaan's K230 EVB (`k230_evb`).
    Evb,
}

impl BoardVariant {
    /// Every variant.
    pub const ALL: [Self; 7] = [
        Self::CanMvV1,
        Self::CanMvV3,
        Self::Studio01,
        Self::Lckfb,
        Self::Yahboom,
        Self::LabPlus1956,
        Self::Evb,
    ];

    /// The variant's name as `--board-variant` takes it.
    pub const fn name(self) -> &'static str {
        match self {
            Self::CanMvV1 => "canmv-v1",
            Self::CanMvV3 => "canmv-v3",
            Self::Studio01 => "01studio",
            Self::Lckfb => "lckfb",
            Self::Yahboom => "yahboom",
            Self::LabPlus1956 => "labplus-1956",
            Self::Evb => "evb",
        }
    }

    /// The variant called `name` (usable in constants, e.g. on a build-time setting).
    pub const fn from_name(name: &str) -> Option<Self> {
        let mut i = 0;
        while i < Self::ALL.len() {
            if eq(Self::ALL[i].name().as_bytes(), name.as_bytes()) {
                return Some(Self::ALL[i]);
            }
            i += 1;
        }
        None
    }

    /// The GPIO that switches the NIC's VBUS, if the board has one.
    pub const fn vbus(self) -> Option<Vbus> {
        let pin = match self {
            Self::CanMvV1 | Self::CanMvV3 | Self::Studio01 => return None,
            Self::Lckfb | Self::Yahboom | Self::LabPlus1956 => 10,
            Self::Evb => 52,
        };
        match Pin::new(pin) {
            Some(pin) => Some(Vbus {
                pin,
                on: Level::High,
            }),
            None => None,
        }
    }
}

/// Byte-wise equality usable in constants.
const fn eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// A GPIO switching the NIC's VBUS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vbus {
    /// The pin.
    pub pin: Pin,
    /// The level that powers the NIC.
    pub on: Level,
}

impl Vbus {
    /// Runs `start` (the USB controller's reset and start) with the NIC powered the vendor's
    /// way: VBUS off, `start`, [`VBUS_CYCLE_MS`], VBUS on. The NIC is off for at least that
    /// long, and its power comes only once the controller and its PHY are in host mode. VBUS
    /// comes on whatever `start` returns, as the vendor's does.
    pub fn around<R: RegisterBlock, M: RegisterBlock, T>(
        self,
        gpio: &mut Gpio<R, M>,
        delay: &mut impl DelayNs,
        start: impl FnOnce() -> T,
    ) -> T {
        let off = match self.on {
            Level::High => Level::Low,
            Level::Low => Level::High,
        };
        gpio.set_output(self.pin, off);
        let started = start();
        delay.delay_ms(VBUS_CYCLE_MS);
        gpio.write(self.pin, self.on);
        started
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reg::MockRegisterBlock;
    use mockall::Sequence;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        for v in BoardVariant::ALL {
            assert_eq!(BoardVariant::from_name(v.name()), Some(v));
        }
        assert_eq!(BoardVariant::from_name("canmv"), None);
        assert_eq!(BoardVariant::from_name(""), None);
    }

    #[test]
    fn vbus_pins_follow_the_vendor_configs() {
        let pin = |v: BoardVariant| v.vbus().map(|b| (b.pin.number(), b.on));
        for v in [
            BoardVariant::CanMvV1,
            BoardVariant::CanMvV3,
            BoardVariant::Studio01,
        ] {
            assert_eq!(pin(v), None, "{v:?}");
        }
        for v in [
            BoardVariant::Lckfb,
            BoardVariant::Yahboom,
            BoardVariant::LabPlus1956,
        ] {
            assert_eq!(pin(v), Some((10, Level::High)), "{v:?}");
        }
        assert_eq!(pin(BoardVariant::Evb), Some((52, Level::High)));
    }

    /// Time in a delay, shared with the register mocks' expectations.
    struct Delay(Arc<AtomicU64>);

    impl DelayNs for Delay {
        fn delay_ns(&mut self, ns: u32) {
            self.0.fetch_add(u64::from(ns), Ordering::Relaxed);
        }
    }

    /// VBUS goes off, the controller starts (reset, PHY host mode), and VBUS comes on 100 ms
    /// after that: the vendor's order.
    #[test]
    fn vbus_is_off_while_the_controller_starts_and_on_100_ms_after() {
        let now = Arc::new(AtomicU64::new(0));
        let off = Arc::new(AtomicBool::new(false));
        let started_at = Arc::new(AtomicU64::new(u64::MAX));
        let mut seq = Sequence::new();
        let mut gpio0 = MockRegisterBlock::new();
        let mut iomux = MockRegisterBlock::new();
        let bit = 1 << 10;
        // Off: data bit cleared, then output, then the pad routed to the GPIO.
        gpio0
            .expect_modify32()
            .withf(move |&o, &c, &s| o == 0x00 && c == bit && s == 0)
            .times(1)
            .in_sequence(&mut seq)
            .return_const(());
        gpio0
            .expect_modify32()
            .withf(move |&o, &c, &s| o == 0x04 && c == 0 && s == bit)
            .times(1)
            .in_sequence(&mut seq)
            .return_const(());
        let routed = Arc::clone(&off);
        iomux
            .expect_modify32()
            .withf(|&o, _, &s| o == 40 && s & (1 << 7) != 0)
            .times(1)
            .in_sequence(&mut seq)
            .returning(move |_, _, _| routed.store(true, Ordering::Relaxed));
        let (at, started) = (Arc::clone(&now), Arc::clone(&started_at));
        gpio0
            .expect_modify32()
            .withf(move |&o, &c, &s| {
                let since_start = at
                    .load(Ordering::Relaxed)
                    .checked_sub(started.load(Ordering::Relaxed));
                o == 0x00 && c == bit && s == bit && since_start >= Some(100_000_000)
            })
            .times(1)
            .in_sequence(&mut seq)
            .return_const(());
        let mut gpio = Gpio::new(gpio0, MockRegisterBlock::new(), iomux);
        let vbus = BoardVariant::Lckfb.vbus().unwrap();
        let mut delay = Delay(Arc::clone(&now));
        let result = vbus.around(&mut gpio, &mut delay, || {
            assert!(
                off.load(Ordering::Relaxed),
                "VBUS is off before the controller starts"
            );
            // The start takes its time (the reset's tick, the core's own resets).
            now.fetch_add(30_000_000, Ordering::Relaxed);
            started_at.store(now.load(Ordering::Relaxed), Ordering::Relaxed);
            "started"
        });
        assert_eq!(result, "started");
        assert_eq!(now.load(Ordering::Relaxed), 130_000_000);
    }
}
