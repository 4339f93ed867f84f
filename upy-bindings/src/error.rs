//! Errors of binding code.

use crate::obj::Obj;

/// Why a binding operation failed; becomes a Python exception at the edge of the binding.
///
/// `Copy`, so no destructor can be skipped when it is raised by a non-local jump.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// An exception MicroPython raised inside a call the bindings made; re-raised unchanged.
    Caught(Obj),
    /// `OSError(errno)`, with MicroPython's errno value.
    OsError(i32),
    /// `TypeError(msg)`.
    TypeError(&'static str),
    /// `ValueError(msg)`.
    ValueError(&'static str),
    /// `NotImplementedError`.
    NotImplementedError,
    /// A number does not fit the C type it is used as (`OverflowError`, as MicroPython raises
    /// when an int does not fit a machine word).
    OverflowError,
    /// A buffer cannot be allocated (`MemoryError`).
    MemoryError,
    /// A wait was interrupted: the interpreter's pending exception (`KeyboardInterrupt` after
    /// Ctrl-C) is raised.
    Interrupted,
}

impl From<crate::backend::SockError> for Error {
    fn from(e: crate::backend::SockError) -> Self {
        match e {
            crate::backend::SockError::Os(errno) => Error::OsError(errno),
            crate::backend::SockError::Value(msg) => Error::ValueError(msg),
            crate::backend::SockError::NotImplemented => Error::NotImplementedError,
            crate::backend::SockError::Interrupted => Error::Interrupted,
        }
    }
}
