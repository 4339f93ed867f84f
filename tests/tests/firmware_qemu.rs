//! The MicroPython firmware on both QEMU boards, QEMU `virt` (riscv64, `-bios none`, M-mode, ELF
//! at 0x8000_0000, 16550 console) and QEMU `raspi3b` (aarch64, ELF at 0x80000 started at EL3,
//! PL011 console): it boots to the REPL (on the way, virt checks the `time` CSR the K230 build
//! reads in step with the CLINT's `mtime` it reads itself, raspi3b switches its MMU on), runs
//! Python typed there (py/'s modules, the port's modules, Ctrl-C, Ctrl-D soft reset,
//! `machine.reset()`), talks to `mpremote` over a pty (raw REPL and raw-paste, as on a board's
//! serial port), and on `virt` a panic prints its message and powers QEMU off with a failure
//! status.
//!
//! Needs `qemu-system-riscv64` (Debian `qemu-system-misc`), `qemu-system-aarch64`
//! (`qemu-system-arm`), the bare-metal targets and, for the mpremote tests, the project's
//! `.venv`; without them the tests print "SKIPPED" and pass, unless `K230_REQUIRE_ROOT_TESTS=1` /
//! `K230_REQUIRE_UPY=1`.

use std::time::Duration;

use integration_tests::qemu_board::{self, Board, Console, Qemu};

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
    qemu.expect(">>> ", BOOT_TIMEOUT);
    println!(
        "{test}: QEMU start to the first prompt: {} ms",
        qemu.started.elapsed().as_millis()
    );
    Some(qemu)
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
