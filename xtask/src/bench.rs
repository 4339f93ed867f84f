//! `cargo xtask bench`: our stack against lwIP 2.1 and Linux over the same TAP path, in one run,
//! as ratios; instructions per payload byte; the RAM a TCP socket costs.
//!
//! Subjects, each a release-built process with its own TAP device into a network namespace
//! where the Linux peer runs (`bench/`):
//! - ours on TAP: the netstack `Stack` straight on a TAP device (`WireDevice`, which reuses its
//!   frame buffers where smoltcp's `TunTapInterface` allocates per frame);
//! - ours on the board: the `Stack` on the simulated board (RTL8152 driver over the DWC2 driver
//!   over their models, the NIC model cabled to the TAP): the whole driver path;
//! - lwIP: Debian's liblwip 2.1 (TCP window and send buffer 64 KiB, as ours) on a TAP netif of
//!   ours, built here (`bench/lwip/endpoint.c`);
//! - Linux: two Linux sockets in two namespaces joined by two TAPs whose frames a process copies
//!   across (`bench relay`).
//!
//! Then the MicroPython level ([`bench_upy`]): `bench/upy/tcp.py` (blocking, and non-blocking
//! with `select.poll`, both directions) on the simulated board vs the unix MicroPython.
//!
//! Every transfer is timed by the Linux peer: sent to Linux, from accept to end of stream;
//! received from Linux, from connect until the subject closed; UDP, first to last datagram.
//! Instruction counts come from callgrind (valgrind), deterministic where wall-clock time on a
//! shared machine is not: two transfers of different sizes per subject, the difference in
//! instructions over the difference in bytes (so start-up and handshakes cancel out). For the
//! board, the models' own instructions are counted separately (`bench_callgrind::MODEL_ENTRIES`).
//!
//! Needs root (namespaces, TAP), a C compiler and liblwip-dev, valgrind (scripts/setup).

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use k230_testkit::netns::{unique_name, Netns};
use netstack::storage::tcp_socket_ram;

use crate::bench_callgrind::{self, Count};
use crate::bench_linux::{self as linux, join, Relayed, Timed};
use crate::bench_process::Process;
use crate::bench_upy;
use crate::build::{target_dir, workspace_root};

/// The Linux peer's address (the TAP's kernel side).
const PEER_IP: Ipv4Addr = Ipv4Addr::new(10, 78, 0, 1);
/// The subject's address.
const SUBJECT_IP: Ipv4Addr = Ipv4Addr::new(10, 78, 0, 2);
/// The Linux baseline's two ends.
const LEFT_IP: Ipv4Addr = Ipv4Addr::new(10, 79, 0, 1);
const RIGHT_IP: Ipv4Addr = Ipv4Addr::new(10, 79, 0, 2);
const PORT: u16 = 5201;
/// UDP payload per datagram (a full 1500-byte frame).
const DATAGRAM: usize = 1472;
/// Under callgrind, every subject's glibc `memcpy` copies with vector loops at any size: above
/// a threshold it otherwise uses `rep movsb`, which callgrind counts as one instruction per byte
/// moved (a CPU runs it at cache speed), so a program that copies in large blocks would be
/// charged far more than one that copies frame by frame for the same work.
const NO_REP_MOVSB: &str = "GLIBC_TUNABLES=glibc.cpu.x86_rep_movsb_threshold=4294967295";

/// Measures our stack against lwIP 2.1 and Linux over the same TAP path.
///
/// TCP both directions and UDP for our stack on a TAP, our stack on the simulated board, lwIP
/// 2.1 (Debian's liblwip on a TAP netif) and Linux (two namespaces joined by a TAP relay), each
/// timed by the Linux peer, printed with ratios against lwIP; then instructions per payload byte
/// (callgrind) of our stack, lwIP and the board's driver path; then the RAM per TCP socket.
/// Between them, a MicroPython script's TCP throughput on the simulated board against the unix
/// MicroPython's over the same kind of TAP path (`bench/upy/tcp.py`, blocking and `select.poll`).
/// Builds what it measures in release. Needs root, valgrind and liblwip-dev.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// MiB per timed transfer.
    #[arg(long, value_name = "N", default_value_t = 64)]
    mib: usize,
    /// Timed runs of each transfer (the median is shown).
    #[arg(long, value_name = "N", default_value_t = 3)]
    runs: usize,
    /// MiB between the two transfers whose instruction counts are compared (0: no counts).
    #[arg(long, value_name = "N", default_value_t = 8)]
    count_mib: usize,
    /// MiB per MicroPython script transfer (0: no MicroPython part).
    #[arg(long, value_name = "N", default_value_t = 16)]
    upy_mib: usize,
}

/// Runs the task.
pub fn run(args: &Args) -> Result<()> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        bail!("cargo xtask bench needs root (network namespaces and TAP devices)");
    }
    if args.runs == 0 || args.mib == 0 {
        bail!("--runs and --mib must be at least 1");
    }
    let exes = Exes::build()?;
    let bytes = args.mib << 20;
    println!(
        "Throughput over TAP into a network namespace, timed by the Linux peer: {} MiB per TCP \
         transfer, median of {} runs (MB/s = 10^6 B/s); TCP windows and send buffers 64 KiB",
        args.mib, args.runs
    );
    let mut table = Vec::new();
    for transfer in Transfer::ALL {
        let mut row = Vec::new();
        for subject in Subject::ALL {
            let mut rates = Vec::new();
            for _ in 0..args.runs {
                let (moved, elapsed) = exes.timed(subject, transfer, bytes)?;
                rates.push(moved as f64 / elapsed.as_secs_f64() / 1e6);
            }
            row.push(median(&mut rates));
        }
        table.push(row);
    }
    print!("  {:<22}", "");
    for subject in Subject::ALL {
        print!("{:>12}", subject.label());
    }
    println!(
        "{:>12}{:>12}{:>12}",
        "ours/lwIP", "plain/lwIP", "board/lwIP"
    );
    for (transfer, row) in Transfer::ALL.iter().zip(&table) {
        print!("  {:<22}", transfer.label());
        for rate in row {
            print!("{rate:>12.1}");
        }
        let lwip = row[Subject::Lwip as usize];
        println!(
            "{:>12.2}{:>12.2}{:>12.2}",
            row[Subject::Stack as usize] / lwip,
            row[Subject::Plain as usize] / lwip,
            row[Subject::Board as usize] / lwip
        );
    }
    println!(
        "  (ours/TAP and ours/board: built with feature large-send; ours/TAP uses the TAP's \
         offloads, TCP/UDP checksums both ways and large TCP frames out (smoltcp segmentation \
         offload; the kernel takes a frame of several segments whole), as a NIC with checksum \
         and segmentation offload does; ours/board the RTL8152's (large send, checksums); ours/plain: the default build (as the boards'), no offloads, \
         as lwIP 2.1, which has neither)"
    );

    if args.upy_mib > 0 {
        bench_upy::run(&exes.bench, args.upy_mib << 20, args.runs)?;
    }
    if args.count_mib > 0 {
        instructions(&exes, args.count_mib)?;
    }

    println!("RAM per TCP socket (static pool):");
    println!(
        "  smoltcp tcp::Socket {} B, SocketSet slot {} B",
        std::mem::size_of::<smoltcp::socket::tcp::Socket<'static>>(),
        std::mem::size_of::<smoltcp::iface::SocketStorage<'static>>()
    );
    for buffer in [2048, 4096, 8192, 16384, 65536] {
        println!(
            "  buffers 2 x {buffer:>5} B -> {:>6} B per socket (slot, entry, id included)",
            tcp_socket_ram(buffer)
        );
    }
    Ok(())
}

/// Instructions per payload byte of each subject's TCP transfers.
fn instructions(exes: &Exes, count_mib: usize) -> Result<()> {
    let small = 1 << 20;
    let large = small + (count_mib << 20);
    println!(
        "Instructions per TCP payload byte (callgrind, all threads of the process; the \
         difference between a {} MiB and a {} MiB transfer over {count_mib} MiB; memcpy without \
         `rep movsb`, which callgrind counts per byte):",
        small >> 20,
        large >> 20
    );
    println!(
        "  {:<22}{:>12}{:>12}{:>12}{:>12}{:>12}{:>14}{:>12}{:>14}",
        "",
        "ours/TAP",
        "ours/plain",
        "lwIP",
        "ours/lwIP",
        "plain/lwIP",
        "board total",
        "models",
        "board-models"
    );
    let scratch = tempfile::tempdir()?;
    for transfer in [Transfer::TcpOut, Transfer::TcpIn] {
        let per_byte = |subject: Subject| -> Result<(f64, f64)> {
            let mut counts = [Count::default(); 2];
            for (count, size) in counts.iter_mut().zip([small, large]) {
                let out = scratch
                    .path()
                    .join(format!("{subject:?}-{transfer:?}-{size}.out"));
                exes.counted(subject, transfer, size, &out)?;
                *count = bench_callgrind::read(&out)?;
            }
            let span = (large - small) as f64;
            Ok((
                counts[1].total.saturating_sub(counts[0].total) as f64 / span,
                counts[1].models.saturating_sub(counts[0].models) as f64 / span,
            ))
        };
        let (stack, _) = per_byte(Subject::Stack)?;
        let (plain, _) = per_byte(Subject::Plain)?;
        let (lwip, _) = per_byte(Subject::Lwip)?;
        let (board, models) = per_byte(Subject::Board)?;
        println!(
            "  {:<22}{stack:>12.2}{plain:>12.2}{lwip:>12.2}{:>12.2}{:>12.2}{board:>14.2}{models:>12.2}{:>14.2}",
            transfer.label(),
            stack / lwip,
            plain / lwip,
            board - models
        );
    }
    println!(
        "  (board-models: our stack with the RTL8152 and DWC2 drivers, the models' instructions \
         taken out; on hardware a register access is one load or store)"
    );
    println!(
        "  (TCP checksums: ours/plain and lwIP compute and check them in software, ours with \
         netstack::checksum; ours/TAP leaves the outgoing ones to the TAP and checks only incoming ones the kernel does not vouch for (TUN_F_CSUM); Debian's lwIP with CHECKSUM_GEN/CHECK_TCP and LWIP_CHECKSUM_ON_COPY, \
         summing while it copies; on the board the RTL8152 does, its model's work counted in \
         `models`)"
    );
    Ok(())
}

/// The median of `values` (sorted in place).
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Who runs the measured side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Subject {
    Stack,
    Plain,
    Board,
    Lwip,
    Linux,
}

impl Subject {
    const ALL: [Subject; 5] = [
        Subject::Stack,
        Subject::Plain,
        Subject::Board,
        Subject::Lwip,
        Subject::Linux,
    ];

    fn label(self) -> &'static str {
        match self {
            Subject::Stack => "ours/TAP",
            Subject::Plain => "ours/plain",
            Subject::Board => "ours/board",
            Subject::Lwip => "lwIP",
            Subject::Linux => "Linux",
        }
    }
}

/// One transfer, from the subject's side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Transfer {
    /// TCP, subject to Linux.
    TcpOut,
    /// TCP, Linux to subject.
    TcpIn,
    /// UDP, subject to Linux.
    UdpOut,
}

impl Transfer {
    const ALL: [Transfer; 3] = [Transfer::TcpOut, Transfer::TcpIn, Transfer::UdpOut];

    fn label(self) -> &'static str {
        match self {
            Transfer::TcpOut => "TCP subject -> Linux",
            Transfer::TcpIn => "TCP Linux -> subject",
            Transfer::UdpOut => "UDP subject -> Linux",
        }
    }
}

/// The measured programs, built in release.
struct Exes {
    /// The bench with feature `large-send` (ours/TAP, ours/board, the MicroPython scripts).
    bench: PathBuf,
    /// The bench as a board builds the stack by default, without `large-send` (ours/plain).
    plain: PathBuf,
    lwip: PathBuf,
}

impl Exes {
    /// Builds `bench` (cargo, release) without and with feature `large-send`, and the lwIP
    /// endpoint (cc -O2 against liblwip).
    fn build() -> Result<Self> {
        let release = target_dir().join("release");
        let plain = release.join("bench-plain");
        build_bench(&[])?;
        std::fs::copy(release.join("bench"), &plain).context("keep the plain bench")?;
        build_bench(&["--features", "large-send"])?;
        let lwip = release.join("lwip-endpoint");
        build_lwip(&lwip)?;
        Ok(Self {
            bench: release.join("bench"),
            plain,
            lwip,
        })
    }

    /// One transfer of `bytes` bytes, timed by the Linux peer.
    fn timed(&self, subject: Subject, transfer: Transfer, bytes: usize) -> Result<Timed> {
        let timed = if subject == Subject::Linux {
            linux_transfer(self, transfer, bytes)?
        } else {
            self.transfer(subject, transfer, bytes, None)?
        };
        if transfer != Transfer::UdpOut && timed.0 != bytes {
            bail!(
                "{subject:?} {transfer:?}: {} of {bytes} bytes arrived",
                timed.0
            );
        }
        Ok(timed)
    }

    /// One transfer with the subject under callgrind, its counts written to `out`.
    fn counted(
        &self,
        subject: Subject,
        transfer: Transfer,
        bytes: usize,
        out: &Path,
    ) -> Result<()> {
        self.transfer(subject, transfer, bytes, Some(out))
            .map(|_| ())
    }

    /// The subject's command for `transfer` on TAP `tap`, run inside `ns`, under callgrind when
    /// `callgrind` names an output file.
    fn command(
        &self,
        ns: &Netns,
        subject: Subject,
        tap: &str,
        transfer: Transfer,
        bytes: usize,
        callgrind: Option<&Path>,
    ) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns.name()]);
        if let Some(out) = callgrind {
            cmd.args(["env", NO_REP_MOVSB, "valgrind", "--tool=callgrind", "-q"])
                .arg(format!("--callgrind-out-file={}", out.display()));
        }
        let peer = SocketAddrV4::new(PEER_IP, PORT);
        let (bytes, datagram) = (bytes.to_string(), DATAGRAM.to_string());
        match subject {
            Subject::Lwip => {
                cmd.arg(&self.lwip).args([tap, &SUBJECT_IP.to_string()]);
                match transfer {
                    Transfer::TcpOut => {
                        cmd.args(["tcp-send", &PEER_IP.to_string(), &PORT.to_string(), &bytes])
                    }
                    Transfer::TcpIn => cmd.args(["tcp-recv", &PORT.to_string()]),
                    Transfer::UdpOut => cmd.args([
                        "udp-send",
                        &PEER_IP.to_string(),
                        &PORT.to_string(),
                        &bytes,
                        &datagram,
                    ]),
                };
            }
            _ => {
                let (exe, device) = match subject {
                    Subject::Board => (&self.bench, "board"),
                    Subject::Plain => (&self.plain, "tap-plain"),
                    _ => (&self.bench, "tap"),
                };
                cmd.arg(exe)
                    .args(["stack", "--device", device, "--tap", tap, "--local"])
                    .arg(SUBJECT_IP.to_string());
                match transfer {
                    Transfer::TcpOut => cmd.args(["tcp-send", &peer.to_string(), &bytes]),
                    Transfer::TcpIn => cmd.args(["tcp-recv", &PORT.to_string()]),
                    Transfer::UdpOut => {
                        cmd.args(["udp-send", &peer.to_string(), &bytes, "--size", &datagram])
                    }
                };
            }
        }
        cmd
    }

    /// One transfer between a subject process and the Linux peer in a fresh namespace.
    fn transfer(
        &self,
        subject: Subject,
        transfer: Transfer,
        bytes: usize,
        callgrind: Option<&Path>,
    ) -> Result<Timed> {
        let ns = Netns::new().context("create netns")?;
        let tap = unique_name("k230b");
        let cmd = self.command(&ns, subject, &tap, transfer, bytes, callgrind);
        let what = format!("{subject:?} {transfer:?}");
        let mut process = Process::start(cmd, &what)?;
        process.expect("ready")?;
        ns.exec_ok(&["ip", "addr", "add", &format!("{PEER_IP}/24"), "dev", &tap])?;
        ns.exec_ok(&["ip", "link", "set", &tap, "up"])?;
        let peer = SocketAddrV4::new(PEER_IP, PORT);
        let timed = match transfer {
            Transfer::TcpOut => {
                let sink = linux::tcp_sink(&ns, peer)?;
                process.say("go")?;
                process.expect("started")?;
                process.expect("done")?;
                join(sink)?
            }
            Transfer::TcpIn => {
                process.say("go")?;
                process.expect("started")?;
                let source = linux::tcp_source(&ns, SocketAddrV4::new(SUBJECT_IP, PORT), bytes)?;
                let got: usize = process.expect("done")?.parse().context("done BYTES")?;
                let timed = join(source)?;
                (got, timed.1)
            }
            Transfer::UdpOut => {
                let sink = linux::udp_sink(&ns, peer, bytes)?;
                process.say("go")?;
                process.expect("started")?;
                process.expect("done")?;
                join(sink)?
            }
        };
        process.finish()?;
        Ok(timed)
    }
}

/// `cargo build --release -p bench` with `extra` arguments.
fn build_bench(extra: &[&str]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(&cargo)
        .args(["build", "--release", "-p", "bench"])
        .args(extra)
        .current_dir(workspace_root())
        .status()
        .context("cargo build")?;
    if !status.success() {
        bail!("cargo build --release -p bench {extra:?} failed ({status})");
    }
    Ok(())
}

/// Builds the lwIP harness (`bench/lwip/endpoint.c`, cc -O2 against Debian's liblwip) as `out`.
fn build_lwip(out: &Path) -> Result<()> {
    let source = workspace_root().join("bench/lwip/endpoint.c");
    let flags = Command::new("pkg-config")
        .args(["--cflags", "--libs", "lwip"])
        .output()
        .context("pkg-config (install liblwip-dev and pkg-config: scripts/setup)")?;
    if !flags.status.success() {
        bail!(
            "pkg-config lwip (install liblwip-dev: scripts/setup): {}",
            String::from_utf8_lossy(&flags.stderr).trim()
        );
    }
    let flags = String::from_utf8(flags.stdout)?;
    let status = Command::new("cc")
        .args(["-O2", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(out)
        .arg(&source)
        .args(flags.split_whitespace())
        .arg("-pthread")
        .status()
        .context("cc")?;
    if !status.success() {
        bail!("building {} failed ({status})", source.display());
    }
    Ok(())
}

/// The same transfer between two Linux sockets in two namespaces joined by the TAP relay: the
/// left one plays the subject.
fn linux_transfer(exes: &Exes, transfer: Transfer, bytes: usize) -> Result<Timed> {
    let pair = Relayed::start(&exes.bench, LEFT_IP, RIGHT_IP)?;
    let (left, right) = (&pair.left, &pair.right);
    let timed = match transfer {
        Transfer::TcpOut => {
            let sink = linux::tcp_sink(right, SocketAddrV4::new(RIGHT_IP, PORT))?;
            let source = linux::tcp_source(left, SocketAddrV4::new(RIGHT_IP, PORT), bytes)?;
            join(source)?;
            join(sink)?
        }
        Transfer::TcpIn => {
            let sink = linux::tcp_sink(left, SocketAddrV4::new(LEFT_IP, PORT))?;
            let source = linux::tcp_source(right, SocketAddrV4::new(LEFT_IP, PORT), bytes)?;
            join(sink)?;
            join(source)?
        }
        Transfer::UdpOut => {
            let sink = linux::udp_sink(right, SocketAddrV4::new(RIGHT_IP, PORT), bytes)?;
            join(linux::udp_source(
                left,
                SocketAddrV4::new(RIGHT_IP, PORT),
                bytes,
                DATAGRAM,
            )?)?;
            join(sink)?
        }
    };
    pair.finish()?;
    Ok(timed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lwIP harness compiles warning-free against the liblwip scripts/setup installs (CI
    /// builds it, it does not run the bench).
    #[test]
    fn lwip_harness_builds_against_liblwip() {
        let have = Command::new("pkg-config")
            .args(["--exists", "lwip"])
            .status()
            .is_ok_and(|s| s.success());
        if !have {
            assert!(
                std::env::var("K230_REQUIRE_BUILD_TOOLS").as_deref() != Ok("1"),
                "liblwip-dev (pkg-config lwip) is missing and K230_REQUIRE_BUILD_TOOLS=1"
            );
            println!(
                "lwip_harness_builds_against_liblwip: SKIPPED (needs liblwip-dev, pkg-config)"
            );
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("lwip-endpoint");
        build_lwip(&out).unwrap();
        // Without arguments it prints its usage and exits with status 2.
        let status = Command::new(&out).output().unwrap().status;
        assert_eq!(status.code(), Some(2));
    }

    #[test]
    fn median_is_the_middle_value() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [5.0]), 5.0);
    }
}
