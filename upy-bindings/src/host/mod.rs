//! Running the real MicroPython on the host (feature `host`): loading the library, checking its
//! ABI, and the interpreter thread.

pub mod abi;
pub mod interpreter;
pub mod library;
#[cfg(test)]
pub(crate) mod testing;

pub use interpreter::{Backends, Interpreter, ScriptError};
