//! Our DWC2 host driver and CDC-ECM driver against QEMU's own models (raspi3b's DWC2,
//! `usb-net`), with `netstack` on top: the `qemu-usb-test` image must enumerate the device,
//! pass its driver checks (interrupt NAK, control OUT data stage), bring up CDC-ECM, answer
//! Linux's ping and echo 1 MiB over TCP byte-exact.
//!
//! A second test reads a disk through QEMU's `usb-storage` (high speed, 512-byte packets).
//!
//! Needs `qemu-system-aarch64` (Debian `qemu-system-arm`), the `aarch64-unknown-none` Rust
//! target and, for the network test, root (network namespace, TAP); without them a test prints
//! "SKIPPED" and passes, unless `K230_REQUIRE_ROOT_TESTS=1`, when it fails. The network test runs
//! inside a namespace it creates and removes (also on failure), on TEST-NET-1 addresses there.

use integration_tests::{qemu_board, workspace_root};
use k230_testkit::netns::{unique_name, Netns};
use k230_testkit::require::{have_root, skip as skip_unless_required, Need};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::{RngCore, SeedableRng};
use tempfile::NamedTempFile;

/// The host's address on the TAP, inside the namespace.
const HOST_ADDR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// The image's static address (qemu-usb-test `ADDRESS`).
const GUEST: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
/// The image's TCP echo port.
const ECHO_PORT: u16 = 7;
/// Bytes echoed.
const ECHO_BYTES: usize = 1 << 20;
/// Limit for boot, enumeration and network bring-up.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Limit for the whole echo exchange.
const ECHO_TIMEOUT: Duration = Duration::from_secs(180);
const TARGET: &str = "aarch64-unknown-none";

/// Skips (or, with K230_REQUIRE_ROOT_TESTS=1, fails) for a missing prerequisite.
fn skip(why: &str) {
    skip_unless_required(Need::Root, "qemu_usb", why);
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?}: {}", String::from_utf8_lossy(&out.stderr)))
    }
}

/// Builds the image in a target directory of its own (the outer cargo holds the main one).
fn build_image() -> Result<PathBuf, String> {
    let root = workspace_root();
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("qemu-usb-test");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(Command::new(cargo)
        .current_dir(root.join("qemu-usb-test"))
        .args(["build", "--release", "--target", TARGET])
        .env("CARGO_TARGET_DIR", &target_dir))?;
    Ok(target_dir
        .join(TARGET)
        .join("release")
        .join("qemu-usb-test"))
}

fn target_installed() -> bool {
    Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.trim() == TARGET)
        })
        .unwrap_or(false)
}

/// A running QEMU raspi3b with the image; killed on drop.
struct Qemu {
    child: Child,
    console: Console,
}

impl Qemu {
    /// Starts `prefix` (e.g. `ip netns exec NS`) + QEMU with the image and `devices`; QEMU's
    /// guest-error log goes to `log`.
    fn start(prefix: &[&str], image: &Path, devices: &[&str], log: &Path) -> Self {
        let (program, prefix) = match prefix.split_first() {
            Some((program, rest)) => (*program, rest),
            None => ("qemu-system-aarch64", &[][..]),
        };
        let mut cmd = Command::new(program);
        if !prefix.is_empty() {
            cmd.args(prefix).arg("qemu-system-aarch64");
        }
        let mut child = cmd
            .args([
                "-M", "raspi3b", "-display", "none", "-monitor", "none", "-serial", "stdio",
            ])
            // QEMU reports register accesses its DWC2 model considers wrong as guest errors.
            .args(["-d", "guest_errors", "-D"])
            .arg(log)
            .arg("-kernel")
            .arg(image)
            .args(devices)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting QEMU");
        let console = Console::attach(&mut child);
        Self { child, console }
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Fails when QEMU's DWC2 model logged guest errors.
fn assert_no_guest_errors(log: &NamedTempFile) {
    let guest_errors = std::fs::read_to_string(log.path()).unwrap_or_default();
    assert!(
        !guest_errors.contains("dwc2"),
        "QEMU's DWC2 model flagged guest errors:\n{guest_errors}"
    );
}

/// QEMU and the image's target, or why the tests cannot run.
fn prerequisites() -> Result<(), &'static str> {
    if Command::new("qemu-system-aarch64")
        .arg("--version")
        .output()
        .is_err()
    {
        return Err("needs qemu-system-aarch64 (Debian qemu-system-arm)");
    }
    if !target_installed() {
        return Err("needs `rustup target add aarch64-unknown-none`");
    }
    Ok(())
}

/// The console, line by line, kept whole for the failure message.
struct Console {
    lines: Receiver<String>,
    log: Arc<Mutex<String>>,
}

impl Console {
    fn attach(child: &mut Child) -> Self {
        let (tx, lines) = mpsc::channel();
        let log = Arc::new(Mutex::new(String::new()));
        let out = child.stdout.take().expect("piped stdout");
        let keep = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                keep.lock().unwrap().push_str(&format!("{line}\n"));
                let _ = tx.send(line);
            }
        });
        Self { lines, log }
    }

    /// Waits for a line containing `needle`; fails on the image's FAIL/PANIC lines.
    fn expect(&self, needle: &str, deadline: Instant) -> String {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(line) if line.contains("qemu-usb-test: FAIL") || line.contains("PANIC") => {
                    panic!("image failed: {line}\n--- console ---\n{}", self.text())
                }
                Ok(_) => {}
                Err(_) => panic!(
                    "no `{needle}` on the console\n--- console ---\n{}",
                    self.text()
                ),
            }
        }
    }

    fn text(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

#[test]
fn dwc2_and_cdc_ecm_on_qemu_raspi3b() {
    if !have_root("dwc2_and_cdc_ecm_on_qemu_raspi3b") {
        return;
    }
    if let Err(why) = prerequisites() {
        return skip(why);
    }
    let image = build_image().expect("building qemu-usb-test");

    let tap = unique_name("k230qu");
    let log = NamedTempFile::new().expect("log file");
    let ns = Netns::new().expect("namespace");
    ns.add_tap(&tap).expect("TAP for QEMU");
    ns.address(&tap, HOST_ADDR, 24).expect("the host's address");
    let devices = qemu_board::usb_net_args(&tap);
    let devices: Vec<&str> = devices.iter().map(String::as_str).collect();
    let qemu = Qemu::start(
        &["ip", "netns", "exec", ns.name()],
        &image,
        &devices,
        log.path(),
    );
    let console = &qemu.console;

    let ready_by = Instant::now() + READY_TIMEOUT;
    let device = console.expect("qemu-usb-test: device ", ready_by);
    assert!(device.contains("0525:a4a2"), "not QEMU's usb-net: {device}");
    // eth::probe picks CDC-ECM although the enumerated configuration (index 0) is RNDIS.
    console.expect("qemu-usb-test: nic CdcEcm", ready_by);
    // Driver paths CDC-ECM does not use, run on the RNDIS configuration first (checks.rs).
    for check in [
        "check interrupt NAK ok",
        "check control OUT data stage ok",
        "check interrupt data ok",
        "check control IN short reply ok",
    ] {
        console.expect(check, ready_by);
    }
    let ecm = console.expect("qemu-usb-test: cdc-ecm configuration", ready_by);
    assert!(
        ecm.contains("configuration 1 data interface 1 alt 1"),
        "{ecm}"
    );
    console.expect("qemu-usb-test: READY", ready_by);

    // Default size, then frames of exactly 2 and 23 full-speed packets (64 bytes): ICMP payload
    // + 42 header bytes. Those end with a zero-length packet both ways (ECM 1.2 §3.3.1).
    for payload in ["56", "86", "1430"] {
        let ping = Command::new("ip")
            .args([
                "netns",
                "exec",
                ns.name(),
                "ping",
                "-c",
                "2",
                "-W",
                "2",
                "-s",
                payload,
            ])
            .arg(GUEST.to_string())
            .output()
            .expect("ping");
        assert!(
            ping.status.success(),
            "ping -s {payload} failed: {}\n--- console ---\n{}",
            String::from_utf8_lossy(&ping.stdout),
            console.text()
        );
    }

    let mut data = vec![0u8; ECHO_BYTES];
    rand::rngs::StdRng::seed_from_u64(0x0EC4).fill_bytes(&mut data);
    let started = Instant::now();
    let guest = SocketAddrV4::new(GUEST, ECHO_PORT);
    let stream = ns
        .spawn(move || TcpStream::connect_timeout(&guest.into(), Duration::from_secs(10)))
        .expect("a thread in the namespace")
        .join()
        .expect("connect thread")
        .expect("TCP connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let sent = data.clone();
    let send = std::thread::spawn(move || {
        writer.write_all(&sent)?;
        writer.shutdown(std::net::Shutdown::Write)
    });
    let mut echoed = Vec::with_capacity(ECHO_BYTES);
    let mut reader = stream;
    let mut buf = [0u8; 65536];
    while Instant::now() - started < ECHO_TIMEOUT {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => echoed.extend_from_slice(&buf[..n]),
            Err(e) => panic!(
                "echo read after {} bytes: {e}\n{}",
                echoed.len(),
                console.text()
            ),
        }
    }
    send.join().unwrap().expect("echo write");
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(echoed.len(), ECHO_BYTES, "echoed length");
    assert!(echoed == data, "echoed bytes differ");
    console.expect(
        &format!("echo done: {ECHO_BYTES} bytes"),
        Instant::now() + Duration::from_secs(10),
    );
    assert_no_guest_errors(&log);
    println!(
        "qemu raspi3b usb-net: 1 MiB echoed byte-exact in {secs:.2} s ({:.0} KiB/s each way)",
        ECHO_BYTES as f64 / 1024.0 / secs
    );
}

/// Bytes of the disk image, and of its start the image reads (qemu-usb-test `READ_BYTES`).
const DISK_BYTES: usize = 1 << 20;
const DISK_READ: usize = 64 * 1024;

/// FNV-1a, 64 bits (as qemu-usb-test's storage check computes it).
fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// High-speed bulk with 512-byte packets and transfers QEMU completes asynchronously: the image
/// reads the start of a disk through QEMU's `usb-storage` and prints checksums of what it read.
#[test]
fn dwc2_high_speed_bulk_on_qemu_usb_storage() {
    if let Err(why) = prerequisites() {
        return skip(why);
    }
    let image = build_image().expect("building qemu-usb-test");
    let disk = NamedTempFile::new().expect("disk image");
    let mut content = vec![0u8; DISK_BYTES];
    rand::rngs::StdRng::seed_from_u64(0xD15C).fill_bytes(&mut content);
    std::fs::write(disk.path(), &content).expect("disk image");
    let log = NamedTempFile::new().expect("log file");
    let drive = format!("if=none,id=d0,format=raw,file={}", disk.path().display());
    let devices = ["-drive", &drive, "-device", "usb-storage,drive=d0,port=1"];
    let qemu = Qemu::start(&[], &image, &devices, log.path());
    let console = &qemu.console;

    let by = Instant::now() + READY_TIMEOUT;
    let device = console.expect("qemu-usb-test: device ", by);
    assert!(
        device.contains("46f4:0001") && device.contains("High speed"),
        "not QEMU's usb-storage at high speed: {device}"
    );
    let packets = console.expect("qemu-usb-test: storage: bulk IN", by);
    assert!(packets.contains("512 bytes per packet"), "{packets}");
    let sums = console.expect("qemu-usb-test: storage: sector 0", by);
    let want = format!(
        "sector 0 fnv1a64 {:016x}, {DISK_READ} bytes fnv1a64 {:016x}",
        fnv1a(&content[..512]),
        fnv1a(&content[..DISK_READ])
    );
    assert!(sums.contains(&want), "read back {sums}\nexpected {want}");
    console.expect("qemu-usb-test: DONE", by);
    assert_no_guest_errors(&log);
}
