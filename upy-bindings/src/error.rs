//! Errors of binding code, and the errno values MicroPython's `OSError` carries.

use core::ffi::CStr;

use crate::obj::Obj;

/// Why a binding operation failed; becomes a Python exception at the edge of the binding.
///
/// `Copy`, so no destructor can be skipped when it is raised by a non-local jump.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// An exception MicroPython raised inside a call the bindings made; re-raised unchanged.
    Caught(Obj),
    /// `OSError(errno)`.
    OsError(Errno),
    /// `TypeError(msg)`.
    TypeError(&'static CStr),
    /// `ValueError(msg)`.
    ValueError(&'static CStr),
    /// `OverflowError`.
    OverflowError,
}

/// MicroPython's errno values (`py/mperrno.h`, the Linux numbering it uses by default).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum Errno {
    /// EPERM.
    Perm = 1,
    /// ENOENT: name not found (getaddrinfo's failure in modlwip).
    NoEnt = 2,
    /// EIO.
    Io = 5,
    /// EBADF: the socket is closed.
    BadF = 9,
    /// EAGAIN: would block on a non-blocking socket.
    Again = 11,
    /// ENOMEM.
    NoMem = 12,
    /// EACCES.
    Acces = 13,
    /// EEXIST.
    Exist = 17,
    /// ENODEV.
    NoDev = 19,
    /// EINVAL.
    Inval = 22,
    /// EOPNOTSUPP.
    OpNotSupp = 95,
    /// EADDRINUSE.
    AddrInUse = 98,
    /// ECONNABORTED.
    ConnAborted = 103,
    /// ECONNRESET.
    ConnReset = 104,
    /// ENOBUFS.
    NoBufs = 105,
    /// EISCONN.
    IsConn = 106,
    /// ENOTCONN.
    NotConn = 107,
    /// ETIMEDOUT.
    TimedOut = 110,
    /// ECONNREFUSED.
    ConnRefused = 111,
    /// EHOSTUNREACH.
    HostUnreach = 113,
    /// EALREADY.
    Already = 114,
    /// EINPROGRESS.
    InProgress = 115,
}

impl Errno {
    /// The number.
    pub fn code(self) -> i32 {
        self as i32
    }
}
