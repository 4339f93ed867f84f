//! The bench's Linux peers: sockets in a network namespace that receive or send one transfer
//! and time it from their side, so that every stack is timed the same way.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::Command;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use k230_testkit::netns::{unique_name, Netns};

use crate::bench_process::Process;

/// Longest any one transfer may take.
pub const TRANSFER_LIMIT: Duration = Duration::from_secs(300);
/// A UDP transfer is over when no datagram came for this long.
const UDP_QUIET: Duration = Duration::from_millis(500);
/// Receive buffer asked for the UDP sink, so that it loses little to scheduling delays.
const UDP_RCVBUF: libc::c_int = 8 << 20;

/// What a peer measured: payload bytes and the time they took.
pub type Timed = (usize, Duration);

/// Joins a peer thread.
pub fn join<T>(handle: JoinHandle<Result<T>>) -> Result<T> {
    handle.join().map_err(|_| anyhow!("peer thread panicked"))?
}

/// Runs `f` on a thread inside `ns` and waits for it (e.g. to open a socket there).
fn in_ns<T: Send + 'static>(ns: &Netns, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    ns.spawn(f)?
        .join()
        .map_err(|_| anyhow!("namespace thread panicked"))
}

/// A TCP sink listening at `at` in `ns` (listening when this returns): accepts one connection
/// and reads it to its end; times accept to end of stream.
pub fn tcp_sink(ns: &Netns, at: SocketAddrV4) -> Result<JoinHandle<Result<Timed>>> {
    let listener = in_ns(ns, move || TcpListener::bind(at))?.context("bind in netns")?;
    Ok(std::thread::spawn(move || {
        let (mut conn, _) = listener.accept()?;
        let start = Instant::now();
        conn.set_read_timeout(Some(TRANSFER_LIMIT))?;
        let mut buf = vec![0u8; 256 * 1024];
        let mut total = 0;
        loop {
            match conn.read(&mut buf)? {
                0 => return Ok((total, start.elapsed())),
                n => total += n,
            }
        }
    }))
}

/// A TCP source in `ns`: connects to `to`, sends `bytes` bytes, shuts its side down and waits
/// for the other side to close; times connect to close.
pub fn tcp_source(ns: &Netns, to: SocketAddrV4, bytes: usize) -> Result<JoinHandle<Result<Timed>>> {
    Ok(ns.spawn(move || -> Result<Timed> {
        let conn = TcpStream::connect_timeout(&to.into(), Duration::from_secs(20))?;
        send_and_close(conn, bytes, Instant::now())
    })?)
}

/// A TCP source listening at `at` in `ns` (listening when this returns): accepts one
/// connection, sends it `bytes` bytes, shuts its side down and waits for the other side to
/// close; times accept to close.
pub fn tcp_source_listening(
    ns: &Netns,
    at: SocketAddrV4,
    bytes: usize,
) -> Result<JoinHandle<Result<Timed>>> {
    let listener = in_ns(ns, move || TcpListener::bind(at))?.context("bind in netns")?;
    Ok(std::thread::spawn(move || {
        let (conn, _) = listener.accept()?;
        send_and_close(conn, bytes, Instant::now())
    }))
}

/// Sends `bytes` bytes on `conn`, shuts the sending side down and waits until the other side
/// closed; the bytes and the time since `start`.
fn send_and_close(mut conn: TcpStream, bytes: usize, start: Instant) -> Result<Timed> {
    let chunk = vec![0xa5u8; 64 * 1024];
    let mut left = bytes;
    while left > 0 {
        let n = chunk.len().min(left);
        conn.write_all(&chunk[..n])?;
        left -= n;
    }
    conn.shutdown(std::net::Shutdown::Write)?;
    conn.set_read_timeout(Some(TRANSFER_LIMIT))?;
    let mut rest = Vec::new();
    conn.read_to_end(&mut rest)?;
    Ok((bytes, start.elapsed()))
}

/// A UDP sink bound at `at` in `ns` (bound when this returns): counts payload bytes until
/// `expected` arrived or none came for a while; times first to last datagram.
pub fn udp_sink(
    ns: &Netns,
    at: SocketAddrV4,
    expected: usize,
) -> Result<JoinHandle<Result<Timed>>> {
    let socket = in_ns(ns, move || UdpSocket::bind(at))?.context("bind in netns")?;
    let size = UDP_RCVBUF;
    // SAFETY: SO_RCVBUF reads one c_int from the pointer for the given length; the descriptor
    // is open. The kernel caps the value at net.core.rmem_max; a smaller buffer only costs loss.
    unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
    Ok(std::thread::spawn(move || -> Result<Timed> {
        let mut buf = vec![0u8; 65536];
        socket.set_read_timeout(Some(TRANSFER_LIMIT))?;
        let n = socket.recv(&mut buf)?;
        let start = Instant::now();
        let (mut total, mut last) = (n, start);
        socket.set_read_timeout(Some(UDP_QUIET))?;
        while total < expected {
            match socket.recv(&mut buf) {
                Ok(n) => {
                    total += n;
                    last = Instant::now();
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    break
                }
                Err(e) => return Err(e.into()),
            }
        }
        if total == 0 {
            bail!("no UDP datagram arrived");
        }
        Ok((total, last - start))
    }))
}

/// A UDP source in `ns`: sends `bytes` bytes to `to` in datagrams of `size` payload bytes.
pub fn udp_source(
    ns: &Netns,
    to: SocketAddrV4,
    bytes: usize,
    size: usize,
) -> Result<JoinHandle<Result<Timed>>> {
    Ok(ns.spawn(move || -> Result<Timed> {
        let socket = UdpSocket::bind("0.0.0.0:0")?;
        let datagram = vec![0x3cu8; size];
        let start = Instant::now();
        let mut sent = 0;
        while sent < bytes {
            let n = size.min(bytes - sent);
            match socket.send_to(&datagram[..n], to) {
                Ok(_) => sent += n,
                // The device queue is full: the datagram is lost, as for any sender.
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => sent += n,
                Err(e) => return Err(e.into()),
            }
        }
        Ok((sent, start.elapsed()))
    })?)
}

/// Two network namespaces joined by two TAP devices whose frames the bench's relay process
/// (`bench relay`) copies across: the Linux baseline's path, the same kind of TAP path the
/// other subjects run on.
pub struct Relayed {
    /// The left namespace (its TAP has the left address, a /24).
    pub left: Netns,
    /// The right namespace.
    pub right: Netns,
    relay: Process,
}

impl Relayed {
    /// Starts the relay (the `bench` executable) and addresses both TAPs.
    pub fn start(bench: &Path, left_ip: Ipv4Addr, right_ip: Ipv4Addr) -> Result<Self> {
        let (left, right) = (Netns::new()?, Netns::new()?);
        let (left_tap, right_tap) = (unique_name("k230l"), unique_name("k230r"));
        let mut relay = Command::new(bench);
        relay
            .args(["relay", "--left", &left_tap, "--left-netns"])
            .arg(left.path())
            .args(["--right", &right_tap, "--right-netns"])
            .arg(right.path());
        let mut relay = Process::start(relay, "relay")?;
        relay.expect("ready")?;
        left.address(&left_tap, left_ip, 24)?;
        right.address(&right_tap, right_ip, 24)?;
        Ok(Self { left, right, relay })
    }

    /// Stops the relay.
    pub fn finish(self) -> Result<()> {
        self.relay.finish()
    }
}
