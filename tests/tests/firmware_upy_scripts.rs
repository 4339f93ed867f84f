//! The scripts of `tests/upy/` that the simulated board runs against Linux, on the firmware on
//! QEMU raspi3b (`usb-net` on a TAP in a namespace the test makes, dnsmasq there leasing
//! 10.0.2.15 and answering for `peer.k230.sim`: the simulated board's addresses), all in one
//! boot, each through `mpremote run` against the same Linux peer as on the simulated board
//! (`integration_tests::upy_peers`) and held to the same expectation:
//! - the reference cases (`integration_tests::upy_reference::CASES`, which
//!   `upy-bindings/tests/upy_reference.rs` runs on the simulated board): the output of the
//!   pinned MicroPython's unix executable against the same peer, normalised, and the same peer
//!   summary (the misuse catalogue checks itself: its last line, `0 mismatches`);
//! - `lan_dhcp_dns.py` (`upy_sim_linux.rs`) and the scripts `upy_wire.rs` runs against a peer
//!   stack on an in-memory wire (here the Linux peer doing the same): the simulated board's
//!   tests ask them to end without an exception, which prints their `... ok` line; that line is
//!   compared, and the peer's summary with what `upy_wire.rs` asks of its peer.
//!
//! The firmware has no command line and no filesystem: first lines set `sys.argv` and hand
//! `reference/portable.py` over as a module (`qemu_board::board_script`); the scripts themselves
//! run unchanged. Not run here, each with its reason in [`NOT_ON_THE_FIRMWARE`]; `seed_client.py`
//! runs in `firmware_usb_net.rs`, the peer-less scripts on QEMU virt in `firmware_qemu.rs`.
//!
//! Needs root, `qemu-system-aarch64`, dnsmasq and the project's `.venv` (mpremote, micropython);
//! without them the test skips, unless `K230_REQUIRE_ROOT_TESTS=1` / `K230_REQUIRE_UPY=1`.

use std::path::Path;
use std::time::{Duration, Instant};

use integration_tests::qemu_board::{self, Board, Qemu, UsbNetBoard};
use integration_tests::upy_peers::{self, PeerFn, BOARD_IP, PEER_IP, PEER_NAME};
use integration_tests::upy_reference::{self, Case, Compare, Reference, CASES};
use integration_tests::workspace_root;
use k230_testkit::require::have_root;

/// Where the firmware is built.
const TMP: &str = env!("CARGO_TARGET_TMPDIR");
/// Limit for the boot to the prompt, the NIC's bring-up included.
const BOOT_TIMEOUT: Duration = Duration::from_secs(90);
/// Limit for one script.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(90);

/// Scripts of `tests/upy/` with a Linux peer that the firmware does not run, and why.
const NOT_ON_THE_FIRMWARE: &[(&str, &str)] = &[
    (
        "reference/asyncio_server.py",
        "no `asyncio`: MicroPython keeps it in extmod/ (a Python package over the `_asyncio` C \
         module), which the pinned sdist the firmware is built from does not contain",
    ),
    ("reference/asyncio_client.py", "no `asyncio` (as above)"),
    ("asyncio_client.py", "no `asyncio` (as above)"),
    (
        "hotplug.py",
        "pulls the NIC with the simulator's `simboard` module, which only the simulated board has",
    ),
];

/// A script with the line it prints when it passes.
struct Passing {
    script: &'static str,
    args: fn() -> Vec<String>,
    peer: Option<PeerFn>,
    /// What it prints: the line after which it ends.
    prints: fn() -> String,
    /// The peer's summary.
    peer_saw: &'static str,
}

/// `lan_dhcp_dns.py` and the scripts of `upy_wire.rs` that need a peer, on its ports.
const PASSING: &[Passing] = &[
    Passing {
        script: "lan_dhcp_dns.py",
        args: || vec![BOARD_IP.to_string(), PEER_NAME.into(), PEER_IP.to_string()],
        peer: None,
        prints: || {
            format!("lan_dhcp_dns ok ('{BOARD_IP}', '255.255.255.0', '{PEER_IP}', '{PEER_IP}')\n")
        },
        peer_saw: "",
    },
    Passing {
        script: "tcp_echo_client.py",
        args: || vec![PEER_IP.to_string(), "7007".into()],
        peer: Some(|ctx| upy_peers::echo(ctx, 7007)),
        prints: || "tcp_echo_client ok\n".into(),
        // "line 0\n" .. "line 4\n", "bye\n"
        peer_saw: "echoed 39 bytes",
    },
    Passing {
        script: "udp_client.py",
        args: || vec![PEER_IP.to_string(), "7009".into()],
        peer: Some(|ctx| upy_peers::udp_pong(ctx, 7009)),
        prints: || "udp_client ok\n".into(),
        peer_saw: "4 bytes from 10.0.2.15",
    },
    Passing {
        script: "tcp_server.py",
        args: || vec!["7010".into()],
        peer: Some(|ctx| upy_peers::request_reply(ctx, 7010)),
        prints: || format!("tcp_server ok {PEER_IP}\n"),
        peer_saw: "reply HELLO BOARD",
    },
];

/// Runs `script` with `args` on the board; whether it ended without an exception, its output.
fn on_board(
    qemu: &Qemu,
    mpremote: &Path,
    script: &Path,
    args: &[String],
) -> (Result<(), String>, String) {
    let out = qemu.run_script(mpremote, script, args, SCRIPT_TIMEOUT);
    let stdout = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    let result = if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "mpremote {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))
    };
    (result, stdout)
}

#[test]
fn upy_scripts_with_linux_peers_run_on_qemu_raspi3b() {
    let test = "upy scripts raspi3b";
    if !have_root(test) || !qemu_board::available(test, Board::QemuRaspi3b) {
        return;
    }
    let Some(mpremote) = qemu_board::mpremote(test) else {
        return;
    };
    assert!(
        upy_reference::micropython().exists(),
        "{} is missing (scripts/setup installs it)",
        upy_reference::micropython().display()
    );
    let elf = qemu_board::build(Board::QemuRaspi3b, &[], TMP.as_ref());
    let dnsmasq: Vec<String> = upy_peers::dhcp_args()
        .into_iter()
        .chain(upy_peers::dns_args())
        .collect();
    let board = UsbNetBoard::boot(test, &elf, &dnsmasq, BOOT_TIMEOUT);
    // As the simulated board's, whose address is static, the board has its address first.
    let (ifconfig, _) = board.lease(&mpremote);
    assert!(
        ifconfig.starts_with(&format!("('{BOARD_IP}'")),
        "{ifconfig}"
    );
    let reference = Reference::start();
    let mut failures = Vec::new();

    for (script, why) in NOT_ON_THE_FIRMWARE {
        assert!(
            workspace_root().join("tests/upy").join(script).is_file(),
            "{script}"
        );
        println!("{test}: {script} not run: {why}");
    }
    let runs_here = |case: &&Case| !NOT_ON_THE_FIRMWARE.iter().any(|(s, _)| *s == case.script);
    for case in CASES.iter().filter(runs_here) {
        let started = Instant::now();
        let ours = case.run_against_peer(&board.ns, || {
            on_board(&board.qemu, &mpremote, &case.path(), &(case.args)("lwip"))
        });
        let took = started.elapsed();
        let (problems, theirs) = case.judge(&ours, &reference.run(case));
        report(
            test,
            case.script,
            took,
            &ours.out,
            &theirs,
            &problems,
            &mut failures,
        );
        if case.compare == Compare::Summary {
            println!("{}", ours.out.lines().last().unwrap_or_default());
        }
    }

    for script in PASSING {
        let started = Instant::now();
        let path = workspace_root().join("tests/upy").join(script.script);
        let ours = upy_peers::run_with(&board.ns, script.peer, || {
            on_board(&board.qemu, &mpremote, &path, &(script.args)())
        });
        let want = (script.prints)();
        let mut problems = Vec::new();
        if let Err(e) = &ours.result {
            problems.push(format!("failed: {e}"));
        }
        if ours.out != want {
            problems.push("outputs differ".to_owned());
        }
        if ours.peer != script.peer_saw {
            problems.push(format!(
                "peer saw {:?}, not {:?}",
                ours.peer, script.peer_saw
            ));
        }
        report(
            test,
            script.script,
            started.elapsed(),
            &ours.out,
            &want,
            &problems,
            &mut failures,
        );
    }
    assert!(
        failures.is_empty(),
        "{} scripts failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Prints how `script` went; a failure (with both outputs) goes to `failures`.
fn report(
    test: &str,
    script: &str,
    took: Duration,
    ours: &str,
    want: &str,
    problems: &[String],
    failures: &mut Vec<String>,
) {
    println!(
        "{test}: {script} {} ({} lines, {:.1} s)",
        if problems.is_empty() {
            "as expected"
        } else {
            "DIFFERS"
        },
        ours.lines().count(),
        took.as_secs_f64()
    );
    if !problems.is_empty() {
        failures.push(format!(
            "{script}: {}\n--- board\n{ours}--- expected\n{want}---",
            problems.join("; ")
        ));
    }
}
