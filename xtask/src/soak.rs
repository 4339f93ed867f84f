//! `cargo xtask soak --minutes N`: everything at once on the simulated board against Linux.
//!
//! The board is `cargo xtask sim`'s ([`Rig`]: the board assembly's supervised stack over the
//! DWC2 and RTL8152 models, its wire a TAP into a network namespace made for the run); the
//! board's programs drive upy-socket's table from Rust ([`crate::soak_board`]), Linux's are
//! threads in the namespace ([`crate::soak_linux`]). For N minutes, all at once:
//!
//! - bulk TCP both ways (seeded pseudo-random bytes checked as they arrive);
//! - short connections opened from both sides, one after another;
//! - a UDP flood both ways at the 100 Mbit/s line rate, in bursts ([`FLOOD_BURST`] of every
//!   [`FLOOD_PERIOD`]);
//! - a USB unplug every [`REPLUG_PERIOD`], replugged [`UNPLUGGED`] later: connections in flight
//!   fail with `ECONNABORTED`, the bytes received so far must be a prefix of those sent, and
//!   the transfer starts again.
//!
//! Then the run winds down (work in flight finishes) and checks ([`crate::soak_check`]): every
//! completed transfer byte-exact on both sides, every socket slot, handle, pool entry and
//! buffer free, and the counters of the board (stack, driver, models) and of Linux adding up.
//! It prints a summary and fails on any failure. Needs root; on Ctrl-C the namespace goes.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use crate::sim::{interrupt, Rig, BOARD_IP};
use crate::soak_board::Board;
use crate::soak_check;
use crate::soak_check::Report;
use crate::soak_linux::Linux;
use crate::soak_protocol::line_rate_datagrams;

/// The pattern of Linux's flood to the board.
pub const FLOOD_TO_BOARD: u64 = 0x4c69_6e75_782d_3e62;
/// The pattern of the board's flood to Linux.
pub const FLOOD_TO_LINUX: u64 = 0x626f_6172_642d_3e4c;
/// How often the flood bursts.
pub const FLOOD_PERIOD: Duration = Duration::from_secs(5);
/// How long each burst lasts.
pub const FLOOD_BURST: Duration = Duration::from_secs(1);
/// Time between USB unplugs.
pub const REPLUG_PERIOD: Duration = Duration::from_secs(15);
/// How long the NIC stays off the port.
pub const UNPLUGGED: Duration = Duration::from_secs(1);
/// Longest the wind-down (work in flight finishing after the N minutes) may take.
const WIND_DOWN: Duration = Duration::from_secs(120);
/// How long the board keeps receiving after everything stopped (datagrams on their way).
const QUIET: Duration = Duration::from_secs(2);
/// How often a progress line is printed.
const PROGRESS: Duration = Duration::from_secs(60);
/// The largest backlog a flood catches up on at once.
const FLOOD_CATCH_UP: Duration = Duration::from_millis(10);
/// Failures kept for the report (all are counted).
const FAILURES_KEPT: usize = 50;

/// Everything at once on the simulated board against Linux for N minutes, then checks that
/// every transfer was byte-exact, that everything is free and that the counters add up.
///
/// Bulk TCP both ways, connect/close churn from both sides, a UDP flood both ways at line rate
/// (100 Mbit/s, in 1 s bursts every 5 s) and a USB unplug/replug every 15 s. Needs root (a
/// network namespace and a TAP device, removed at the end, also on Ctrl-C). Exits nonzero on
/// any failure.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// How long the load runs, in minutes (then it winds down and checks).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=24 * 60))]
    pub minutes: u64,
}

/// What the two sides share: the run's flags, the unplug epoch, ids and the failures.
pub struct Shared {
    /// The N minutes are over: start nothing new.
    pub stop: AtomicBool,
    /// Everything is over: Linux's threads end.
    pub over: AtomicBool,
    /// Incremented when the NIC goes off the port and when its address is back: odd while
    /// the board is off the network.
    epoch: AtomicU64,
    next_id: AtomicU64,
    draws: AtomicU64,
    /// Linux connections being served.
    pub linux_busy: AtomicUsize,
    /// Linux's churn thread ended.
    pub churn_done: AtomicBool,
    failures: Mutex<(u64, Vec<String>)>,
}

impl Shared {
    fn new(seed: u64) -> Self {
        Self {
            stop: AtomicBool::new(false),
            over: AtomicBool::new(false),
            epoch: AtomicU64::new(0),
            next_id: AtomicU64::new(1),
            draws: AtomicU64::new(seed),
            linux_busy: AtomicUsize::new(0),
            churn_done: AtomicBool::new(false),
            failures: Mutex::new((0, Vec::new())),
        }
    }

    /// Whether the N minutes are over.
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// The unplug epoch now (see [`Self::explained`]).
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// Whether an unplug explains a failure of something started in epoch `since`: the board
    /// was off the network then or is now, or went off since.
    pub fn explained(&self, since: u64) -> bool {
        let now = self.epoch();
        now != since || now % 2 == 1
    }

    /// A fresh id for a connection or transfer attempt.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// A pseudo-random number (seeds and lengths of transfers).
    pub fn draw(&self) -> u64 {
        let n = self.draws.fetch_add(1, Ordering::Relaxed);
        let mut word = [0u8; 8];
        crate::soak_protocol::Pattern(n).fill(0, &mut word);
        u64::from_le_bytes(word)
    }

    /// Records a failure.
    pub fn fail(&self, what: String) {
        let mut f = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        f.0 += 1;
        if f.1.len() < FAILURES_KEPT {
            eprintln!("soak: FAILURE: {what}");
            f.1.push(what);
        }
    }

    /// The failures so far: how many, and the first ones.
    pub fn failures(&self) -> (u64, Vec<String>) {
        self.failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Paces a flood at line rate during its bursts.
pub struct Pacer {
    start: Instant,
    sent: u64,
}

impl Pacer {
    /// A flood starting now.
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
            sent: 0,
        }
    }

    /// Datagrams due now: line rate over the burst time so far, minus those sent; a backlog of
    /// more than [`FLOOD_CATCH_UP`] is given up.
    pub fn due(&mut self) -> u64 {
        let elapsed = self.start.elapsed().as_nanos();
        let (period, burst) = (FLOOD_PERIOD.as_nanos(), FLOOD_BURST.as_nanos());
        let on = elapsed / period * burst + (elapsed % period).min(burst);
        let rate = u128::from(line_rate_datagrams());
        let allowed = (on * rate / 1_000_000_000) as u64;
        let cap = (rate * FLOOD_CATCH_UP.as_nanos() / 1_000_000_000) as u64;
        let due = allowed.saturating_sub(self.sent);
        if due > cap {
            self.sent += due - cap;
        }
        due.min(cap)
    }

    /// `n` datagrams were sent (or given up).
    pub fn sent(&mut self, n: u64) {
        self.sent += n;
    }
}

/// The USB unplug schedule.
struct Replugs {
    next_unplug: Instant,
    replug_at: Option<Instant>,
    count: u64,
}

impl Replugs {
    /// Unplugs or replugs when due (no unplug once stopping) and moves the epoch when the board
    /// leaves the network and when its address is back.
    fn step(
        &mut self,
        t: &mut upy_bindings::host::net::Table<k230_hal::sim::board::SimBoard>,
        shared: &Shared,
    ) {
        use netstack::InterfaceControl;
        let now = Instant::now();
        let board = t.stack_mut().device_mut();
        match self.replug_at {
            Some(at) if now >= at => {
                if !board.replug_usb() {
                    shared.fail("the NIC could not be plugged back".into());
                }
                self.replug_at = None;
            }
            None if !shared.stopping() && now >= self.next_unplug => {
                if !board.unplug_usb() {
                    shared.fail("the NIC could not be unplugged".into());
                }
                self.count += 1;
                self.replug_at = Some(now + UNPLUGGED);
                self.next_unplug = now + REPLUG_PERIOD;
            }
            _ => {}
        }
        let off = self.replug_at.is_some() || t.stack().config().is_none();
        let epoch = shared.epoch();
        if off != (epoch % 2 == 1) {
            shared.epoch.store(epoch + 1, Ordering::SeqCst);
        }
    }
}

/// Runs the task.
pub fn run(args: &Args) -> Result<()> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        bail!("`cargo xtask soak` needs root (it creates a network namespace and a TAP device)");
    }
    // Before any thread starts, so that every thread inherits the blocked signals.
    let cleanup = interrupt::watch()?;
    let rig = Rig::new(None, false)?;
    cleanup.remove_on_interrupt(rig.peer.ns.name());
    // Linux knows the board's MAC for good: its flood is not held up by address resolution
    // while the board is unplugged (the board still resolves Linux's address itself).
    let mac = rig.net.with_table(|t| {
        use netstack::InterfaceControl;
        t.stack().mac()
    });
    let mac = mac.map(|b| format!("{b:02x}")).join(":");
    let board_ip = BOARD_IP.to_string();
    rig.peer.ns.exec_ok(&[
        "ip",
        "neigh",
        "replace",
        &board_ip,
        "lladdr",
        &mac,
        "dev",
        &rig.peer.ifname,
        "nud",
        "permanent",
    ])?;
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    eprintln!(
        "soak: {} minute(s) on the simulated board {BOARD_IP} <-> Linux (netns {}), seed {seed:#x}",
        args.minutes,
        rig.peer.ns.name()
    );
    let shared = Arc::new(Shared::new(seed));
    let linux = Linux::start(&rig.peer.ns, &shared)?;
    let mut board = Board::new();
    let mut replugs = Replugs {
        next_unplug: Instant::now() + REPLUG_PERIOD,
        replug_at: None,
        count: 0,
    };
    let start = Instant::now();
    let deadline = start + Duration::from_secs(60 * args.minutes);
    let mut next_progress = start + PROGRESS;
    let mut quiet_since = None;
    loop {
        let now = Instant::now();
        if now >= deadline && !shared.stopping() {
            shared.stop.store(true, Ordering::Relaxed);
            eprintln!("soak: load over, winding down");
        }
        let progressed = rig.net.with_table(|t| {
            replugs.step(t, &shared);
            board.step(t, &shared)
        });
        if now >= next_progress {
            next_progress += PROGRESS;
            eprintln!(
                "soak: {} min: {}",
                (now - start).as_secs() / 60,
                soak_check::progress(&board.tally, replugs.count)
            );
        }
        let settled = shared.stopping()
            && board.idle()
            && replugs.replug_at.is_none()
            && shared.epoch() % 2 == 0
            && shared.linux_busy.load(Ordering::SeqCst) == 0
            && shared.churn_done.load(Ordering::SeqCst);
        match (settled, quiet_since) {
            (true, None) => quiet_since = Some(now),
            (true, Some(at)) if now - at >= QUIET => break,
            (false, _) => quiet_since = None,
            _ => {}
        }
        if shared.stopping() && now - deadline > WIND_DOWN {
            shared.fail(format!(
                "the work in flight did not finish within {WIND_DOWN:?}"
            ));
            break;
        }
        if !progressed {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    let loaded = start.elapsed();
    shared.over.store(true, Ordering::Relaxed);
    let linux = linux.join();
    let linux = std::mem::take(&mut *linux.lock().unwrap_or_else(PoisonError::into_inner));
    let report = Report {
        board: &board.tally,
        linux: &linux,
        replugs: replugs.count,
        loaded,
    };
    let ok = soak_check::finish(&rig.net, &rig.peer, &report, &shared);
    drop(rig);
    if !ok {
        bail!("the soak failed");
    }
    Ok(())
}
