//! The one place exceptions cross the boundary between MicroPython and Rust.
//!
//! MicroPython raises with a non-local jump (`nlr_jump`, a `longjmp`). A jump over a Rust frame
//! that owns a value with a destructor is undefined behaviour, so:
//! - calls into MicroPython that may raise go through [`catch_exception`], which stops the jump
//!   and returns it as [`Error::Caught`]; its closure must be `Copy`, so it owns nothing with a
//!   destructor;
//! - binding functions return `Result`, and [`try_or_raise`] turns an `Err` into a raise only at
//!   their outer edge, after the closure and everything it owned are gone.

use core::mem::MaybeUninit;

use crate::error::Error;
use crate::ffi;
use crate::obj::Obj;

/// MicroPython's `EINTR`: an interrupted wait when no exception was pending any more.
const EINTR: i32 = 4;

/// Runs `f` (which calls into MicroPython) and returns the exception it raised as an error.
///
/// `f` is `Copy`, so it captures only references and plain values: nothing is leaked or left
/// half-dropped when a raise unwinds through it.
pub fn catch_exception<T, F>(f: F) -> Result<T, Error>
where
    F: FnOnce() -> T + Copy,
{
    catch_raw(f).map_err(Error::Caught)
}

/// [`catch_exception`], returning the raised object itself.
fn catch_raw<T, F>(f: F) -> Result<T, Obj>
where
    F: FnOnce() -> T + Copy,
{
    let mut result = MaybeUninit::<T>::uninit();
    let result_ptr = result.as_mut_ptr();
    let mut call = move || {
        // SAFETY: `result_ptr` points to `result`, alive for the whole protected call.
        unsafe { result_ptr.write(f()) }
    };
    // SAFETY: `call` owns only `Copy` values, so a jump out of it skips no destructor.
    match unsafe { protected_call(&mut call) } {
        // SAFETY: `protected_call` returned normally, so `call` ran to its end and wrote `result`.
        Ok(()) => Ok(unsafe { result.assume_init() }),
        Err(exception) => Err(exception),
    }
}

/// Pushes an NLR frame, calls `f`, pops the frame; returns the raised object if `f` raised.
///
/// Kept out of line and free of locals other than the NLR buffer: after `nlr_push` returns the
/// second time (from `nlr_jump`), callee-saved registers hold their values from the first return,
/// and only the buffer (written by `nlr_jump` through the pointer it was given) is read.
///
/// # Safety
/// `f` must own no value with a destructor; must run on the interpreter thread.
#[inline(never)]
unsafe fn protected_call(f: &mut dyn FnMut()) -> Result<(), Obj> {
    let mut buf = ffi::NlrBuf {
        prev: core::ptr::null_mut(),
        ret_val: core::ptr::null_mut(),
        rest: [0; ffi::NLR_BUF_WORDS - 2],
    };
    let buf_ptr = &raw mut buf;
    // SAFETY: `buf` outlives the protected region: it is popped below on the normal path, and on
    // the raise path `nlr_jump` has already unlinked it before returning here.
    // EXCEPTION: `nlr_push` itself does not raise; it returns 0 now and 1 after a raise.
    if unsafe { ffi::nlr_push(buf_ptr) } == 0 {
        f();
        // SAFETY: pairs with the `nlr_push` above on the path that did not raise.
        // EXCEPTION: none.
        unsafe { ffi::nlr_pop() };
        Ok(())
    } else {
        // SAFETY: `nlr_jump` stored the exception in `ret_val` before jumping back.
        Err(Obj::from_ptr(unsafe {
            core::ptr::read_volatile(&raw const (*buf_ptr).ret_val).cast_const()
        }))
    }
}

/// The outer edge of a binding function: returns the value, or raises the error.
///
/// Call it as the whole body of an `extern "C"` binding, so that when it raises, no frame below
/// it owns anything with a destructor (`f` is consumed and `Error` is `Copy`).
pub fn try_or_raise<T, F>(f: F) -> Obj
where
    T: IntoObj,
    F: FnOnce() -> Result<T, Error>,
{
    let error = match f().and_then(IntoObj::into_obj) {
        Ok(obj) => return obj,
        Err(error) => error,
    };
    // SAFETY: nothing with a destructor is alive in this frame (`f` was consumed, `error` is
    // `Copy`), and the caller is MicroPython, which expects a raise.
    unsafe { raise(error) }
}

/// Raises `error` as a Python exception.
///
/// # Safety
/// No frame between here and the nearest NLR handler may own a value with a destructor.
pub unsafe fn raise(error: Error) -> ! {
    let error = match error {
        Error::Interrupted => {
            // SAFETY: as this function's caller guarantees.
            // EXCEPTION: raises the pending exception (KeyboardInterrupt) if there is one.
            unsafe { ffi::mp_handle_pending(true) };
            // Nothing was pending any more: say what happened.
            Error::OsError(EINTR)
        }
        other => other,
    };
    // Building the exception may itself raise (MemoryError): then that one is raised.
    let (Ok(exception) | Err(exception)) = exception_object(error);
    // SAFETY: the caller guarantees no destructor is skipped; `exception` is an exception
    // instance (or the MemoryError raised while building it).
    // EXCEPTION: raises, by definition.
    unsafe { ffi::nlr_jump(exception.as_ptr()) }
}

/// The exception instance for an error, or the exception raised while building it.
fn exception_object(error: Error) -> Result<Obj, Obj> {
    let (type_, arg) = match error {
        Error::Caught(obj) => return Ok(obj),
        Error::OsError(errno) => (
            ffi::data::mp_type_OSError(),
            Some(Obj::small_int_const(errno as isize)),
        ),
        Error::TypeError(msg) => (ffi::data::mp_type_TypeError(), Some(new_str(msg)?)),
        Error::ValueError(msg) => (ffi::data::mp_type_ValueError(), Some(new_str(msg)?)),
        Error::NotImplementedError => (ffi::data::mp_type_NotImplementedError(), None),
        Error::OverflowError => (
            ffi::data::mp_type_OverflowError(),
            Some(new_str("value out of range")?),
        ),
        Error::MemoryError => (ffi::data::mp_type_MemoryError(), None),
        // `raise` handles it before building an exception.
        Error::Interrupted => (
            ffi::data::mp_type_OSError(),
            Some(Obj::small_int_const(EINTR as isize)),
        ),
    };
    let args: &[Obj] = match &arg {
        Some(arg) => core::slice::from_ref(arg),
        None => &[],
    };
    // SAFETY: `type_` is an exception type; `args` holds valid objects.
    // EXCEPTION: raises MemoryError.
    catch_raw(|| unsafe { ffi::mp_obj_new_exception_args(type_.cast(), args.len(), args.as_ptr()) })
}

/// A `str` with an exception message.
fn new_str(msg: &'static str) -> Result<Obj, Obj> {
    let bytes = msg.as_bytes();
    // SAFETY: `bytes` is valid for reads of its length; the messages are ASCII.
    // EXCEPTION: raises MemoryError.
    catch_raw(|| unsafe { ffi::mp_obj_new_str(bytes.as_ptr().cast(), bytes.len()) })
}

/// A value a binding function can return to MicroPython.
pub trait IntoObj {
    /// Converts, allocating if needed.
    fn into_obj(self) -> Result<Obj, Error>;
}

impl IntoObj for Obj {
    fn into_obj(self) -> Result<Obj, Error> {
        Ok(self)
    }
}

impl IntoObj for () {
    fn into_obj(self) -> Result<Obj, Error> {
        Ok(Obj::NONE)
    }
}

impl IntoObj for bool {
    fn into_obj(self) -> Result<Obj, Error> {
        Ok(Obj::from(self))
    }
}

impl IntoObj for usize {
    fn into_obj(self) -> Result<Obj, Error> {
        Obj::try_from(self)
    }
}

impl IntoObj for isize {
    fn into_obj(self) -> Result<Obj, Error> {
        Obj::try_from(self)
    }
}
