//! What the firmware does after `_start`: caches, console, self-test, the timer tick, the
//! network (the board assembly's, through upy-cmodule: over the NIC where the board drives one,
//! loopback only elsewhere), then MicroPython.

use crate::{rt, upy};
use core::fmt::Write as _;
use firmware::board::SELECTED;
use firmware::clint;
use firmware::console::{self, Console};
use firmware::selftest;

/// Timer interrupt period: the console receiver is serviced this often (a 16-byte FIFO fills in
/// 1.4 ms at 115200 baud), and waits for an event last at most this long.
const TICK_MICROS: u64 = 1_000;

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
    match SELECTED.nic {
        k230_board::Net::Usb(usb) => start_network(&mut con, &usb),
        k230_board::Net::Absent => start_loopback(&mut con),
    }
    let _ = writeln!(con, "MicroPython heap: {} KiB", upy::heap_bytes() / 1024);
    upy::run()
}

/// Starts the network of a board without NIC through upy-cmodule: sockets over loopback
/// (127.0.0.0/8) only, whose secret need not be one as nothing leaves the board
/// (`k230_board::without_nic`).
fn start_loopback(con: &mut impl core::fmt::Write) {
    // SAFETY: before MicroPython starts, on the only thread.
    match unsafe { upy_cmodule::net::start_without_nic() } {
        Ok(()) => {
            let _ = writeln!(con, "net: no NIC, sockets over loopback (127.0.0.1)");
        }
        Err(status) => {
            let _ = writeln!(
                con,
                "net: not started: {} ({})",
                status.c_name(),
                status.code()
            );
        }
    }
}

/// Brings up the board's NIC `usb` and the stack behind the `socket` and `network` modules
/// through upy-cmodule, i.e. the one board assembly (`k230-board`: the secret from the board's
/// noise source, VBUS power-cycled where the board variant switches it, the USB reset, the NIC,
/// the supervised stack with DHCP started, as CanMV does at boot: without a DHCP server the
/// client keeps asking and a script may set a static address), its DMA through the board's
/// cache maintenance; MicroPython runs either way (without a network, sockets raise
/// `OSError(ENODEV)`).
fn start_network(con: &mut impl core::fmt::Write, usb: &k230_board::UsbNic) {
    use firmware::board::Caches;
    use upy_cmodule::config::CacheHooks;
    let cache = match SELECTED.caches {
        Caches::TheadC908 | Caches::ArmIdentityMap { .. } => {
            CacheHooks::new(Some(rt::dma_clean), Some(rt::dma_invalidate))
        }
        Caches::AsReset => CacheHooks::new(None, None),
    };
    let Some(entropy) = SELECTED.entropy else {
        let _ = writeln!(con, "net: not started: no entropy source");
        return;
    };
    if let Some(vbus) = usb.vbus {
        let _ = writeln!(con, "net: NIC VBUS on GPIO{}", vbus.pin.number());
    }
    let started = now_us();
    // SAFETY: before MicroPython starts, on the only thread; the board's USB, reset, PHY and
    // GPIO registers and its noise source are identity-mapped and used by nothing else.
    match unsafe { upy_cmodule::net::start(usb, entropy, cache) } {
        Ok(mac) => {
            let _ = writeln!(
                con,
                "net: NIC up in {} ms, MAC {mac:02x?}, DHCP started",
                (now_us() - started) / 1000
            );
        }
        Err(status) => {
            let _ = writeln!(
                con,
                "net: not started: {} ({})",
                status.c_name(),
                status.code()
            );
        }
    }
}
