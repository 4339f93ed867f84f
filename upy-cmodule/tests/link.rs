//! The static library as a firmware's linker sees it.
//!
//! - `riscv64_library_*`: builds `libupy_cmodule.a` for `riscv64gc-unknown-none-elf` (release,
//!   as `micropython.mk` expects it), reads every archive member with the `object` crate and
//!   links it with `rust-lld` (garbage-collected, MicroPython's symbols left open) to measure
//!   what it adds to a firmware.
//! - `host_library_*`: builds the library for the host and links `tests/c/host_link.c` against
//!   it and the real MicroPython (the pinned unix-port library), then runs it.
//!
//! `k230net.c` and its compile-time ABI checks are compiled against MicroPython's source in
//! `tests/real_headers.rs`.

#[path = "support/archive.rs"]
mod archive;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use archive::{manifest_dir, pulled_members, read_members, EXPORTS, TARGET};
use object::{Object, ObjectSection, ObjectSymbol};

/// What the firmware provides (k230net.h; k230net.c implements them).
const HOOKS: [&str; 4] = [
    "k230net_ticks_us",
    "k230net_delay_us",
    "k230net_interrupt_pending",
    "k230net_panic",
];

/// Where the tests build the library: a target directory of their own (the outer cargo holds
/// the workspace's).
fn build_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("upy-cmodule-build")
}

fn is_micropython_api(name: &str) -> bool {
    ["mp_", "nlr_", "qstr_", "vstr_", "gc_"]
        .iter()
        .any(|prefix| name.starts_with(prefix))
        || matches!(name, "m_malloc" | "m_free")
}

/// The function and object names `k230net.h` declares.
fn header_names() -> BTreeSet<String> {
    let header = std::fs::read_to_string(manifest_dir().join("cmodule/k230net.h")).unwrap();
    let mut names = BTreeSet::new();
    for line in header.lines().filter(|l| !l.trim_start().starts_with("/*")) {
        for word in line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            let declared = line.contains(&format!("{word}(")) || line.contains(&format!("{word};"));
            if word.starts_with("k230net_") && !word.ends_with("_t") && declared {
                names.insert(word.to_owned());
            }
        }
    }
    names
}

#[test]
fn riscv64_library_exports_the_modules_and_needs_only_micropython() {
    let dir = archive::cargo_build(&build_dir(), &["--release", "--target", TARGET]);
    let lib = dir.join(TARGET).join("release/libupy_cmodule.a");
    let data = std::fs::read(&lib).unwrap();
    let members = read_members(&data);
    let defined: BTreeSet<&str> = members
        .iter()
        .flat_map(|m| &m.defines)
        .map(String::as_str)
        .collect();
    let data_symbols: BTreeSet<&str> = members
        .iter()
        .flat_map(|m| &m.data)
        .map(String::as_str)
        .collect();
    let undefined: BTreeSet<&str> = members
        .iter()
        .flat_map(|m| &m.needs)
        .map(String::as_str)
        .collect();

    // What a linker takes from the archive for the exports: those members, and the members
    // they need in turn. They must all use the firmware's float ABI (GNU ld refuses a mix).
    let pulled = pulled_members(&members, &EXPORTS);
    for m in &pulled {
        assert!(
            m.lp64d,
            "{} is linked for the exports but is not lp64d",
            m.name
        );
    }
    let soft: Vec<&str> = members
        .iter()
        .filter(|m| !m.lp64d)
        .map(|m| m.name.as_str())
        .collect();
    println!(
        "{} of {} members are linked for the exports, all lp64d; {} unused compiler-rt members \
         are soft-float ({:?}...)",
        pulled.len(),
        members.len(),
        soft.len(),
        soft.first()
    );
    for export in EXPORTS {
        assert!(defined.contains(export), "{export} is not exported");
    }
    assert!(data_symbols.contains("k230net_socket_module"));
    assert!(data_symbols.contains("k230net_network_module"));
    let open: BTreeSet<&str> = undefined
        .iter()
        .copied()
        .filter(|s| !defined.contains(*s))
        .collect();
    let foreign: Vec<&&str> = open
        .iter()
        .filter(|s| !is_micropython_api(s) && !HOOKS.contains(s))
        .collect();
    assert!(
        foreign.is_empty(),
        "unresolved outside MicroPython's API: {foreign:?}"
    );
    for hook in HOOKS {
        assert!(open.contains(hook), "{hook} is not used");
    }
    println!(
        "{} open symbols, all MicroPython's C API or the 3 hooks",
        open.len()
    );

    let expected: BTreeSet<String> = EXPORTS
        .iter()
        .chain(&HOOKS)
        .map(|s| s.to_string())
        .collect();
    assert_eq!(header_names(), expected, "k230net.h declares other names");

    let size = archive::linked_footprint(&lib, &dir.join("k230net-linked.elf"));
    println!(
        "linked into a firmware: .text {} B, .rodata {} B, .data {} B, .bss {} B",
        size.text, size.rodata, size.data, size.bss
    );
    assert!(size.text > 0);
    // The DWC2 memory, the NIC driver, the socket tables and the stack's socket buffers
    // (`net::BUFFERS`, about 208 KiB) are zero-initialised (.bss, not in the image); only the
    // stack's sockets and tables (`net::STORAGE`, whose empty state is not all zero) and a few
    // small objects are in .data (k230net.h says so).
    let elf = std::fs::read(dir.join("k230net-linked.elf")).unwrap();
    let elf = object::File::parse(&*elf).unwrap();
    let buffers = static_symbol(&elf, "BUFFERS");
    assert!(buffers.size() >= 200 * 1024, "BUFFERS {} B", buffers.size());
    assert!(in_bss(&elf, &buffers), "the socket buffers are not in .bss");
    let storage = static_symbol(&elf, "STORAGE");
    assert!(storage.size() < 12 * 1024, "STORAGE {} B", storage.size());
    assert!(size.bss >= 96 * 1024 + buffers.size(), ".bss {}", size.bss);
    assert!(size.data < 16 * 1024, ".data {}", size.data);
}

/// The symbol of `upy_cmodule::net::<name>` (a `static`) in a linked ELF.
fn static_symbol<'a>(elf: &'a object::File<'a>, name: &str) -> object::Symbol<'a, 'a> {
    let mangled = format!("3net{}{name}", name.len());
    elf.symbols()
        .find(|s| s.name().is_ok_and(|n| n.contains(&mangled)))
        .unwrap_or_else(|| panic!("no symbol for net::{name}"))
}

/// Whether `symbol` is in the zero-initialised output section (.bss, or one named `.bss.*`).
fn in_bss(elf: &object::File<'_>, symbol: &object::Symbol<'_, '_>) -> bool {
    let index = symbol.section_index().expect("a defined symbol");
    let name = elf.section_by_index(index).unwrap().name().unwrap();
    name == ".bss" || name.starts_with(".bss.")
}

#[test]
fn host_library_runs_in_the_real_micropython() {
    let Ok(micropython) = upy_bindings::host::library::find() else {
        // Prints the skip, or fails when K230_REQUIRE_UPY=1.
        assert!(!upy_bindings::host::have_library(
            "host_library_runs_in_the_real_micropython"
        ));
        return;
    };
    let dir = archive::cargo_build(&build_dir(), &[]);
    let lib = dir.join("debug/libupy_cmodule.a");
    let exe = dir.join("k230net-host-link");
    let libpython = std::env::var(upy_bindings::host::library::LIBPYTHON_ENV)
        .unwrap_or_else(|_| "libpython3.11.so.1.0".into());
    let so_dir = micropython.parent().unwrap();
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let out = Command::new(cc)
        .args([
            "-std=c11",
            "-D_POSIX_C_SOURCE=199309L",
            "-Wall",
            "-Wextra",
            "-Werror",
        ])
        .arg("-I")
        .arg(manifest_dir().join("cmodule"))
        .arg(manifest_dir().join("tests/c/host_link.c"))
        .arg(&lib)
        .arg(&micropython)
        .arg(format!("-l:{libpython}"))
        .arg(format!("-Wl,-rpath,{}", so_dir.display()))
        // `rustc --print native-static-libs` for the host's std.
        .args([
            "-lgcc_s",
            "-lutil",
            "-lrt",
            "-lpthread",
            "-lm",
            "-ldl",
            "-lc",
        ])
        .arg("-o")
        .arg(&exe)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cc: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = Command::new(&exe).output().unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    print!("{stdout}");
    assert!(
        run.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(
        stdout,
        "boot: registered\nk230net script: ok\nsoft reset: registered\nk230net script: ok\n\
         k230net_start(NULL) = -1\n"
    );
}
