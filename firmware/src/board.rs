//! Boards the firmware runs on: where RAM, the console UART and the timer are, how the caches
//! are set up and what powers the NIC.
//!
//! RAM origin and size live in the board's linker script (`link/*.ld`) as well; a unit test keeps
//! the two in step.

use crate::clint::TimeSource;
use k230_board::description::{self, K230_USB1};
use k230_board::{Entropy, Net, UsbNic};
use k230_hal::uart::{Config, Stride};
use k230_hal::variant::BoardVariant;

/// How the console UART's line is set up at boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UartLine {
    /// Keep what the boot loader programmed (the K230's UART clock is unconfirmed, and U-Boot
    /// already runs the console at 115200 8N1).
    Keep,
    /// Program this rate and 8N1.
    Program(Config),
}

/// The console UART.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UartSpec {
    /// Physical base address.
    pub base: usize,
    /// Register spacing.
    pub stride: Stride,
    /// Line setup at boot.
    pub line: UartLine,
}

/// The console UART's kind and place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsoleSpec {
    /// A 16550-compatible UART (the K230's DW APB UART, QEMU virt's NS16550A).
    Ns16550(UartSpec),
    /// An ARM PL011 (QEMU raspi3b's UART0), switched on for 8N1 at its current rate.
    Pl011 {
        /// Physical base address.
        base: usize,
    },
}

/// The timer that interrupts every millisecond and counts time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerSpec {
    /// RISC-V: this hart's `mtimecmp` in a CLINT (at +0x4000), the time counter read from
    /// `time`.
    Clint {
        /// CLINT base.
        base: usize,
        /// Where the time counter is read.
        time: TimeSource,
    },
    /// AArch64: the generic timer's virtual counter and timer (`CNTVCT_EL0`, `CNTV_CVAL_EL0`),
    /// whose interrupt reaches the core through the BCM2836 local interrupt controller.
    ArmGeneric {
        /// Base of the BCM2836 local peripherals (Core Timers interrupt control at +0x40, core
        /// IRQ source at +0x60, one word per core: QA7 rev 3.4 sections 4.6 and 4.10).
        local_intc: usize,
    },
}

/// How the board powers off or resets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PowerSpec {
    /// The K230 system controller: the whole chip resets through its boot block's global reset
    /// register (`k230_hal::sysctl::reset_soc`); no power-off, a halt parks the core.
    K230Sysctl {
        /// Base of the boot block.
        boot: usize,
    },
    /// A SiFive test finisher (QEMU virt): power off with an exit status, reset.
    SifiveTest {
        /// Its register.
        base: usize,
    },
    /// The BCM2835 power-management watchdog (raspi3b): a full reset through `PM_RSTC`; QEMU
    /// powers off when `PM_RSTS` names partition 63 first (`hw/misc/bcm2835_powermgt.c`).
    Bcm2835Pm {
        /// Base of the power-management block.
        base: usize,
    },
}

/// How the CPU's caches are set up at boot, and so what DMA needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caches {
    /// As the machine starts (QEMU models no caches): DMA needs no maintenance.
    AsReset,
    /// Switched on as the vendor does on the K230's C908 (`k230_hal::c908::enable_caches`):
    /// DMA buffers need the C908's cache maintenance.
    TheadC908,
    /// AArch64: the MMU on over an identity map, RAM Normal cacheable below `devices_from`,
    /// Device memory from there to 2 GiB (`crate::mmu`); QEMU models no caches, so DMA needs no
    /// maintenance there.
    ArmIdentityMap {
        /// Where the first device register is: a multiple of 2 MiB, above all RAM used.
        devices_from: usize,
    },
}

/// A board's memory map and devices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Board {
    /// Short name, as the `board-*` feature spells it.
    pub name: &'static str,
    /// First byte of RAM the firmware is linked into (its load address).
    pub ram_base: usize,
    /// Bytes of RAM the firmware may use from `ram_base`.
    pub ram_size: usize,
    /// The console.
    pub console: ConsoleSpec,
    /// The timer.
    pub timer: TimerSpec,
    /// The time counter's frequency in Hz.
    pub timebase_hz: u64,
    /// The caches.
    pub caches: Caches,
    /// The CPU clock in Hz (`machine.freq()`); 0 where there is none (QEMU).
    pub cpu_hz: u64,
    /// Power-off and reset.
    pub power: PowerSpec,
    /// The network interface: the board assembly's description (`k230-board`), which upy-cmodule
    /// brings up.
    pub nic: Net,
    /// The board's noise source (the network's secret, `os.urandom`), if it has one.
    pub entropy: Option<Entropy>,
}

/// The K230 board variant this build is for: `K230_BOARD_VARIANT` at build time (`cargo xtask
/// build --board-variant NAME`, names as [`BoardVariant::name`]), CanMV-K230 v1 when unset.
pub const K230_VARIANT: BoardVariant = match option_env!("K230_BOARD_VARIANT") {
    None => BoardVariant::CanMvV1,
    Some(name) => match BoardVariant::from_name(name) {
        Some(variant) => variant,
        None => panic!("K230_BOARD_VARIANT names no board of k230_hal::variant::BoardVariant"),
    },
};

/// The K230 big core. Facts: `../shared/design/k230-facts.md` (UART0 DW APB 16550 at
/// 0x9140_0000 stride 4; CLINT 0xF_0400_0000 at 27 MHz, time from the `time` CSR; DDR from 0;
/// USB1 DWC2 at 0x9154_0000); the image starts at [`k230_hal::boot::IMAGE_BASE`], above what
/// U-Boot writes, and ends at 64 MiB (below the vendor U-Boot's staging buffers at 98 MiB and
/// above); caches as `k230_hal::c908` sets them; VBUS per [`K230_VARIANT`]; reset through the
/// system controller as the vendor's reboot does (`k230_hal::sysctl`).
pub const K230: Board = Board {
    name: "k230",
    ram_base: k230_hal::boot::IMAGE_BASE as usize,
    ram_size: (64 << 20) - k230_hal::boot::IMAGE_BASE as usize,
    console: ConsoleSpec::Ns16550(UartSpec {
        base: 0x9140_0000,
        stride: Stride::Word,
        line: UartLine::Keep,
    }),
    timer: TimerSpec::Clint {
        base: 0xF_0400_0000,
        time: TimeSource::Csr,
    },
    timebase_hz: 27_000_000,
    caches: Caches::TheadC908,
    // The big core, CPU1 (K230 datasheet 1.2.1), as U-Boot clocks it: `harts_early_init` writes
    // 0x80199805 to 0x9110_0004 (canmv-k230/u-boot `arch/riscv/cpu/k230/cpu.c`), the value the
    // k230_sdk U-Boot marks "1.6Ghz" (kendryte/k230_sdk
    // `src/little/uboot/board/canaan/common/k230_img.c`).
    cpu_hz: 1_600_000_000,
    power: PowerSpec::K230Sysctl {
        boot: k230_hal::sysctl::k230::SYSCTL_BOOT_BASE,
    },
    nic: Net::Usb(UsbNic {
        vbus: K230_VARIANT.vbus(),
        ..K230_USB1
    }),
    entropy: Some(Entropy::K230Trng),
};

/// QEMU `virt` (QEMU 7.2 `hw/riscv/virt.c`): NS16550A at 0x1000_0000 with a 3.6864 MHz clock,
/// CLINT at 0x0200_0000 at 10 MHz, test finisher at 0x10_0000, RAM at 0x8000_0000.
pub const QEMU_VIRT: Board = Board {
    name: "qemu-virt",
    ram_base: 0x8000_0000,
    ram_size: 128 << 20,
    console: ConsoleSpec::Ns16550(UartSpec {
        base: 0x1000_0000,
        stride: Stride::Byte,
        line: UartLine::Program(Config {
            clock_hz: 3_686_400,
            baud: 115_200,
        }),
    }),
    timer: TimerSpec::Clint {
        base: 0x0200_0000,
        time: TimeSource::Mtime,
    },
    timebase_hz: 10_000_000,
    caches: Caches::AsReset,
    cpu_hz: 0,
    power: PowerSpec::SifiveTest { base: 0x10_0000 },
    nic: Net::Absent,
    // QEMU virt has no entropy device without virtio-rng.
    entropy: None,
};

/// QEMU `raspi3b` (QEMU 7.2 `hw/arm/raspi.c`, `bcm2836.c`, `bcm2835_peripherals.c`): four
/// Cortex-A53, RAM from 0 (the ELF is loaded at its addresses, core 0 starts at its entry, at
/// EL3), peripherals from 0x3F00_0000: PL011 UART0 at +0x20_1000, power management at
/// +0x10_0000, RNG at +0x10_4000, DWC2 USB at +0x98_0000; the BCM2836 local peripherals at
/// 0x4000_0000. The generic
/// timer runs at 62.5 MHz (QEMU's `GTIMER_SCALE` of 16 ns).
pub const QEMU_RASPI3B: Board = Board {
    name: "qemu-raspi3b",
    ram_base: 0x8_0000,
    ram_size: 128 << 20,
    console: ConsoleSpec::Pl011 { base: 0x3F20_1000 },
    timer: TimerSpec::ArmGeneric {
        local_intc: 0x4000_0000,
    },
    timebase_hz: 62_500_000,
    caches: Caches::ArmIdentityMap {
        devices_from: 0x3F00_0000,
    },
    cpu_hz: 0,
    power: PowerSpec::Bcm2835Pm { base: 0x3F10_0000 },
    // The board assembly's raspi3b description (DWC2 at 0x3F98_0000, no reset, no
    // GPIO-switched VBUS: QEMU's root port is always powered).
    nic: Net::Usb(description::QEMU_RASPI3B),
    entropy: Some(description::QEMU_RASPI3B_RNG),
};

/// The board this build is for.
#[cfg(feature = "board-k230")]
pub const SELECTED: Board = K230;
/// The board this build is for.
#[cfg(all(feature = "board-qemu-virt", not(feature = "board-k230")))]
pub const SELECTED: Board = QEMU_VIRT;
/// The board this build is for.
#[cfg(all(
    feature = "board-qemu-raspi3b",
    not(any(feature = "board-k230", feature = "board-qemu-virt"))
))]
pub const SELECTED: Board = QEMU_RASPI3B;

#[cfg(test)]
mod tests {
    use super::*;

    /// `ORIGIN = 0x...` and `LENGTH = 0x...` of the RAM region in a board linker script.
    fn ram_region(script: &str) -> (usize, usize) {
        let line = script
            .lines()
            .find(|l| l.trim_start().starts_with("RAM"))
            .expect("RAM region");
        let hex = |key: &str| {
            let value = line.split(key).nth(1).expect(key);
            let digits = value.split(',').next().unwrap().trim();
            usize::from_str_radix(digits.strip_prefix("0x").expect("hex"), 16).unwrap()
        };
        (hex("ORIGIN = "), hex("LENGTH = "))
    }

    #[test]
    fn linker_scripts_match_board_ram() {
        for (board, script) in [
            (K230, include_str!("../link/k230.ld")),
            (QEMU_VIRT, include_str!("../link/qemu-virt.ld")),
            (QEMU_RASPI3B, include_str!("../link/qemu-raspi3b.ld")),
        ] {
            assert_eq!(
                ram_region(script),
                (board.ram_base, board.ram_size),
                "{}",
                board.name
            );
        }
    }

    /// Where raspi3b's identity map starts its device region.
    const RASPI3B_DEVICES: usize = match QEMU_RASPI3B.caches {
        Caches::ArmIdentityMap { devices_from } => devices_from,
        _ => panic!("raspi3b runs on an identity map"),
    };

    #[test]
    fn raspi3b_devices_fit_the_memory_map() {
        let mut tables = crate::mmu::Tables::new();
        let layout = crate::mmu::Layout {
            device_from: RASPI3B_DEVICES as u64,
            mapped_end: 2 * crate::mmu::GIB,
        };
        tables
            .map(layout, 0)
            .expect("a layout 2 MiB blocks express");
        const { assert!(QEMU_RASPI3B.ram_base + QEMU_RASPI3B.ram_size <= RASPI3B_DEVICES) };
        let ConsoleSpec::Pl011 { base } = QEMU_RASPI3B.console else {
            panic!("raspi3b's console is its PL011");
        };
        assert!(base >= RASPI3B_DEVICES);
    }

    #[test]
    fn qemu_console_divisor_is_programmable() {
        let ConsoleSpec::Ns16550(uart) = QEMU_VIRT.console else {
            panic!("QEMU virt's console is a 16550");
        };
        let UartLine::Program(config) = uart.line else {
            panic!("QEMU's UART is programmed at boot");
        };
        assert_eq!(config.divisor(), Ok(2));
    }

    #[test]
    fn k230_image_stays_clear_of_what_the_boot_chain_writes() {
        let ram = K230.ram_base as u64..(K230.ram_base + K230.ram_size) as u64;
        let hit: Vec<_> = k230_hal::boot::overlaps(ram).collect();
        assert!(hit.is_empty(), "{hit:?}");
    }

    #[test]
    fn k230_reads_time_from_the_csr_and_qemu_from_mtime() {
        let time = |board: Board| match board.timer {
            TimerSpec::Clint { time, .. } => time,
            TimerSpec::ArmGeneric { .. } => panic!("{} has a CLINT", board.name),
        };
        assert_eq!(time(K230), TimeSource::Csr);
        assert_eq!(time(QEMU_VIRT), TimeSource::Mtime);
    }

    #[test]
    fn boards_with_a_dma_nic_switch_caches_on_as_the_vendor_does() {
        assert_eq!(K230.caches, Caches::TheadC908);
        assert_eq!(QEMU_VIRT.caches, Caches::AsReset);
        assert_eq!(QEMU_VIRT.nic, Net::Absent);
    }

    #[test]
    fn the_k230_nic_is_powered_as_its_variant_says() {
        if option_env!("K230_BOARD_VARIANT").is_none() {
            assert_eq!(K230_VARIANT, BoardVariant::CanMvV1, "the default");
        }
        let Net::Usb(usb) = K230.nic else {
            panic!("the K230 has a USB NIC");
        };
        assert_eq!(usb.vbus, K230_VARIANT.vbus());
        assert_eq!(usb.dwc2_base, 0x9154_0000);
    }

    #[test]
    fn each_board_names_a_reset() {
        assert_eq!(K230.power, PowerSpec::K230Sysctl { boot: 0x9110_2000 });
        assert_eq!(QEMU_VIRT.power, PowerSpec::SifiveTest { base: 0x10_0000 });
        assert_eq!(
            QEMU_RASPI3B.power,
            PowerSpec::Bcm2835Pm { base: 0x3F10_0000 }
        );
    }

    #[test]
    fn k230_keeps_the_boot_loaders_uart_setup() {
        let ConsoleSpec::Ns16550(uart) = K230.console else {
            panic!("the K230's console is a 16550");
        };
        assert_eq!(uart.line, UartLine::Keep);
        assert_eq!(uart.stride, Stride::Word);
    }
}
