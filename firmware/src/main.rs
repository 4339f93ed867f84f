//! The K230 big-core firmware binary.
//!
//! On `riscv64gc-unknown-none-elf` this is the bare-metal image: `_start` (in [`rt`]) sets up the
//! stack, TLS and `.bss` and calls [`boot::fw_main`], which brings up the console, heap and
//! timer, runs the self-test, brings the network up where the board has a NIC and hands over to
//! MicroPython ([`upy`], the port's C in `upy/`). Built for the host it is a stub that says how to
//! build it; the logic it runs lives in the library and is tested there.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod boot;
// The runtime of the board's architecture: RISC-V (k230, qemu-virt) or AArch64 (qemu-raspi3b).
#[cfg(target_os = "none")]
#[cfg_attr(target_arch = "aarch64", path = "rt_aarch64.rs")]
mod rt;
#[cfg(target_os = "none")]
mod upy;

// The `socket` and `network` modules' Rust side and the panic handler, linked in whether or not
// the board starts a NIC.
#[cfg(target_os = "none")]
extern crate upy_cmodule;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "firmware: this is a bare-metal image; build it with `cargo xtask build` \
         (riscv64gc-unknown-none-elf with --features board-k230 or board-qemu-virt, aarch64-unknown-none \
         with --features board-qemu-raspi3b)"
    );
    std::process::exit(2);
}
