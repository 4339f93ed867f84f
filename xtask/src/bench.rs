//! `cargo xtask bench`: TCP bulk throughput of the netstack `Stack` against Linux,
//! with a baseline measured in the same run, and the RAM a TCP socket costs.
//!
//! - stack: the `Stack` runs in this process on a TAP device whose kernel side is in a network
//!   namespace; a Linux socket there receives from it, then sends to it.
//! - board: the same with the stack on the simulated board (RTL8152 driver over the DWC2 driver
//!   over their hardware models, the NIC model cabled to the TAP): the whole driver path.
//! - baseline: two Linux sockets in two namespaces, joined by two TAP devices whose frames this
//!   process copies across — the same TAP path, with Linux's TCP at both ends.
//!
//! Needs root (namespaces, TAP). Everything it creates is removed when it ends.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use integration_tests::netns::{move_into, unique_name, Netns};
use k230_hal::sim::board::SimBoard;
use k230_hal::sim::wire::tap::Tap;
use netstack::api::{Ipv4Config, Micros, NetError, SocketId, SocketStack, TcpPhase, Transport};
use netstack::phy::{wait, TunTapInterface};
use netstack::storage::tcp_socket_ram;
use netstack::{HeapStorage, InterfaceControl, Seed, Stack, StackConfig};
use smoltcp::phy::{Device, Medium, RxToken, TxToken};

/// Bytes moved per direction unless `--mib` says otherwise.
const DEFAULT_MIB: usize = 64;
const PORT: u16 = 5201;
/// Longest any one transfer may take before the bench gives up.
const TRANSFER_LIMIT: Duration = Duration::from_secs(120);

/// Measures throughput and memory against a baseline from the same run.
///
/// TCP bulk throughput of the netstack `Stack` on a TAP device and on the simulated board,
/// against Linux-to-Linux over the same kind of TAP path measured in the same run, and the RAM a
/// TCP socket costs. Needs root.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// MiB moved per direction.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MIB)]
    mib: usize,
}

/// Runs the task.
pub fn run(args: &Args) -> Result<()> {
    let mib = args.mib;
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        bail!("cargo xtask bench needs root (network namespaces and TAP devices)");
    }
    let bytes = mib * 1024 * 1024;
    println!("TCP bulk transfer, {mib} MiB per direction, over TAP into a network namespace");

    let (stack_tx, stack_rx) = stack_bench(&mut tap_rig()?, bytes)?;
    let (board_tx, board_rx) = stack_bench(&mut board_rig()?, bytes)?;
    let (linux_tx, linux_rx) = linux_bench(bytes)?;
    let row = |what: &str, ours: f64, linux: f64| {
        println!(
            "  {what:<30} {ours:8.1} MB/s   linux<->linux {linux:8.1} MB/s   ratio {:.2}",
            ours / linux
        );
    };
    row("stack on TAP -> linux", stack_tx, linux_tx);
    row("linux -> stack on TAP", stack_rx, linux_rx);
    row("stack on sim board -> linux", board_tx, linux_tx);
    row("linux -> stack on sim board", board_rx, linux_rx);

    println!("RAM per TCP socket (static pool):");
    println!(
        "  smoltcp tcp::Socket {} B, SocketSet slot {} B",
        std::mem::size_of::<smoltcp::socket::tcp::Socket<'static>>(),
        std::mem::size_of::<smoltcp::iface::SocketStorage<'static>>()
    );
    for buffer in [2048, 4096, 8192, 16384, 65536] {
        println!(
            "  buffers 2 x {buffer:>5} B -> {:>6} B per socket (slot, entry, id included)",
            tcp_socket_ram(buffer)
        );
    }
    Ok(())
}

/// MB/s (10^6 bytes per second).
fn rate(bytes: usize, elapsed: Duration) -> f64 {
    bytes as f64 / elapsed.as_secs_f64() / 1e6
}

/// Microseconds since the first call.
fn now() -> Micros {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// A stack on some device, cabled into a namespace where the Linux peer runs.
struct Rig<D: Device> {
    ns: Netns,
    stack: Stack<'static, D>,
    linux_ip: Ipv4Addr,
    stack_ip: Ipv4Addr,
    /// Waits up to the given microseconds for input.
    idle: fn(&mut Stack<'static, D>, Micros),
}

/// The stack on a TAP device (smoltcp's `TunTapInterface`).
fn tap_rig() -> Result<Rig<TunTapInterface>> {
    let ns = Netns::new().context("create netns")?;
    let tap = unique_name("k230b");
    let device = TunTapInterface::new(&tap, Medium::Ethernet).context("open TAP")?;
    let linux_ip = Ipv4Addr::new(10, 78, 0, 1);
    move_into(&ns, &tap, linux_ip, 24).context("configure TAP")?;
    let mac = [0x02, 0x4b, 0x32, 0x33, 0x30, 0x01];
    rig(ns, device, mac, linux_ip, |st, pause| {
        let fd = st.device().as_raw_fd();
        let _ = wait(fd, Some(smoltcp::time::Duration::from_micros(pause)));
    })
}

/// The stack on the simulated board, whose NIC model is cabled to a TAP.
fn board_rig() -> Result<Rig<SimBoard>> {
    let ns = Netns::new().context("create netns")?;
    let tap = unique_name("k230s");
    let path = std::path::Path::new("/var/run/netns").join(ns.name());
    let wire = Tap::open_in_netns(&tap, &path).context("open TAP in the netns")?;
    let linux_ip = Ipv4Addr::new(10, 78, 0, 1);
    ns.exec_ok(&["ip", "addr", "add", &format!("{linux_ip}/24"), "dev", &tap])?;
    ns.exec_ok(&["ip", "link", "set", &tap, "up"])?;
    let mut board = SimBoard::new(wire, [0x00, 0xe0, 0x4c, 0x52, 0x78, 0x01])
        .map_err(|e| anyhow!("simulated board: {e:?}"))?;
    let mac = board.nic().mac_address();
    // The board's TAP descriptor is inside the NIC model: nap instead of waiting on it.
    rig(ns, board, mac, linux_ip, |_, pause| {
        thread::sleep(Duration::from_micros(pause.min(100)));
    })
}

/// A configured stack (address `.2` of `linux_ip`'s /24) on `device`.
fn rig<D: Device>(
    ns: Netns,
    device: D,
    mac: [u8; 6],
    linux_ip: Ipv4Addr,
    idle: fn(&mut Stack<'static, D>, Micros),
) -> Result<Rig<D>> {
    let [a, b, c, _] = linux_ip.octets();
    let stack_ip = Ipv4Addr::new(a, b, c, 2);
    let mut stack = Stack::new(
        device,
        StackConfig {
            mac,
            seed: Seed::from_os()?,
        },
        HeapStorage::default().parts(),
        now(),
    );
    stack
        .set_static(Ipv4Config {
            address: stack_ip,
            netmask: Ipv4Addr::new(255, 255, 255, 0),
            gateway: Ipv4Addr::UNSPECIFIED,
            dns: Ipv4Addr::UNSPECIFIED,
        })
        .map_err(|e| anyhow!("static config: {e:?}"))?;
    Ok(Rig {
        ns,
        stack,
        linux_ip,
        stack_ip,
        idle,
    })
}

/// Polls the rig's stack until `done` holds; waits for input when idle.
fn pump<D: Device>(
    rig: &mut Rig<D>,
    mut done: impl FnMut(&mut Stack<'static, D>) -> Result<bool>,
) -> Result<()> {
    let start = Instant::now();
    while start.elapsed() < TRANSFER_LIMIT {
        if done(&mut rig.stack)? {
            return Ok(());
        }
        let outcome = rig.stack.poll(now());
        if !outcome.progressed {
            let pause = outcome
                .next_poll
                .map_or(1_000, |at| at.saturating_sub(now()))
                .min(1_000);
            (rig.idle)(&mut rig.stack, pause);
        }
    }
    bail!("transfer did not finish within {TRANSFER_LIMIT:?}")
}

/// Stack -> Linux and Linux -> stack throughput in MB/s.
fn stack_bench<D: Device>(rig: &mut Rig<D>, bytes: usize) -> Result<(f64, f64)> {
    let (linux_ip, stack_ip) = (rig.linux_ip, rig.stack_ip);
    // Stack -> Linux: time from the first byte queued until the receiver saw end of stream.
    let linux_addr = SocketAddrV4::new(linux_ip, PORT);
    let listener = ns_listener(&rig.ns, linux_addr)?;
    let receiver = rig.ns.spawn(move || -> Result<usize> {
        let (mut conn, _) = listener.accept()?;
        drain(&mut conn)
    })?;
    let s = rig.stack.open(Transport::Tcp).map_err(net)?;
    rig.stack.connect(s, linux_addr).map_err(net)?;
    pump(rig, |st| match st.tcp_phase(s).map_err(net)? {
        TcpPhase::Connecting => Ok(false),
        TcpPhase::Connected => Ok(true),
        other => bail!("connect to Linux: {other:?}"),
    })?;
    let chunk = vec![0x5au8; 64 * 1024];
    let start = Instant::now();
    let mut sent = 0;
    pump(rig, |st| {
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
    rig.stack.close(s);
    pump(rig, |_| Ok(receiver.is_finished()))?;
    let received = join(receiver)?;
    let tx = rate(received, start.elapsed());
    if received != bytes {
        bail!("Linux received {received} of {bytes} bytes");
    }

    // Linux -> stack: time from accept until end of stream.
    let l = rig.stack.open(Transport::Tcp).map_err(net)?;
    rig.stack
        .bind(l, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, PORT))
        .map_err(net)?;
    rig.stack.listen(l, 1).map_err(net)?;
    let stack_addr = SocketAddrV4::new(stack_ip, PORT);
    let sender = rig.ns.spawn(move || -> Result<()> {
        let mut conn = TcpStream::connect_timeout(&stack_addr.into(), Duration::from_secs(10))?;
        send_all(&mut conn, bytes)
    })?;
    let mut conn: Option<SocketId> = None;
    let mut start = Instant::now();
    let mut got = 0;
    let mut buf = vec![0u8; 64 * 1024];
    pump(rig, |st| {
        if conn.is_none() {
            if let Ok((c, _)) = st.accept(l) {
                conn = Some(c);
                start = Instant::now();
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
    let rx = rate(got, start.elapsed());
    if let Some(c) = conn {
        rig.stack.close(c);
    }
    pump(rig, |_| Ok(sender.is_finished()))?;
    join(sender)?;
    if got != bytes {
        bail!("stack received {got} of {bytes} bytes");
    }
    Ok((tx, rx))
}

/// The same transfers between two Linux sockets over two TAPs joined by this process.
fn linux_bench(bytes: usize) -> Result<(f64, f64)> {
    let left = Netns::new().context("create netns")?;
    let right = Netns::new().context("create netns")?;
    let (left_tap, right_tap) = (unique_name("k230l"), unique_name("k230r"));
    let stop = Arc::new(AtomicBool::new(false));
    // TAP handles are not `Send`: the relay thread opens them and reports when they exist.
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    // Writing to a TAP that is not up yet fails (and smoltcp's TAP panics on that): frames
    // flow only once both sides are configured.
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let relay = {
        let stop = stop.clone();
        let (left_tap, right_tap) = (left_tap.clone(), right_tap.clone());
        thread::spawn(move || {
            let taps = TunTapInterface::new(&left_tap, Medium::Ethernet)
                .and_then(|a| TunTapInterface::new(&right_tap, Medium::Ethernet).map(|b| (a, b)));
            match taps {
                Ok((a, b)) => {
                    let _ = ready_tx.send(Ok(()));
                    if go_rx.recv().is_ok() {
                        relay(a, b, &stop);
                    }
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            }
        })
    };
    let left_ip = Ipv4Addr::new(10, 79, 0, 1);
    let right_ip = Ipv4Addr::new(10, 79, 0, 2);
    let result = (|| {
        ready_rx.recv()?.context("open TAP")?;
        move_into(&left, &left_tap, left_ip, 24)?;
        move_into(&right, &right_tap, right_ip, 24)?;
        go_tx.send(())?;
        let forward = linux_transfer(&left, &right, SocketAddrV4::new(right_ip, PORT), bytes)?;
        let back = linux_transfer(&right, &left, SocketAddrV4::new(left_ip, PORT + 1), bytes)?;
        Ok((forward, back))
    })();
    stop.store(true, Ordering::Relaxed);
    relay.join().map_err(|_| anyhow!("relay thread panicked"))?;
    result
}

/// One Linux-to-Linux transfer from a socket in `from` to a listener in `to` at `addr`; MB/s
/// from connect until the receiver saw end of stream.
fn linux_transfer(from: &Netns, to: &Netns, addr: SocketAddrV4, bytes: usize) -> Result<f64> {
    let listener = ns_listener(to, addr)?;
    let receiver = to.spawn(move || -> Result<usize> {
        let (mut conn, _) = listener.accept()?;
        drain(&mut conn)
    })?;
    let start = Instant::now();
    let sender = from.spawn(move || -> Result<()> {
        let mut conn = TcpStream::connect_timeout(&addr.into(), Duration::from_secs(10))?;
        send_all(&mut conn, bytes)
    })?;
    join(sender)?;
    let received = join(receiver)?;
    if received != bytes {
        bail!("Linux received {received} of {bytes} bytes");
    }
    Ok(rate(received, start.elapsed()))
}

/// A listening socket opened inside `ns`.
fn ns_listener(ns: &Netns, addr: SocketAddrV4) -> Result<TcpListener> {
    ns.spawn(move || TcpListener::bind(addr))?
        .join()
        .map_err(|_| anyhow!("listener thread panicked"))?
        .context("bind in netns")
}

/// Writes `bytes` bytes and closes the sending side.
fn send_all(conn: &mut TcpStream, bytes: usize) -> Result<()> {
    let chunk = vec![0xa5u8; 64 * 1024];
    let mut left = bytes;
    while left > 0 {
        let n = chunk.len().min(left);
        conn.write_all(&chunk[..n])?;
        left -= n;
    }
    conn.shutdown(std::net::Shutdown::Write)?;
    let mut rest = Vec::new();
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    let _ = conn.read_to_end(&mut rest);
    Ok(())
}

/// Reads to end of stream; the byte count.
fn drain(conn: &mut TcpStream) -> Result<usize> {
    conn.set_read_timeout(Some(TRANSFER_LIMIT))?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0;
    loop {
        match conn.read(&mut buf)? {
            0 => return Ok(total),
            n => total += n,
        }
    }
}

fn join<T>(handle: JoinHandle<Result<T>>) -> Result<T> {
    handle.join().map_err(|_| anyhow!("peer thread panicked"))?
}

fn net(e: NetError) -> anyhow::Error {
    anyhow!("stack: {e:?}")
}

/// Copies frames between two TAP devices until `stop`.
fn relay(mut a: TunTapInterface, mut b: TunTapInterface, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let moved = forward(&mut a, &mut b) | forward(&mut b, &mut a);
        if !moved {
            let mut fds = [
                libc::pollfd {
                    fd: a.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: b.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            // SAFETY: `fds` is a valid array of two pollfd for the duration of the call.
            unsafe { libc::poll(fds.as_mut_ptr(), 2, 10) };
        }
    }
}

/// Moves the frames waiting on `from` to `to`; true if any moved.
fn forward(from: &mut TunTapInterface, to: &mut TunTapInterface) -> bool {
    let at = smoltcp::time::Instant::from_micros(0);
    let mut moved = false;
    for _ in 0..64 {
        let Some((rx, _)) = from.receive(at) else {
            break;
        };
        moved = true;
        rx.consume(|frame| {
            if let Some(tx) = to.transmit(at) {
                tx.consume(frame.len(), |buf| buf.copy_from_slice(frame));
            }
        });
    }
    moved
}
