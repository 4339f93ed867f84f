//! `cargo xtask qemu-usb`: build the raspi3b test image and run it in QEMU with a `usb-net`
//! (or a `usb-storage`); options: [`Args`], `cargo xtask qemu-usb --help`.
//!
//! The image (`qemu-usb-test/`, its own workspace, target `aarch64-unknown-none`) runs our DWC2
//! host driver against QEMU's DWC2 model and our CDC-ECM driver against QEMU's `usb-net`. With
//! `--tap` the `usb-net` is joined to an existing TAP device (create it, in a network namespace
//! of your own, first; run this inside that namespace); without it, to an isolated hub port that
//! carries no traffic anywhere. `--disk` attaches a raw disk image as `usb-storage` instead, for
//! the image's high-speed read check. `--build-only` prints the image path instead of running
//! QEMU.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// Rust target of the image.
pub const TARGET: &str = "aarch64-unknown-none";

/// Builds the image (release profile) and returns the ELF's path.
pub fn build_image(root: &Path) -> Result<PathBuf> {
    let crate_dir = root.join("qemu-usb-test");
    // A target directory of its own: the image's workspace must not share a lock with the
    // root workspace's build that may be running this.
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("qemu-usb-test");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(&crate_dir)
        .args(["build", "--release", "--target", TARGET])
        .env("CARGO_TARGET_DIR", &target_dir)
        .status()
        .context("running cargo build for qemu-usb-test")?;
    if !status.success() {
        bail!("building qemu-usb-test failed ({status}); is `rustup target add {TARGET}` done?");
    }
    Ok(target_dir
        .join(TARGET)
        .join("release")
        .join("qemu-usb-test"))
}

/// What sits on the DWC2's root port.
pub enum Attach {
    /// `usb-net` joined to a TAP device, or to nothing.
    Net { tap: Option<String> },
    /// `usb-storage` over a raw disk image.
    Disk(PathBuf),
}

/// QEMU arguments for a `usb-net` on raspi3b's DWC2 root port, joined to the TAP device `tap`
/// (which must exist) or, without one, to an isolated hub port that carries no traffic anywhere.
pub fn usb_net_args(tap: Option<&str>) -> [String; 4] {
    let netdev = match tap {
        Some(ifname) => format!("tap,id=n0,ifname={ifname},script=no,downscript=no"),
        None => "hubport,id=n0,hubid=0".to_string(),
    };
    // port=1: on the root port itself; QEMU otherwise puts a hub in front of the DWC2's single
    // port, and our driver drives no hubs.
    [
        "-device".into(),
        "usb-net,netdev=n0,port=1".into(),
        "-netdev".into(),
        netdev,
    ]
}

/// The QEMU command line for the image with `attach` on the root port.
pub fn qemu_command(image: &Path, attach: &Attach) -> Command {
    let devices = match attach {
        Attach::Net { tap } => usb_net_args(tap.as_deref()),
        Attach::Disk(file) => [
            "-device".into(),
            "usb-storage,drive=d0,port=1".to_string(),
            "-drive".into(),
            format!("if=none,id=d0,format=raw,file={}", file.display()),
        ],
    };
    let mut cmd = Command::new("qemu-system-aarch64");
    cmd.args([
        "-M", "raspi3b", "-display", "none", "-monitor", "none", "-serial", "stdio",
    ])
    .arg("-kernel")
    .arg(image)
    .args(devices);
    cmd
}

/// Runs our USB host driver on QEMU raspi3b's DWC2 model.
///
/// Builds the test image (`qemu-usb-test/`) and runs it in QEMU: our DWC2 host driver on QEMU's
/// DWC2 model, with QEMU's `usb-net` (CDC-ECM) or `usb-storage` on the root port.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Join the `usb-net` to this existing TAP device (default: to an isolated hub port).
    #[arg(long, value_name = "IFNAME", conflicts_with = "disk")]
    tap: Option<String>,
    /// Attach this raw disk image as `usb-storage` instead of a `usb-net`.
    #[arg(long, value_name = "FILE")]
    disk: Option<PathBuf>,
    /// Only build; print the image's path.
    #[arg(long)]
    build_only: bool,
}

/// Runs the task.
pub fn run(args: Args) -> Result<()> {
    let attach = match args.disk {
        Some(file) => Attach::Disk(file),
        None => Attach::Net { tap: args.tap },
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("xtask lives in the workspace root")?
        .to_path_buf();
    let image = build_image(&root)?;
    if args.build_only {
        println!("{}", image.display());
        return Ok(());
    }
    let status = qemu_command(&image, &attach)
        .status()
        .context("running qemu-system-aarch64 (Debian package qemu-system-arm)")?;
    if !status.success() {
        bail!("QEMU exited with {status}");
    }
    Ok(())
}
