//! The real MicroPython runs in-process.
#![cfg(feature = "host")]

use std::path::PathBuf;

use upy_bindings::host::{have_library, Interpreter, ScriptError};

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/upy")
        .join(name)
}

fn interpreter() -> &'static Interpreter {
    match Interpreter::shared(&[]) {
        Ok(i) => i,
        Err(e) => panic!("interpreter did not start: {e}"),
    }
}

#[test]
fn smoke_script_runs() {
    if !have_library("smoke_script_runs") {
        return;
    }
    interpreter().run_file(&script("smoke.py"), &[]).unwrap();
}

#[test]
fn uncaught_exception_is_reported_with_traceback() {
    if !have_library("uncaught_exception_is_reported_with_traceback") {
        return;
    }
    let err = interpreter()
        .run_source("bad.py", "x = 1\nraise ValueError('boom')\n")
        .unwrap_err();
    match err {
        ScriptError::Exception(text) => {
            assert!(text.contains("ValueError: boom"), "{text}");
            assert!(text.contains("bad.py"), "{text}");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn sys_exit_code_is_returned() {
    if !have_library("sys_exit_code_is_returned") {
        return;
    }
    let err = interpreter()
        .run_source("exit.py", "import sys\nsys.exit(3)\n")
        .unwrap_err();
    assert_eq!(err, ScriptError::Exit(3));
}

#[test]
fn scripts_import_modules_beside_them_and_frozen_ones() {
    if !have_library("scripts_import_modules_beside_them_and_frozen_ones") {
        return;
    }
    interpreter().run_file(&script("imports.py"), &[]).unwrap();
}
