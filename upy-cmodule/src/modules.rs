//! The module objects `k230net.c` registers with `MP_REGISTER_MODULE`, and their linking into
//! the running interpreter.

use upy_bindings::error::Error;
use upy_bindings::object::ModuleObj;
use upy_bindings::{network, socket};

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
