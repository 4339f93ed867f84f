//! The module objects `k230net.c` registers with `MP_REGISTER_MODULE`, and their linking into
//! the running interpreter.

use upy_bindings::error::Error;
use upy_bindings::ffi::{Dict, ObjBase, ObjTypeHead};
use upy_bindings::object::Module;
use upy_bindings::{network, socket};

extern "C" {
    /// MicroPython's `mp_type_module`.
    static mp_type_module: ObjTypeHead;
}

/// `mp_obj_module_t`: a module object whose globals are a dict.
#[repr(C)]
pub struct ModuleObj {
    base: ObjBase,
    globals: *mut Dict,
}

// SAFETY: the object is never written; its dict is written only by `register`, on the
// interpreter thread, before scripts run (see `upy_bindings::statics::Static`).
unsafe impl Sync for ModuleObj {}

impl ModuleObj {
    /// The module object around `module`'s globals.
    const fn new(module: &Module) -> Self {
        Self {
            base: ObjBase {
                type_: &raw const mp_type_module,
            },
            globals: module.globals_dict(),
        }
    }
}

/// The `socket` module (`MP_REGISTER_MODULE(MP_QSTR_socket, k230net_socket_module)`).
#[no_mangle]
pub static k230net_socket_module: ModuleObj = ModuleObj::new(&socket::MODULE);

/// The `network` module (`MP_REGISTER_MODULE(MP_QSTR_network, k230net_network_module)`).
#[no_mangle]
pub static k230net_network_module: ModuleObj = ModuleObj::new(&network::MODULE);

/// Interns the modules' names and fills their globals. Runs after every `mp_init()`, before a
/// script can import the modules.
pub fn register() -> Result<(), Error> {
    socket::MODULE.link_globals()?;
    network::MODULE.link_globals()?;
    Ok(())
}
