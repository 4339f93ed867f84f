//! What the firmware does after `_start`: caches, console, self-test, the timer tick, the
//! network where the board has a NIC (its VBUS power-cycled first where the board switches it),
//! then MicroPython.

use crate::{rt, upy};
use core::fmt::Write as _;
use firmware::board::SELECTED;
use firmware::clint;
use firmware::console::{self, Console};
use firmware::selftest;
#[cfg(feature = "board-k230")]
use k230_hal::{
    gpio::{self, Gpio},
    reg::Mmio,
    variant::Vbus,
};

/// Timer interrupt period: the console receiver is serviced this often (a 16-byte FIFO fills in
/// 1.4 ms at 115200 baud), and waits for an event last at most this long.
const TICK_MICROS: u64 = 1_000;
/// How long the K230's bring-up waits for the NIC on the root port.
#[cfg(feature = "board-k230")]
const CONNECT_TIMEOUT_MS: u32 = 3_000;

/// The console, taken over as it is.
pub fn console() -> Console {
    // SAFETY: the selected board's UART exists at that address and is used only as a UART.
    unsafe { console::open(&SELECTED.console) }
}

fn period() -> u64 {
    clint::ticks_in(TICK_MICROS, SELECTED.timebase_hz)
}

/// Microseconds of the time counter.
pub fn now_us() -> u64 {
    clint::micros_in(rt::timer_count(), SELECTED.timebase_hz)
}

/// The raw time count at the board's timebase, from where the board has it (the `time` CSR on
/// the K230, `mtime` on QEMU virt, `CNTVCT_EL0` on raspi3b).
pub fn timer_count() -> u64 {
    rt::timer_count()
}

/// Busy-wait delays on the time counter.
#[cfg(feature = "board-k230")]
struct TimerDelay;

#[cfg(feature = "board-k230")]
impl embedded_hal::delay::DelayNs for TimerDelay {
    fn delay_ns(&mut self, ns: u32) {
        let end = now_us() + u64::from(ns).div_ceil(1000);
        while now_us() < end {
            core::hint::spin_loop();
        }
    }
}

/// The timer interrupt: arm the next one, take in what the console received.
pub fn on_timer() {
    rt::set_timer_deadline(rt::timer_count() + period());
    upy::service_console();
}

/// Rust entry, called by `_start` on a zeroed `.bss` and a fresh stack.
#[no_mangle]
extern "C" fn fw_main(hart: usize) -> ! {
    let caches = rt::init_caches();
    let mut con = console();
    if let Err(e) = con.setup() {
        // Still usable as the boot loader left it.
        let _ = writeln!(con, "uart: {e:?}");
    }
    let _ = writeln!(
        con,
        "\nk230-net firmware {} on {} (hart {hart})",
        env!("CARGO_PKG_VERSION"),
        SELECTED.name
    );
    let _ = writeln!(con, "caches: {caches:?}");
    if cfg!(feature = "panic-test") {
        panic!("deliberate panic (feature panic-test)");
    }

    let report = selftest::run(rt::timer_count);
    let _ = writeln!(con, "self-test: {report}");
    if !report.passed() {
        rt::halt(Err(3));
    }
    #[cfg(target_arch = "riscv64")]
    if let Some(in_step) = rt::csr_in_step_with_mtime() {
        let step = if in_step { "in step" } else { "NOT in step" };
        let _ = writeln!(con, "time: time CSR {step} with mtime");
    }

    rt::set_timer_deadline(rt::timer_count() + period());
    rt::enable_timer_interrupt();
    // Until the one board assembly drives raspi3b's DWC2 too, only the K230 starts its NIC.
    #[cfg(feature = "board-k230")]
    if let firmware::board::NicSpec::UsbDwc2 { vbus, .. } = SELECTED.nic {
        power_cycle_nic(&mut con, vbus);
        start_network(&mut con);
    }
    let _ = writeln!(con, "MicroPython heap: {} KiB", upy::heap_bytes() / 1024);
    upy::run()
}

/// Power-cycles the NIC's VBUS as the vendor does at boot, where the board switches it with a
/// GPIO (see [`k230_hal::variant`]): a NIC still powered from before a reset would keep its old
/// USB address and not enumerate. Runs before the USB host starts.
#[cfg(feature = "board-k230")]
fn power_cycle_nic(con: &mut impl core::fmt::Write, vbus: Option<Vbus>) {
    let Some(vbus) = vbus else {
        return;
    };
    // SAFETY: the K230's GPIO controllers and IOMUX, used only here.
    let mut gpio = unsafe {
        Gpio::new(
            Mmio::new(gpio::k230::GPIO0_BASE, gpio::k230::GPIO_LEN),
            Mmio::new(gpio::k230::GPIO1_BASE, gpio::k230::GPIO_LEN),
            Mmio::new(gpio::k230::IOMUX_BASE, gpio::k230::IOMUX_LEN),
        )
    };
    vbus.power_cycle(&mut gpio, &mut TimerDelay);
    let _ = writeln!(
        con,
        "net: NIC VBUS power-cycled on GPIO{}",
        vbus.pin.number()
    );
}

/// Brings up the NIC and the stack behind the `socket` and `network` modules (upy-cmodule), its
/// DMA through the board's cache maintenance; MicroPython runs either way (without a NIC,
/// sockets raise `OSError(ENODEV)`).
#[cfg(feature = "board-k230")]
fn start_network(con: &mut impl core::fmt::Write) {
    let config = upy_cmodule::config::Config {
        usb_port: upy_cmodule::config::USB1,
        connect_timeout_ms: CONNECT_TIMEOUT_MS,
        // Reserved: the library seeds the stack from the TRNG.
        seed: 0,
        cache_clean: Some(rt::dma_clean),
        cache_invalidate: Some(rt::dma_invalidate),
    };
    // SAFETY: before MicroPython starts, on the only thread; the K230's USB, reset and PHY
    // registers are identity-mapped and used by nothing else.
    let status = unsafe { upy_cmodule::abi::k230net_start(&config) };
    let _ = writeln!(con, "net: k230net_start = {status}");
}
