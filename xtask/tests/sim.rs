//! `cargo xtask sim` used as the `micropython` executable is (issue 15), run as a process:
//! - `-c CODE ARGS`, a script with arguments, standard input and an unreadable script give the
//!   same stdout and exit status as the pinned unix MicroPython (`.venv/bin/micropython`);
//! - a reply a script sends and closes as its last act reaches the Linux peer in full (the end
//!   of the run waits for it), and a peer that takes nothing makes the wait give up, reported;
//! - with no script on a terminal, the prompt: a test types lines through a pty, reads the
//!   results, interrupts a loop with Ctrl-C and ends with Ctrl-D.
//!
//! Needs root (the simulator's network namespace) and the MicroPython library.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k230_testkit::netns::spawn_in;
use k230_testkit::require::have_root;
use upy_bindings::host::have_library;

/// Longest a run may take.
const LIMIT: Duration = Duration::from_secs(60);
/// The board's address in the simulator.
const BOARD_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 15);

fn can_run(test: &str) -> bool {
    have_root(test) && have_library(test)
}

fn sim() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_xtask"));
    c.arg("sim");
    c
}

fn reference() -> Command {
    Command::new(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/micropython"))
}

/// What a finished run printed.
struct Ran {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Runs `cmd` with `args` and `stdin`, killed after [`LIMIT`].
fn run(mut cmd: Command, args: &[&str], stdin: &str) -> Ran {
    let mut child = cmd
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = reader(child.stdout.take().unwrap());
    let err = reader(child.stderr.take().unwrap());
    let status = wait(&mut child);
    Ran {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

fn reader(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = r.read_to_string(&mut s);
        s
    })
}

fn wait(child: &mut Child) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            panic!("the run took longer than {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn code_scripts_and_stdin_run_as_in_micropython() {
    if !can_run("code_scripts_and_stdin_run_as_in_micropython") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("args.py");
    std::fs::write(
        &script,
        "import sys\nprint(sys.argv[1:], __name__, sys.path[0] == sys.argv[0].rsplit('/', 1)[0])\n",
    )
    .unwrap();
    let script = script.to_str().unwrap();
    let missing = dir.path().join("missing.py");
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "-c",
                "import sys; print(sys.argv, sys.path[0] == '', __name__)",
                "a",
                "-b",
            ],
            "",
        ),
        (&["-c", "print(1)\nraise ValueError(5)"], ""),
        (&["-c", "import sys; sys.exit(3)"], ""),
        (&["-c", "import sys; sys.exit(None)"], ""),
        (&["-c", "raise KeyboardInterrupt"], ""),
        (&[script, "x", "--y"], ""),
        (&[missing.to_str().unwrap()], ""),
        (
            &[],
            "import sys\nprint(1 + 1, sys.argv)\nraise OSError(5)\n",
        ),
    ];
    for (args, stdin) in cases {
        let ours = run(sim(), args, stdin);
        let theirs = run(reference(), args, stdin);
        // Tracebacks: upstream `micropython` (and CPython, and the simulator) write them to
        // stderr; the pinned unix build writes them to stdout. Compared: stdout then stderr
        // (without the simulator's own `sim:` lines).
        let printed = |r: &Ran| {
            let stderr: String = r
                .stderr
                .lines()
                .filter(|l| !l.starts_with("sim: "))
                // The program's name starts the message (ours: `cargo xtask sim`).
                .map(|l| match l.find(": can't open file ") {
                    Some(at) => format!("{}\n", &l[at..]),
                    None => format!("{l}\n"),
                })
                .collect();
            format!("{}{stderr}", r.stdout)
        };
        assert_eq!(
            (ours.status.code(), printed(&ours)),
            (theirs.status.code(), printed(&theirs)),
            "{args:?}"
        );
    }
}

/// Runs the simulator on `script` with `args`; returns the child, the netns name and the
/// stderr collected so far (and later), and a receiver of stdout lines.
fn start(
    script: &str,
    args: &[&str],
) -> (Child, String, Arc<Mutex<String>>, mpsc::Receiver<String>) {
    let mut child = sim()
        .arg(script)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning the simulator");
    let stderr = Arc::new(Mutex::new(String::new()));
    let (ns_tx, ns_rx) = mpsc::channel();
    {
        let stderr = Arc::clone(&stderr);
        let pipe = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if let Some(rest) = line.split(" in netns ").nth(1) {
                    let name: String = rest.chars().take_while(|c| *c != ')').collect();
                    let _ = ns_tx.send(name);
                }
                stderr.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
    }
    let (out_tx, out_rx) = mpsc::channel();
    let pipe = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            let _ = out_tx.send(line);
        }
    });
    let netns = ns_rx
        .recv_timeout(LIMIT)
        .unwrap_or_else(|_| panic!("no netns line; stderr:\n{}", stderr.lock().unwrap()));
    (child, netns, stderr, out_rx)
}

fn script_file(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn a_reply_sent_and_closed_as_the_last_act_reaches_the_peer() {
    if !can_run("a_reply_sent_and_closed_as_the_last_act_reaches_the_peer") {
        return;
    }
    const SIZE: usize = 256 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let script = script_file(
        &dir,
        "reply.py",
        "import socket, sys\n\
         s = socket.socket()\n\
         s.bind(('0.0.0.0', 7801))\n\
         s.listen(1)\n\
         print('listening')\n\
         c, _ = s.accept()\n\
         c.recv(16)\n\
         c.sendall(bytes(range(256)) * (int(sys.argv[1]) // 256))\n\
         c.close()\n\
         s.close()\n",
    );
    let size = SIZE.to_string();
    let (mut child, netns, stderr, out) = start(&script, &[&size]);
    assert_eq!(out.recv_timeout(LIMIT).as_deref(), Ok("listening"));
    let peer = spawn_in(&netns, || {
        let mut c = TcpStream::connect(SocketAddrV4::new(BOARD_IP, 7801))?;
        c.set_read_timeout(Some(Duration::from_secs(20)))?;
        c.write_all(b"go\n")?;
        let mut got = Vec::new();
        c.read_to_end(&mut got)?;
        std::io::Result::Ok(got)
    })
    .unwrap();
    let got = peer.join().unwrap();
    let status = wait(&mut child);
    let stderr = stderr.lock().unwrap().clone();
    let got = got.unwrap_or_else(|e| panic!("the peer's read: {e}; sim stderr:\n{stderr}"));
    assert_eq!(
        got.len(),
        SIZE,
        "bytes the peer received; sim stderr:\n{stderr}"
    );
    assert!(got.iter().enumerate().all(|(i, b)| *b == i as u8));
    assert!(status.success(), "{status:?}\n{stderr}");
    assert!(!stderr.contains("gave up"), "{stderr}");
}

#[test]
fn the_end_of_a_run_gives_up_on_a_peer_that_takes_nothing_and_says_so() {
    if !can_run("the_end_of_a_run_gives_up_on_a_peer_that_takes_nothing_and_says_so") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // The peer listens only once the namespace exists: the script retries (bounded).
    let script = script_file(
        &dir,
        "stuck.py",
        "import socket, time\n\
         for _ in range(200):\n\
         \x20   s = socket.socket()\n\
         \x20   try:\n\
         \x20       s.connect(('10.0.2.2', 7802))\n\
         \x20       break\n\
         \x20   except OSError:\n\
         \x20       s.close()\n\
         \x20       time.sleep(0.05)\n\
         s.setblocking(False)\n\
         sent = 0\n\
         for _ in range(64):\n\
         \x20   try:\n\
         \x20       sent += s.send(b'x' * 4096)\n\
         \x20   except OSError:\n\
         \x20       break\n\
         print('queued', sent > 0)\n\
         s.close()\n",
    );
    let (mut child, netns, stderr, out) = start(&script, &[]);
    let (ready_tx, ready_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let peer = spawn_in(&netns, move || {
        let listener = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::new(10, 0, 2, 2), 7802))?;
        // The smallest receive buffer (inherited by the accepted socket): its window closes
        // after a few KiB, far less than the script queues.
        let small: libc::c_int = 1;
        // SAFETY: a valid socket and option value of the size given.
        let rc = unsafe {
            libc::setsockopt(
                listener.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                (&raw const small).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0, "SO_RCVBUF: {}", std::io::Error::last_os_error());
        ready_tx.send(()).unwrap();
        // Accept, read nothing, keep the connection open until the simulator has ended.
        let (c, _) = listener.accept()?;
        let _ = done_rx.recv_timeout(LIMIT);
        drop(c);
        std::io::Result::Ok(())
    })
    .unwrap();
    ready_rx.recv_timeout(LIMIT).unwrap();
    assert_eq!(out.recv_timeout(LIMIT).as_deref(), Ok("queued True"));
    let closed = Instant::now();
    let status = wait(&mut child);
    let waited = closed.elapsed();
    done_tx.send(()).unwrap();
    peer.join().unwrap().unwrap();
    let stderr = stderr.lock().unwrap().clone();
    assert!(status.success(), "{status:?}\n{stderr}");
    assert!(
        stderr.contains("sim: gave up after 5s waiting for the peers: 1 TCP connection(s)"),
        "{stderr}"
    );
    assert!(waited >= Duration::from_secs(5), "{waited:?}");
}

/// A pty pair: the simulator gets the slave as its terminal, the test reads the master.
struct Terminal {
    master: std::fs::File,
    seen: Arc<Mutex<Vec<u8>>>,
}

impl Terminal {
    /// Spawns `cmd` on a new pty as its controlling terminal.
    fn spawn(mut cmd: Command) -> (Child, Terminal) {
        let (mut master, mut slave) = (0, 0);
        // SAFETY: openpty writes two descriptors; the other arguments may be null.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: both descriptors were just opened and are owned here only.
        let (master, slave) =
            unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        let stdio = |fd: &OwnedFd| Stdio::from(fd.try_clone().unwrap());
        cmd.stdin(stdio(&slave))
            .stdout(stdio(&slave))
            .stderr(stdio(&slave));
        // SAFETY: between fork and exec only async-signal-safe calls: a new session whose
        // controlling terminal is the pty on stdin (so Ctrl-C there sends SIGINT).
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawning on the pty");
        drop(slave);
        let master = std::fs::File::from(master);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut reading = master.try_clone().unwrap();
        let sink = Arc::clone(&seen);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // Ends with EIO once the child and its terminal are gone.
            while let Ok(n @ 1..) = reading.read(&mut buf) {
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        (child, Terminal { master, seen })
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.seen.lock().unwrap()).into_owned()
    }

    /// Waits until the output after `from` contains `what`; returns the end of the match.
    fn expect(&self, from: usize, what: &str) -> usize {
        let start = Instant::now();
        loop {
            let text = self.text();
            if let Some(at) = text.get(from..).and_then(|t| t.find(what)) {
                return from + at + what.len();
            }
            assert!(
                start.elapsed() < LIMIT,
                "no {what:?} after {from} in:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.master.write_all(bytes).unwrap();
    }
}

#[test]
fn with_no_script_on_a_terminal_the_prompt_answers_and_ctrl_d_ends_it() {
    if !can_run("with_no_script_on_a_terminal_the_prompt_answers_and_ctrl_d_ends_it") {
        return;
    }
    let (mut child, mut t) = Terminal::spawn(sim());
    // What is typed, and what must follow it.
    let steps: &[(&[u8], &str)] = &[
        (b"", "Use Ctrl-D to exit"),
        (b"", ">>> "),
        (b"6 * 7\r", "42\r\n>>> "),
        // A compound statement over continuation lines, and the network from the prompt.
        (b"import socket\r", ">>> "),
        (b"for a in socket.getaddrinfo('10.0.2.2', 80):\r", "... "),
        (b"print(a[-1])\r", "... "),
        // The line editor indents automatically: as in `micropython`, three Enters end it.
        (b"\r\r\r", "('10.0.2.2', 80)\r\n>>> "),
        // An exception is reported and the prompt goes on; names live on between lines.
        (b"x = 5\r", ">>> "),
        (b"x / 0\r", "ZeroDivisionError"),
        (b"", ">>> "),
        // Ctrl-C interrupts running code (which says once that it runs).
        (b"import time\r", ">>> "),
        (
            b"while True: x += 1; time.sleep_ms(1) if x != 6 else print('looping')\r\r",
            "looping",
        ),
        (b"\x03", "KeyboardInterrupt"),
        (b"", ">>> "),
        (b"x > 6\r", "True\r\n>>> "),
        // Ctrl-C ends a blocking socket call too (the text to wait for is not in the echo).
        (
            b"s = socket.socket(); s.bind(('0.0.0.0', 8123)); s.listen(1)\r",
            ">>> ",
        ),
        (b"print('accept' + 'ing'); s.accept()\r", "accepting"),
        (b"\x03", "KeyboardInterrupt"),
        (b"", ">>> "),
        (b"s.close(); print('closed')\r", "closed\r\n>>> "),
    ];
    let mut at = 0;
    for (input, reply) in steps {
        t.send(input);
        at = t.expect(at, reply);
    }
    t.send(b"\x04");
    let status = wait(&mut child);
    assert!(status.success(), "{status:?}\n{}", t.text());
}
