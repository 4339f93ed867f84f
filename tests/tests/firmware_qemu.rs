//! The MicroPython firmware on both QEMU boards, QEMU `virt` (riscv64, `-bios none`, M-mode, ELF
//! at 0x8000_0000, 16550 console) and QEMU `raspi3b` (aarch64, ELF at 0x80000 started at EL3,
//! PL011 console): it boots to the REPL (on the way, virt checks the `time` CSR the K230 build
//! reads in step with the CLINT's `mtime` it reads itself, raspi3b switches its MMU on), runs
//! Python typed there (py/'s modules, the port's modules, Ctrl-C, Ctrl-D soft reset,
//! `machine.reset()`), talks to `mpremote` over a pty (raw REPL and raw-paste, as on a board's
//! serial port), and on `virt` a panic prints its message and powers QEMU off with a failure
//! status.
//!
//! Neither board drives a NIC: their stack runs over loopback (127.0.0.0/8), and on `virt` the
//! socket API is tested end to end there: Ctrl-C in a blocked `accept`, `recv` and `connect`, a soft reset
//! freeing every socket slot, `tests/upy/loopback_poll.py` (server and client in one script with
//! `select.poll`) and `tests/upy/no_echo_service.py` (no answer on port 7) through `mpremote`,
//! and the scripts of `tests/upy/` that need no Linux peer.
//!
//! Needs `qemu-system-riscv64` (Debian `qemu-system-misc`), `qemu-system-aarch64`
//! (`qemu-system-arm`), the bare-metal targets and, for the mpremote tests, the project's
//! `.venv`; without them the tests print "SKIPPED" and pass, unless `K230_REQUIRE_ROOT_TESTS=1` /
//! `K230_REQUIRE_UPY=1`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use integration_tests::qemu_board::{self, Board, Console, Qemu};
use integration_tests::workspace_root;
use upy_cmodule::net::{TCP_SOCKETS, UDP_SOCKETS};

/// Where the firmware is built.
const TMP: &str = env!("CARGO_TARGET_TMPDIR");
/// Limit for one boot to the prompt.
const BOOT_TIMEOUT: Duration = Duration::from_secs(60);
/// Limit for one line typed at the prompt to be answered.
const REPLY_TIMEOUT: Duration = Duration::from_secs(20);

/// Builds and boots the firmware for `board` with the console on `console`, up to the first
/// prompt.
fn boot(test: &str, board: Board, console: Console) -> Option<Qemu> {
    if !qemu_board::available(test, board) {
        return None;
    }
    let elf = qemu_board::build(board, &[], TMP.as_ref());
    let mut qemu = Qemu::boot(board, &elf, console, &[]);
    qemu.expect_prompt(">>> ", BOOT_TIMEOUT);
    println!(
        "{test}: QEMU start to the first prompt: {} ms",
        qemu.started.elapsed().as_millis()
    );
    Some(qemu)
}

/// Types `script` in the friendly REPL's paste mode (Ctrl-E, the lines, Ctrl-D runs them as one
/// script); returns at once, while the script runs.
fn paste(qemu: &mut Qemu, script: &str) {
    qemu.send(b"\x05");
    qemu.expect("=== ", REPLY_TIMEOUT);
    for line in script.lines() {
        qemu.send(format!("{line}\r").as_bytes());
    }
    qemu.send(b"\x04");
}

/// Waits for `marker` (from the line a script prints before it blocks; the console ends lines
/// with `\r\n`), then checks that the script
/// stays blocked for a second: nothing more is printed. Returns the output up to the marker.
fn expect_blocked(qemu: &mut Qemu, marker: &str) -> String {
    let reply = qemu.expect(marker, REPLY_TIMEOUT);
    let before = qemu.text();
    std::thread::sleep(Duration::from_secs(1));
    let after = qemu.text();
    assert_eq!(before, after, "the script went on past {marker:?}");
    reply
}

/// Types `line` at the prompt and returns what came back up to the next prompt.
fn type_line(qemu: &mut Qemu, line: &str) -> String {
    qemu.send(format!("{line}\r").as_bytes());
    qemu.expect("\n>>> ", REPLY_TIMEOUT)
}

#[test]
fn qemu_virt_boots_to_the_repl_and_runs_python_with_ctrl_c_and_soft_reset() {
    repl("repl virt", Board::QemuVirt, "QEMU virt with RV64GC");
}

#[test]
fn qemu_raspi3b_boots_to_the_repl_and_runs_python_with_ctrl_c_and_soft_reset() {
    repl(
        "repl raspi3b",
        Board::QemuRaspi3b,
        "QEMU raspi3b with Cortex-A53",
    );
}

/// The REPL session both boards must answer alike; `machine` is `os.uname().machine`.
fn repl(test: &str, board: Board, machine: &str) {
    let Some(mut qemu) = boot(test, board, Console::Pipes) else {
        return;
    };
    let boot_text = qemu.text();
    assert!(
        boot_text.contains("k230-net firmware ")
            && boot_text.contains(&format!(" on {} (hart 0)", board.name())),
        "{boot_text}"
    );
    assert!(
        boot_text.contains("self-test: crc32 ok, timer ok, icmp ok -> PASS"),
        "{boot_text}"
    );
    assert!(
        boot_text.contains("MicroPython v1.29.0") && boot_text.contains(machine),
        "{boot_text}"
    );
    match board {
        Board::QemuVirt => assert!(
            boot_text.contains("caches: AsReset\n")
                && boot_text.contains("time: time CSR in step with mtime\n")
                && boot_text.contains("net: no NIC, sockets over loopback (127.0.0.1)\n"),
            "{boot_text}"
        ),
        Board::QemuRaspi3b => assert!(
            boot_text.contains("caches: MMU on, identity map"),
            "{boot_text}"
        ),
    }

    let reply = type_line(&mut qemu, "print(6 * 7, 2 ** 70)");
    assert!(reply.contains("42 1180591620717411303424\n"), "{reply}");
    // py/'s own modules, picolibc's libm under math, double floats.
    let reply = type_line(
        &mut qemu,
        "import sys, gc, micropython, io, struct, errno, math, array, collections; \
         print(math.sqrt(2), math.log(1e300), struct.pack('<d', 0.1)[:2], errno.ENODEV, \
         array.array('i', [1, 2])[1], len(collections.deque((1, 2), 2)), io.BytesIO(b'x').read())",
    );
    assert!(
        reply.contains("1.4142135623730951 690.7755278982137 b'\\x9a\\x99' 19 2 2 b'x'\n"),
        "{reply}"
    );
    // The port's own modules (upy-bindings, Rust).
    let reply = type_line(
        &mut qemu,
        "import time, select, os, machine; t = time.ticks_ms(); time.sleep(0.2); \
         d = time.ticks_diff(time.ticks_ms(), t); print(200 <= d < 400, \
         time.ticks_diff(time.ticks_add(0, -1), 0), time.ticks_diff(time.ticks_us(), 0) > 0, \
         time.time_ns() > 0, os.uname().machine, machine.freq())",
    );
    assert!(
        reply.contains(&format!("True -1 True True {machine} 0\n")),
        "{reply}"
    );
    // The board's timebase is the counter's real rate: a second of time.sleep is at least a
    // second of the host's (QEMU's counters follow the host clock).
    let typed = std::time::Instant::now();
    type_line(&mut qemu, "time.sleep(1)");
    let took = typed.elapsed();
    assert!(
        took >= Duration::from_millis(950),
        "time.sleep(1) took {took:?}"
    );
    // select over sys.stdin: nothing typed, then a key waiting.
    let reply = type_line(
        &mut qemu,
        "import sys; p = select.poll(); p.register(sys.stdin, select.POLLIN); print(p.poll(50), \
         select.select([sys.stdin], [], [], 0.05))",
    );
    assert!(reply.contains("[] ([], [], [])\n"), "{reply}");
    qemu.send(b"print(p.poll(), sys.stdin.read(1))\rz");
    let reply = qemu.expect("\n>>> ", REPLY_TIMEOUT);
    assert!(reply.contains("[(<io.TextIOWrapper 0>, 1)] z\n"), "{reply}");
    // os.urandom: QEMU virt has no entropy source (no virtio-rng) and says so; raspi3b reads its
    // BCM2835 RNG (QEMU's model hands out the host's entropy) after the health test.
    match board {
        Board::QemuVirt => {
            let reply = type_line(&mut qemu, "os.urandom(4)");
            assert!(reply.contains("OSError: [Errno 19] ENODEV"), "{reply}");
        }
        Board::QemuRaspi3b => {
            let reply = type_line(
                &mut qemu,
                "a = os.urandom(32); b = os.urandom(5); print(len(a), len(b), a[:5] != b, \
                 len(set(a)) > 16)",
            );
            assert!(reply.contains("32 5 True True\n"), "{reply}");
        }
    }

    // Sockets: QEMU virt runs its stack over loopback (no NIC), a datagram to itself gets
    // through; raspi3b's root port is empty here, so its NIC did not start and a socket says so.
    match board {
        Board::QemuVirt => {
            let reply = type_line(
                &mut qemu,
                "import socket; u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); \
                 u.bind(('127.0.0.1', 5005)); u.sendto(b'ping', ('127.0.0.1', 5005)); \
                 print(u.recvfrom(8)); u.close()",
            );
            assert!(
                reply.contains("(b'ping', ('127.0.0.1', 5005))\n"),
                "{reply}"
            );
        }
        Board::QemuRaspi3b => {
            let reply = type_line(&mut qemu, "import socket; socket.socket()");
            assert!(reply.contains("OSError: [Errno 19] ENODEV"), "{reply}");
        }
    }

    // Ctrl-C stops a running loop with KeyboardInterrupt; the REPL goes on.
    type_line(&mut qemu, "n = 0");
    qemu.send(b"while True: n += 1\r\r");
    std::thread::sleep(Duration::from_millis(500));
    qemu.send(b"\x03");
    let reply = qemu.expect("\n>>> ", REPLY_TIMEOUT);
    assert!(reply.contains("KeyboardInterrupt"), "{reply}");
    let reply = type_line(&mut qemu, "print(n > 0)");
    assert!(reply.contains("True\n"), "{reply}");

    // Ctrl-D: soft reset, a fresh interpreter (the variable is gone).
    qemu.send(b"\x04");
    let reply = qemu.expect(">>> ", REPLY_TIMEOUT);
    assert!(reply.contains("MPY: soft reboot"), "{reply}");
    let reply = type_line(&mut qemu, "print('n' in globals())");
    assert!(reply.contains("False\n"), "{reply}");

    // machine.reset(): the board starts from the beginning.
    qemu.send(b"import machine; machine.reset()\r");
    let reply = qemu.expect(">>> ", BOOT_TIMEOUT);
    assert!(reply.contains("k230-net firmware "), "{reply}");
}

#[test]
fn mpremote_runs_scripts_over_the_pty_on_qemu_virt() {
    mpremote_session("mpremote virt", Board::QemuVirt);
}

#[test]
fn mpremote_runs_scripts_over_the_pty_on_qemu_raspi3b() {
    mpremote_session("mpremote raspi3b", Board::QemuRaspi3b);
}

/// mpremote's run, exec, soft-reset and raw-paste against `board`.
fn mpremote_session(test: &str, board: Board) {
    let Some(mpremote) = qemu_board::mpremote(test) else {
        return;
    };
    let Some(mut qemu) = boot(test, board, Console::Pty) else {
        return;
    };
    qemu.release_pty();
    let script = tempfile::Builder::new()
        .suffix(".py")
        .tempfile()
        .expect("script file");
    std::fs::write(
        script.path(),
        "import sys\nfor i in range(3):\n    print('line', i, sys.platform)\n",
    )
    .unwrap();
    let mp = |args: &[&str]| {
        let out = qemu.mpremote(&mpremote, args, Duration::from_secs(60));
        let stdout = String::from_utf8_lossy(&out.stdout).replace('\r', "");
        assert!(
            out.status.success(),
            "mpremote {args:?}: {}\n{stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    };
    let out = mp(&["run", script.path().to_str().unwrap()]);
    assert_eq!(out, "line 0 k230\nline 1 k230\nline 2 k230\n");
    // exec (raw REPL), soft-reset, then state is gone; raw-paste carries a long script.
    assert_eq!(mp(&["exec", "x = 5; print(x * 2)"]), "10\n");
    mp(&["soft-reset"]);
    let long = format!("print(len('{}'))", "k".repeat(5000));
    assert_eq!(mp(&["exec", &long]), "5000\n");
    assert_eq!(
        mp(&["exec", "print('x' in globals())"]),
        "False\n",
        "each mpremote command starts with a soft reset"
    );
}

#[test]
fn panic_prints_its_message_and_halts_with_failure() {
    if !qemu_board::available("panic", Board::QemuVirt) {
        return;
    }
    let elf = qemu_board::build(Board::QemuVirt, &["panic-test"], TMP.as_ref());
    let mut qemu = Qemu::boot(Board::QemuVirt, &elf, Console::Pipes, &[]);
    let status = qemu.wait_exit(BOOT_TIMEOUT);
    let console = qemu.text();
    println!("--- console ---\n{console}---");
    let status = status.expect("the panic powers QEMU off");
    assert_eq!(status.code(), Some(1), "panic exit code: {console}");
    assert!(console.contains("k230-net firmware "), "{console}");
    assert!(
        console.contains("k230net: Rust panic: panicked at firmware/src/boot.rs:")
            && console.contains("deliberate panic (feature panic-test)"),
        "{console}"
    );
    assert!(
        !console.contains("self-test:"),
        "nothing runs past the panic: {console}"
    );
}

/// Checks that every TCP socket slot of the stack is free: [`TCP_SOCKETS`] sockets open, and
/// one more is refused with `ENOMEM` (12); then closes them.
fn all_tcp_slots_free(qemu: &mut Qemu) {
    paste(
        qemu,
        &format!(
            "import socket\n\
             held = [socket.socket() for _ in range({TCP_SOCKETS})]\n\
             try:\n    socket.socket()\n    print('one more opened')\n\
             except OSError as e:\n    print('opened', len(held), 'then', e.errno)\n\
             for s in held:\n    s.close()\n"
        ),
    );
    let reply = qemu.expect("\n>>> ", REPLY_TIMEOUT);
    assert!(
        reply.contains(&format!("\nopened {TCP_SOCKETS} then 12\n")),
        "{reply}"
    );
}

#[test]
fn ctrl_c_interrupts_accept_recv_and_connect_on_qemu_virt() {
    let test = "ctrl-c virt";
    let Some(mut qemu) = boot(test, Board::QemuVirt, Console::Pipes) else {
        return;
    };
    // A script blocked in accept: Ctrl-C raises KeyboardInterrupt there, its `finally` closes
    // the listener, the REPL comes back.
    paste(
        &mut qemu,
        "import socket\n\
         srv = socket.socket()\n\
         srv.bind(('127.0.0.1', 7001))\n\
         srv.listen(1)\n\
         try:\n    print('accepting')\n    srv.accept()\n\
         finally:\n    srv.close()\n    print('listener closed')\n",
    );
    expect_blocked(&mut qemu, "\naccepting");
    let interrupted = Instant::now();
    qemu.send(b"\x03");
    let reply = qemu.expect("\n>>> ", REPLY_TIMEOUT);
    println!(
        "{test}: accept interrupted in {} ms",
        interrupted.elapsed().as_millis()
    );
    assert!(
        reply.contains("listener closed\n") && reply.contains("KeyboardInterrupt"),
        "{reply}"
    );
    // Closed cleanly: the port is free for a new listener (no SO_REUSEADDR), which accepts.
    paste(
        &mut qemu,
        "srv = socket.socket()\n\
         srv.bind(('127.0.0.1', 7001))\n\
         srv.listen(1)\n\
         c = socket.socket()\n\
         c.connect(('127.0.0.1', 7001))\n\
         a, peer = srv.accept()\n\
         print('accepted from', peer[0])\n\
         print('receiving')\n\
         a.recv(16)\n",
    );
    // A script blocked in recv: Ctrl-C; the connection stays usable both ways.
    let reply = expect_blocked(&mut qemu, "\nreceiving");
    assert!(reply.contains("accepted from 127.0.0.1\n"), "{reply}");
    let interrupted = Instant::now();
    qemu.send(b"\x03");
    let reply = qemu.expect("\n>>> ", REPLY_TIMEOUT);
    println!(
        "{test}: recv interrupted in {} ms",
        interrupted.elapsed().as_millis()
    );
    assert!(reply.contains("KeyboardInterrupt"), "{reply}");
    let reply = type_line(
        &mut qemu,
        "n = c.send(b'after'); print(a.recv(16)); n = a.send(b'back'); print(c.recv(16))",
    );
    assert!(reply.contains("b'after'\nb'back'\n"), "{reply}");
    type_line(&mut qemu, "c.close(); a.close(); srv.close()");
    // A connect blocked by a full backlog (one connection pending, its SYN dropped until
    // accept makes room): Ctrl-C; the connect goes on in the background and completes once the
    // pending connection is accepted.
    paste(
        &mut qemu,
        "srv = socket.socket()\n\
         srv.bind(('127.0.0.1', 7003))\n\
         srv.listen(1)\n\
         c1 = socket.socket()\n\
         c1.connect(('127.0.0.1', 7003))\n\
         c2 = socket.socket()\n\
         print('connecting')\n\
         c2.connect(('127.0.0.1', 7003))\n",
    );
    expect_blocked(&mut qemu, "\nconnecting");
    qemu.send(b"\x03");
    let reply = qemu.expect("\n>>> ", REPLY_TIMEOUT);
    assert!(reply.contains("KeyboardInterrupt"), "{reply}");
    let reply = type_line(
        &mut qemu,
        "a1, _ = srv.accept(); a2, _ = srv.accept(); n = c2.send(b'late'); print(a2.recv(8))",
    );
    assert!(reply.contains("b'late'\n"), "{reply}");
    type_line(
        &mut qemu,
        "c1.close(); c2.close(); a1.close(); a2.close(); srv.close()",
    );
    // Nothing leaked: every slot is free again.
    all_tcp_slots_free(&mut qemu);
}

/// Fills the stack over loopback: a listener and connected pairs (data left unread in both
/// directions) until no TCP socket is left, then (the listener closed: it holds no stack socket
/// but an entry of the socket table) bound UDP sockets (a datagram queued unread) until none is
/// left; prints how many of each it got and the errno that stopped it.
const FILL_THE_STACK: &str = "\
import socket
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(('127.0.0.1', 7002))
srv.listen(1)
pairs = []
try:
    while True:
        c = socket.socket()
        c.settimeout(5)
        c.connect(('127.0.0.1', 7002))
        a, _ = srv.accept()
        pairs.append((c, a))
        n = c.send(b'unread by the server')
        n = a.send(b'unread by the client')
except OSError as e:
    print('tcp pairs', len(pairs), 'then', e.errno)
srv.close()
udp = []
try:
    while True:
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.append(u)
        u.bind(('127.0.0.1', 7100 + len(udp)))
        n = u.sendto(b'unread', ('127.0.0.1', 7101))
except OSError as e:
    print('udp sockets', len(udp), 'then', e.errno)
";

#[test]
fn soft_reset_frees_every_socket_slot_on_qemu_virt() {
    let Some(mut qemu) = boot("soft reset virt", Board::QemuVirt, Console::Pipes) else {
        return;
    };
    // Every stack TCP socket ends up one end of a connection: the listener's last armed
    // socket becomes the last accepted one and no free socket is left to arm another, so the
    // next `socket()` fails with ENOMEM (12). UDP: one stack socket per Python socket.
    let filled = format!(
        "tcp pairs {} then 12\nudp sockets {UDP_SOCKETS} then 12\n",
        TCP_SOCKETS / 2
    );
    for round in ["before", "after"] {
        paste(&mut qemu, FILL_THE_STACK);
        let reply = qemu.expect("\n>>> ", REPLY_TIMEOUT);
        assert!(reply.contains(&filled), "{round} the soft reset: {reply}");
        // Ctrl-D: the finalisers close every socket.
        qemu.send(b"\x04");
        let reply = qemu.expect(">>> ", REPLY_TIMEOUT);
        assert!(reply.contains("MPY: soft reboot"), "{reply}");
    }
    all_tcp_slots_free(&mut qemu);
}

/// Runs `script` with `mpremote run` on a freshly booted QEMU virt; returns its output (`\r`
/// removed) and how long mpremote took, or `None` when the test skips.
fn mpremote_run(test: &str, script: &Path) -> Option<(String, Duration)> {
    let mpremote = qemu_board::mpremote(test)?;
    let mut qemu = boot(test, Board::QemuVirt, Console::Pty)?;
    qemu.release_pty();
    let started = Instant::now();
    let out = qemu.mpremote(
        &mpremote,
        &["run", script.to_str().expect("UTF-8 path")],
        Duration::from_secs(120),
    );
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    assert!(
        out.status.success(),
        "mpremote run {}: {}\n{stdout}{}",
        script.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{test}: mpremote run took {} ms", took.as_millis());
    Some((stdout, took))
}

/// A script of `tests/upy/`.
fn upy_script(name: &str) -> PathBuf {
    workspace_root().join("tests/upy").join(name)
}

#[test]
fn loopback_poll_script_runs_through_mpremote_on_qemu_virt() {
    let Some((out, _)) = mpremote_run("loopback_poll virt", &upy_script("loopback_poll.py")) else {
        return;
    };
    print!("{out}");
    assert_eq!(
        out,
        "connect in progress True\n\
         accepted from 127.0.0.1\n\
         client sent 49152\n\
         server echoed 49152\n\
         client got back 49152 bytes, equal: True\n\
         server saw end of stream\n"
    );
}

/// Issue 18: the firmware a user gets (default features) runs no echo service. The script's
/// control (a UDP socket of its own answering on port 7007, over the same path) proves that a
/// reply from port 7 would have been seen.
#[test]
fn the_default_firmware_answers_nothing_on_udp_port_7() {
    let Some((out, _)) = mpremote_run("no echo virt", &upy_script("no_echo_service.py")) else {
        return;
    };
    print!("{out}");
    assert_eq!(
        out,
        "control: port 7007 answered b'echo?' from port 7007\n\
         udp port 7: no reply within 2 s, errno 110\n\
         tcp port 7: errno 111\n"
    );
}

/// The scripts of `tests/upy/` that need no Linux peer (the simulated board runs them against
/// one in `upy-bindings/tests/upy_wire.rs` and `upy_runtime.rs`): on QEMU virt the peer's
/// address is the board's own 127.0.0.1, and each must print what it prints on the simulated
/// board. Each runs with `mpremote run`, its `sys.argv` set by first lines (the firmware has no
/// command line: `qemu_board::board_script`). `misuse.py` is not among them: its peer's listener,
/// here on the same stack, keeps the connections the catalogue never accepts, and the stack's
/// 6 TCP sockets run out (it runs on raspi3b against Linux: `firmware_upy_scripts.rs`).
#[test]
fn peerless_upy_scripts_run_on_qemu_virt() {
    let test = "peer-less scripts virt";
    let Some(mpremote) = qemu_board::mpremote(test) else {
        return;
    };
    let Some(mut qemu) = boot(test, Board::QemuVirt, Console::Pty) else {
        return;
    };
    qemu.release_pty();
    // (script, its arguments, the line it prints when it passes)
    let cases: [(&str, &[&str], &str); 4] = [
        ("smoke.py", &[], "smoke ok (1, 29, 0, 'preview')\n"),
        ("gc_finaliser.py", &[], "gc_finaliser ok\n"),
        ("timeouts.py", &["127.0.0.1", "7011"], "timeouts ok\n"),
        // Nothing listens on 127.0.0.1:7012: the stack answers the SYN with RST.
        ("errors.py", &["127.0.0.1", "7012"], "errors ok\n"),
    ];
    for (name, args, passed) in cases {
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        let started = Instant::now();
        let out = qemu.run_script(&mpremote, &upy_script(name), &args, Duration::from_secs(60));
        let stdout = String::from_utf8_lossy(&out.stdout).replace('\r', "");
        println!("{test}: {name}: {} ms", started.elapsed().as_millis());
        assert!(out.status.success(), "{name}: {}\n{stdout}", out.status);
        assert_eq!(stdout, passed, "{name}");
    }
}
