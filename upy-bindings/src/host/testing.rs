//! Helpers for unit tests that run scripts on the real interpreter.

use crate::host::{Backends, Interpreter, ScriptError};

/// The shared interpreter with this crate's modules.
pub fn interpreter() -> &'static Interpreter {
    match Interpreter::shared(&crate::MODULES) {
        Ok(interpreter) => interpreter,
        Err(e) => panic!("the interpreter did not start: {e}"),
    }
}

/// Runs `source` with `backends`; drops them afterwards on this thread (so a mock's unmet
/// expectations fail the calling test). `None`: skipped, the MicroPython library is missing
/// (see [`crate::host::have_library`]).
pub fn run(backends: Backends, source: &str) -> Option<Result<(), ScriptError>> {
    if !crate::host::have_library("upy-bindings unit test") {
        // Unused mocks would fail on their unmet expectations.
        std::mem::forget(backends);
        return None;
    }
    let (result, backends) = interpreter().run_with(backends, "test.py", source, &[]);
    drop(backends);
    Some(result)
}
