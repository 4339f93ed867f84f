//! Running the real MicroPython on the host (feature `host`): loading the library, checking its
//! ABI, the interpreter thread, and the board network it talks to.

pub mod abi;
pub mod interpreter;
pub mod library;
pub mod net;
#[cfg(test)]
pub(crate) mod testing;

pub use interpreter::{Backends, Interpreter, ScriptError};
