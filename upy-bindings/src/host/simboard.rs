//! The `simboard` module (host only): the simulated board's hands, for scripts that test what a
//! person does to a board while it runs. `unplug_usb()` pulls the NIC off the USB root port,
//! `replug_usb()` plugs it back in; each returns whether anything changed. The board's network
//! (the board assembly's supervised stack) notices at its next poll, as it would on hardware.
//! Without a simulated board behind the script, both raise `OSError(ENODEV)`.

use crate::backend::ENODEV;
use crate::error::Error;
use crate::obj::Obj;
use crate::object::{Fun, Module, Value};
use crate::runtime::try_or_raise;
use crate::statics::Static;
use crate::table;

/// What `simboard` does to the board.
pub trait BoardApi {
    /// Pulls the NIC off the root port; false if it is off already.
    fn unplug_usb(&mut self) -> bool;
    /// Plugs the NIC back in; false if it is in already.
    fn replug_usb(&mut self) -> bool;
}

static BOARD: Static<Option<&'static mut dyn BoardApi>> = Static::new(None);

/// Installs (or with `None` removes) the board `simboard` acts on.
///
/// # Safety
/// As [`crate::backend::set_sockets`].
pub unsafe fn set_board(board: Option<&'static mut dyn BoardApi>) {
    // SAFETY: the caller guarantees no binding holds the previous reference.
    unsafe { *BOARD.get() = board };
}

/// Runs `f` on the installed board; `OSError(ENODEV)` when there is none.
fn with_board(f: impl FnOnce(&mut dyn BoardApi) -> bool) -> Result<Obj, Error> {
    // SAFETY: binding functions run one at a time on the interpreter thread and call no
    // MicroPython while they hold this reference, so it is the only live one.
    match unsafe { &mut *BOARD.get() } {
        Some(board) => Ok(Obj::from(f(&mut **board))),
        None => Err(Error::OsError(ENODEV)),
    }
}

table!(GLOBALS = {
    c"__name__" => Value::Str(c"simboard"),
    c"unplug_usb" => Value::Fun(&UNPLUG_USB),
    c"replug_usb" => Value::Fun(&REPLUG_USB),
});

/// The `simboard` module.
pub static MODULE: Module = Module::new(c"simboard", &GLOBALS);

static UNPLUG_USB: Fun = Fun::var(0, 0, unplug_usb);
static REPLUG_USB: Fun = Fun::var(0, 0, replug_usb);

unsafe extern "C" fn unplug_usb(_n: usize, _args: *const Obj) -> Obj {
    try_or_raise(|| with_board(|b| b.unplug_usb()))
}

unsafe extern "C" fn replug_usb(_n: usize, _args: *const Obj) -> Obj {
    try_or_raise(|| with_board(|b| b.replug_usb()))
}
