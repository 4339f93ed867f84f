//! `cargo xtask test`: every check CI runs, in order, stopping at the first failure.
//!
//! Formatting, clippy with warnings denied, the `no_std` riscv64 build of the lower layers, of the
//! MicroPython user C module's static library and of the firmware for each board (riscv64 or
//! aarch64), the whole workspace's tests (which replay the fuzz corpora), the fuzz crate's
//! format and lints and a short run of every fuzz target (`cargo xtask fuzz --ci`), then a
//! one-minute soak (`cargo xtask soak --minutes 1`). Tests that need root (network namespaces,
//! TAP devices; the soak too) run when the caller is root; `K230_REQUIRE_ROOT_TESTS=1` (set by
//! CI) makes them fail instead of skip when they cannot run.

use anyhow::{bail, Context, Result};
use std::process::Command;

/// The no_std target the firmware layers must keep building for.
pub const NO_STD_TARGET: &str = "riscv64gc-unknown-none-elf";

/// Runs every check CI runs.
///
/// In order, stopping at the first failure: formatting, clippy, the `no_std` builds, the firmware
/// for each board, the workspace's tests, the fuzz crate's checks and a short run of each fuzz
/// target, then a one-minute soak of the simulated board (root).
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs the task.
pub fn run(_args: &Args) -> Result<()> {
    cargo(&["fmt", "--all", "--check"])?;
    cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])?;
    // The HAL alone, with no feature: built together with the others, cargo would turn on the
    // features they ask of it and hide what a firmware using only the HAL does not get.
    cargo(&["build", "-p", "k230-hal", "--target", NO_STD_TARGET])?;
    cargo(&[
        "build",
        "-p",
        "k230-hal",
        "-p",
        "netstack",
        "-p",
        "k230-board",
        "-p",
        "upy-socket",
        "-p",
        "upy-cmodule",
        "--target",
        NO_STD_TARGET,
    ])?;
    for (board, target) in [
        ("board-k230", NO_STD_TARGET),
        ("board-qemu-virt", NO_STD_TARGET),
        ("board-qemu-raspi3b", "aarch64-unknown-none"),
    ] {
        cargo(&[
            "build",
            "-p",
            "firmware",
            "--target",
            target,
            "--features",
            board,
        ])?;
    }
    cargo(&["test", "--workspace", "--no-fail-fast"])?;
    // The fuzz crate (its own workspace; its corpora are replayed by the workspace tests):
    // format, lints, then a short fuzzing run of each target.
    cargo(&["fmt", "--manifest-path", "fuzz/Cargo.toml", "--check"])?;
    cargo(&[
        "clippy",
        "--manifest-path",
        "fuzz/Cargo.toml",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])?;
    crate::fuzz::run(crate::fuzz::Args {
        ci: true,
        ..Default::default()
    })?;
    // Last: it leaves SIGINT and SIGTERM to its own signal thread (which removes its namespace).
    if k230_testkit::require::have_root("cargo xtask soak --minutes 1") {
        crate::soak::run(&crate::soak::Args { minutes: 1 })?;
    }
    Ok(())
}

fn cargo(args: &[&str]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("xtask: cargo {}", args.join(" "));
    let status = Command::new(&cargo)
        .args(args)
        .status()
        .with_context(|| format!("running {cargo}"))?;
    if !status.success() {
        bail!("cargo {} failed ({status})", args.join(" "));
    }
    Ok(())
}
