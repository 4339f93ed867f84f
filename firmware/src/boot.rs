//! What the firmware does after `_start`: console, heap, self-test, timer ticks, network report.

use crate::rt;
use core::fmt::Write as _;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use firmware::board::{UartLine, SELECTED};
use firmware::clint::{self, Clint, CLINT_SPAN};
use firmware::{net, selftest};
use k230_hal::reg::Mmio;

/// Timer interrupt period.
const TICK_MICROS: u64 = 100_000;
/// Ticks reported at boot.
const BOOT_TICKS: u64 = 3;

/// Timer interrupts taken so far.
static TICKS: AtomicU64 = AtomicU64::new(0);
/// The hart this firmware runs on (its `mtimecmp` slot).
static HART: AtomicUsize = AtomicUsize::new(0);

fn timer() -> Clint<Mmio> {
    // SAFETY: the selected board's CLINT is at `clint_base`; only timer registers are used.
    let regs = unsafe { Mmio::new(SELECTED.clint_base, CLINT_SPAN) };
    Clint::new(regs, HART.load(Ordering::Relaxed))
}

fn period() -> u64 {
    clint::ticks_in(TICK_MICROS, SELECTED.timebase_hz)
}

/// Microseconds of `mtime`.
pub fn now_us() -> u64 {
    clint::micros_in(timer().now(), SELECTED.timebase_hz)
}

/// Busy-wait delays on `mtime`, for the drivers.
pub struct ClintDelay;

impl embedded_hal::delay::DelayNs for ClintDelay {
    fn delay_ns(&mut self, ns: u32) {
        let end = now_us() + u64::from(ns).div_ceil(1000);
        while now_us() < end {
            core::hint::spin_loop();
        }
    }
}

/// The timer interrupt: count it and arm the next one.
pub fn on_timer() {
    let t = timer();
    t.set_deadline(t.now() + period());
    TICKS.fetch_add(1, Ordering::Relaxed);
}

/// Rust entry, called by `_start` on a zeroed `.bss` and a fresh stack.
#[no_mangle]
extern "C" fn fw_main(hart: usize) -> ! {
    HART.store(hart, Ordering::Relaxed);
    let mut con = rt::console();
    if let UartLine::Program(config) = SELECTED.uart.line {
        if let Err(e) = con.init(&config) {
            // Still usable as the boot loader left it.
            let _ = writeln!(con, "uart: cannot program {config:?}: {e:?}");
        }
    }
    let _ = writeln!(
        con,
        "\nk230-net firmware {} on {} (hart {hart})",
        env!("CARGO_PKG_VERSION"),
        SELECTED.name
    );
    let heap = rt::init_heap();
    let _ = writeln!(con, "heap: {} KiB", heap / 1024);

    if cfg!(feature = "panic-test") {
        panic!("deliberate panic (feature panic-test)");
    }

    let clock = timer();
    let report = selftest::run(|| clock.now());
    let _ = writeln!(con, "self-test: {report}");

    clock.set_deadline(clock.now() + period());
    rt::enable_timer_interrupt();
    let mut seen = 0;
    while seen < BOOT_TICKS {
        rt::wait_for_interrupt();
        let ticks = TICKS.load(Ordering::Relaxed);
        if ticks != seen {
            seen = ticks;
            let ms = clint::micros_in(clock.now(), SELECTED.timebase_hz) / 1000;
            let _ = writeln!(con, "tick {seen} (mtime {ms} ms)");
        }
    }

    let status = net::probe(SELECTED.nic);
    let _ = writeln!(con, "net: {status}");
    if let net::Status::UsbHost { .. } = status {
        crate::bringup::run(&mut con);
    }
    let _ = writeln!(con, "halting");
    rt::halt(if report.passed() { Ok(()) } else { Err(3) });
}
