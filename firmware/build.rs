//! Picks the board's linker script when building for bare metal; does nothing on the host.

use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=link");
    if env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("none") {
        return;
    }
    let k230 = env::var_os("CARGO_FEATURE_BOARD_K230").is_some();
    let qemu = env::var_os("CARGO_FEATURE_BOARD_QEMU_VIRT").is_some();
    let script = match (k230, qemu) {
        (true, false) => "k230.ld",
        (false, true) => "qemu-virt.ld",
        // lib.rs names the mistake with a compile_error!; no script to pick here.
        _ => return,
    };
    let dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo")).join("link");
    println!("cargo:rustc-link-search={}", dir.display());
    println!("cargo:rustc-link-arg-bins=-T{script}");
}
