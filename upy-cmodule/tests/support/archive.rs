//! The static library as a linker sees it: building it, reading its archive members, and linking
//! it alone to measure what it adds to a firmware. Shared by `tests/link.rs` (which checks) and
//! `examples/footprint.rs` (which reports).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use object::{Object, ObjectSection, ObjectSymbol};

/// The firmware's target.
pub const TARGET: &str = "riscv64gc-unknown-none-elf";
/// What the library exports (k230net.h).
pub const EXPORTS: [&str; 5] = [
    "k230net_socket_module",
    "k230net_network_module",
    "k230net_start",
    "k230net_register",
    "k230net_poll",
];
/// `EF_RISCV_FLOAT_ABI` mask and its double-float value (lp64d, as the firmware's GCC uses).
const EF_RISCV_FLOAT_ABI: u32 = 0x6;
const EF_RISCV_FLOAT_ABI_DOUBLE: u32 = 0x4;

/// This crate's directory.
pub fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Builds the library with `args` into `target_dir` and returns `target_dir`.
pub fn cargo_build(target_dir: &Path, args: &[&str]) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "-p", "upy-cmodule", "--lib"])
        .args(args)
        .env("CARGO_TARGET_DIR", target_dir)
        .current_dir(manifest_dir())
        .status()
        .expect("run cargo");
    assert!(status.success(), "cargo build {args:?} failed");
    target_dir.to_path_buf()
}

/// One archive member: its float ABI and the global symbols it defines and needs.
pub struct Member {
    /// The member's file name.
    pub name: String,
    /// Whether it uses the lp64d float ABI.
    pub lp64d: bool,
    /// Global symbols it defines.
    pub defines: BTreeSet<String>,
    /// The data objects among them.
    pub data: BTreeSet<String>,
    /// Symbols it refers to without defining.
    pub needs: BTreeSet<String>,
}

/// The archive's members.
pub fn read_members(data: &[u8]) -> Vec<Member> {
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
pub fn pulled_members<'a>(members: &'a [Member], roots: &[&str]) -> Vec<&'a Member> {
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

/// Section sizes of the library linked alone.
pub struct Footprint {
    /// `.text` bytes.
    pub text: u64,
    /// `.rodata` bytes.
    pub rodata: u64,
    /// `.data` bytes.
    pub data: u64,
    /// `.bss` bytes.
    pub bss: u64,
}

/// Links the archive alone as a firmware would (the exports kept, the rest garbage-collected,
/// MicroPython's symbols left open) into `elf`, and measures the result.
pub fn linked_footprint(lib: &Path, elf: &Path) -> Footprint {
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
    let mut link = Command::new(&lld);
    link.args(["-flavor", "gnu", "-m", "elf64lriscv", "--gc-sections"])
        .args(["--unresolved-symbols=ignore-all", "-e", "k230net_start"]);
    for export in EXPORTS {
        link.args(["-u", export]);
    }
    let out = link.arg("-o").arg(elf).arg(lib).output().unwrap();
    assert!(
        out.status.success(),
        "rust-lld: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(elf).unwrap();
    let file = object::File::parse(&*bytes).unwrap();
    assert!(file.symbol_by_name("k230net_poll").is_some());
    let size = |name: &str| {
        file.sections()
            .filter(|s| {
                s.name()
                    .is_ok_and(|n| n == name || n.starts_with(&format!("{name}.")))
            })
            .map(|s| s.size())
            .sum::<u64>()
    };
    Footprint {
        text: size(".text"),
        rodata: size(".rodata"),
        data: size(".data"),
        bss: size(".bss"),
    }
}
