//! The interactive prompt, as the unix port's `micropython` gives it with no script: written from
//! `do_repl` in `ports/unix/main.c` (MicroPython v1.29), built from the library's own parts.
//!
//! - Lines are read by MicroPython's line editor (`readline` of `shared/readline`: history,
//!   cursor keys, auto-indent) with the terminal in raw mode (`mp_hal_stdio_mode_raw`), and
//!   restored for the code's run;
//! - `... ` continuation lines while `mp_repl_continue_with_input` says the input is unfinished;
//! - Ctrl-C cancels the input, Ctrl-D on an empty line ends the prompt, Ctrl-E is paste mode
//!   (until Ctrl-D; compiled as a file);
//! - input is compiled in `"single"` mode, so an expression's value is printed; an exception's
//!   traceback goes to stderr and the prompt continues; `SystemExit` ends the prompt.
//!
//! The code runs in one `__main__` dict for the whole session. Ctrl-C while code runs is the
//! embedder's: it calls [`crate::host::Interpreter::interrupt`] (e.g. on SIGINT).

use core::ffi::{c_char, c_int};

use crate::error::Error;
use crate::ffi::{self, Vstr};
use crate::host::interpreter::{exec_mode, new_globals, repl_sys, script_error, STDIN_NAME};
use crate::host::ScriptError;
use crate::obj::Obj;
use crate::runtime::catch_exception;

const CTRL_C: c_int = 3;
const CTRL_D: c_int = 4;
const CTRL_E: c_int = 5;

/// What the user entered.
enum Input {
    /// Source to run, compiled in this mode.
    Code(&'static str),
    /// Ctrl-C: nothing to run.
    Cancelled,
    /// Ctrl-D on an empty line.
    End,
}

/// Writes `text` to the terminal through MicroPython's HAL (as the prompt itself does).
fn stdout(text: &str) {
    stdout_bytes(text.as_bytes());
}

fn stdout_bytes(bytes: &[u8]) {
    // SAFETY: `bytes` is valid for its length; the HAL only writes it to fd 1.
    // EXCEPTION: none.
    unsafe { ffi::mp_hal_stdout_tx_strn(bytes.as_ptr().cast::<c_char>(), bytes.len()) };
}

/// Runs the prompt until Ctrl-D (Ok) or `SystemExit` (its [`ScriptError::Exit`]).
pub(crate) fn run(banner: &str) -> Result<(), ScriptError> {
    let globals = repl_sys()
        .and_then(|()| new_globals(None))
        .map_err(|e| ScriptError::Interpreter(format!("REPL set-up: {e:?}")))?;
    stdout(banner);
    let mut line = Vstr {
        alloc: 0,
        len: 0,
        buf: core::ptr::null_mut(),
        fixed_buf: false,
    };
    let line_ptr = &raw mut line;
    // SAFETY: `line` lives on this (the interpreter's) stack for the whole session, where the
    // GC finds its buffer; readline_init0 only clears the history.
    // EXCEPTION: vstr_init raises MemoryError only if 16 bytes cannot be had; caught.
    catch_exception(|| unsafe {
        ffi::readline_init0();
        ffi::vstr_init(line_ptr, 16);
    })
    .map_err(|e| ScriptError::Interpreter(format!("REPL set-up: {e:?}")))?;
    let result = loop {
        // SAFETY: the terminal (if stdin is one) goes raw for the line editor; restored below.
        // EXCEPTION: none.
        unsafe { ffi::mp_hal_stdio_mode_raw() };
        let input = catch_exception(|| read_input(line_ptr));
        // SAFETY: restores the terminal settings saved by mode_raw.
        // EXCEPTION: none.
        unsafe { ffi::mp_hal_stdio_mode_orig() };
        let mode = match input {
            Ok(Input::Code(mode)) => mode,
            Ok(Input::Cancelled) => continue,
            Ok(Input::End) => {
                stdout("\n");
                break Ok(());
            }
            Err(e) => break Err(ScriptError::Interpreter(format!("REPL input: {e:?}"))),
        };
        // SAFETY: readline left a valid buffer of `len` bytes (UTF-8 as typed; lossy if not).
        let source = unsafe { core::slice::from_raw_parts(line.buf.cast::<u8>(), line.len) };
        let source = String::from_utf8_lossy(source).into_owned();
        match run_input(&source, mode, globals) {
            Ok(()) => {}
            Err(ScriptError::Exception(text) | ScriptError::Interrupted(text)) => eprint!("{text}"),
            Err(other) => break Err(other),
        }
    };
    // SAFETY: frees the line buffer; `line` is not used afterwards.
    // EXCEPTION: none.
    unsafe { ffi::vstr_clear(line_ptr) };
    result
}

/// Reads one input into `line`, as `do_repl` does.
fn read_input(line: *mut Vstr) -> Input {
    // SAFETY (whole function): `line` is the session's initialised vstr; readline and the HAL
    // read stdin and write stdout only.
    // EXCEPTION: vstr_add_byte may raise MemoryError; the caller catches it.
    unsafe {
        (*line).len = 0;
        let ret = ffi::readline(line, c">>> ".as_ptr());
        match ret {
            CTRL_C => {
                stdout("\r\n");
                return Input::Cancelled;
            }
            CTRL_D => return Input::End,
            CTRL_E => return paste(line),
            _ => {}
        }
        if (*line).len == 0 {
            if ret != 0 {
                stdout("\n");
            }
            return Input::Cancelled;
        }
        while ffi::mp_repl_continue_with_input(ffi::vstr_null_terminated_str(line)) {
            ffi::vstr_add_byte(line, b'\n');
            match ffi::readline(line, c"... ".as_ptr()) {
                CTRL_C => {
                    stdout("\n");
                    return Input::Cancelled;
                }
                CTRL_D => break,
                _ => {}
            }
        }
        Input::Code("single")
    }
}

/// Paste mode: every character until Ctrl-D, compiled as a file; Ctrl-C cancels.
///
/// # Safety
/// As [`read_input`].
unsafe fn paste(line: *mut Vstr) -> Input {
    stdout("\npaste mode; Ctrl-C to cancel, Ctrl-D to finish\n=== ");
    // SAFETY: as the caller's.
    unsafe {
        (*line).len = 0;
        loop {
            match ffi::mp_hal_stdin_rx_chr() {
                CTRL_C => {
                    stdout("\n");
                    return Input::Cancelled;
                }
                CTRL_D => {
                    stdout("\n");
                    return Input::Code("exec");
                }
                c => {
                    let byte = c as u8;
                    ffi::vstr_add_byte(line, byte);
                    if byte == b'\r' {
                        stdout("\n=== ");
                    } else {
                        stdout_bytes(&[byte]);
                    }
                }
            }
        }
    }
}

/// Runs one input in the session's `globals`.
fn run_input(source: &str, mode: &str, globals: Obj) -> Result<(), ScriptError> {
    exec_mode(STDIN_NAME, source, mode, globals).map_err(script_error)?;
    // A Ctrl-C that arrived after the code's last bytecode is dropped, as the unix port does.
    // SAFETY: with `false` nothing is raised; pending callbacks run.
    // EXCEPTION: none.
    let _: Result<(), Error> = catch_exception(|| unsafe { ffi::mp_handle_pending(false) });
    Ok(())
}
