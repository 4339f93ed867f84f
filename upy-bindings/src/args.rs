//! Argument arrays MicroPython passes to native functions.

use crate::error::Error;
use crate::obj::Obj;

/// The `n` arguments at `args` as a slice.
///
/// # Safety
/// `args` must point to `n` valid objects that outlive the returned slice (MicroPython's
/// calling convention for `mp_fun_var_t` guarantees this for the call's duration).
pub unsafe fn slice<'a>(n: usize, args: *const Obj) -> &'a [Obj] {
    if n == 0 || args.is_null() {
        &[]
    } else {
        // SAFETY: per the caller's guarantee.
        unsafe { core::slice::from_raw_parts(args, n) }
    }
}

/// An optional positional argument: `None` when absent.
pub fn optional(args: &[Obj], index: usize) -> Option<Obj> {
    args.get(index).copied()
}

/// An integer argument converted to `T`, `OverflowError` if it does not fit.
pub fn int<T: TryFrom<isize>>(obj: Obj) -> Result<T, Error> {
    let value = isize::try_from(obj)?;
    T::try_from(value).map_err(|_| Error::OverflowError)
}
