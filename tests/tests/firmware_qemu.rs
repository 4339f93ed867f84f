//! The bare-metal firmware boots on QEMU `virt` (`-bios none`, M-mode, ELF loaded at
//! 0x8000_0000): banner, self-test result, timer ticks from the CLINT interrupt, the network
//! report ("no NIC") and a clean power-off; with feature `panic-test` it prints the panic
//! message and powers off with a failure status instead.
//!
//! Needs `qemu-system-riscv64` (Debian `qemu-system-misc`) and the `riscv64gc-unknown-none-elf`
//! target; without them it prints "SKIPPED" and passes, unless `K230_REQUIRE_ROOT_TESTS=1`, when
//! it fails.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TARGET: &str = "riscv64gc-unknown-none-elf";
const QEMU: &str = "qemu-system-riscv64";
/// Limit for one boot (the firmware powers off after ~0.3 s of ticks).
const BOOT_TIMEOUT: Duration = Duration::from_secs(60);

/// Skips (or, with K230_REQUIRE_ROOT_TESTS=1, fails) for a missing prerequisite.
fn skip(why: &str) {
    if std::env::var("K230_REQUIRE_ROOT_TESTS").as_deref() == Ok("1") {
        panic!("required test cannot run: {why}");
    }
    println!("SKIPPED ({why})");
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is in the root")
        .to_path_buf()
}

fn qemu_present() -> bool {
    Command::new(QEMU)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Builds the firmware for qemu-virt with `features` in a target directory of its own (the
/// outer cargo holds the main one) and copies the ELF to a name of its own: the two tests here
/// build different features into the same output path, so builds are serialised.
fn build_firmware(extra_features: &str) -> Result<PathBuf, String> {
    static BUILD: Mutex<()> = Mutex::new(());
    let _one_at_a_time = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("k230-firmware");
    let mut features = "board-qemu-virt".to_string();
    if !extra_features.is_empty() {
        features = format!("{features},{extra_features}");
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(workspace_root())
        .args(["build", "-p", "firmware", "--target", TARGET, "--features"])
        .arg(&features)
        .env("CARGO_TARGET_DIR", &target_dir)
        .output()
        .map_err(|e| format!("running cargo: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo build of the firmware failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let built = target_dir.join(TARGET).join("debug").join("firmware");
    let copy = target_dir.join(format!("firmware-{}.elf", features.replace(',', "+")));
    std::fs::copy(&built, &copy).map_err(|e| format!("copying {}: {e}", built.display()))?;
    Ok(copy)
}

/// A QEMU process, killed when dropped.
struct Qemu(Child);

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Boots `elf`; returns the console output and the exit status (None: still running at the
/// time limit, then killed).
fn boot(elf: &Path) -> (String, Option<ExitStatus>) {
    let child = Command::new(QEMU)
        .args(["-M", "virt", "-bios", "none", "-display", "none"])
        .args(["-serial", "stdio", "-monitor", "none", "-kernel"])
        .arg(elf)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting qemu");
    let mut qemu = Qemu(child);
    let console = Arc::new(Mutex::new(Vec::new()));
    let mut stdout = qemu.0.stdout.take().expect("piped");
    let sink = Arc::clone(&console);
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    let deadline = Instant::now() + BOOT_TIMEOUT;
    let status = loop {
        if let Some(status) = qemu.0.try_wait().expect("waiting for qemu") {
            break Some(status);
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    drop(qemu);
    reader.join().expect("console reader");
    let text = String::from_utf8_lossy(&console.lock().unwrap()).replace('\r', "");
    (text, status)
}

/// Builds and boots, or says why it cannot.
fn build_and_boot(features: &str) -> Option<(String, Option<ExitStatus>)> {
    if !qemu_present() {
        skip(&format!(
            "{QEMU} not found; apt-get install qemu-system-misc"
        ));
        return None;
    }
    let elf = match build_firmware(features) {
        Ok(elf) => elf,
        Err(e) if e.contains("target may not be installed") => {
            skip(&format!("{TARGET} not installed"));
            return None;
        }
        Err(e) => panic!("{e}"),
    };
    Some(boot(&elf))
}

#[test]
fn boots_ticks_passes_self_test_and_powers_off() {
    let Some((console, status)) = build_and_boot("") else {
        return;
    };
    println!("--- console ---\n{console}---");
    let status = status.expect("the firmware powers QEMU off by itself");
    assert!(status.success(), "exit status {status}: {console}");
    let lines: Vec<&str> = console.lines().collect();
    let find = |prefix: &str| {
        lines
            .iter()
            .position(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no line starting {prefix:?} in:\n{console}"))
    };
    let banner = find("k230-net firmware ");
    assert!(
        lines[banner].contains(" on qemu-virt (hart 0)"),
        "{}",
        lines[banner]
    );
    let selftest = find("self-test: ");
    assert_eq!(
        lines[selftest],
        "self-test: crc32 ok, heap ok, timer ok, icmp ok, stack ok -> PASS"
    );
    // Three ticks, in order, with mtime moving forward.
    let mut last_ms = 0u64;
    let mut at = selftest;
    for n in 1..=3 {
        let i = find(&format!("tick {n} (mtime "));
        assert!(i > at, "tick {n} out of order:\n{console}");
        at = i;
        let ms: u64 = lines[i]
            .split("(mtime ")
            .nth(1)
            .and_then(|r| r.strip_suffix(" ms)"))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("unparsable tick line {:?}", lines[i]));
        assert!(ms > last_ms, "mtime did not advance: {console}");
        last_ms = ms;
    }
    assert!(find("net: no NIC") > at);
    assert!(find("halting") > at);
    assert!(!console.contains("PANIC"), "{console}");
}

#[test]
fn panic_prints_its_message_and_halts_with_failure() {
    let Some((console, status)) = build_and_boot("panic-test") else {
        return;
    };
    println!("--- console ---\n{console}---");
    let status = status.expect("the panic handler powers QEMU off");
    assert_eq!(status.code(), Some(1), "panic exit code: {console}");
    assert!(console.contains("k230-net firmware "), "{console}");
    assert!(
        console.contains("PANIC: deliberate panic (feature panic-test)"),
        "{console}"
    );
    assert!(console.contains("  at firmware/src/boot.rs:"), "{console}");
    assert!(
        !console.contains("self-test:"),
        "nothing runs past the panic: {console}"
    );
}
