//! Whether the interpreter has an exception pending (Ctrl-C's `KeyboardInterrupt`), readable
//! from any thread, so that a blocking socket call on the host ends when the user interrupts it
//! (the host's [`crate::host::clock::HostClock::interrupted`]).
//!
//! The firmware asks its C glue (`k230net_interrupt_pending`); the host's library is prebuilt, so
//! the slot is found from its layout: `mp_state_ctx` begins with the main thread's
//! `mp_state_thread_t`, whose `mp_pending_exception` lies at [`PENDING_EXCEPTION_OFFSET`].
//! [`locate`] proves the offset on the loaded library before any script runs.
//!
//! Only the interpreter's thread sees the exception: it is the one that will raise it, and waits
//! of other threads (a poller, a peer stack in the same process) are not the script's.

use core::cell::Cell;
use core::ffi::c_void;
use core::ptr::null_mut;
use std::sync::atomic::{AtomicPtr, Ordering};

use crate::ffi;
use crate::host::abi::AbiMismatch;

/// Offset of `mp_pending_exception` in `mp_state_thread_t` of the pinned build. Facts: MicroPython
/// v1.29 `py/mpstate.h` with `MICROPY_STACK_CHECK` and without pystack: `stack_top`,
/// `stack_limit`, `gc_lock_depth` (u16, padded to a word), `dict_locals`, `dict_globals`,
/// `nlr_top`, `nlr_jump_callback_top`, then `mp_pending_exception`; the library's own
/// `mp_handle_pending` reads it at 0x38 of the thread state.
const PENDING_EXCEPTION_OFFSET: usize = 0x38;

/// The interpreter's `mp_pending_exception`, once [`locate`] checked it; null before.
static SLOT: AtomicPtr<*mut c_void> = AtomicPtr::new(null_mut());

thread_local! {
    /// Whether this thread runs the interpreter (set by [`locate`]).
    static INTERPRETER: Cell<bool> = const { Cell::new(false) };
}

/// Finds the pending-exception slot and proves it: empty after `mp_init`, set by
/// `mp_sched_keyboard_interrupt`, empty again after `mp_handle_pending(false)` discarded it.
/// Call on the interpreter thread, after `mp_init` and before any script.
pub(crate) fn locate() -> Result<(), AbiMismatch> {
    let state = ffi::data::mp_state_ctx().cast::<u8>().cast_mut();
    // The offset stays inside `mp_state_ctx` (a thread state is far larger than 0x40 bytes).
    let slot = state
        .wrapping_add(PENDING_EXCEPTION_OFFSET)
        .cast::<*mut c_void>();
    let read = || {
        // SAFETY: `slot` is an aligned word inside the library's `mp_state_ctx`, static data
        // that lives as long as the process; only this (interpreter) thread runs MicroPython now.
        unsafe { slot.read_volatile() }
    };
    let wrong = |when: &str| {
        AbiMismatch(format!(
            "mp_pending_exception is not at {PENDING_EXCEPTION_OFFSET:#x} of mp_state_ctx \
             (the word there {when})"
        ))
    };
    if !read().is_null() {
        return Err(wrong("is set after mp_init"));
    }
    // SAFETY: schedules a KeyboardInterrupt (sets the slot); nothing runs bytecode before it is
    // discarded below.
    // EXCEPTION: none (it only stores).
    unsafe { ffi::mp_sched_keyboard_interrupt() };
    if read().is_null() {
        return Err(wrong("stays empty when a KeyboardInterrupt is scheduled"));
    }
    // SAFETY: on the interpreter thread; with `false` the pending exception is discarded.
    // EXCEPTION: none (nothing raises when asked not to, and no callback is scheduled).
    unsafe { ffi::mp_handle_pending(false) };
    if !read().is_null() {
        return Err(wrong(
            "stays set after mp_handle_pending discarded the exception",
        ));
    }
    SLOT.store(slot, Ordering::Release);
    INTERPRETER.set(true);
    Ok(())
}

/// Whether an exception waits to be raised in the interpreter's next bytecode or call; false on
/// every thread but the interpreter's.
pub fn is_pending() -> bool {
    let slot = SLOT.load(Ordering::Acquire);
    if slot.is_null() || !INTERPRETER.get() {
        return false;
    }
    // SAFETY: `slot` was checked by `locate`: an aligned pointer-sized field of static data that
    // lives as long as the process. MicroPython stores it whole (one word) from other threads
    // and signal handlers, so it is read as an atomic word.
    let pending = unsafe { AtomicPtr::from_ptr(slot) };
    !pending.load(Ordering::Relaxed).is_null()
}
