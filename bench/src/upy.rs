//! A MicroPython script on the simulated board as a bench subject: the real MicroPython (the
//! pinned unix-port library, in-process) with our `socket` module over the board network that
//! `cargo xtask sim` runs (upy-socket, the netstack, the RTL8152 and DWC2 drivers over their
//! models), the NIC model cabled to a TAP; waits end on frames arriving on the TAP.

use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use k230_hal::sim::board::SimBoard;
use k230_hal::sim::wire::tap::Tap;
use netstack::api::Ipv4Config;
use upy_bindings::host::clock::readable;
use upy_bindings::host::net::{Drain, HostNet};
use upy_bindings::host::Interpreter;

use crate::{await_go, say};

/// How long the end of the script waits for closed connections to deliver what they queued.
const DRAIN_LIMIT: Duration = Duration::from_secs(10);

/// Runs `script` with `args` on a board at `local`/24 cabled to TAP `tap`, with the bench's
/// line protocol: `done 0` once the script ended and its connections drained.
pub fn run(tap: &str, local: Ipv4Addr, script: &Path, args: &[String]) -> Result<()> {
    let interpreter = Interpreter::shared(&upy_bindings::MODULES).map_err(|e| anyhow!(e))?;
    let source =
        std::fs::read_to_string(script).with_context(|| format!("read {}", script.display()))?;
    let wire = Tap::open(tap).context("open TAP")?;
    // The board owns the TAP (through its NIC model) for as long as `net` runs.
    let frames = wire.as_raw_fd();
    let board = SimBoard::new(wire, [0x00, 0xe0, 0x4c, 0x52, 0x78, 0x02])
        .map_err(|e| anyhow!("simulated board: {e:?}"))?;
    let config = Ipv4Config {
        address: local,
        netmask: Ipv4Addr::new(255, 255, 255, 0),
        gateway: Ipv4Addr::UNSPECIFIED,
        dns: Ipv4Addr::UNSPECIFIED,
    };
    let net = HostNet::start_board(board, Some(config)).map_err(|e| anyhow!(e))?;
    net.wake_on(frames);
    say("ready");
    await_go()?;
    say("started");
    let name = script.to_string_lossy();
    let (result, _) = interpreter.run_with(net.backends(), &name, &source, args);
    result.map_err(|e| anyhow!("{name}: {e:?}"))?;
    let drained = net.drain(DRAIN_LIMIT);
    if drained != Drain::Done {
        bail!("the script's connections did not drain: {drained}");
    }
    say("done 0");
    // The poller keeps the stack running until the bench is done with the peer.
    readable([std::io::stdin().as_raw_fd()], None)?;
    Ok(())
}
