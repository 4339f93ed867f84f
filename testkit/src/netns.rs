//! Network namespaces, TAP links into them, and peers run inside them, for tests against
//! Linux. Everything is created by the test with a unique name and removed on drop, even when
//! the test fails; nothing outside the namespace is touched.

use std::fs::File;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// A name unique to this process and call, at most 15 bytes (the interface name limit).
pub fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let name = format!("{prefix}{}x{n}", std::process::id() % 100_000);
    name.chars().take(15).collect()
}

/// Runs a command to completion; an error if it cannot start or fails.
pub fn run(program: &str, args: &[&str]) -> io::Result<()> {
    let out = Command::new(program).args(args).output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// A network namespace, deleted on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates a namespace with a unique name and its loopback up.
    pub fn new() -> io::Result<Self> {
        let ns = Self {
            name: unique_name("k230n"),
        };
        run("ip", &["netns", "add", &ns.name])?;
        ns.exec_ok(&["ip", "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file that names it (for `setns`, e.g. to open a TAP device inside it).
    pub fn path(&self) -> PathBuf {
        PathBuf::from("/var/run/netns").join(&self.name)
    }

    /// Creates a persistent TAP device `ifname` inside it, for a program that opens it by name
    /// (QEMU's `-netdev tap`).
    pub fn add_tap(&self, ifname: &str) -> io::Result<()> {
        self.exec_ok(&["ip", "tuntap", "add", "dev", ifname, "mode", "tap"])
    }

    /// Gives interface `ifname` (inside it) `addr/prefix` and brings it up: the kernel side of
    /// a link becomes the Linux peer.
    pub fn address(&self, ifname: &str, addr: Ipv4Addr, prefix: u8) -> io::Result<()> {
        self.exec_ok(&[
            "ip",
            "addr",
            "add",
            &format!("{addr}/{prefix}"),
            "dev",
            ifname,
        ])?;
        self.exec_ok(&["ip", "link", "set", ifname, "up"])
    }

    /// A command run inside the namespace (`ip netns exec`).
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]);
        cmd
    }

    /// Runs `args` inside the namespace to completion.
    pub fn exec_ok(&self, args: &[&str]) -> io::Result<()> {
        let mut full = vec!["netns", "exec", self.name.as_str()];
        full.extend_from_slice(args);
        run("ip", &full)
    }

    /// Runs `f` on a new thread that has entered the namespace, so that sockets it opens live
    /// there.
    pub fn spawn<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> io::Result<JoinHandle<T>> {
        spawn_in(&self.name, f)
    }

    /// A TCP server in the namespace: `addr` is bound there (the listener and the connections it
    /// accepts live in the namespace), then `serve` runs on the listener in a thread of its own.
    pub fn serve<T: Send + 'static>(
        &self,
        addr: SocketAddrV4,
        serve: impl FnOnce(TcpListener) -> T + Send + 'static,
    ) -> io::Result<JoinHandle<T>> {
        let listener = self
            .spawn(move || TcpListener::bind(addr))?
            .join()
            .map_err(|_| io::Error::other("the thread binding in the namespace panicked"))??;
        Ok(thread::spawn(move || serve(listener)))
    }
}

/// Runs `f` on a new thread that has entered the named namespace `name` (one another process
/// made, e.g. `cargo xtask sim`'s).
pub fn spawn_in<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> io::Result<JoinHandle<T>> {
    let file = File::open(format!("/var/run/netns/{name}"))?;
    Ok(thread::spawn(move || {
        // SAFETY: `file` is an open namespace file; setns only changes this thread's network
        // namespace.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", io::Error::last_os_error());
        drop(file);
        f()
    }))
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(e) = remove(&self.name) {
            eprintln!("cleanup: {e}");
        }
    }
}

/// Removes the named namespace: first kills every process still in it (SIGKILL, which even a
/// child that inherited a blocked SIGTERM cannot ignore: a peer such as dnsmasq, or one a person
/// started with `ip netns exec`), which deleting the name alone would leave running, orphaned,
/// in a namespace nobody reaches; then deletes the name. The calling process itself is spared.
pub fn remove(name: &str) -> io::Result<()> {
    let pids = Command::new("ip").args(["netns", "pids", name]).output()?;
    let own = std::process::id();
    String::from_utf8_lossy(&pids.stdout)
        .split_whitespace()
        .filter_map(|pid| pid.parse::<libc::pid_t>().ok())
        .filter(|&pid| u32::try_from(pid) != Ok(own))
        .for_each(|pid| {
            // SAFETY: kill has no memory preconditions; at worst the process is already gone.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        });
    run("ip", &["netns", "del", name])
}

/// Moves interface `ifname` (e.g. the kernel side of a TAP the test opened) into `ns`, gives it
/// `addr/prefix` and brings it up.
pub fn move_into(ns: &Netns, ifname: &str, addr: Ipv4Addr, prefix: u8) -> io::Result<()> {
    run("ip", &["link", "set", ifname, "netns", ns.name()])?;
    ns.address(ifname, addr, prefix)
}

/// A child process killed and reaped on drop (e.g. dnsmasq or ping in a namespace), with the
/// scratch directory it may write to, removed after it.
#[derive(Debug)]
pub struct Guarded {
    /// The process.
    pub child: Child,
    scratch: Option<tempfile::TempDir>,
}

impl Guarded {
    /// Starts `cmd` with its output discarded.
    pub fn spawn(mut cmd: Command) -> io::Result<Self> {
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        Ok(Self {
            child: cmd.spawn()?,
            scratch: None,
        })
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        // The child may already have exited; kill then reap either way.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// dnsmasq serving DHCP and/or DNS on one interface of `ns` only, in the foreground.
pub fn dnsmasq(ns: &Netns, ifname: &str, extra: &[&str]) -> io::Result<Guarded> {
    let scratch = tempfile::tempdir()?;
    let pid_file = scratch.path().join("dnsmasq.pid");
    let mut cmd = ns.command("dnsmasq");
    cmd.args([
        "--no-daemon",
        "--conf-file=/dev/null",
        "--no-resolv",
        "--no-hosts",
        "--leasefile-ro",
        "--bind-interfaces",
        &format!("--interface={ifname}"),
        "--except-interface=lo",
        &format!("--pid-file={}", pid_file.display()),
    ]);
    cmd.args(extra);
    let mut guarded = Guarded::spawn(cmd)?;
    guarded.scratch = Some(scratch);
    Ok(guarded)
}

/// Accepts one connection on `listener` (a peer's, e.g. in a namespace) within `limit`; the
/// stream returned blocks, with `limit` as its read timeout.
pub fn accept_within(listener: &TcpListener, limit: Duration) -> io::Result<TcpStream> {
    listener.set_nonblocking(true)?;
    let start = Instant::now();
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false)?;
                stream.set_read_timeout(Some(limit))?;
                return Ok(stream);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && start.elapsed() < limit => {
                thread::sleep(Duration::from_millis(5))
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;

    use super::*;
    use crate::require::have_root;

    /// The pids `ip netns pids` lists for `name`.
    fn pids_in(name: &str) -> Vec<u32> {
        let out = Command::new("ip")
            .args(["netns", "pids", name])
            .output()
            .expect("ip netns pids");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|pid| pid.parse().ok())
            .collect()
    }

    #[test]
    fn removing_a_namespace_ends_the_processes_left_in_it() {
        if !have_root("removing_a_namespace_ends_the_processes_left_in_it") {
            return;
        }
        let ns = Netns::new().expect("a namespace");
        let mut sleeper = ns
            .command("sleep")
            .arg("60")
            .spawn()
            .expect("sleep in the namespace");
        // `ip netns exec` enters the namespace, then execs `sleep` in the same process.
        let start = Instant::now();
        while !pids_in(ns.name()).contains(&sleeper.id()) {
            assert!(start.elapsed() < Duration::from_secs(5), "never entered");
            thread::sleep(Duration::from_millis(10));
        }
        drop(ns);
        let start = Instant::now();
        let status = loop {
            if let Some(status) = sleeper.try_wait().expect("try_wait") {
                break status;
            }
            if start.elapsed() > Duration::from_secs(5) {
                let _ = sleeper.kill();
                panic!("the process in the removed namespace is still running");
            }
            thread::sleep(Duration::from_millis(10));
        };
        assert_eq!(status.signal(), Some(libc::SIGKILL));
    }
}
