//! `os`: `uname()` and `urandom(n)` (the board's entropy source, through its [`super::Port`]).

use crate::args;
use crate::error::Error;
use crate::ffi;
use crate::obj::Obj;
use crate::object::{Fun, Module, Value};
use crate::qstr::Qstr;
use crate::runtime::{catch_exception, try_or_raise};
use crate::statics::Static;
use crate::table;

table!(GLOBALS = {
    c"__name__" => Value::Str(c"os"),
    c"uname" => Value::Fun(&UNAME),
    c"urandom" => Value::Fun(&URANDOM),
});

/// The `os` module.
pub static MODULE: Module = Module::new(c"os", &GLOBALS);

static UNAME: Fun = Fun::var(0, 0, uname);
static URANDOM: Fun = Fun::var(1, 1, urandom);

/// The field names of `uname()`'s result.
const FIELDS: [&core::ffi::CStr; 5] = [c"sysname", c"nodename", c"release", c"version", c"machine"];

/// The field qstrs of `uname()`'s result: MicroPython's attrtuple keeps a pointer to them, so
/// they live in a static (rewritten on each call with the running interpreter's numbers).
static FIELD_QSTRS: Static<[usize; 5]> = Static::new([0; 5]);

unsafe extern "C" fn uname(_n: usize, _args: *const Obj) -> Obj {
    try_or_raise(|| {
        let u = super::get()?.uname();
        let fields = FIELD_QSTRS.get();
        for (i, name) in FIELDS.iter().enumerate() {
            let q = Qstr::intern(name)?.index();
            // SAFETY: written only here, on the interpreter thread; an existing tuple sees the
            // same numbers (a soft reset, which renumbers run-time qstrs, frees all tuples).
            unsafe { (*fields)[i] = q };
        }
        let items = [
            Obj::try_from(u.sysname)?,
            Obj::try_from(u.nodename)?,
            Obj::try_from(u.release)?,
            Obj::try_from(u.version)?,
            Obj::try_from(u.machine)?,
        ];
        let items = &items;
        // SAFETY: five field qstrs (in a static) and five valid objects.
        // EXCEPTION: raises MemoryError.
        catch_exception(|| unsafe {
            ffi::mp_obj_new_attrtuple(fields.cast::<usize>(), 5, items.as_ptr())
        })
    })
}

unsafe extern "C" fn urandom(n: usize, args: *const Obj) -> Obj {
    // SAFETY: MicroPython passes `n` valid objects.
    let args = unsafe { args::slice(n, args) };
    try_or_raise(|| {
        let len = usize::try_from(isize::try_from(args[0])?)
            .map_err(|_| Error::ValueError("negative length"))?;
        let port = super::get()?;
        Obj::bytes_with(len, |buf| {
            port.urandom(buf)
                .map(|()| buf.len())
                .map_err(Error::OsError)
        })
    })
}
