//! The MicroPython firmware on QEMU, for tests: built for a board, booted with its console on
//! pipes (the test types into the REPL) or on a pty (for `mpremote`), killed on drop.
//!
//! Needs `qemu-system-riscv64`/`qemu-system-aarch64` and the bare-metal Rust targets; tests
//! skip without them unless `K230_REQUIRE_ROOT_TESTS=1`, and `mpremote` (the project's `.venv`)
//! is required when `K230_REQUIRE_UPY=1`.

use crate::upy_peers::PEER_IP;
use crate::workspace_root;
use k230_testkit::netns::{self, unique_name, Guarded, Netns};
use k230_testkit::require::{skip, Need};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A board the firmware runs on in QEMU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Board {
    /// `qemu-system-riscv64 -M virt`: 16550 console, no NIC.
    QemuVirt,
    /// `qemu-system-aarch64 -M raspi3b`: PL011 console, DWC2 USB host (a `usb-net` on its root
    /// port when the test adds one).
    QemuRaspi3b,
}

impl Board {
    /// The board's name, as the firmware prints it.
    pub fn name(self) -> &'static str {
        match self {
            Board::QemuVirt => "qemu-virt",
            Board::QemuRaspi3b => "qemu-raspi3b",
        }
    }

    /// The firmware feature.
    fn feature(self) -> &'static str {
        match self {
            Board::QemuVirt => "board-qemu-virt",
            Board::QemuRaspi3b => "board-qemu-raspi3b",
        }
    }

    /// The Rust target.
    fn target(self) -> &'static str {
        match self {
            Board::QemuVirt => "riscv64gc-unknown-none-elf",
            Board::QemuRaspi3b => "aarch64-unknown-none",
        }
    }

    /// The QEMU program and its machine arguments.
    fn qemu(self) -> (&'static str, &'static [&'static str]) {
        match self {
            Board::QemuVirt => ("qemu-system-riscv64", &["-M", "virt", "-bios", "none"]),
            Board::QemuRaspi3b => ("qemu-system-aarch64", &["-M", "raspi3b"]),
        }
    }
}

/// QEMU arguments for a `usb-net` (CDC-ECM) on raspi3b's USB root port joined to the TAP device
/// `tap` (`port=1`: on the root port itself, as QEMU otherwise puts a hub in front of the DWC2's
/// single port, and our driver drives no hubs).
pub fn usb_net_args(tap: &str) -> [String; 4] {
    [
        "-device".into(),
        "usb-net,netdev=n0,port=1".into(),
        "-netdev".into(),
        format!("tap,id=n0,ifname={tap},script=no,downscript=no"),
    ]
}

/// The firmware on QEMU raspi3b with its `usb-net` on a TAP device in a namespace of its own,
/// whose kernel side is the Linux peer ([`PEER_IP`]/24) where dnsmasq runs; booted, its DHCP
/// client started, its console's pty released for mpremote.
pub struct UsbNetBoard {
    // Dropped in this order: QEMU (and its TAP), dnsmasq, the namespace.
    /// The board.
    pub qemu: Qemu,
    _dnsmasq: Guarded,
    /// The peer's namespace (start peers in it).
    pub ns: Netns,
}

impl UsbNetBoard {
    /// Boots `elf` (built for [`Board::QemuRaspi3b`]) with dnsmasq given `dnsmasq_args`, waiting
    /// at most `timeout` for the prompt; `test` names the test in what it prints.
    pub fn boot(test: &str, elf: &Path, dnsmasq_args: &[String], timeout: Duration) -> Self {
        let ns = Netns::new().expect("namespace");
        let tap = unique_name("k230fw");
        ns.add_tap(&tap).expect("TAP for QEMU");
        ns.address(&tap, PEER_IP, 24).expect("the peer's address");
        let args: Vec<&str> = dnsmasq_args.iter().map(String::as_str).collect();
        let dnsmasq = netns::dnsmasq(&ns, &tap, &args).expect("dnsmasq");
        let usb_net = usb_net_args(&tap);
        let usb_net: Vec<&str> = usb_net.iter().map(String::as_str).collect();
        let mut qemu = Qemu::boot_in(
            Some(&ns),
            Board::QemuRaspi3b,
            Load::Elf(elf),
            Console::Pty,
            &usb_net,
        );
        let nic = qemu.expect("DHCP started", timeout);
        assert!(nic.contains("net: NIC up"), "{nic}");
        qemu.expect_prompt(">>> ", timeout);
        println!(
            "{test}: QEMU start to the first prompt: {} ms",
            qemu.started.elapsed().as_millis()
        );
        qemu.release_pty();
        Self {
            qemu,
            _dnsmasq: dnsmasq,
            ns,
        }
    }

    /// Waits on the board (at most 30 s) for the lease of the DHCP client its boot started;
    /// returns `network.LAN().ifconfig()` as the board prints it and the board's milliseconds
    /// since boot when it held the lease.
    pub fn lease(&self, mpremote: &Path) -> (String, u64) {
        let wait = "import network, time\nlan = network.LAN()\nt = time.ticks_ms()\n\
             while not lan.isconnected() and time.ticks_diff(time.ticks_ms(), t) < 30000:\n    \
             time.sleep_ms(20)\nprint(lan.ifconfig())\nprint(time.ticks_ms())";
        let out = self
            .qemu
            .mpremote(mpremote, &["exec", wait], Duration::from_secs(60));
        let stdout = String::from_utf8_lossy(&out.stdout).replace('\r', "");
        assert!(out.status.success(), "lease: {}\n{stdout}", out.status);
        let (ifconfig, ms) = stdout
            .trim()
            .split_once('\n')
            .unwrap_or_else(|| panic!("lease: {stdout:?}"));
        let ms = ms
            .parse()
            .unwrap_or_else(|_| panic!("no time in {stdout:?}"));
        (ifconfig.to_owned(), ms)
    }
}

/// `script` as the firmware runs it with `mpremote run`, in a temporary file: first lines set
/// `sys.argv` to `[name, args...]` (the firmware has no command line) and, as it has no
/// filesystem either, hand the modules beside `script` that it imports (`import m`,
/// `from m import ...` of an `m.py` there) over in `sys.modules`; then the script, unchanged.
pub fn board_script(script: &Path, args: &[String]) -> tempfile::NamedTempFile {
    let source = std::fs::read_to_string(script).expect("script");
    let name = script.file_name().expect("a file").to_string_lossy();
    let argv: Vec<String> = std::iter::once(name.as_ref())
        .chain(args.iter().map(String::as_str))
        .map(py_str)
        .collect();
    let mut text = format!("import sys\nsys.argv[:] = [{}]\n", argv.join(", "));
    let dir = script.parent().expect("a directory");
    let beside: Vec<&str> = source
        .lines()
        .filter_map(|line| {
            let line = line
                .strip_prefix("import ")
                .or(line.strip_prefix("from "))?;
            line.split([' ', ',']).next()
        })
        .filter(|module| dir.join(format!("{module}.py")).is_file())
        .collect();
    if !beside.is_empty() {
        text.push_str(MODULE_FROM_SOURCE);
        for module in beside {
            let helper = std::fs::read_to_string(dir.join(format!("{module}.py"))).expect("module");
            text.push_str(&format!(
                "_module({}, {})\n",
                py_str(module),
                py_str(&helper)
            ));
        }
        text.push_str("del _module\n");
    }
    text.push_str(&source);
    let file = tempfile::Builder::new()
        .suffix(".py")
        .tempfile()
        .expect("script file");
    std::fs::write(file.path(), text).expect("write the script");
    file
}

/// Python that defines `_module(name, source)`: runs `source` and puts an object with its
/// globals as attributes in `sys.modules[name]`, where `import` finds it.
const MODULE_FROM_SOURCE: &str = "def _module(name, source):
    g = {}
    exec(source, g)

    class Module:
        pass

    m = Module()
    for k, v in g.items():
        setattr(m, k, v)
    sys.modules[name] = m
";

/// `text` as a Python string literal.
fn py_str(text: &str) -> String {
    let mut literal = String::from("'");
    for c in text.chars() {
        match c {
            '\\' => literal.push_str("\\\\"),
            '\'' => literal.push_str("\\'"),
            ' ' => literal.push(' '),
            c if c.is_ascii_graphic() => literal.push(c),
            c if u32::from(c) <= 0xffff => literal.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => literal.push_str(&format!("\\U{:08x}", u32::from(c))),
        }
    }
    literal.push('\'');
    literal
}

/// Whether the board's QEMU and Rust target are there; otherwise prints the skip (or panics
/// when `K230_REQUIRE_ROOT_TESTS=1`, CI's setting) and returns false.
pub fn available(test: &str, board: Board) -> bool {
    let (qemu, _) = board.qemu();
    let present = Command::new(qemu)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if present {
        return true;
    }
    skip(
        Need::Root,
        test,
        &format!("{qemu} not found (scripts/setup installs it)"),
    );
    false
}

/// `mpremote` from the project's `.venv` (scripts/setup pins it); `None` after printing the skip,
/// or a panic when `K230_REQUIRE_UPY=1`.
pub fn mpremote(test: &str) -> Option<PathBuf> {
    let path = workspace_root().join(".venv/bin/mpremote");
    if path.exists() {
        return Some(path);
    }
    skip(
        Need::MicroPython,
        test,
        &format!("needs {}: run scripts/setup", path.display()),
    );
    None
}

/// Builds the firmware for `board` with `extra_features` (debug profile) under `tmp` (the test's
/// `CARGO_TARGET_TMPDIR`: the outer cargo holds the main target directory) and returns a copy of
/// the ELF named after the features. Builds are serialised: they share that directory.
pub fn build(board: Board, extra_features: &[&str], tmp: &Path) -> PathBuf {
    static BUILD: Mutex<()> = Mutex::new(());
    let _one_at_a_time = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let target_dir = tmp.join("k230-firmware");
    let mut features = vec![board.feature()];
    features.extend_from_slice(extra_features);
    let features = features.join(",");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(workspace_root())
        .args(["build", "-p", "firmware", "--target", board.target()])
        .args(["--features", &features])
        .env("CARGO_TARGET_DIR", &target_dir)
        .output()
        .expect("running cargo");
    assert!(
        out.status.success(),
        "cargo build of the firmware ({features}) failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let built = target_dir.join(board.target()).join("debug/firmware");
    let copy = target_dir.join(format!("firmware-{}.elf", features.replace(',', "+")));
    std::fs::copy(&built, &copy).expect("copy the firmware");
    copy
}

/// How QEMU loads the firmware.
#[derive(Clone, Copy, Debug)]
pub enum Load<'a> {
    /// An ELF, at its own addresses (`-kernel`).
    Elf(&'a Path),
    /// A raw binary at a load address (`-device loader`), as a boot loader would place it.
    Raw {
        /// The binary.
        path: &'a Path,
        /// Where it goes (and where the CPU starts).
        addr: u64,
    },
}

/// Where the console is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Console {
    /// QEMU's stdin and stdout: [`Qemu::send`] types, [`Qemu::expect`] reads.
    Pipes,
    /// A pty QEMU creates ([`Qemu::pty`]), for `mpremote`; [`Qemu::expect`] reads it until the
    /// test hands it over with [`Qemu::release_pty`]. QEMU drops console output while nobody
    /// has the pty open.
    Pty,
}

/// A running QEMU with the firmware; killed on drop.
pub struct Qemu {
    child: Child,
    stdin: Option<ChildStdin>,
    output: Arc<Mutex<Vec<u8>>>,
    pty: Option<PathBuf>,
    pty_reader: Option<std::fs::File>,
    /// How much of `output` [`Qemu::expect`] has consumed.
    seen: usize,
    /// When QEMU was started.
    pub started: Instant,
}

/// How long QEMU may take to say where the pty is.
const PTY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long [`Qemu::expect_prompt`] waits for the boot's own prompt on a pty before it asks for
/// another (QEMU virt boots to the prompt in well under a second).
const PTY_PROMPT_GRACE: Duration = Duration::from_secs(5);

impl Qemu {
    /// Boots `elf` on `board` with the console on `console`; `extra` are more QEMU arguments.
    pub fn boot(board: Board, elf: &Path, console: Console, extra: &[&str]) -> Qemu {
        Qemu::boot_from(board, Load::Elf(elf), console, extra)
    }

    /// Boots what `load` names on `board` with the console on `console`.
    pub fn boot_from(board: Board, load: Load<'_>, console: Console, extra: &[&str]) -> Qemu {
        Qemu::boot_in(None, board, load, console, extra)
    }

    /// Boots what `load` names on `board` with the console on `console`, QEMU inside `netns`
    /// when given (where its `-netdev tap` finds the test's TAP device).
    pub fn boot_in(
        netns: Option<&Netns>,
        board: Board,
        load: Load<'_>,
        console: Console,
        extra: &[&str],
    ) -> Qemu {
        let (program, machine) = board.qemu();
        let serial = match console {
            Console::Pipes => "stdio",
            Console::Pty => "pty",
        };
        let started = Instant::now();
        let mut cmd = match netns {
            Some(ns) => ns.command(program),
            None => Command::new(program),
        };
        cmd.args(machine)
            .args(["-display", "none", "-monitor", "none", "-serial", serial]);
        match load {
            Load::Elf(elf) => cmd.arg("-kernel").arg(elf),
            Load::Raw { path, addr } => cmd
                .arg("-device")
                .arg(format!("loader,file={},addr={addr:#x}", path.display())),
        };
        let mut child = cmd
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {program}: {e}"));
        let output = Arc::new(Mutex::new(Vec::new()));
        // stdout carries the console (pipes) and QEMU's messages; stderr only QEMU's.
        for stream in [
            Box::new(child.stdout.take().expect("piped")) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().expect("piped")),
        ] {
            collect(stream, Arc::clone(&output));
        }
        let stdin = child.stdin.take();
        let mut qemu = Qemu {
            child,
            stdin,
            output,
            pty: None,
            pty_reader: None,
            seen: 0,
            started,
        };
        if console == Console::Pty {
            let line = qemu.expect("(label serial0)", PTY_TIMEOUT);
            let path = line
                .split("redirected to ")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .unwrap_or_else(|| panic!("no pty path in {line:?}"));
            let path = PathBuf::from(path);
            // Non-blocking, read by `expect` itself: nothing reads it once it is released.
            let reader = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
                .open(&path)
                .unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
            qemu.pty_reader = Some(reader);
            qemu.pty = Some(path);
        }
        qemu
    }

    /// The pty of a [`Console::Pty`] console.
    pub fn pty(&self) -> &Path {
        self.pty.as_deref().expect("booted with Console::Pty")
    }

    /// Closes the test's side of the pty so that another program (mpremote) has it alone.
    pub fn release_pty(&mut self) {
        self.pty_reader = None;
    }

    /// Moves what the pty has received into the output (nothing after [`Qemu::release_pty`]).
    fn pump_pty(&mut self) {
        let Some(reader) = self.pty_reader.as_mut() else {
            return;
        };
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = reader.read(&mut buf) {
            self.output.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    }

    /// Everything the console and QEMU printed so far, `\r` removed.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().unwrap()).replace('\r', "")
    }

    /// Waits until the output after what the last call consumed holds `needle`; returns that part
    /// of the output (up to and including the needle, `\r` removed). Panics with the whole output
    /// at the time limit or when QEMU exits first.
    pub fn expect(&mut self, needle: &str, timeout: Duration) -> String {
        self.try_expect(needle, timeout)
            .unwrap_or_else(|| panic!("no {needle:?} within {timeout:?}; output:\n{}", self.text()))
    }

    /// As [`Qemu::expect`], but `None` at the time limit.
    pub fn try_expect(&mut self, needle: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            self.pump_pty();
            {
                let out = self.output.lock().unwrap();
                let fresh = &out[self.seen..];
                let found = fresh
                    .windows(needle.len())
                    .position(|w| w == needle.as_bytes());
                if let Some(at) = found {
                    let taken = &fresh[..at + needle.len()];
                    self.seen += taken.len();
                    return Some(String::from_utf8_lossy(taken).replace('\r', ""));
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "QEMU exited ({status}) before {needle:?}; output:\n{}",
                    self.text()
                );
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the REPL's first prompt `prompt`. On a [`Console::Pty`] console QEMU drops
    /// what the board prints before the test has the pty open, which under load can be the
    /// whole boot: without a prompt after a few seconds, Enter asks the REPL for another.
    pub fn expect_prompt(&mut self, prompt: &str, timeout: Duration) -> String {
        if self.pty_reader.is_some() {
            if let Some(text) = self.try_expect(prompt, PTY_PROMPT_GRACE) {
                return text;
            }
            let pty = self.pty_reader.as_mut().expect("checked above");
            pty.write_all(b"\r").expect("write to the pty");
        }
        self.expect(prompt, timeout)
    }

    /// Types `bytes` on the console (pipes).
    pub fn send(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("booted with Console::Pipes");
        stdin.write_all(bytes).expect("write to QEMU");
        stdin.flush().expect("flush to QEMU");
    }

    /// Waits for QEMU to exit by itself; `None` at the time limit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting for QEMU") {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs `mpremote connect <pty> <args>` against this board (its pty must be released).
    pub fn mpremote(&self, mpremote: &Path, args: &[&str], timeout: Duration) -> Output {
        assert!(self.pty_reader.is_none(), "release_pty first");
        let mut child = Command::new(mpremote)
            .arg("connect")
            .arg(self.pty())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting mpremote");
        let deadline = Instant::now() + timeout;
        while child.try_wait().expect("waiting for mpremote").is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.wait_with_output().expect("mpremote output")
    }

    /// Runs `script` with `args` (its `sys.argv[1:]`) through `mpremote run`, as
    /// [`board_script`] prepares it.
    pub fn run_script(
        &self,
        mpremote: &Path,
        script: &Path,
        args: &[String],
        timeout: Duration,
    ) -> Output {
        let prepared = board_script(script, args);
        let path = prepared.path().to_str().expect("UTF-8 path");
        self.mpremote(mpremote, &["run", path], timeout)
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Appends what `stream` yields to `sink` on a thread of its own, until it ends.
fn collect(mut stream: Box<dyn Read + Send>, sink: Arc<Mutex<Vec<u8>>>) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = stream.read(&mut buf) {
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
}
