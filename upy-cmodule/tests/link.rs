//! The static library as a firmware's linker sees it.
//!
//! - `riscv64_library_*`: builds `libupy_cmodule.a` for `riscv64gc-unknown-none-elf` (release,
//!   as `micropython.mk` expects it), reads every archive member with the `object` crate and
//!   links it with `rust-lld` (garbage-collected, MicroPython's symbols left open) to measure
//!   what it adds to a firmware.
//! - `host_library_*`: builds the library for the host and links `tests/c/host_link.c` against
//!   it and the real MicroPython (the pinned unix-port library), then runs it.
//!
//! MicroPython's source is not available here, so `k230net.c` itself (and its compile-time ABI
//! checks) is not compiled by these tests; `host_link.c` stands in for it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use object::{Object, ObjectSection, ObjectSymbol};

const TARGET: &str = "riscv64gc-unknown-none-elf";
/// What the library exports (k230net.h).
const EXPORTS: [&str; 5] = [
    "k230net_socket_module",
    "k230net_network_module",
    "k230net_start",
    "k230net_register",
    "k230net_poll",
];
/// What the firmware provides (k230net.h; k230net.c implements them).
const HOOKS: [&str; 3] = ["k230net_ticks_us", "k230net_delay_us", "k230net_panic"];
/// `EF_RISCV_FLOAT_ABI` mask and its double-float value (lp64d, as the firmware's GCC uses).
const EF_RISCV_FLOAT_ABI: u32 = 0x6;
const EF_RISCV_FLOAT_ABI_DOUBLE: u32 = 0x4;

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Builds the library with `args` in a target directory of its own (the outer cargo holds the
/// workspace's) and returns that directory.
fn cargo_build(args: &[&str]) -> PathBuf {
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("upy-cmodule-build");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "-p", "upy-cmodule", "--lib"])
        .args(args)
        .env("CARGO_TARGET_DIR", &target_dir)
        .current_dir(manifest_dir())
        .status()
        .expect("run cargo");
    assert!(status.success(), "cargo build {args:?} failed");
    target_dir
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

/// One archive member: its float ABI and the global symbols it defines and needs.
struct Member {
    name: String,
    lp64d: bool,
    defines: BTreeSet<String>,
    data: BTreeSet<String>,
    needs: BTreeSet<String>,
}

fn read_members(data: &[u8]) -> Vec<Member> {
    let archive = object::read::archive::ArchiveFile::parse(data).unwrap();
    let mut members = Vec::new();
    for member in archive.members() {
        let member = member.unwrap();
        let name = String::from_utf8_lossy(member.name()).into_owned();
        let file = object::File::parse(member.data(data).unwrap())
            .unwrap_or_else(|e| panic!("{name} is not an object file: {e}"));
        assert_eq!(file.architecture(), object::Architecture::Riscv64, "{name}");
        let object::FileFlags::Elf { e_flags, .. } = file.flags() else {
            panic!("{name} is not ELF");
        };
        let mut m = Member {
            lp64d: e_flags.0 & EF_RISCV_FLOAT_ABI == EF_RISCV_FLOAT_ABI_DOUBLE,
            name,
            defines: BTreeSet::new(),
            data: BTreeSet::new(),
            needs: BTreeSet::new(),
        };
        for symbol in file.symbols() {
            let Ok(sym) = symbol.name() else { continue };
            if symbol.is_undefined() {
                m.needs.insert(sym.to_owned());
            } else if symbol.is_global() {
                m.defines.insert(sym.to_owned());
                if symbol.kind() == object::SymbolKind::Data {
                    m.data.insert(sym.to_owned());
                }
            }
        }
        members.push(m);
    }
    members
}

/// The members an archive-scanning linker takes to define `roots`, transitively.
fn pulled_members<'a>(members: &'a [Member], roots: &[&str]) -> Vec<&'a Member> {
    let mut wanted: Vec<String> = roots.iter().map(|s| s.to_string()).collect();
    let mut taken = vec![false; members.len()];
    while let Some(symbol) = wanted.pop() {
        if let Some(i) = members.iter().position(|m| m.defines.contains(&symbol)) {
            if !taken[i] {
                taken[i] = true;
                wanted.extend(members[i].needs.iter().cloned());
            }
        }
    }
    members
        .iter()
        .zip(taken)
        .filter(|(_, t)| *t)
        .map(|(m, _)| m)
        .collect()
}

#[test]
fn riscv64_library_exports_the_modules_and_needs_only_micropython() {
    let dir = cargo_build(&["--release", "--target", TARGET]);
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

    linked_footprint(&lib, &dir);
}

/// Links the archive alone as a firmware would (entry points kept, the rest collected) and
/// prints and checks what it adds.
fn linked_footprint(lib: &Path, dir: &Path) {
    let sysroot = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .unwrap();
    let host = Command::new("rustc").arg("-vV").output().unwrap();
    let host = String::from_utf8_lossy(&host.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
        .unwrap();
    let lld = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim())
        .join("lib/rustlib")
        .join(host)
        .join("bin/rust-lld");
    let elf = dir.join("k230net-linked.elf");
    let mut link = Command::new(&lld);
    link.args(["-flavor", "gnu", "-m", "elf64lriscv", "--gc-sections"])
        .args(["--unresolved-symbols=ignore-all", "-e", "k230net_start"]);
    for export in EXPORTS {
        link.args(["-u", export]);
    }
    let out = link.arg("-o").arg(&elf).arg(lib).output().unwrap();
    assert!(
        out.status.success(),
        "rust-lld: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&elf).unwrap();
    let file = object::File::parse(&*bytes).unwrap();
    let size = |name: &str| {
        file.sections()
            .filter(|s| {
                s.name()
                    .is_ok_and(|n| n == name || n.starts_with(&format!("{name}.")))
            })
            .map(|s| s.size())
            .sum::<u64>()
    };
    let (text, rodata, data, bss) = (size(".text"), size(".rodata"), size(".data"), size(".bss"));
    println!(
        "linked into a firmware: .text {text} B, .rodata {rodata} B, .data {data} B, .bss {bss} B"
    );
    assert!(text > 0 && file.symbol_by_name("k230net_poll").is_some());
    // The DWC2 memory and the socket tables are zero-initialised (.bss); only the socket
    // storage, whose empty state is not all zero, is in .data (k230net.h says so).
    assert!(bss >= 96 * 1024, ".bss {bss}");
    assert!(data < 224 * 1024, ".data {data}");
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
    let dir = cargo_build(&[]);
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
