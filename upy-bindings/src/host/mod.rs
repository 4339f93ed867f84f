//! Running the real MicroPython on the host (feature `host`): loading the library, checking its
//! ABI, the interpreter thread, and the board network it talks to.

pub mod abi;
pub mod interpreter;
pub mod library;
pub mod net;
#[cfg(test)]
pub(crate) mod testing;

pub use interpreter::{Backends, Interpreter, ScriptError};

/// Environment variable that makes tests fail, instead of skip, when the MicroPython library is
/// not installed (CI sets it once `scripts/setup` installs the library).
pub const REQUIRE_ENV: &str = "K230_REQUIRE_UPY";

/// For tests: whether the MicroPython library is installed. When it is not, prints
/// `<test>: SKIPPED (...)` and returns false, or panics if [`REQUIRE_ENV`] is `1`.
pub fn have_library(test: &str) -> bool {
    match library::find() {
        Ok(_) => true,
        Err(e) if std::env::var(REQUIRE_ENV).as_deref() == Ok("1") => {
            panic!("{test}: {e} (and {REQUIRE_ENV}=1)")
        }
        Err(e) => {
            println!("{test}: SKIPPED (needs the MicroPython library: {e})");
            false
        }
    }
}
