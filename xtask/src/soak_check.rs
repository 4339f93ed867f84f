//! The soak's end: what both sides counted matched against each other, everything on the board
//! free, and the counters of the path (stack, driver, models, Linux's TAP and UDP) adding up.
//! Prints the summary; every mismatch is a failure.

use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use integration_tests::tap::TapPeer;
use k230_hal::sim::board::SimBoard;
use netstack::PoolUsage;
use upy_bindings::host::net::HostNet;

use crate::soak::Shared;
use crate::soak_board::{Attempt, Tally as BoardTally};
use crate::soak_linux::Tally as LinuxTally;

/// Longest the board's pools may take to empty after everything closed (TIME-WAIT, FINs).
const FREE_LIMIT: Duration = Duration::from_secs(90);

/// Linux's counters for the TAP (its kernel side) and for UDP, in the namespace (both new with
/// the run, so they count from zero).
#[derive(Clone, Copy, Debug, Default)]
pub struct Kernel {
    /// Frames the board's NIC model wrote to the TAP that Linux took.
    pub tap_rx_packets: u64,
    /// Frames the model wrote that Linux dropped.
    pub tap_rx_dropped: u64,
    /// Frames Linux queued to the TAP that the model read.
    pub tap_tx_packets: u64,
    /// Frames Linux dropped because the TAP's queue was full (the model not reading).
    pub tap_tx_dropped: u64,
    /// UDP datagrams delivered to Linux's sockets and read.
    pub udp_in: u64,
    /// UDP datagrams Linux's sockets could not take (receive buffer full, and other errors).
    pub udp_in_errors: u64,
    /// UDP datagrams to a port without socket.
    pub udp_no_ports: u64,
}

impl Kernel {
    /// Reads the counters in `peer`'s namespace.
    pub fn read(peer: &TapPeer) -> Result<Self> {
        let stats = format!("/sys/class/net/{}/statistics", peer.ifname);
        let files = ["rx_packets", "rx_dropped", "tx_packets", "tx_dropped"]
            .map(|f| format!("{stats}/{f}"));
        let out = peer
            .ns
            .command("cat")
            .args(&files)
            .arg("/proc/net/snmp")
            .output()
            .context("reading Linux's counters")?;
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        let mut next = || -> Result<u64> {
            let line = lines
                .next()
                .ok_or_else(|| anyhow!("short counters: {text}"))?;
            line.trim()
                .parse()
                .with_context(|| format!("counter {line:?}"))
        };
        let (rx, rx_dropped, tx, tx_dropped) = (next()?, next()?, next()?, next()?);
        let udp = snmp(&text, "Udp:")?;
        let field = |name: &str| -> Result<u64> {
            udp.iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| *v)
                .ok_or_else(|| anyhow!("no Udp {name} in /proc/net/snmp"))
        };
        Ok(Self {
            tap_rx_packets: rx,
            tap_rx_dropped: rx_dropped,
            tap_tx_packets: tx,
            tap_tx_dropped: tx_dropped,
            udp_in: field("InDatagrams")?,
            udp_in_errors: field("InErrors")?,
            udp_no_ports: field("NoPorts")?,
        })
    }
}

/// The named fields of `/proc/net/snmp`'s two lines starting with `prefix`.
fn snmp(text: &str, prefix: &str) -> Result<Vec<(String, u64)>> {
    let mut rows = text.lines().filter(|l| l.starts_with(prefix));
    let (Some(names), Some(values)) = (rows.next(), rows.next()) else {
        return Err(anyhow!("no {prefix} lines in /proc/net/snmp"));
    };
    Ok(names
        .split_whitespace()
        .skip(1)
        .zip(values.split_whitespace().skip(1))
        .filter_map(|(n, v)| Some((n.to_string(), v.parse().ok()?)))
        .collect())
}

/// What the run counted, for the checks.
pub struct Report<'a> {
    /// The board's side.
    pub board: &'a BoardTally,
    /// Linux's side.
    pub linux: &'a LinuxTally,
    /// USB unplugs (each replugged).
    pub replugs: u64,
    /// How long the load and its wind-down took.
    pub loaded: Duration,
}

/// One line of progress.
pub fn progress(board: &BoardTally, replugs: u64) -> String {
    let done = |list: &[Attempt]| list.iter().filter(|a| a.complete).count();
    format!(
        "transfers out {} in {}, connections out {} in {}, datagrams sent {} received {}, {replugs} replugs",
        done(&board.out),
        done(&board.inbound),
        board.churn_out_ok,
        board.churn_in_ok,
        board.flood_sent,
        board.datagrams_received
    )
}

/// Bytes and outcomes of one direction's bulk transfers.
#[derive(Debug, Default)]
struct Bulk {
    complete: u64,
    complete_bytes: u64,
    cut: u64,
    /// Bytes of cut attempts the receiver got (a prefix of what was sent).
    cut_bytes: u64,
    /// Cut attempts whose receiver had everything (its end or acknowledgement was lost).
    cut_after_all: u64,
}

/// Board→Linux: every attempt the board completed arrived whole; a cut one left a prefix.
fn bulk_out(r: &Report, shared: &Shared) -> Bulk {
    let mut b = Bulk::default();
    for a in &r.board.out {
        let got = r.linux.sink.get(&a.header.id);
        if a.complete {
            b.complete += 1;
            b.complete_bytes += a.header.len;
            if !got.is_some_and(|g| g.complete && g.bytes == a.header.len) {
                shared.fail(format!(
                    "board→Linux {}: acknowledged but Linux has {got:?}",
                    a.header.id
                ));
            }
            continue;
        }
        b.cut += 1;
        if let Some(g) = got {
            if g.bytes > a.bytes {
                shared.fail(format!(
                    "board→Linux {}: Linux got {} of {} queued",
                    a.header.id, g.bytes, a.bytes
                ));
            }
            b.cut_bytes += g.bytes;
            b.cut_after_all += u64::from(g.complete);
        }
    }
    for id in r.linux.sink.keys() {
        if !r.board.out.iter().any(|a| a.header.id == *id) {
            shared.fail(format!(
                "board→Linux: Linux has attempt {id} the board never made"
            ));
        }
    }
    restarts("board→Linux", &r.board.out, shared);
    b
}

/// Linux→board: every attempt the board completed Linux sent whole; a cut one left a prefix.
fn bulk_in(r: &Report, shared: &Shared) -> Bulk {
    let mut b = Bulk::default();
    for a in &r.board.inbound {
        let sent = r.linux.source.get(&a.header.id);
        if a.complete {
            b.complete += 1;
            b.complete_bytes += a.header.len;
            if !sent.is_some_and(|s| s.acked && s.bytes == a.header.len) || a.bytes != a.header.len
            {
                shared.fail(format!(
                    "Linux→board {}: complete but Linux sent {sent:?}",
                    a.header.id
                ));
            }
            continue;
        }
        b.cut += 1;
        b.cut_bytes += a.bytes;
        if let Some(s) = sent {
            if a.bytes > s.bytes {
                shared.fail(format!(
                    "Linux→board {}: board got {} of {} sent",
                    a.header.id, a.bytes, s.bytes
                ));
            }
            b.cut_after_all += u64::from(s.acked);
        }
    }
    for id in r.linux.source.keys() {
        if !r.board.inbound.iter().any(|a| a.header.id == *id) {
            shared.fail(format!(
                "Linux→board: Linux served attempt {id} the board never made"
            ));
        }
    }
    restarts("Linux→board", &r.board.inbound, shared);
    b
}

/// A cut attempt is followed by the same transfer (seed and length) again.
fn restarts(what: &str, attempts: &[Attempt], shared: &Shared) {
    for pair in attempts.windows(2) {
        let (a, next) = (pair[0].header, pair[1].header);
        if !pair[0].complete && (a.seed, a.len) != (next.seed, next.len) {
            shared.fail(format!(
                "{what}: attempt {} was cut and its transfer not restarted",
                a.id
            ));
        }
    }
}

/// Whether nothing of the stack's pools is in use.
fn all_free(u: &PoolUsage) -> bool {
    u.ids_in_use == 0
        && u.tcp_free == u.tcp_total
        && u.udp_in_use == 0
        && u.udp_draining == 0
        && u.dns_in_use == 0
        && u.bytes_buffered == 0
}

/// Closes everything on the board, waits for its pools to empty, checks every count and prints
/// the summary; false on any failure (this run's or an earlier one).
pub fn finish(net: &HostNet<SimBoard>, peer: &TapPeer, r: &Report, shared: &Shared) -> bool {
    net.with_table(|t| t.close_all());
    let start = Instant::now();
    let (usage, handles) = loop {
        let (usage, handles) = net.with_table(|t| (t.stack().pool_usage(), t.handles_in_use()));
        if (all_free(&usage) && handles == 0) || start.elapsed() > FREE_LIMIT {
            break (usage, handles);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    if !all_free(&usage) || handles != 0 {
        shared.fail(format!(
            "not free {FREE_LIMIT:?} after the end: {handles} handles, {usage:?}"
        ));
    }
    let snapshot = || {
        net.with_table(|t| {
            let board = t.stack().device();
            let s = board.supervisor();
            (
                board.counters(),
                board.nic_report(),
                board.usb_violations(),
                (s.losses(), s.comebacks(), s.failed_bring_ups()),
                t.stack().drops(),
            )
        })
    };
    // Linux's counters between two equal snapshots of the board's (a stray frame, such as an
    // ARP refresh, may cross meanwhile).
    let mut tries = 0;
    let (k, (nic, model, violations, sup, drops)) = loop {
        let first = snapshot();
        let k = match Kernel::read(peer) {
            Ok(k) => k,
            Err(e) => {
                shared.fail(format!("{e:#}"));
                Kernel::default()
            }
        };
        let second = snapshot();
        tries += 1;
        let same = (first.0, &first.1.tx_frames, &first.1.rx_frames, first.4)
            == (second.0, &second.1.tx_frames, &second.1.rx_frames, second.4);
        if same || tries == 20 {
            break (k, second);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (b, l) = (r.board, r.linux);
    let out = bulk_out(r, shared);
    let inbound = bulk_in(r, shared);

    let check = |ok: bool, what: String| {
        if !ok {
            shared.fail(what);
        }
    };
    check(
        model.errors.is_empty(),
        format!("RTL8152 model errors: {:?}", model.errors),
    );
    check(
        violations.is_empty(),
        format!("USB rules broken: {violations:?}"),
    );
    check(
        model.wire_errors == 0,
        format!("{} wire errors", model.wire_errors),
    );
    check(
        sup == (r.replugs as u32, r.replugs as u32, 0),
        format!(
            "{} unplugs, supervisor saw (losses, comebacks, failed bring-ups) {sup:?}",
            r.replugs
        ),
    );
    // Board → Linux frames.
    check(
        model.tx_frames == k.tap_rx_packets + k.tap_rx_dropped,
        format!(
            "the model put {} frames on the wire, Linux took {} and dropped {}",
            model.tx_frames, k.tap_rx_packets, k.tap_rx_dropped
        ),
    );
    // A frame whose transfer the driver counted as dropped when the device went away may have
    // reached the model before it did.
    let model_got = model.tx_frames + model.tx_lost;
    check(
        nic.tx_frames <= model_got && model_got <= nic.tx_frames + nic.tx_dropped,
        format!(
            "the driver sent {} frames and dropped {}, the model put {} on the wire and lost {}",
            nic.tx_frames, nic.tx_dropped, model.tx_frames, model.tx_lost
        ),
    );
    // Linux → board frames.
    let model_took = model.rx_frames + model.rx_filtered + model.rx_oversize + model.rx_held_lost;
    check(
        k.tap_tx_packets == model_took,
        format!(
            "Linux gave the model {} frames, it accounts for {model_took}",
            k.tap_tx_packets
        ),
    );
    let driver_took = nic.rx_frames + nic.rx_dropped + nic.rx_bad_checksum;
    check(
        model.rx_frames - model.rx_cut == driver_took,
        format!(
            "the model delivered {} frames whole, the driver accounts for {driver_took}",
            model.rx_frames - model.rx_cut
        ),
    );
    let link = drops.link;
    let link_drops = link.martians + link.refused + link.no_link + link.bad_checksum + link.no_room;
    // Linux → board datagrams.
    check(
        drops.udp_received == b.datagrams_received + drops.udp_no_socket + drops.udp_rx_full,
        format!(
            "the stack received {} datagrams: {} read, {} without socket, {} with the buffer full",
            drops.udp_received, b.datagrams_received, drops.udp_no_socket, drops.udp_rx_full
        ),
    );
    let path_budget = k.tap_tx_dropped
        + model.rx_filtered
        + model.rx_oversize
        + model.rx_held_lost
        + model.rx_cut
        + nic.rx_dropped
        + nic.rx_bad_checksum
        + link_drops;
    let to_board_lost = l.flood_sent.checked_sub(drops.udp_received);
    check(
        to_board_lost.is_some_and(|n| n <= path_budget),
        format!(
            "Linux sent {} datagrams, the stack received {}; the path dropped {path_budget} frames",
            l.flood_sent, drops.udp_received
        ),
    );
    // Board → Linux datagrams.
    check(
        l.datagrams_received == k.udp_in,
        format!(
            "Linux read {} datagrams, its UDP counted {}",
            l.datagrams_received, k.udp_in
        ),
    );
    let linux_took = k.udp_in + k.udp_in_errors + k.udp_no_ports;
    let to_linux_lost = b.flood_sent.checked_sub(linux_took);
    let board_budget = nic.tx_dropped + model.tx_lost;
    check(
        to_linux_lost.is_some_and(|n| n <= board_budget),
        format!(
            "the board sent {} datagrams, Linux took {linux_took}; the board dropped {board_budget} frames",
            b.flood_sent
        ),
    );
    // Short connections: each side's completions within the other's.
    check(
        l.echoed <= b.churn_out_ok && b.churn_in_ok <= l.churn_ok,
        format!(
            "connections: board out {} / Linux echoed {}, Linux out {} / board echoed {}",
            b.churn_out_ok, l.echoed, l.churn_ok, b.churn_in_ok
        ),
    );
    check(
        out.complete > 0 && inbound.complete > 0 && b.churn_out_ok > 0 && l.churn_ok > 0,
        "a workload completed nothing".into(),
    );

    let mib = |n: u64| n as f64 / (1 << 20) as f64;
    let secs = r.loaded.as_secs_f64();
    println!(
        "soak summary ({:.0} s of load and wind-down, {} USB replugs)",
        secs, r.replugs
    );
    for (name, d) in [("board→Linux", &out), ("Linux→board", &inbound)] {
        println!(
            "  TCP {name}: {} transfers complete, {:.1} MiB byte-exact ({:.2} MiB/s); {} attempts cut, {:.1} MiB received of them (prefixes), {} cut after all arrived",
            d.complete,
            mib(d.complete_bytes),
            mib(d.complete_bytes) / secs,
            d.cut,
            mib(d.cut_bytes),
            d.cut_after_all
        );
    }
    println!(
        "  connections: board→Linux {} ok, {} cut (Linux echoed {}); Linux→board {} ok, {} cut (board echoed {})",
        b.churn_out_ok, b.churn_out_cut, l.echoed, l.churn_ok, l.churn_cut, b.churn_in_ok
    );
    println!("  failures explained by unplugs (board): {:?}", b.cuts);
    println!(
        "  UDP Linux→board: {} sent ({} refused by sendto), {} received by the stack: {} read, {} no socket, {} buffer full; {} lost on the path (≤ {path_budget} frames dropped there)",
        l.flood_sent,
        l.flood_refused,
        drops.udp_received,
        b.datagrams_received,
        drops.udp_no_socket,
        drops.udp_rx_full,
        to_board_lost.unwrap_or(0)
    );
    println!(
        "  UDP board→Linux: {} sent ({:?} refused), Linux: {} read, {} errors (buffer full), {} no port; {} lost (≤ {board_budget} frames the board dropped)",
        b.flood_sent,
        b.flood_refused,
        k.udp_in,
        k.udp_in_errors,
        k.udp_no_ports,
        to_linux_lost.unwrap_or(0)
    );
    println!(
        "  frames board→Linux: driver {} sent, {} dropped at unplugs; model {} on the wire, {} lost at unplugs; Linux took {}, dropped {}",
        nic.tx_frames, nic.tx_dropped, model.tx_frames, model.tx_lost, k.tap_rx_packets, k.tap_rx_dropped
    );
    println!(
        "  frames Linux→board: Linux queued {}, dropped {} (queue full); model took {} ({} filtered, {} oversize, {} lost at unplugs), delivered {} ({} in transfers cut by unplugs); driver handed up {}, dropped {}, bad checksum {}; stack link drops {link:?}",
        k.tap_tx_packets, k.tap_tx_dropped, model_took, model.rx_filtered, model.rx_oversize, model.rx_held_lost, model.rx_frames, model.rx_cut, nic.rx_frames, nic.rx_dropped, nic.rx_bad_checksum
    );
    println!("  stack drops: {drops:?}");
    println!("  at the end: {handles} handles, pools {usage:?}");
    let (count, failures) = shared.failures();
    if count == 0 {
        println!("soak: OK");
        return true;
    }
    println!("soak: FAILED ({count} failures):");
    for f in failures {
        println!("  {f}");
    }
    false
}
