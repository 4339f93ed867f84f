//! `cargo xtask run`: the MicroPython firmware on QEMU, with its console on this terminal (a REPL
//! to type into; Ctrl-A X quits QEMU) or on a pty for `mpremote`; on raspi3b with a `usb-net`
//! on a TAP device (options: [`Args`], `cargo xtask run --help`).

use anyhow::{bail, Context, Result};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use crate::build::{self, Board, BuildOptions};
use crate::qemu_usb;

/// Boots the firmware on QEMU.
///
/// `--pty` puts the console on a pseudo-terminal whose path QEMU prints
/// (`char device redirected to /dev/pts/N`); then `.venv/bin/mpremote connect /dev/pts/N repl`
/// (or `exec`, `run`, `soft-reset`) talks to it as to a board's serial port. On `qemu-raspi3b` a
/// `usb-net` sits on the USB root port, joined to `--tap IFNAME` (create the TAP device first, e.g.
/// in a network namespace of your own, and run this there) or to nothing.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Board to boot (a QEMU machine).
    #[arg(long, value_enum, default_value_t = Board::QemuVirt)]
    board: Board,
    /// Console on a pty (for mpremote) instead of this terminal.
    #[arg(long)]
    pty: bool,
    /// qemu-raspi3b: join the board's usb-net to this existing TAP device.
    #[arg(long, value_name = "IFNAME")]
    tap: Option<String>,
    /// Dev profile instead of release.
    #[arg(long)]
    debug: bool,
}

/// The QEMU command line for `board` booting `elf`, the console on a pty or this terminal, a
/// raspi3b's `usb-net` on `tap`.
pub fn qemu_command(board: Board, elf: &Path, pty: bool, tap: Option<&str>) -> Result<Command> {
    let mut cmd = match board {
        Board::QemuVirt => {
            if tap.is_some() {
                bail!("qemu-virt has no NIC (sockets use its loopback): --tap needs qemu-raspi3b");
            }
            let mut cmd = Command::new("qemu-system-riscv64");
            cmd.args(["-M", "virt", "-bios", "none"]);
            cmd
        }
        Board::QemuRaspi3b => {
            let mut cmd = Command::new("qemu-system-aarch64");
            cmd.args(["-M", "raspi3b"])
                .args(qemu_usb::usb_net_args(tap));
            cmd
        }
        Board::K230 => bail!("k230 is a board, not a QEMU machine: use `cargo xtask flash`"),
    };
    cmd.args(["-display", "none"]);
    if pty {
        cmd.args(["-serial", "pty", "-monitor", "none"]);
    } else {
        // The console and QEMU's monitor share the terminal (Ctrl-A X quits, Ctrl-A C monitor).
        cmd.args(["-serial", "mon:stdio"]);
    }
    cmd.arg("-kernel").arg(elf);
    Ok(cmd)
}

/// Runs the task.
pub fn run(args: &Args) -> Result<()> {
    build::exit_on_error(run_qemu(args))
}

fn run_qemu(args: &Args) -> Result<()> {
    // Refuse a non-QEMU board (or a TAP for a board without NIC) before building anything.
    let tap = args.tap.as_deref();
    qemu_command(args.board, Path::new("firmware.elf"), args.pty, tap)?;
    let fw = build::build_firmware(&BuildOptions {
        board: args.board,
        release: !args.debug,
        features: Vec::new(),
        board_variant: None,
    })?;
    let mut cmd = qemu_command(args.board, &fw.elf_path, args.pty, tap)?;
    if args.pty {
        eprintln!(
            "console on the pty QEMU names below; e.g. `.venv/bin/mpremote connect /dev/pts/N repl`; \
             Ctrl-C here stops QEMU"
        );
    } else {
        eprintln!("console on this terminal; Ctrl-A X quits QEMU");
    }
    // QEMU takes this process's place, so a signal to it (SIGTERM from a supervisor, Ctrl-C at
    // the terminal) reaches QEMU itself and no QEMU outlives its `xtask run`.
    let error = cmd.exec();
    Err(error).with_context(|| format!("running {:?}", cmd.get_program()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args_of(cmd: &Command) -> Vec<String> {
        cmd.get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn qemu_virt_console_on_the_terminal_or_a_pty() {
        let elf = Path::new("fw.elf");
        let term = qemu_command(Board::QemuVirt, elf, false, None).unwrap();
        assert_eq!(term.get_program(), "qemu-system-riscv64");
        assert_eq!(
            args_of(&term),
            [
                "-M",
                "virt",
                "-bios",
                "none",
                "-display",
                "none",
                "-serial",
                "mon:stdio",
                "-kernel",
                "fw.elf"
            ]
        );
        let pty = qemu_command(Board::QemuVirt, elf, true, None).unwrap();
        assert!(args_of(&pty).windows(2).any(|w| w == ["-serial", "pty"]));
        let err = qemu_command(Board::K230, elf, false, None).unwrap_err();
        assert!(err.to_string().contains("not a QEMU machine"), "{err}");
        let err = qemu_command(Board::QemuVirt, elf, false, Some("tap0")).unwrap_err();
        assert!(err.to_string().contains("no NIC"), "{err}");
    }

    #[test]
    fn qemu_raspi3b_has_a_usb_net_on_the_root_port_joined_to_the_tap() {
        let elf = Path::new("fw.elf");
        let cmd = qemu_command(Board::QemuRaspi3b, elf, true, Some("k230t0")).unwrap();
        assert_eq!(cmd.get_program(), "qemu-system-aarch64");
        let args = args_of(&cmd);
        assert_eq!(args[..2], ["-M", "raspi3b"]);
        assert!(args
            .windows(2)
            .any(|w| w == ["-device", "usb-net,netdev=n0,port=1"]));
        assert!(args
            .windows(2)
            .any(|w| w == ["-netdev", "tap,id=n0,ifname=k230t0,script=no,downscript=no"]));
        assert!(args.windows(2).any(|w| w == ["-kernel", "fw.elf"]));
        let isolated = args_of(&qemu_command(Board::QemuRaspi3b, elf, false, None).unwrap());
        assert!(isolated
            .windows(2)
            .any(|w| w == ["-netdev", "hubport,id=n0,hubid=0"]));
    }
}
