//! `machine`: `reset()` and `freq()` from the board's [`super::Port`]; `unique_id()` is the
//! NIC's MAC address (as on ESP32 ports; `OSError(ENODEV)` without a network).

use crate::backend;
use crate::error::Error;
use crate::obj::Obj;
use crate::object::{Fun, Module, Value};
use crate::runtime::try_or_raise;
use crate::table;

table!(GLOBALS = {
    c"__name__" => Value::Str(c"machine"),
    c"reset" => Value::Fun(&RESET),
    c"freq" => Value::Fun(&FREQ),
    c"unique_id" => Value::Fun(&UNIQUE_ID),
});

/// The `machine` module.
pub static MODULE: Module = Module::new(c"machine", &GLOBALS);

static RESET: Fun = Fun::var(0, 0, reset);
static FREQ: Fun = Fun::var(0, 0, freq);
static UNIQUE_ID: Fun = Fun::var(0, 0, unique_id);

unsafe extern "C" fn reset(_n: usize, _args: *const Obj) -> Obj {
    try_or_raise(|| -> Result<(), Error> { Err(Error::OsError(super::get()?.reset())) })
}

unsafe extern "C" fn freq(_n: usize, _args: *const Obj) -> Obj {
    try_or_raise(|| {
        let hz = super::get()?.freq();
        Obj::try_from(isize::try_from(hz).map_err(|_| Error::OverflowError)?)
    })
}

unsafe extern "C" fn unique_id(_n: usize, _args: *const Obj) -> Obj {
    try_or_raise(|| Obj::bytes(&backend::with_lan(|lan| Ok(lan.mac()))?))
}
