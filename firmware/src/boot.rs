//! What the firmware does after `_start`: console, heap, self-test, the timer tick, the network
//! where the board has a NIC, then MicroPython.

use crate::{rt, upy};
use core::fmt::Write as _;
use core::sync::atomic::{AtomicUsize, Ordering};
use firmware::board::{NicSpec, UartLine, SELECTED};
use firmware::clint::{self, Clint, CLINT_SPAN};
use firmware::selftest;
use k230_hal::reg::Mmio;

/// Timer interrupt period: the console receiver is serviced this often (a 16-byte FIFO fills in
/// 1.4 ms at 115200 baud), and waits for an event last at most this long.
const TICK_MICROS: u64 = 1_000;
/// How long the K230's bring-up waits for the NIC on the root port.
const CONNECT_TIMEOUT_MS: u32 = 3_000;

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

/// The raw timer count (`mtime`, at the board's timebase).
pub fn timer_count() -> u64 {
    timer().now()
}

/// The timer interrupt: arm the next one, take in what the console received.
pub fn on_timer() {
    let t = timer();
    t.set_deadline(t.now() + period());
    upy::service_console();
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
    if cfg!(feature = "panic-test") {
        panic!("deliberate panic (feature panic-test)");
    }

    let clock = timer();
    let report = selftest::run(|| clock.now());
    let _ = writeln!(con, "self-test: {report}");
    if !report.passed() {
        rt::halt(Err(3));
    }

    clock.set_deadline(clock.now() + period());
    rt::enable_timer_interrupt();
    if let NicSpec::UsbDwc2 { .. } = SELECTED.nic {
        start_network(&mut con);
    }
    let _ = writeln!(con, "MicroPython heap: {} KiB", upy::heap_bytes() / 1024);
    upy::run()
}

/// Brings up the NIC and the stack behind the `socket` and `network` modules (upy-cmodule);
/// MicroPython runs either way (without a NIC, sockets raise `OSError(ENODEV)`).
fn start_network(con: &mut impl core::fmt::Write) {
    let config = upy_cmodule::config::Config {
        usb_port: upy_cmodule::config::USB1,
        connect_timeout_ms: CONNECT_TIMEOUT_MS,
        // Reserved: the library seeds the stack from the TRNG.
        seed: 0,
        cache_clean: None,
        cache_invalidate: None,
    };
    // SAFETY: before MicroPython starts, on the only thread; the K230's USB, reset and PHY
    // registers are identity-mapped and used by nothing else.
    let status = unsafe { upy_cmodule::abi::k230net_start(&config) };
    let _ = writeln!(con, "net: k230net_start = {status}");
}
