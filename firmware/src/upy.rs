//! The MicroPython port's runtime side: what `upy/port.h` declares (console, time, waiting, the
//! port's Rust modules and their [`Port`]) and the hand-over to the port's C main loop.
//!
//! The console's receiver is serviced from the timer interrupt (every millisecond, faster than
//! a 16-byte FIFO fills at 115200 baud): bytes go into [`RX`], where MicroPython reads them, and
//! the interrupt character (Ctrl-C while a script runs) schedules `KeyboardInterrupt` instead,
//! so a script is interrupted wherever it is, a socket wait included.

use core::ffi::{c_char, c_int, c_void, CStr};

use crate::boot::{now_us, timer_count};
use crate::rt;
use firmware::board::SELECTED;
use firmware::console::RxQueue;
use upy_bindings::object::ModuleObj;
use upy_bindings::port::{self, machine, os, select, time, Port, Uname};

/// Console bytes received and not yet read by MicroPython.
static RX: RxQueue<4096> = RxQueue::new();

/// Stack kept below MicroPython's recursion limit for the Rust and C frames it calls into (a
/// network poll from the event hook runs at the deepest Python frame).
const STACK_MARGIN: usize = 32 * 1024;

extern "C" {
    /// The port's main loop (`upy/main.c`).
    fn k230upy_main(heap_start: *mut c_void, heap_end: *mut c_void, stack_bytes: usize) -> !;
    /// MicroPython's interrupt character (`shared/runtime/interrupt_char.c`), -1 when off.
    static mp_interrupt_char: c_int;
    /// Schedules `KeyboardInterrupt` in the interpreter (`py/scheduler.c`; interrupt-safe).
    fn mp_sched_keyboard_interrupt();
    static mut _upy_heap_start: u8;
    static mut _upy_heap_end: u8;
    static _stack_bottom: u8;
    static _stack_top: u8;
    /// `os.uname()`'s strings (`upy/main.c`).
    static k230upy_uname: [*const c_char; 5];
}

/// MicroPython's `ENODEV`: what the board does not have.
pub const ENODEV: i32 = 19;
/// MicroPython's `EIO`: the entropy source failed its health test.
const EIO: i32 = 5;

/// What this board offers the `time`, `os` and `machine` modules.
struct BoardPort;

impl Port for BoardPort {
    fn ticks_cpu(&self) -> u64 {
        timer_count()
    }

    fn time_ns(&self) -> u64 {
        // No real-time clock: time since boot.
        now_us().saturating_mul(1000)
    }

    fn freq(&self) -> u64 {
        SELECTED.cpu_hz
    }

    fn uname(&self) -> Uname {
        let field = |i: usize| {
            // SAFETY: five NUL-terminated string literals of the port's C, never written.
            let text = unsafe { CStr::from_ptr(k230upy_uname[i]) };
            text.to_str().unwrap_or("?")
        };
        Uname {
            sysname: field(0),
            nodename: field(1),
            release: field(2),
            version: field(3),
            machine: field(4),
        }
    }

    fn urandom(&self, buf: &mut [u8]) -> Result<(), i32> {
        let source = SELECTED.entropy.ok_or(ENODEV)?;
        // Each call runs the start-up health test again; a failing source gives no bytes.
        // SAFETY: the board's noise source; the network's start-up is done with it (it reads
        // it once, before MicroPython runs).
        unsafe { k230_board::secret::fill(source, buf) }.map_err(|_| EIO)
    }

    fn reset(&self) -> i32 {
        rt::reset()
    }
}

static PORT: BoardPort = BoardPort;

/// `time` (`MP_REGISTER_MODULE` in `upy/modules.c`).
#[no_mangle]
static k230upy_time_module: ModuleObj = ModuleObj::new(&time::MODULE);
/// `select`.
#[no_mangle]
static k230upy_select_module: ModuleObj = ModuleObj::new(&select::MODULE);
/// `os`.
#[no_mangle]
static k230upy_os_module: ModuleObj = ModuleObj::new(&os::MODULE);
/// `machine`.
#[no_mangle]
static k230upy_machine_module: ModuleObj = ModuleObj::new(&machine::MODULE);

#[no_mangle]
extern "C" fn k230upy_register_modules() -> c_int {
    // SAFETY: called by the port's main loop after mp_init, before any script runs.
    unsafe { port::set(&PORT) };
    let linked = [
        &time::MODULE,
        &select::MODULE,
        &os::MODULE,
        &machine::MODULE,
    ]
    .iter()
    .try_for_each(|m| m.link_globals().map(|_| ()));
    if linked.is_ok() {
        0
    } else {
        -1
    }
}

/// Moves what the console received into [`RX`]; the interrupt character schedules
/// `KeyboardInterrupt` instead. Only the timer interrupt calls this (the queue's one producer).
pub fn service_console() {
    let mut con = crate::boot::console();
    while let Some(received) = con.read_byte() {
        // A byte with a line error (framing, parity) is noise, not input.
        let Ok(byte) = received else { continue };
        // SAFETY: a plain int MicroPython writes on its thread; a torn read is impossible for
        // an aligned int, and a stale one only delays the interrupt to the next byte.
        let interrupt = unsafe { core::ptr::read_volatile(&raw const mp_interrupt_char) };
        if c_int::from(byte) == interrupt {
            // SAFETY: MicroPython's scheduler entry meant for interrupt handlers; the
            // interrupt character is only set while the interpreter runs.
            unsafe { mp_sched_keyboard_interrupt() };
        } else {
            RX.push(byte);
        }
    }
}

/// Starts MicroPython over the linker script's GC heap, on the boot stack; never returns.
pub fn run() -> ! {
    let heap_start = &raw mut _upy_heap_start;
    let heap_end = &raw mut _upy_heap_end;
    let stack = (&raw const _stack_top) as usize - (&raw const _stack_bottom) as usize;
    // SAFETY: the GC heap is a NOLOAD region reserved for MicroPython alone; the port's main
    // runs on this (the boot) stack, whose usable size it is told.
    unsafe {
        k230upy_main(
            heap_start.cast(),
            heap_end.cast(),
            stack.saturating_sub(STACK_MARGIN),
        )
    }
}

/// Bytes of MicroPython's GC heap.
pub fn heap_bytes() -> usize {
    (&raw const _upy_heap_end) as usize - (&raw const _upy_heap_start) as usize
}

#[no_mangle]
extern "C" fn k230upy_console_write(data: *const u8, len: usize) {
    if data.is_null() || len == 0 {
        return;
    }
    // SAFETY: the port passes `len` readable bytes at `data`.
    let bytes = unsafe { core::slice::from_raw_parts(data, len) };
    crate::boot::console().write_all(bytes);
}

#[no_mangle]
extern "C" fn k230upy_console_read() -> c_int {
    RX.pop().map_or(-1, c_int::from)
}

#[no_mangle]
extern "C" fn k230upy_console_peek() -> c_int {
    c_int::from(!RX.is_empty())
}

#[no_mangle]
extern "C" fn k230upy_ticks_us() -> u64 {
    now_us()
}

#[no_mangle]
extern "C" fn k230upy_ticks_cpu() -> u64 {
    timer_count()
}

#[no_mangle]
extern "C" fn k230upy_wait_for_interrupt() {
    rt::wait_for_interrupt();
}
