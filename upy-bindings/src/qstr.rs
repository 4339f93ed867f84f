//! Interned strings (`qstr`): MicroPython names attributes, modules and types by their index.

use core::ffi::{c_char, CStr};

use crate::error::Error;
use crate::ffi;
use crate::runtime::catch_exception;

/// An interned string's index.
///
/// Indices are assigned by the running interpreter, so names are interned when the bindings
/// register (see `crate::module::register`), never baked in at build time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Qstr(usize);

impl Qstr {
    /// Interns `name`.
    pub fn intern(name: &CStr) -> Result<Qstr, Error> {
        let bytes = name.to_bytes();
        // SAFETY: `bytes` is valid for reads; MicroPython copies it into its pool (the pool is a
        // GC root).
        // EXCEPTION: raises MemoryError, or RuntimeError for a name longer than a qstr holds.
        catch_exception(|| unsafe {
            ffi::qstr_from_strn(bytes.as_ptr().cast::<c_char>(), bytes.len())
        })
        .map(Qstr)
    }

    /// The index.
    pub fn index(self) -> usize {
        self.0
    }

    /// The index in the 16-bit form `mp_obj_type_t::name` stores.
    pub fn short(self) -> Result<u16, Error> {
        u16::try_from(self.0).map_err(|_| Error::OverflowError)
    }

    /// The text.
    pub fn as_cstr(self) -> &'static CStr {
        // SAFETY: `self` came from `intern`, so it names a NUL-terminated string in a pool that
        // is never freed while the interpreter runs.
        // EXCEPTION: none.
        unsafe { CStr::from_ptr(ffi::qstr_str(self.0)) }
    }
}
