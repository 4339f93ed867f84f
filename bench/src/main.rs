//! The measured side of `cargo xtask bench`, built in release: each run is one process, so that
//! the bench can time it against a Linux peer and count its instructions under callgrind.
//!
//! - `bench stack --device tap|tap-plain|board ROLE`: our netstack `Stack` on a TAP device
//!   (`k230_hal::sim::wire::device::WireDevice`, no allocation per frame; with the TAP's
//!   checksum and TCP segmentation offloads, or `tap-plain` without), or on the simulated
//!   board (RTL8152 driver over the DWC2 driver over their models, the NIC model cabled to a
//!   TAP): the whole driver path;
//! - `bench upy SCRIPT ARGS`: a MicroPython script on the simulated board (the real MicroPython
//!   with our `socket` over the whole driver path);
//! - `bench relay`: copies frames between two TAP devices in two namespaces (the Linux-to-Linux
//!   baseline's link).
//!
//! The TAP is created in the namespace the process runs in (`ip netns exec`). A run talks to
//! the bench on stdin/stdout, one line each: it prints `ready` once its TAP exists, waits for
//! `go` (the bench has configured and raised the TAP's kernel side), prints `started` once its
//! role is armed (listening, connecting), `done BYTES` when its role is over, then keeps its
//! stack running (closing handshakes) until stdin ends.

mod endpoint;
mod relay;
mod upy;

use std::io::BufRead;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};

/// The measured side of `cargo xtask bench`.
#[derive(Debug, Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Our stack on a TAP device or on the simulated board.
    Stack {
        /// What the stack runs on.
        #[arg(long, value_enum)]
        device: DeviceKind,
        /// The TAP interface to create.
        #[arg(long)]
        tap: String,
        /// The stack's address (a /24).
        #[arg(long)]
        local: Ipv4Addr,
        /// What to do.
        #[command(subcommand)]
        role: Role,
    },
    /// A MicroPython script on the simulated board, its NIC cabled to a TAP device.
    Upy {
        /// The TAP interface to create.
        #[arg(long)]
        tap: String,
        /// The board's address (a /24).
        #[arg(long)]
        local: Ipv4Addr,
        /// The script.
        script: PathBuf,
        /// Its arguments (`sys.argv[1:]`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Copies frames between TAP `left` in namespace `left_netns` and TAP `right` in
    /// `right_netns` until stdin ends.
    Relay {
        #[arg(long)]
        left: String,
        #[arg(long)]
        left_netns: PathBuf,
        #[arg(long)]
        right: String,
        #[arg(long)]
        right_netns: PathBuf,
    },
}

/// What the stack runs on.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum DeviceKind {
    /// A TAP device (frame buffers reused) and its offloads (checksums, large TCP frames).
    Tap,
    /// A TAP device without offloads.
    TapPlain,
    /// The simulated board, its NIC model cabled to a TAP.
    Board,
}

/// One transfer.
#[derive(Clone, Copy, Debug, Subcommand)]
pub enum Role {
    /// Connects to `to`, sends `bytes` bytes, closes.
    TcpSend { to: SocketAddrV4, bytes: usize },
    /// Listens on `port`, accepts one connection, reads it to its end, closes.
    TcpRecv { port: u16 },
    /// Sends `bytes` bytes to `to` in datagrams of `size` payload bytes.
    UdpSend {
        to: SocketAddrV4,
        bytes: usize,
        #[arg(long, default_value_t = 1472)]
        size: usize,
    },
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Stack {
            device,
            tap,
            local,
            role,
        } => match device {
            DeviceKind::Tap => endpoint::run(endpoint::tap(&tap, local)?, role),
            DeviceKind::TapPlain => endpoint::run(endpoint::tap_plain(&tap, local)?, role),
            DeviceKind::Board => endpoint::run(endpoint::board(&tap, local)?, role),
        },
        Command::Upy {
            tap,
            local,
            script,
            args,
        } => upy::run(&tap, local, &script, &args),
        Command::Relay {
            left,
            left_netns,
            right,
            right_netns,
        } => relay::run(&left, &left_netns, &right, &right_netns),
    }
}

/// Prints one protocol line.
pub fn say(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    // The bench reads every line; a closed stdout means it is gone and the run ends anyway.
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Waits for the bench's `go`.
pub fn await_go() -> Result<()> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("stdin")?;
    if line.trim() != "go" {
        bail!("expected `go` on stdin, got {line:?}");
    }
    Ok(())
}
