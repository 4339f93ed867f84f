//! `cargo xtask sim`: runs a MicroPython script on the simulated board.
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
//! Options: [`Args`], `cargo xtask sim --help`. Needs root (network namespace, TAP device).

use std::io::{BufRead, BufReader, BufWriter};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use integration_tests::netns::{dnsmasq, unique_name, Guarded, Netns};
use k230_hal::sim::board::SimBoard;
use k230_hal::sim::wire::pcap::PcapWriter;
use k230_hal::sim::wire::tap::Tap;
use k230_hal::sim::wire::Wire;
use netstack::api::Ipv4Config;
use netstack::InterfaceControl;
use upy_bindings::host::net::HostNet;
use upy_bindings::host::{Interpreter, ScriptError};

/// The Linux peer's address (the TAP's kernel side, in the namespace).
pub const PEER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 2);
/// The board's static address.
pub const BOARD_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 15);
/// The peer's DNS name (served by dnsmasq in the namespace).
pub const PEER_NAME: &str = "peer.k230.sim";
/// How long `--dhcp` waits for the lease before the script starts.
const DHCP_LIMIT: Duration = Duration::from_secs(15);
/// Prefix length of the simulated link.
const PREFIX: u8 = 24;
/// The board NIC's MAC (Realtek's OUI, locally chosen rest).
const BOARD_MAC: [u8; 6] = [0x00, 0xe0, 0x4c, 0x36, 0x00, 0x15];
/// The TCP port of the seed example's server.
const SEED_PORT: u16 = 60000;
/// How long the seed example's server waits for the connection and for its end.
const SEED_SERVER_LIMIT: Duration = Duration::from_secs(60);

/// Runs a MicroPython script on the simulated board.
///
/// The board's wire is a TAP device in a network namespace made for the run (the Linux peer,
/// 10.0.2.2; the board is 10.0.2.15/24).
///
/// `SCRIPT.py [ARGS...]` runs the script (`sys.argv` = `[SCRIPT.py, ARGS...]`); the namespace name
/// is printed so that peers can be started in it (`ip netns exec NAME ...`) while the script runs.
/// `--seed-example` runs the socket manual's TCP-client example (`tests/upy/seed_client.py`, its
/// address changed to the peer's) against a Linux TCP server on the peer's port 60000, then prints
/// what the server received, line by line.
#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("what").required(true).args(["seed_example", "script"]))]
pub struct Args {
    /// Record the board's frames in a pcap file.
    #[arg(long, value_name = "FILE")]
    pcap: Option<PathBuf>,
    /// Lease the board's address from dnsmasq on the peer instead of configuring it statically.
    #[arg(long)]
    dhcp: bool,
    /// Run the seed example against a Linux TCP server on the peer.
    #[arg(long)]
    seed_example: bool,
    /// The script to run.
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

/// Runs the task.
pub fn run(options: Args) -> Result<()> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        bail!("`cargo xtask sim` needs root (it creates a network namespace and a TAP device)");
    }
    // Before any thread starts, so that every thread inherits the blocked signals.
    let cleanup = interrupt::watch()?;
    let interpreter = Interpreter::shared(&upy_bindings::MODULES).map_err(|e| anyhow!(e))?;
    let rig = Rig::new(options.pcap.as_deref(), options.dhcp)?;
    cleanup.remove_on_interrupt(rig.ns.name());
    println!(
        "sim: board {BOARD_IP}/{PREFIX}{} <-> Linux peer {PEER_IP} (TAP {} in netns {}){}",
        if options.dhcp { " (DHCP)" } else { "" },
        rig.tap,
        rig.ns.name(),
        if rig.dnsmasq.is_some() {
            format!(", DNS {PEER_NAME}")
        } else {
            String::new()
        }
    );
    if options.seed_example {
        seed_example(&rig, interpreter)
    } else {
        let script = options.script.as_deref().unwrap_or(Path::new(""));
        let (result, _) = interpreter.run_file_with(rig.net.backends(), script, &options.args);
        finish(result)
    }
}

/// Ctrl-C and `kill`: the namespace is removed before the process exits.
mod interrupt {
    use std::sync::{Arc, Mutex, PoisonError};

    use anyhow::{bail, Result};

    /// The namespace to remove when SIGINT or SIGTERM arrives.
    pub struct Cleanup(Arc<Mutex<Option<String>>>);

    impl Cleanup {
        /// Removes `netns` when interrupted.
        pub fn remove_on_interrupt(&self, netns: &str) {
            *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(netns.to_owned());
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
    /// a thread that waits for them, removes the namespace and exits with 130.
    pub fn watch() -> Result<Cleanup> {
        let set = signals();
        // SAFETY: `set` is a valid signal set; only the calling thread's mask changes.
        if unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) } != 0 {
            bail!("cannot block SIGINT/SIGTERM");
        }
        let netns = Arc::new(Mutex::new(None::<String>));
        let watched = Arc::clone(&netns);
        std::thread::Builder::new()
            .name("sim-signals".into())
            .spawn(move || {
                let mut signal = 0;
                // SAFETY: `set` is valid and blocked in every thread, so sigwait takes it.
                if unsafe { libc::sigwait(&set, &mut signal) } != 0 {
                    return;
                }
                if let Some(name) = watched
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take()
                {
                    let _ = std::process::Command::new("ip")
                        .args(["netns", "del", &name])
                        .status();
                    eprintln!("sim: interrupted; removed netns {name}");
                }
                std::process::exit(130);
            })?;
        Ok(Cleanup(netns))
    }
}

/// The namespace, the TAP in it, and the board on the TAP.
struct Rig {
    // Dropped first: the board (and its TAP descriptor), then dnsmasq, then the namespace.
    net: HostNet<SimBoard>,
    dnsmasq: Option<Guarded>,
    tap: String,
    ns: Netns,
}

impl Rig {
    fn new(pcap: Option<&Path>, dhcp: bool) -> Result<Self> {
        let ns = Netns::new().context("creating the network namespace")?;
        let tap = unique_name("k230s");
        let tap_dev = Tap::open_in_netns(&tap, &Path::new("/var/run/netns").join(ns.name()))
            .with_context(|| format!("creating TAP {tap} in {}", ns.name()))?;
        ns.exec_ok(&[
            "ip",
            "addr",
            "add",
            &format!("{PEER_IP}/{PREFIX}"),
            "dev",
            &tap,
        ])
        .context("addressing the peer")?;
        ns.exec_ok(&["ip", "link", "set", &tap, "up"])
            .context("bringing the TAP up")?;
        let wire: Box<dyn Wire> = match pcap {
            Some(path) => {
                let file = std::fs::File::create(path)
                    .with_context(|| format!("creating {}", path.display()))?;
                Box::new(PcapWriter::new(tap_dev, BufWriter::new(file))?)
            }
            None => Box::new(tap_dev),
        };
        let dnsmasq = start_dnsmasq(&ns, &tap, dhcp)?;
        let board =
            SimBoard::new(wire, BOARD_MAC).map_err(|e| anyhow!("simulated board: {e:?}"))?;
        let config = Ipv4Config {
            address: BOARD_IP,
            netmask: Ipv4Addr::new(255, 255, 255, 0),
            gateway: PEER_IP,
            dns: PEER_IP,
        };
        let net =
            HostNet::start(board, BOARD_MAC, (!dhcp).then_some(config)).map_err(|e| anyhow!(e))?;
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
                println!("sim: DHCP lease {}", leased.address);
            }
        }
        Ok(Self {
            net,
            dnsmasq,
            tap,
            ns,
        })
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

fn finish(result: Result<(), ScriptError>) -> Result<()> {
    match result {
        Ok(()) | Err(ScriptError::Exit(0)) => Ok(()),
        Err(ScriptError::Exception(traceback)) => {
            eprint!("{traceback}");
            bail!("the script raised an exception")
        }
        Err(other) => bail!("{other}"),
    }
}

/// The seed example against a Linux TCP server in the namespace.
fn seed_example(rig: &Rig, interpreter: &Interpreter) -> Result<()> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/upy/seed_client.py");
    let (ready_tx, ready_rx) = mpsc::channel();
    let server = rig
        .ns
        .spawn(move || line_server(SocketAddrV4::new(PEER_IP, SEED_PORT), ready_tx))
        .context("starting the peer's TCP server")?;
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .context("the peer's TCP server did not start")??;
    println!("sim: Linux TCP server listening on {PEER_IP}:{SEED_PORT}");
    let (result, _) = interpreter.run_file_with(rig.net.backends(), &script, &[]);
    let script_result = finish(result);
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
    script_result
}

/// Accepts one connection on `addr` and returns the lines received until the peer closes.
fn line_server(addr: SocketAddrV4, ready: mpsc::Sender<Result<()>>) -> Result<Vec<String>> {
    let listener = match TcpListener::bind(addr) {
        Ok(listener) => listener,
        Err(e) => {
            let _ = ready.send(Err(anyhow!("bind {addr}: {e}")));
            bail!("bind {addr}: {e}");
        }
    };
    listener.set_nonblocking(true)?;
    // The receiver waits for this.
    let _ = ready.send(Ok(()));
    let start = Instant::now();
    let stream = loop {
        match listener.accept() {
            Ok((stream, _)) => break stream,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if start.elapsed() > SEED_SERVER_LIMIT {
                    bail!("no connection within {SEED_SERVER_LIMIT:?}");
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e.into()),
        }
    };
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(SEED_SERVER_LIMIT))?;
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
        assert_eq!(a.script.as_deref(), Some(Path::new("s.py")));
        assert_eq!(a.args, ["--port", "-v", "x"]);
        let a = parse(&["--pcap", "f.pcap", "--seed-example"]).unwrap();
        assert!(a.seed_example && a.script.is_none());
        assert_eq!(a.pcap.as_deref(), Some(Path::new("f.pcap")));
        // One of the two, not both, not neither; flags before the script are ours.
        assert!(parse(&[]).is_err());
        assert!(parse(&["--seed-example", "s.py"]).is_err());
        assert!(parse(&["--verbose", "s.py"]).is_err());
        assert!(parse(&["--pcap"]).is_err());
    }
}
