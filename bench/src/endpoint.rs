//! Our stack as a bench endpoint: one transfer against the Linux peer, driven by frame arrival
//! and the stack's timers (it sleeps in `ppoll` on the TAP descriptor, never on a fixed quantum).

use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use k230_hal::sim::board::SimBoard;
use k230_hal::sim::wire::device::WireDevice;
use k230_hal::sim::wire::tap::Tap;
use k230_hal::sim::wire::Wire;
use netstack::api::{Ipv4Config, Micros, NetError, SocketId, SocketStack, TcpPhase, Transport};
use netstack::{HeapStorage, InterfaceControl, Seed, Stack, StackConfig};
use smoltcp::phy::Device;

use upy_bindings::host::clock::readable;

use crate::{await_go, say, Role};

/// Bytes handed to the stack per `send` call (the socket buffer takes what fits).
const CHUNK: usize = 64 * 1024;

/// Microseconds since the first call.
fn now() -> Micros {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// A configured stack and the descriptor that becomes readable when a frame arrives for it.
pub struct Endpoint<D: Device> {
    stack: Stack<'static, D>,
    input: RawFd,
}

/// The stack straight on TAP device `tap` (a [`WireDevice`], which reuses its frame buffers),
/// at `local`/24, with the TAP's offloads (TCP/UDP checksums, large TCP frames).
pub fn tap(tap: &str, local: Ipv4Addr) -> Result<Endpoint<WireDevice<Tap>>> {
    let tap = Tap::open(tap).context("open TAP")?;
    let input = tap.as_raw_fd();
    on_wire(tap, input, local)
}

/// As [`tap`] without the offloads: the stack computes every checksum and sends every TCP
/// segment as a frame of its own, as lwIP on its TAP netif does.
pub fn tap_plain(tap: &str, local: Ipv4Addr) -> Result<Endpoint<WireDevice<Plain>>> {
    let tap = Tap::open(tap).context("open TAP")?;
    let input = tap.as_raw_fd();
    on_wire(Plain(tap), input, local)
}

/// A TAP whose offloads are hidden: the device over it offloads nothing.
pub struct Plain(Tap);

impl Wire for Plain {
    fn send(&mut self, frame: &[u8]) -> std::io::Result<()> {
        self.0.send(frame)
    }

    fn recv_into(&mut self, into: &mut Vec<u8>) -> std::io::Result<Option<usize>> {
        self.0.recv_into(into)
    }
}

/// The stack on `wire`, woken by `input`, at `local`/24.
fn on_wire<W: Wire>(wire: W, input: RawFd, local: Ipv4Addr) -> Result<Endpoint<WireDevice<W>>> {
    let device = WireDevice::new(wire);
    let config = StackConfig {
        mac: [0x02, 0x4b, 0x32, 0x33, 0x30, 0x01],
        seed: seed()?,
    };
    let stack = Stack::new(device, config, HeapStorage::default().parts(), now());
    endpoint(stack, input, local)
}

/// The stack on the simulated board whose NIC model is cabled to TAP `tap`, at `local`/24: the
/// board assembly's stack, supervising the NIC as a board does.
pub fn board(tap: &str, local: Ipv4Addr) -> Result<Endpoint<SimBoard>> {
    let wire = Tap::open(tap).context("open TAP")?;
    // The model owns the TAP for as long as the board lives, so the descriptor stays valid.
    let input = wire.as_raw_fd();
    let board = SimBoard::new(wire, [0x00, 0xe0, 0x4c, 0x52, 0x78, 0x01])
        .map_err(|e| anyhow!("simulated board: {e:?}"))?;
    let stack = k230_board::supervised(board, seed()?, HeapStorage::default().parts(), now());
    endpoint(stack, input, local)
}

/// The stack's secret from the OS.
fn seed() -> Result<Seed> {
    Seed::from_os().map_err(|e| anyhow!("no entropy from the OS: {e}"))
}

/// `stack` at `local`/24, woken by `input`.
fn endpoint<D: Device>(
    mut stack: Stack<'static, D>,
    input: RawFd,
    local: Ipv4Addr,
) -> Result<Endpoint<D>> {
    stack
        .set_static(Ipv4Config {
            address: local,
            netmask: Ipv4Addr::new(255, 255, 255, 0),
            gateway: Ipv4Addr::UNSPECIFIED,
            dns: Ipv4Addr::UNSPECIFIED,
        })
        .map_err(|e| anyhow!("static config: {e:?}"))?;
    Ok(Endpoint { stack, input })
}

impl<D: Device> Endpoint<D> {
    /// Polls the stack until `done` holds; between polls that made no progress, sleeps until a
    /// frame arrives or the stack's next timer.
    fn pump(&mut self, mut done: impl FnMut(&mut Stack<'static, D>) -> Result<bool>) -> Result<()> {
        while !done(&mut self.stack)? {
            self.step(None)?;
        }
        Ok(())
    }

    /// One poll and, if it made no progress, one wait for a frame, the stack's next timer or
    /// `also` becoming readable; true in the last case.
    fn step(&mut self, also: Option<RawFd>) -> Result<bool> {
        let outcome = self.stack.poll(now());
        if outcome.progressed {
            return Ok(false);
        }
        let timeout = outcome.next_poll.map(|at| at.saturating_sub(now()));
        // A negative descriptor is ignored by ppoll.
        let [_, extra] = readable([self.input, also.unwrap_or(-1)], timeout)?;
        Ok(extra)
    }

    /// Keeps the stack running (closing handshakes, retransmissions) until stdin ends.
    fn linger(&mut self) -> Result<()> {
        let stdin = std::io::stdin().as_raw_fd();
        while !self.step(Some(stdin))? {}
        Ok(())
    }
}

fn net(e: NetError) -> anyhow::Error {
    anyhow!("stack: {e:?}")
}

/// Runs `role` on `endpoint` with the bench's line protocol.
pub fn run<D: Device>(mut endpoint: Endpoint<D>, role: Role) -> Result<()> {
    say("ready");
    await_go()?;
    let moved = match role {
        Role::TcpSend { to, bytes } => tcp_send(&mut endpoint, to, bytes)?,
        Role::TcpRecv { port } => tcp_recv(&mut endpoint, port)?,
        Role::UdpSend { to, bytes, size } => udp_send(&mut endpoint, to, bytes, size)?,
    };
    say(&format!("done {moved}"));
    endpoint.linger()
}

fn tcp_send<D: Device>(ep: &mut Endpoint<D>, to: SocketAddrV4, bytes: usize) -> Result<usize> {
    let s = ep.stack.open(Transport::Tcp).map_err(net)?;
    ep.stack.connect(s, to).map_err(net)?;
    say("started");
    ep.pump(|st| match st.tcp_phase(s).map_err(net)? {
        TcpPhase::Connecting => Ok(false),
        TcpPhase::Connected => Ok(true),
        other => bail!("connect to {to}: {other:?}"),
    })?;
    let chunk = vec![0x5au8; CHUNK];
    let mut sent = 0;
    ep.pump(|st| {
        while sent < bytes {
            let n = chunk.len().min(bytes - sent);
            match st.send(s, &chunk[..n]) {
                Ok(k) => sent += k,
                Err(NetError::WouldBlock) => break,
                Err(e) => bail!("send: {e:?}"),
            }
        }
        Ok(sent == bytes)
    })?;
    ep.stack.close(s);
    Ok(sent)
}

fn tcp_recv<D: Device>(ep: &mut Endpoint<D>, port: u16) -> Result<usize> {
    let l = ep.stack.open(Transport::Tcp).map_err(net)?;
    ep.stack
        .bind(l, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port))
        .map_err(net)?;
    ep.stack.listen(l, 1).map_err(net)?;
    say("started");
    let mut conn: Option<SocketId> = None;
    let mut got = 0;
    let mut buf = vec![0u8; CHUNK];
    ep.pump(|st| {
        if conn.is_none() {
            match st.accept(l) {
                Ok((c, _)) => conn = Some(c),
                Err(NetError::WouldBlock) => return Ok(false),
                Err(e) => bail!("accept: {e:?}"),
            }
        }
        let Some(c) = conn else { return Ok(false) };
        loop {
            match st.recv(c, &mut buf) {
                Ok(0) => return Ok(true),
                Ok(k) => got += k,
                Err(NetError::WouldBlock) => return Ok(false),
                Err(e) => bail!("recv: {e:?}"),
            }
        }
    })?;
    if let Some(c) = conn {
        ep.stack.close(c);
    }
    ep.stack.close(l);
    Ok(got)
}

fn udp_send<D: Device>(
    ep: &mut Endpoint<D>,
    to: SocketAddrV4,
    bytes: usize,
    size: usize,
) -> Result<usize> {
    let s = ep.stack.open(Transport::Udp).map_err(net)?;
    say("started");
    let datagram = vec![0x3cu8; size];
    let mut sent = 0;
    ep.pump(|st| {
        while sent < bytes {
            let n = size.min(bytes - sent);
            match st.send_to(s, &datagram[..n], Some(to)) {
                Ok(_) => sent += n,
                Err(NetError::WouldBlock) => break,
                Err(e) => bail!("send_to: {e:?}"),
            }
        }
        Ok(sent == bytes)
    })?;
    ep.stack.close(s);
    Ok(sent)
}
