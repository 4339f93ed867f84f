//! `cargo xtask sim`: MicroPython on the simulated board, used as the `micropython` executable
//! is: a script with arguments, `-c CODE`, standard input, or the interactive prompt.
//!
//! The board is this process: the real MicroPython (unix port, pinned PyPI build; see
//! `upy_bindings::host`) with our `socket` and `network` modules, over upy-socket, over the
//! netstack `Stack`, over the simulated K230 network path (RTL8152 driver, DWC2 host driver,
//! DWC2 and RTL8152 models) whose wire is a TAP device. The TAP's kernel side lives in a network
//! namespace created for the run and removed afterwards; that namespace is the "Linux peer".
//!
//! Fixed addresses (subnet 10.0.2.0/24):
//! - the Linux peer (TAP in the namespace): [`PEER_IP`] = 10.0.2.2, also the gateway and the
//!   DNS server (dnsmasq, when installed), which resolves [`PEER_NAME`] to it;
//! - the board: [`BOARD_IP`] = 10.0.2.15, static, or leased by dnsmasq with `--dhcp` (the board
//!   then starts DHCP at boot, as CanMV does, and the script starts once it has the lease).
//!
//! As a board keeps its stack running after a script (its REPL is still there), the end of a
//! run closes the sockets left open and waits (at most [`DRAIN_LIMIT`]) until the peers have
//! every byte that closed connections queued; what it gives up on is reported.
//!
//! Exit status, as `micropython`'s: 0, `sys.exit(n)` → n & 255, an uncaught exception → 1
//! (traceback on stderr), `KeyboardInterrupt` → 130, a script that cannot be read → 2. The
//! simulator's status lines (`sim: ...`) go to stderr; stdout is the script's (and the seed
//! example's report).
//!
//! Options: [`Args`], `cargo xtask sim --help`. Needs root (network namespace, TAP device).

use std::io::{BufRead, BufReader, BufWriter, IsTerminal, Read};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use integration_tests::tap::TapPeer;
use k230_hal::sim::board::SimBoard;
use k230_hal::sim::wire::pcap::PcapWriter;
use k230_hal::sim::wire::Wire;
use k230_testkit::netns::{accept_within, dnsmasq, Guarded, Netns};
use netstack::api::Ipv4Config;
use netstack::InterfaceControl;
use upy_bindings::host::net::{Drain, HostNet};
use upy_bindings::host::{Interpreter, ScriptError, SIM_MODULES};

/// The Linux peer's address (the TAP's kernel side, in the namespace).
pub const PEER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 2);
/// The board's static address.
pub const BOARD_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 15);
/// The peer's DNS name (served by dnsmasq in the namespace).
pub const PEER_NAME: &str = "peer.k230.sim";
/// How long `--dhcp` waits for the lease before the script starts.
const DHCP_LIMIT: Duration = Duration::from_secs(15);
/// Prefix length of the simulated link.
pub const PREFIX: u8 = 24;
/// The board NIC's MAC (Realtek's OUI, locally chosen rest).
const BOARD_MAC: [u8; 6] = [0x00, 0xe0, 0x4c, 0x36, 0x00, 0x15];
/// The TCP port of the seed example's server.
const SEED_PORT: u16 = 60000;
/// How long the seed example's server waits for the connection and for its end.
const SEED_SERVER_LIMIT: Duration = Duration::from_secs(60);
/// How long the end of a run waits for closed connections to deliver what they queued.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(5);
/// The exit status of an uncaught `KeyboardInterrupt` (the unix port's, a shell's for SIGINT).
const INTERRUPTED: i32 = 130;

/// MicroPython on the simulated board, used as `micropython` is.
///
/// The board's wire is a TAP device in a network namespace made for the run (the Linux peer,
/// 10.0.2.2; the board is 10.0.2.15/24).
///
/// `SCRIPT.py [ARGS...]` runs the script (`sys.argv` = `[SCRIPT.py, ARGS...]`); `-c CODE [ARGS...]`
/// runs CODE (`sys.argv` = `['-c', ARGS...]`, `sys.path[0]` = ''); with neither, the interactive
/// prompt `>>>` when stdin is a terminal (Ctrl-D ends it), else stdin is run as a script. The
/// namespace name is printed (stderr) so that peers can be started in it
/// (`ip netns exec NAME ...`) meanwhile. The exit status is `micropython`'s (0, `sys.exit(n)`,
/// 1 for an uncaught exception, 130 for KeyboardInterrupt, 2 for an unreadable script).
/// `--seed-example` runs the socket manual's TCP-client example (`tests/upy/seed_client.py`, its
/// address changed to the peer's) against a Linux TCP server on the peer's port 60000, then prints
/// what the server received, line by line.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Record the board's frames in a pcap file.
    #[arg(long, value_name = "FILE")]
    pcap: Option<PathBuf>,
    /// Lease the board's address from dnsmasq on the peer instead of configuring it statically.
    #[arg(long)]
    dhcp: bool,
    /// Run the seed example against a Linux TCP server on the peer.
    #[arg(long, conflicts_with_all = ["command", "script"])]
    seed_example: bool,
    /// Run CODE instead of a script (as `micropython -c`); the words after it are its arguments.
    #[arg(short = 'c', value_name = "CODE", allow_hyphen_values = true)]
    command: Option<String>,
    /// The script to run (with `-c`: the code's first argument).
    #[arg(value_name = "SCRIPT.py")]
    script: Option<PathBuf>,
    /// The script's arguments (`sys.argv[1:]`), flags included.
    #[arg(
        value_name = "ARGS",
        requires = "script",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    args: Vec<String>,
}

/// What a run executes.
#[derive(Debug, PartialEq, Eq)]
enum Program {
    /// The seed example against a Linux server.
    SeedExample,
    /// `-c CODE ARGS...`.
    Code { code: String, args: Vec<String> },
    /// `SCRIPT.py ARGS...`.
    Script { path: PathBuf, args: Vec<String> },
    /// Nothing named: the prompt on a terminal, else standard input as a script.
    Stdin,
}

impl Args {
    fn program(&self) -> Program {
        if self.seed_example {
            return Program::SeedExample;
        }
        if let Some(code) = &self.command {
            let args = self
                .script
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .chain(self.args.iter().cloned())
                .collect();
            return Program::Code {
                code: code.clone(),
                args,
            };
        }
        match &self.script {
            Some(path) => Program::Script {
                path: path.clone(),
                args: self.args.clone(),
            },
            None => Program::Stdin,
        }
    }
}

/// Runs the task; exits with the program's status (see the module doc).
pub fn run(options: Args) -> Result<()> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        bail!("`cargo xtask sim` needs root (it creates a network namespace and a TAP device)");
    }
    let program = options.program();
    let prompt = program == Program::Stdin && std::io::stdin().is_terminal();
    // Before any thread starts, so that every thread inherits the blocked signals.
    let cleanup = interrupt::watch()?;
    let interpreter = Interpreter::shared(&SIM_MODULES).map_err(|e| anyhow!(e))?;
    let rig = Rig::new(options.pcap.as_deref(), options.dhcp)?;
    cleanup.remove_on_interrupt(rig.peer.ns.name());
    eprintln!(
        "sim: board {BOARD_IP}/{PREFIX}{} <-> Linux peer {PEER_IP} (TAP {} in netns {}){}",
        if options.dhcp { " (DHCP)" } else { "" },
        rig.peer.ifname,
        rig.peer.ns.name(),
        if rig.dnsmasq.is_some() {
            format!(", DNS {PEER_NAME}")
        } else {
            String::new()
        }
    );
    let backends = rig.net.sim_backends();
    let status = match program {
        Program::SeedExample => seed_example(&rig, interpreter)?,
        Program::Code { code, args } => status(interpreter.run_code_with(backends, &code, &args).0),
        Program::Script { path, args } => match std::fs::read_to_string(&path) {
            Ok(source) => {
                let name = path.to_string_lossy();
                status(interpreter.run_with(backends, &name, &source, &args).0)
            }
            Err(e) => cannot_open(&path, &e),
        },
        Program::Stdin if prompt => {
            // Ctrl-C while code runs raises KeyboardInterrupt in it, as in `micropython`.
            cleanup.interrupt_with(interpreter);
            let result = interpreter.repl_with(backends, &banner()).0;
            cleanup.exit_on_interrupt();
            status(result)
        }
        Program::Stdin => {
            let mut source = String::new();
            std::io::stdin()
                .read_to_string(&mut source)
                .context("reading the script from stdin")?;
            status(interpreter.run_with(backends, "<stdin>", &source, &[]).0)
        }
    };
    finish(rig, status)
}

/// The prompt's first lines: MicroPython's version, and what the board is.
fn banner() -> String {
    format!(
        "MicroPython v1.29 ({} {}) on the simulated K230 board {BOARD_IP}, Linux peer \
         {PEER_IP}; socket and network from k230-net\nUse Ctrl-D to exit, Ctrl-E for paste mode\n",
        upy_bindings::host::library::PACKAGE,
        upy_bindings::host::library::PACKAGE_VERSION
    )
}

/// The exit status `micropython` gives for `result`, with its message on stderr.
fn status(result: Result<(), ScriptError>) -> i32 {
    match result {
        Ok(()) => 0,
        Err(ScriptError::Exit(code)) => code & 0xff,
        Err(ScriptError::Exception(traceback)) => {
            eprint!("{traceback}");
            1
        }
        Err(ScriptError::Interrupted(traceback)) => {
            eprint!("{traceback}");
            INTERRUPTED
        }
        Err(ScriptError::Io(message)) => {
            eprintln!("sim: can't open file: {message}");
            2
        }
        Err(ScriptError::Interpreter(message)) => {
            eprintln!("sim: {message}");
            1
        }
    }
}

/// `micropython`'s message and status for a script it cannot read.
fn cannot_open(path: &Path, e: &std::io::Error) -> i32 {
    let text = e.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text);
    eprintln!(
        "cargo xtask sim: can't open file '{}': [Errno {}] {text}",
        path.display(),
        e.raw_os_error().unwrap_or(0)
    );
    2
}

/// Drains the network (a board's stack keeps running after a script), removes the rig and
/// exits with `status`.
fn finish(rig: Rig, status: i32) -> Result<()> {
    let drained = rig.net.drain(DRAIN_LIMIT);
    if drained != Drain::Done {
        eprintln!("sim: gave up after {DRAIN_LIMIT:?} waiting for the peers: {drained}");
    }
    drop(rig);
    if status != 0 {
        std::process::exit(status);
    }
    Ok(())
}

/// Ctrl-C and `kill`: the namespace is removed before the process exits; at the prompt, Ctrl-C
/// interrupts the running code instead.
pub(crate) mod interrupt {
    use std::sync::{Arc, Mutex, PoisonError};

    use anyhow::{bail, Result};
    use upy_bindings::host::Interpreter;

    /// What a signal does.
    #[derive(Default)]
    struct Watched {
        /// The namespace to remove before exiting.
        netns: Option<String>,
        /// SIGINT raises KeyboardInterrupt in this interpreter's code instead of exiting.
        interrupts: Option<&'static Interpreter>,
    }

    /// The signal thread's instructions.
    pub struct Cleanup(Arc<Mutex<Watched>>);

    impl Cleanup {
        /// Removes `netns` when interrupted.
        pub fn remove_on_interrupt(&self, netns: &str) {
            self.watched(|w| w.netns = Some(netns.to_owned()));
        }

        /// From now on SIGINT interrupts the code `interpreter` runs (SIGTERM still exits).
        pub fn interrupt_with(&self, interpreter: &'static Interpreter) {
            self.watched(|w| w.interrupts = Some(interpreter));
        }

        /// From now on SIGINT exits again.
        pub fn exit_on_interrupt(&self) {
            self.watched(|w| w.interrupts = None);
        }

        fn watched(&self, f: impl FnOnce(&mut Watched)) {
            f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner));
        }
    }

    fn signals() -> libc::sigset_t {
        // SAFETY: `set` is initialised by sigemptyset before the adds; all take valid pointers.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGINT);
            libc::sigaddset(&mut set, libc::SIGTERM);
            set
        }
    }

    /// Blocks SIGINT and SIGTERM in this thread (and the threads it starts later) and starts
    /// a thread that waits for them: it removes the namespace and exits with 130, or passes
    /// SIGINT to the interpreter while the prompt runs.
    pub fn watch() -> Result<Cleanup> {
        let set = signals();
        // SAFETY: `set` is a valid signal set; only the calling thread's mask changes.
        if unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) } != 0 {
            bail!("cannot block SIGINT/SIGTERM");
        }
        let watched = Arc::new(Mutex::new(Watched::default()));
        let shared = Arc::clone(&watched);
        std::thread::Builder::new()
            .name("sim-signals".into())
            .spawn(move || loop {
                let mut signal = 0;
                // SAFETY: `set` is valid and blocked in every thread, so sigwait takes it.
                if unsafe { libc::sigwait(&set, &mut signal) } != 0 {
                    return;
                }
                let mut w = shared.lock().unwrap_or_else(PoisonError::into_inner);
                if let (libc::SIGINT, Some(interpreter)) = (signal, w.interrupts) {
                    interpreter.interrupt();
                    continue;
                }
                if let Some(name) = w.netns.take() {
                    // With the processes in it (dnsmasq, peers a person started there).
                    match k230_testkit::netns::remove(&name) {
                        Ok(()) => eprintln!("sim: interrupted; removed netns {name}"),
                        Err(e) => eprintln!("sim: interrupted; netns {name}: {e}"),
                    }
                }
                std::process::exit(130);
            })?;
        Ok(Cleanup(watched))
    }
}

/// The namespace, the TAP in it, and the board on the TAP (also `cargo xtask soak`'s).
pub(crate) struct Rig {
    // Dropped first: the board (and its TAP descriptor), then dnsmasq, then the namespace.
    /// The board's network (the board assembly's stack, upy-socket's table, the poller).
    pub(crate) net: HostNet<SimBoard>,
    dnsmasq: Option<Guarded>,
    /// The Linux peer: the namespace and the TAP's kernel side.
    pub(crate) peer: TapPeer,
}

impl Rig {
    /// The namespace and TAP, dnsmasq on the peer, and the board on the TAP, addressed
    /// statically (or by DHCP with `dhcp`), its frames recorded to `pcap` if named.
    pub(crate) fn new(pcap: Option<&Path>, dhcp: bool) -> Result<Self> {
        let (peer, tap_dev) =
            TapPeer::new("k230s", PEER_IP, PREFIX).context("creating the namespace and TAP")?;
        // The board owns the TAP (through its NIC model) for as long as `net` runs.
        let frames = tap_dev.as_raw_fd();
        let wire: Box<dyn Wire> = match pcap {
            Some(path) => {
                let file = std::fs::File::create(path)
                    .with_context(|| format!("creating {}", path.display()))?;
                Box::new(PcapWriter::new(tap_dev, BufWriter::new(file))?)
            }
            None => Box::new(tap_dev),
        };
        let dnsmasq = start_dnsmasq(&peer.ns, &peer.ifname, dhcp)?;
        let board =
            SimBoard::new(wire, BOARD_MAC).map_err(|e| anyhow!("simulated board: {e:?}"))?;
        let config = Ipv4Config {
            address: BOARD_IP,
            netmask: Ipv4Addr::new(255, 255, 255, 0),
            gateway: PEER_IP,
            dns: PEER_IP,
        };
        let net = HostNet::start_board(board, (!dhcp).then_some(config)).map_err(|e| anyhow!(e))?;
        net.wake_on(frames);
        if dhcp {
            net.with_table(|t| t.stack_mut().start_dhcp());
            let start = Instant::now();
            while net.with_table(|t| t.stack().config()).is_none() {
                if start.elapsed() > DHCP_LIMIT {
                    bail!("no DHCP lease within {DHCP_LIMIT:?}");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            if let Some(leased) = net.with_table(|t| t.stack().config()) {
                eprintln!("sim: DHCP lease {}", leased.address);
            }
        }
        Ok(Self { net, dnsmasq, peer })
    }
}

/// dnsmasq on the peer: DNS for [`PEER_NAME`], and the board's lease with `dhcp`. Without
/// dnsmasq installed, only `--dhcp` fails; names then do not resolve.
fn start_dnsmasq(ns: &Netns, tap: &str, dhcp: bool) -> Result<Option<Guarded>> {
    let mut args = vec![format!("--address=/{PEER_NAME}/{PEER_IP}")];
    if dhcp {
        args.push(format!(
            "--dhcp-range={BOARD_IP},{BOARD_IP},255.255.255.0,1h"
        ));
        args.push(format!("--dhcp-option=option:router,{PEER_IP}"));
        args.push(format!("--dhcp-option=option:dns-server,{PEER_IP}"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match dnsmasq(ns, tap, &args) {
        Ok(guard) => Ok(Some(guard)),
        Err(e) if !dhcp => {
            eprintln!("sim: no dnsmasq ({e}); {PEER_NAME} will not resolve");
            Ok(None)
        }
        Err(e) => Err(anyhow!("--dhcp needs dnsmasq: {e}")),
    }
}

/// The seed example against a Linux TCP server in the namespace; the script's exit status.
fn seed_example(rig: &Rig, interpreter: &Interpreter) -> Result<i32> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/upy/seed_client.py");
    let server = rig
        .peer
        .ns
        .serve(SocketAddrV4::new(PEER_IP, SEED_PORT), line_server)
        .context("starting the peer's TCP server")?;
    eprintln!("sim: Linux TCP server listening on {PEER_IP}:{SEED_PORT}");
    let (result, _) = interpreter.run_file_with(rig.net.sim_backends(), &script, &[]);
    let script_status = status(result);
    let lines = server
        .join()
        .map_err(|_| anyhow!("the peer's TCP server panicked"))?;
    match lines {
        Ok(lines) => {
            println!("sim: the Linux TCP server received {} lines:", lines.len());
            for line in &lines {
                println!("  {line}");
            }
        }
        Err(e) => eprintln!("sim: the Linux TCP server failed: {e:#}"),
    }
    Ok(script_status)
}

/// Accepts one connection on `listener` and returns the lines received until the peer closes.
fn line_server(listener: TcpListener) -> Result<Vec<String>> {
    let stream = accept_within(&listener, SEED_SERVER_LIMIT)
        .with_context(|| format!("no connection within {SEED_SERVER_LIMIT:?}"))?;
    let mut lines = Vec::new();
    for line in BufReader::new(stream).lines() {
        let line = line.context("reading from the board")?;
        lines.push(line.trim_end_matches('\r').to_owned());
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        sim: Args,
    }

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Cli::try_parse_from(std::iter::once("sim").chain(args.iter().copied())).map(|c| c.sim)
    }

    #[test]
    fn the_script_takes_every_argument_after_it() {
        let a = parse(&["--dhcp", "s.py", "--port", "-v", "x"]).unwrap();
        assert!(a.dhcp && !a.seed_example);
        assert_eq!(
            a.program(),
            Program::Script {
                path: "s.py".into(),
                args: vec!["--port".into(), "-v".into(), "x".into()]
            }
        );
        let a = parse(&["--pcap", "f.pcap", "--seed-example"]).unwrap();
        assert_eq!(a.program(), Program::SeedExample);
        assert_eq!(a.pcap.as_deref(), Some(Path::new("f.pcap")));
        // Nothing named: the prompt (or stdin); flags before the script are ours.
        assert_eq!(parse(&[]).unwrap().program(), Program::Stdin);
        assert!(parse(&["--seed-example", "s.py"]).is_err());
        assert!(parse(&["--seed-example", "-c", "1"]).is_err());
        assert!(parse(&["--verbose", "s.py"]).is_err());
        assert!(parse(&["--pcap"]).is_err());
        assert!(parse(&["-c"]).is_err());
    }

    #[test]
    fn code_takes_the_words_after_it_as_its_arguments() {
        assert_eq!(
            parse(&["-c", "print(1)"]).unwrap().program(),
            Program::Code {
                code: "print(1)".into(),
                args: vec![]
            }
        );
        assert_eq!(
            parse(&["--dhcp", "-c", "import sys", "a", "-b"])
                .unwrap()
                .program(),
            Program::Code {
                code: "import sys".into(),
                args: vec!["a".into(), "-b".into()]
            }
        );
    }

    #[test]
    fn exit_statuses_are_micropythons() {
        assert_eq!(status(Ok(())), 0);
        assert_eq!(status(Err(ScriptError::Exit(3))), 3);
        assert_eq!(status(Err(ScriptError::Exit(256 + 7))), 7);
        assert_eq!(status(Err(ScriptError::Exception("E\n".into()))), 1);
        assert_eq!(status(Err(ScriptError::Interrupted("K\n".into()))), 130);
        assert_eq!(status(Err(ScriptError::Io("x.py".into()))), 2);
    }
}
