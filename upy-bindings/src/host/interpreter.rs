//! The MicroPython interpreter on the host: one per process, on a thread of its own.
//!
//! MicroPython keeps its state in globals and finds garbage-collection roots by scanning the
//! stack of the thread that initialised it, so the interpreter lives on one dedicated thread for
//! the life of the process; callers on any thread hand it jobs ([`Interpreter::run_file`]).

use std::ffi::{c_char, c_void};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};

use crate::backend::{self, LanApi, SocketApi};
use crate::error::Error;
use crate::ffi;
use crate::host::simboard::{self, BoardApi};
use crate::host::{abi, library};
use crate::obj::Obj;
use crate::object::Module;
use crate::qstr::Qstr;
use crate::runtime::catch_exception;

/// Stack of the interpreter thread.
const STACK_BYTES: usize = 16 << 20;
/// Stack MicroPython may use before raising `RuntimeError: maximum recursion depth exceeded`;
/// the rest is headroom for Rust and libc frames below the check.
const STACK_LIMIT_BYTES: usize = STACK_BYTES - (1 << 20);
/// MicroPython heap.
const HEAP_BYTES: usize = 8 << 20;

/// How a script ended other than normally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptError {
    /// An uncaught exception, with MicroPython's traceback text.
    Exception(String),
    /// An uncaught `KeyboardInterrupt` (Ctrl-C), with its traceback text.
    Interrupted(String),
    /// `sys.exit(code)` with a non-zero code.
    Exit(i32),
    /// The script file could not be read.
    Io(String),
    /// The interpreter could not start or has stopped.
    Interpreter(String),
}

impl core::fmt::Display for ScriptError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ScriptError::Exception(traceback) | ScriptError::Interrupted(traceback) => {
                write!(f, "uncaught exception:\n{traceback}")
            }
            ScriptError::Exit(code) => write!(f, "sys.exit({code})"),
            ScriptError::Io(msg) => write!(f, "cannot read script: {msg}"),
            ScriptError::Interpreter(msg) => write!(f, "interpreter: {msg}"),
        }
    }
}

impl std::error::Error for ScriptError {}

type Job = Box<dyn FnOnce() + Send>;

/// A handle to the process's interpreter thread.
pub struct Interpreter {
    jobs: Mutex<mpsc::Sender<Job>>,
}

static SHARED: OnceLock<Result<Interpreter, String>> = OnceLock::new();

impl Interpreter {
    /// The process's interpreter, started on first use with `modules` registered (later calls
    /// return the running one; their `modules` are ignored).
    pub fn shared(modules: &'static [&'static Module]) -> Result<&'static Interpreter, String> {
        SHARED
            .get_or_init(|| Interpreter::start(modules))
            .as_ref()
            .map_err(Clone::clone)
    }

    fn start(modules: &'static [&'static Module]) -> Result<Interpreter, String> {
        let path = library::find().map_err(|e| e.to_string())?;
        let api = library::load(&path).map_err(|e| e.to_string())?;
        // SAFETY: no interpreter thread exists yet, so nothing reads the table concurrently.
        unsafe { api.install() };
        log::info!("MicroPython library: {}", path.display());

        let (job_tx, job_rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
        std::thread::Builder::new()
            .name("micropython".into())
            .stack_size(STACK_BYTES)
            .spawn(move || interpreter_thread(modules, ready_tx, job_rx))
            .map_err(|e| format!("cannot spawn the interpreter thread: {e}"))?;
        ready_rx
            .recv()
            .map_err(|_| "the interpreter thread died while starting".to_owned())??;
        Ok(Interpreter {
            jobs: Mutex::new(job_tx),
        })
    }

    /// Runs `job` on the interpreter thread and returns its result.
    pub fn with<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ScriptError> {
        let (tx, rx) = mpsc::channel();
        let job: Job = Box::new(move || {
            // The caller may have gone; then the result is not needed.
            let _ = tx.send(job());
        });
        self.jobs
            .lock()
            .map_err(|_| ScriptError::Interpreter("job queue poisoned".into()))?
            .send(job)
            .map_err(|_| ScriptError::Interpreter("the interpreter thread has stopped".into()))?;
        rx.recv()
            .map_err(|_| ScriptError::Interpreter("the job panicked".into()))
    }

    /// Runs a script file as `__main__` with `sys.argv = [path, *args]`.
    pub fn run_file(&self, path: &Path, args: &[String]) -> Result<(), ScriptError> {
        let source = std::fs::read_to_string(path)
            .map_err(|e| ScriptError::Io(format!("{}: {e}", path.display())))?;
        let path: PathBuf = path.to_owned();
        let args = args.to_vec();
        self.with(move || run_source(&path.to_string_lossy(), &source, &args))?
    }

    /// Runs a script file with `backends` installed for `socket` and `network`, as `__main__`
    /// with `sys.argv = [path, *args]`; hands the backends back afterwards (uninstalled).
    pub fn run_file_with(
        &self,
        backends: Backends,
        path: &Path,
        args: &[String],
    ) -> (Result<(), ScriptError>, Backends) {
        match std::fs::read_to_string(path) {
            Ok(source) => self.run_with(backends, &path.to_string_lossy(), &source, args),
            Err(e) => (
                Err(ScriptError::Io(format!("{}: {e}", path.display()))),
                backends,
            ),
        }
    }

    /// Runs source text with `backends` installed (see [`Interpreter::run_file_with`]).
    pub fn run_with(
        &self,
        backends: Backends,
        name: &str,
        source: &str,
        args: &[String],
    ) -> (Result<(), ScriptError>, Backends) {
        let (name, source, args) = (name.to_owned(), source.to_owned(), args.to_vec());
        self.job_with(backends, move || run_source(&name, &source, &args))
    }

    /// Runs `code` as `micropython -c CODE ARGS...` does: named `<stdin>` in tracebacks,
    /// `sys.argv = ['-c', *args]`, `sys.path[0] = ''`, with `backends` installed.
    pub fn run_code_with(
        &self,
        backends: Backends,
        code: &str,
        args: &[String],
    ) -> (Result<(), ScriptError>, Backends) {
        let (code, args) = (code.to_owned(), args.to_vec());
        self.job_with(backends, move || {
            let mut argv = vec!["-c"];
            argv.extend(args.iter().map(String::as_str));
            run_in_main(STDIN_NAME, &code, &argv, "")
        })
    }

    /// The interactive prompt with `backends` installed, after printing `banner` (see
    /// [`crate::host::repl`]); ends at Ctrl-D on an empty line or with `sys.exit`.
    pub fn repl_with(
        &self,
        backends: Backends,
        banner: &str,
    ) -> (Result<(), ScriptError>, Backends) {
        let banner = banner.to_owned();
        self.job_with(backends, move || crate::host::repl::run(&banner))
    }

    /// Asks the running code to raise `KeyboardInterrupt` at its next bytecode, as the unix
    /// port's SIGINT handler does (callable from any thread; nothing happens until code runs).
    pub fn interrupt(&self) {
        // SAFETY: only sets MicroPython's pending exception and scheduler state, which is what
        // the function is for (the unix port calls it from a signal handler).
        // EXCEPTION: none.
        unsafe { ffi::mp_sched_keyboard_interrupt() }
    }

    /// Runs `job` on the interpreter thread with `backends` installed; hands them back.
    fn job_with(
        &self,
        backends: Backends,
        job: impl FnOnce() -> Result<(), ScriptError> + Send + 'static,
    ) -> (Result<(), ScriptError>, Backends) {
        let (tx, rx) = mpsc::channel();
        let sent = self.with(move || {
            let mut backends = backends;
            backends.install();
            let result = job();
            // SAFETY: no binding runs between scripts; the references go before the boxes move.
            unsafe {
                backend::set_sockets(None);
                backend::set_lan(None);
                simboard::set_board(None);
            }
            // The receiver lives until `recv` below returns.
            let _ = tx.send(backends);
            result
        });
        let backends = rx.recv().unwrap_or_default();
        match sent {
            Ok(result) => (result, backends),
            Err(e) => (Err(e), backends),
        }
    }

    /// Runs source text as `__main__` (named `name` in tracebacks).
    pub fn run_source(&self, name: &str, source: &str) -> Result<(), ScriptError> {
        let (name, source) = (name.to_owned(), source.to_owned());
        self.with(move || run_source(&name, &source, &[]))?
    }
}

/// Backend implementations a script runs with (see [`Interpreter::run_with`]).
#[derive(Default)]
pub struct Backends {
    /// What `socket` calls.
    pub sockets: Option<Box<dyn SocketApi + Send>>,
    /// What `network.LAN` calls.
    pub lan: Option<Box<dyn LanApi + Send>>,
    /// What `simboard` acts on (a simulated board).
    pub board: Option<Box<dyn BoardApi + Send>>,
}

impl Backends {
    /// Installs the boxed implementations (by reference; the boxes stay here).
    fn install(&mut self) {
        let sockets = self.sockets.as_deref_mut().map(|s| {
            let s: *mut (dyn SocketApi + Send) = s;
            // SAFETY: the box outlives the installation: `run_with` removes the reference
            // before the box moves or drops.
            unsafe { &mut *(s as *mut dyn SocketApi) }
        });
        let lan = self.lan.as_deref_mut().map(|l| {
            let l: *mut (dyn LanApi + Send) = l;
            // SAFETY: as above.
            unsafe { &mut *(l as *mut dyn LanApi) }
        });
        let board = self.board.as_deref_mut().map(|b| {
            let b: *mut (dyn BoardApi + Send) = b;
            // SAFETY: as above.
            unsafe { &mut *(b as *mut dyn BoardApi) }
        });
        // SAFETY: called on the interpreter thread between scripts.
        unsafe {
            backend::set_sockets(sockets);
            backend::set_lan(lan);
            simboard::set_board(board);
        }
    }
}

fn interpreter_thread(
    modules: &'static [&'static Module],
    ready: mpsc::Sender<Result<(), String>>,
    jobs: mpsc::Receiver<Job>,
) {
    // The heap lives as long as the thread, which lives as long as the process.
    let heap: &'static mut [usize] =
        Box::leak(vec![0usize; HEAP_BYTES / core::mem::size_of::<usize>()].into_boxed_slice());
    let range = heap.as_mut_ptr_range();
    // SAFETY: called once, first thing on this thread: registers it with MicroPython's thread
    // support, marks this frame as the top of the stack the GC scans, hands MicroPython a heap
    // it owns from now on, and initialises the runtime.
    // EXCEPTION: none of these raise (they run before any NLR frame could exist).
    unsafe {
        ffi::mp_thread_init();
        ffi::mp_cstack_init_with_sp_here(STACK_LIMIT_BYTES);
        ffi::gc_init(range.start.cast::<c_void>(), range.end.cast::<c_void>());
        ffi::mp_init();
    }
    let started = abi::check()
        .map_err(|e| e.to_string())
        .and_then(|()| setup(modules).map_err(|e| format!("setting up: {}", describe(e))));
    let ok = started.is_ok();
    if ready.send(started).is_err() || !ok {
        return;
    }
    for job in jobs {
        job();
    }
}

/// `sys.path`, the POSIX filesystem and our modules.
fn setup(modules: &'static [&'static Module]) -> Result<(), Error> {
    set_path("")?;
    set_argv(&[])?;
    for module in modules {
        module.register()?;
    }
    exec_str(
        "<setup>",
        "import vfs\nvfs.mount(vfs.VfsPosix(), '/')\n",
        new_globals(Some("<setup>"))?,
    )
}

/// `sys.path = [script_dir, '.frozen']`, as the unix port's main sets it for a script (every
/// import reads `sys.path`; `.frozen` holds the frozen modules such as `asyncio`).
fn set_path(script_dir: &str) -> Result<(), Error> {
    let sys = Obj::from_ptr(ffi::data::mp_module_sys());
    let path = Obj::list()?;
    for dir in [script_dir, ".frozen"] {
        path.list_append(Obj::try_from(dir)?)?;
    }
    sys.set_attr(Qstr::intern(c"path")?, path)
}

fn set_argv(args: &[&str]) -> Result<(), Error> {
    // `sys.argv` is a list object inside MicroPython's state, read-only as an attribute; it
    // starts as zeroed memory and is (re)initialised in place, as the unix port's main does.
    let sys = Obj::from_ptr(ffi::data::mp_module_sys());
    let argv = sys.attr(Qstr::intern(c"argv")?)?;
    if !argv.is_ptr() {
        return Err(Error::TypeError("sys.argv is not a list object"));
    }
    // SAFETY: `argv` is the address of the state's `mp_obj_list_t`.
    // EXCEPTION: raises MemoryError.
    catch_exception(|| unsafe { ffi::mp_obj_list_init(argv.as_ptr(), 0) })?;
    for arg in args {
        argv.list_append(Obj::try_from(*arg)?)?;
    }
    Ok(())
}

/// The source name of code that is not a file (`-c`, the REPL, standard input).
pub(crate) const STDIN_NAME: &str = "<stdin>";

pub(crate) fn new_globals(file: Option<&str>) -> Result<Obj, Error> {
    // SAFETY: plain allocation.
    // EXCEPTION: raises MemoryError.
    let globals = catch_exception(|| unsafe { ffi::mp_obj_new_dict(0) })?;
    globals.set_item(
        Obj::from_qstr(Qstr::intern(c"__name__")?),
        Obj::try_from("__main__")?,
    )?;
    if let Some(file) = file {
        globals.set_item(
            Obj::from_qstr(Qstr::intern(c"__file__")?),
            Obj::try_from(file)?,
        )?;
    }
    Ok(globals)
}

fn exec_str(name: &str, source: &str, globals: Obj) -> Result<(), Error> {
    exec_mode(name, source, "exec", globals)
}

/// Compiles `source` with the builtin `compile` in `mode` (`"exec"`, or `"single"` for the REPL,
/// which prints the value of an expression) and runs it in `globals`.
pub(crate) fn exec_mode(name: &str, source: &str, mode: &str, globals: Obj) -> Result<(), Error> {
    let compile = Obj::from_ptr(ffi::data::mp_builtin_compile_obj());
    let exec = Obj::from_ptr(ffi::data::mp_builtin_exec_obj());
    let code = compile.call(&[
        Obj::try_from(source)?,
        Obj::try_from(name)?,
        Obj::try_from(mode)?,
    ])?;
    exec.call(&[code, globals]).map(|_| ())
}

fn run_source(name: &str, source: &str, args: &[String]) -> Result<(), ScriptError> {
    // `micropython < file` runs standard input with an empty `sys.argv`.
    let mut argv: Vec<&str> = if name == STDIN_NAME {
        vec![]
    } else {
        vec![name]
    };
    argv.extend(args.iter().map(String::as_str));
    let script_dir = Path::new(name)
        .parent()
        .map(|dir| dir.to_string_lossy().into_owned())
        .unwrap_or_default();
    run_in_main(name, source, &argv, &script_dir)
}

/// Runs `source` as `__main__` (`__file__` = `name` unless it is [`STDIN_NAME`]) with
/// `sys.argv = argv` and `sys.path[0] = path0`.
fn run_in_main(name: &str, source: &str, argv: &[&str], path0: &str) -> Result<(), ScriptError> {
    let file = (name != STDIN_NAME).then_some(name);
    let result = set_path(path0)
        .and_then(|()| set_argv(argv))
        .and_then(|()| new_globals(file))
        .and_then(|globals| exec_str(name, source, globals));
    match result {
        Ok(()) => Ok(()),
        Err(error) => Err(script_error(error)),
    }
}

/// Prepares `sys` for the REPL as the unix port does: `sys.path[0] = ''`, `sys.argv = []`.
pub(crate) fn repl_sys() -> Result<(), Error> {
    set_path("")?;
    set_argv(&[])
}

pub(crate) fn script_error(error: Error) -> ScriptError {
    let Error::Caught(exception) = error else {
        return ScriptError::Exception(format!("{error:?}"));
    };
    let system_exit = Obj::from_ptr(ffi::data::mp_type_SystemExit());
    let type_ = Obj::from_ptr(exception.type_of());
    // SAFETY: both are type objects.
    // EXCEPTION: none.
    if unsafe { ffi::mp_obj_is_subclass_fast(type_, system_exit) } {
        // SAFETY: `exception` is an exception instance.
        // EXCEPTION: none.
        let value = unsafe { ffi::mp_obj_exception_get_value(exception) };
        let code = if value == Obj::NONE {
            0
        } else {
            value.as_small_int().unwrap_or(1)
        };
        return if code == 0 {
            ScriptError::Exit(0)
        } else {
            ScriptError::Exit(i32::try_from(code).unwrap_or(1))
        };
    }
    let interrupt = Obj::from_ptr(ffi::data::mp_type_KeyboardInterrupt());
    // SAFETY: both are type objects.
    // EXCEPTION: none.
    if unsafe { ffi::mp_obj_is_subclass_fast(type_, interrupt) } {
        return ScriptError::Interrupted(describe(error));
    }
    ScriptError::Exception(describe(error))
}

/// MicroPython's traceback text for a caught exception.
pub(crate) fn describe(error: Error) -> String {
    let Error::Caught(exception) = error else {
        return format!("{error:?}");
    };
    let mut text = String::new();
    let print = ffi::Print {
        data: (&raw mut text).cast::<c_void>(),
        print_strn: append_to_string,
    };
    let print_ref = &print;
    // SAFETY: `print` writes into `text`, alive across the call; `exception` is an exception.
    // EXCEPTION: may raise MemoryError while formatting; caught, the text is then partial.
    let _ = catch_exception(|| unsafe { ffi::mp_obj_print_exception(print_ref, exception) });
    text
}

unsafe extern "C" fn append_to_string(data: *mut c_void, s: *const c_char, len: usize) {
    // SAFETY: `data` is the `String` given in `describe`, and MicroPython passes `len` bytes.
    unsafe {
        let text = &mut *data.cast::<String>();
        let bytes = core::slice::from_raw_parts(s.cast::<u8>(), len);
        text.push_str(&String::from_utf8_lossy(bytes));
    }
}
