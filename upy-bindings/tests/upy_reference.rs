//! Reference comparison (issue 7): each script in tests/upy/reference (and the misuse
//! catalogue) runs twice against the same kind of Linux peer, and must print the same:
//! - ours: the real MicroPython in this process with our `socket` (bindings, upy-socket,
//!   netstack) on the simulated board (RTL8152 and DWC2 models), whose wire is a TAP device in
//!   a network namespace; the peer is Linux in that namespace at 10.0.2.2, with dnsmasq for
//!   `peer.k230.sim`;
//! - reference: the pinned MicroPython's own executable (unix port, POSIX sockets).
//!
//! The cases, their peers, the reference run and the comparison are
//! `integration_tests::upy_reference` (the firmware on QEMU raspi3b takes part through the same:
//! `tests/tests/firmware_upy_scripts.rs`). Our script output is read from a pipe put on fd 1
//! while the script runs, so this test has its own `main` (`harness = false`): nothing else in
//! the process writes to stdout meanwhile. With flavour `unix` under the reference the misuse
//! catalogue checks that every expectation it lists for the unix port is what that MicroPython
//! does. Needs root. `K230_REFERENCE_SHOW=1` prints both outputs of every script.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Instant;

use integration_tests::tap::TapPeer;
use integration_tests::upy_peers::{dns_args, Outcome, BOARD_IP, PEER_IP};
use integration_tests::upy_reference::{micropython, Case, Compare, Reference, CASES};
use k230_hal::sim::board::SimBoard;
use k230_testkit::netns::{dnsmasq, Guarded};
use k230_testkit::require::have_root;
use netstack::api::Ipv4Config;
use upy_bindings::host::net::HostNet;
use upy_bindings::host::{have_library, Interpreter, ScriptError};

const MAC: [u8; 6] = [0x00, 0xe0, 0x4c, 0x36, 0x00, 0x15];

/// Ours: the simulated board on a TAP whose kernel side is the peer, in `ns`.
struct SimRig {
    // Dropped first: the board (and its TAP), then dnsmasq, then the namespace.
    net: HostNet<SimBoard>,
    _dnsmasq: Guarded,
    peer: TapPeer,
}

impl SimRig {
    fn new() -> Self {
        let (peer, tap_dev) = TapPeer::new("k230r", PEER_IP, 24).expect("TAP in a netns");
        let args = dns_args();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let dnsmasq = dnsmasq(&peer.ns, &peer.ifname, &args).expect("dnsmasq");
        let frames = tap_dev.as_raw_fd();
        let board = SimBoard::new(tap_dev, MAC).expect("board");
        let net = HostNet::start_board(
            board,
            Some(Ipv4Config {
                address: BOARD_IP,
                netmask: std::net::Ipv4Addr::new(255, 255, 255, 0),
                gateway: PEER_IP,
                dns: PEER_IP,
            }),
        )
        .expect("net");
        net.wake_on(frames);
        Self {
            net,
            _dnsmasq: dnsmasq,
            peer,
        }
    }
}

/// Runs `f` with fd 1 on a pipe; returns its result and what was written.
fn capture_stdout<T>(f: impl FnOnce() -> T) -> (T, String) {
    std::io::stdout().flush().ok();
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe writes.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0, "pipe");
    // SAFETY: pipe returned two fresh descriptors that nothing else owns.
    let (read_end, write_end) =
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: duplicating fd 1 (open for the whole process) into a fresh descriptor.
    let saved = unsafe { OwnedFd::from_raw_fd(libc::dup(1)) };
    // SAFETY: replaces fd 1 with the pipe's write end; fd 1 is restored below.
    assert_eq!(unsafe { libc::dup2(write_end.as_raw_fd(), 1) }, 1, "dup2");
    drop(write_end);
    let reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        std::fs::File::from(read_end).read_to_end(&mut text).ok();
        String::from_utf8_lossy(&text).into_owned()
    });
    let result = f();
    // SAFETY: puts the saved stdout back on fd 1, which closes the pipe's last write end.
    assert_eq!(unsafe { libc::dup2(saved.as_raw_fd(), 1) }, 1, "dup2 back");
    let text = reader.join().expect("reader");
    (result, text)
}

/// Ours: `case` (flavour `lwip`) on the simulated board.
fn run_ours(interpreter: &Interpreter, rig: &SimRig, case: &Case) -> Outcome {
    case.run_against_peer(&rig.peer.ns, || {
        let args = (case.args)("lwip");
        let ((result, _), out) =
            capture_stdout(|| interpreter.run_file_with(rig.net.backends(), &case.path(), &args));
        let result = match result {
            Ok(()) | Err(ScriptError::Exit(0)) => Ok(()),
            Err(e) => Err(e.to_string()),
        };
        (result, out)
    })
}

fn main() {
    let test = "upy_reference";
    if !have_root(test) || !have_library(test) {
        return;
    }
    if !micropython().exists() {
        panic!(
            "{test}: {} is missing (scripts/setup installs it)",
            micropython().display()
        );
    }
    let interpreter = Interpreter::shared(&upy_bindings::MODULES).expect("interpreter");
    let sim = SimRig::new();
    let reference = Reference::start();
    let mut failures = Vec::new();
    for case in CASES {
        let started = Instant::now();
        let ours = run_ours(interpreter, &sim, case);
        let theirs = reference.run(case);
        let (problems, theirs) = case.judge(&ours, &theirs);
        eprintln!(
            "{test}: {} {} ({} lines, {:.1} s)",
            case.script,
            match (problems.is_empty(), case.compare) {
                (false, _) => "DIFFERS",
                (true, Compare::All) => "same output",
                (true, Compare::Summary) => "same last line",
            },
            ours.out.lines().count(),
            started.elapsed().as_secs_f64()
        );
        if !problems.is_empty() || std::env::var_os("K230_REFERENCE_SHOW").is_some() {
            eprintln!(
                "--- ours\n{}--- reference (normalised)\n{theirs}---",
                ours.out
            );
        }
        if !problems.is_empty() {
            failures.push(format!("{}: {}", case.script, problems.join("; ")));
        }
    }
    drop(reference);
    drop(sim);
    if !failures.is_empty() {
        eprintln!(
            "{test}: {} of {} cases failed:",
            failures.len(),
            CASES.len()
        );
        for f in &failures {
            eprintln!("  {f}");
        }
        std::process::exit(1);
    }
    eprintln!("{test}: all {} scripts print the same", CASES.len());
}
