//! `cargo xtask fuzz`: runs the cargo-fuzz targets of `fuzz/` (options: [`Args`]).
//!
//! Each target runs for `--time` seconds (default 600; `--ci`: 20) with libFuzzer's
//! `-max_total_time`, starting from its committed seeds (`fuzz/corpus/<target>/`, read only) and
//! a scratch corpus in `fuzz/target/corpus/<target>/` that keeps what earlier runs found.
//! Crash inputs land in `fuzz/artifacts/<target>/`; add one to the committed corpus once the bug
//! is fixed, so that the workspace's `cargo test` replays it (`tests/tests/fuzz_corpus.rs`). Prints executions,
//! executions per second and crashes per target and fails if any target crashed.
//!
//! cargo-fuzz needs a nightly toolchain and the `cargo-fuzz` binary; both are installed when
//! missing. `--ci` builds without a sanitizer (the code under test is safe Rust apart from the
//! models' DMA, and the build is most of the CI time); the long run uses AddressSanitizer.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// Seconds per target of the long run.
const LONG_SECS: u64 = 600;
/// Seconds per target with `--ci`.
const CI_SECS: u64 = 20;
/// libFuzzer's limit for one input (a hang beyond it is a crash).
const INPUT_TIMEOUT_SECS: u64 = 30;

/// What one target's run produced.
struct Outcome {
    target: String,
    executions: u64,
    per_second: u64,
    crashes: usize,
    failed: bool,
}

/// Runs the cargo-fuzz targets of `fuzz/`.
///
/// Installs nightly and cargo-fuzz when missing, starts each target from its committed seeds,
/// fails if any target crashed and names the input file.
#[derive(Debug, Default, clap::Args)]
pub struct Args {
    /// CI run: 20 s per target, no sanitizer.
    #[arg(long)]
    pub ci: bool,
    /// Seconds per target (default 600; 20 with `--ci`).
    #[arg(long, value_name = "SECS")]
    pub time: Option<u64>,
    /// Targets to run (default: all, the files in `fuzz/fuzz_targets/`).
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,
}

/// Runs the task.
pub fn run(args: Args) -> Result<()> {
    let Args {
        ci,
        time: secs,
        mut targets,
    } = args;
    let secs = secs.unwrap_or(if ci { CI_SECS } else { LONG_SECS });
    let fuzz_dir = workspace_root()?.join("fuzz");
    let known = known_targets(&fuzz_dir)?;
    if targets.is_empty() {
        targets = known.clone();
    }
    for t in &targets {
        if !known.contains(t) {
            bail!("unknown fuzz target {t}; targets: {}", known.join(", "));
        }
    }
    ensure_tools()?;

    let sanitizer = if ci { "none" } else { "address" };
    let started = Instant::now();
    let mut build = fuzz_command(&fuzz_dir, "build", sanitizer);
    eprintln!(
        "xtask fuzz: building {} targets (sanitizer {sanitizer})",
        known.len()
    );
    let status = build
        .status()
        .context("running cargo +nightly fuzz build")?;
    if !status.success() {
        bail!("cargo fuzz build failed ({status})");
    }
    eprintln!("xtask fuzz: built in {:.0?}", started.elapsed());

    let mut outcomes = Vec::new();
    for target in &targets {
        outcomes.push(run_target(&fuzz_dir, target, sanitizer, secs)?);
    }
    println!(
        "{:<18} {:>12} {:>10} {:>8}",
        "target", "executions", "exec/s", "crashes"
    );
    for o in &outcomes {
        println!(
            "{:<18} {:>12} {:>10} {:>8}{}",
            o.target,
            o.executions,
            o.per_second,
            o.crashes,
            if o.failed { "  FAILED" } else { "" }
        );
    }
    println!("xtask fuzz: total {:.0?}", started.elapsed());
    let failed: Vec<_> = outcomes.iter().filter(|o| o.failed).collect();
    if !failed.is_empty() {
        let names: Vec<_> = failed.iter().map(|o| o.target.as_str()).collect();
        bail!(
            "fuzz targets failed: {} (inputs in {})",
            names.join(", "),
            fuzz_dir.join("artifacts").display()
        );
    }
    Ok(())
}

/// The repository root (the parent of xtask's manifest directory).
fn workspace_root() -> Result<PathBuf> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .map(Path::to_path_buf)
        .context("xtask has no parent directory")
}

/// The targets: one file per target in `fuzz/fuzz_targets/`.
fn known_targets(fuzz_dir: &Path) -> Result<Vec<String>> {
    let dir = fuzz_dir.join("fuzz_targets");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "rs") {
            if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
                names.push(stem.to_string());
            }
        }
    }
    names.sort();
    Ok(names)
}

/// `cargo +nightly ...` through rustup's proxy, without the variables the outer (stable) cargo
/// set that would pin its toolchain or target directory.
fn nightly_cargo() -> Command {
    let mut cmd = Command::new("cargo");
    cmd.arg("+nightly");
    for var in [
        "CARGO",
        "RUSTC",
        "RUSTDOC",
        "RUSTUP_TOOLCHAIN",
        "CARGO_TARGET_DIR",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// Installs the nightly toolchain and cargo-fuzz when they are missing.
fn ensure_tools() -> Result<()> {
    let have_nightly = Command::new("rustup")
        .args(["run", "nightly", "rustc", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !have_nightly {
        eprintln!("xtask fuzz: cargo-fuzz needs nightly; installing it (rustup toolchain install nightly --profile minimal)");
        let status = Command::new("rustup")
            .args(["toolchain", "install", "nightly", "--profile", "minimal"])
            .status()
            .context("running rustup (is rustup installed?)")?;
        if !status.success() {
            bail!("could not install the nightly toolchain ({status})");
        }
    }
    let have_fuzz = nightly_cargo()
        .args(["fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !have_fuzz {
        eprintln!("xtask fuzz: cargo-fuzz is missing; installing it (cargo install cargo-fuzz)");
        let status = Command::new("cargo")
            .args(["install", "cargo-fuzz"])
            .status()
            .context("running cargo install")?;
        if !status.success() {
            bail!("could not install cargo-fuzz ({status})");
        }
    }
    Ok(())
}

/// `cargo +nightly fuzz <sub>` for the fuzz crate: release with debug assertions (overflow
/// checks catch arithmetic bugs), its own target directory.
fn fuzz_command(fuzz_dir: &Path, sub: &str, sanitizer: &str) -> Command {
    let mut cmd = nightly_cargo();
    cmd.current_dir(fuzz_dir.parent().unwrap_or(fuzz_dir))
        .args(["fuzz", sub, "--fuzz-dir"])
        .arg(fuzz_dir)
        .args(["-O", "--debug-assertions", "--sanitizer", sanitizer])
        .arg("--target-dir")
        .arg(fuzz_dir.join("target"));
    cmd
}

fn run_target(fuzz_dir: &Path, target: &str, sanitizer: &str, secs: u64) -> Result<Outcome> {
    let scratch = fuzz_dir.join("target").join("corpus").join(target);
    let seeds = fuzz_dir.join("corpus").join(target);
    let artifacts = fuzz_dir.join("artifacts").join(target);
    std::fs::create_dir_all(&scratch)?;
    std::fs::create_dir_all(&artifacts)?;
    let before = count_files(&artifacts);
    eprintln!("xtask fuzz: {target} for {secs} s");
    let mut cmd = fuzz_command(fuzz_dir, "run", sanitizer);
    cmd.arg(target)
        .arg(&scratch)
        .arg(&seeds)
        .arg("--")
        .arg(format!("-max_total_time={secs}"))
        .arg(format!("-timeout={INPUT_TIMEOUT_SECS}"))
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .arg("-print_final_stats=1")
        .stderr(Stdio::piped());
    let out = cmd
        .output()
        .with_context(|| format!("running cargo fuzz run {target}"))?;
    let log = String::from_utf8_lossy(&out.stderr);
    let log_file = fuzz_dir.join("target").join(format!("fuzz-{target}.log"));
    std::fs::write(&log_file, log.as_bytes())?;
    let crashes = count_files(&artifacts).saturating_sub(before);
    let failed = !out.status.success() || crashes > 0;
    if failed {
        report_failure(target, &log, &log_file);
    }
    Ok(Outcome {
        target: target.to_string(),
        executions: stat(&log, "stat::number_of_executed_units:"),
        per_second: stat(&log, "stat::average_exec_per_sec:"),
        crashes,
        failed,
    })
}

/// Prints what libFuzzer said about a failure (the panic message, its verdict, the input file)
/// and how to go on.
fn report_failure(target: &str, log: &str, log_file: &Path) {
    let lines: Vec<&str> = log.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if line.contains("panicked at") {
            eprintln!("  {line}");
            if let Some(message) = lines.get(i + 1) {
                eprintln!("  {message}");
            }
        } else if line.contains("ERROR: libFuzzer")
            || line.starts_with("SUMMARY:")
            || line.contains("Test unit written to")
        {
            eprintln!("  {line}");
        }
    }
    eprintln!(
        "xtask fuzz: {target} failed; full log {}. Reproduce with \
         `cargo +nightly fuzz run {target} <input>` (or the stable corpus test after copying the \
         input into fuzz/corpus/{target}/ once the bug is fixed).",
        log_file.display()
    );
}

/// A value from libFuzzer's final statistics (0 when absent, e.g. after a crash).
fn stat(log: &str, key: &str) -> u64 {
    log.lines()
        .filter_map(|l| l.trim().strip_prefix(key))
        .filter_map(|v| v.trim().parse().ok())
        .next_back()
        .unwrap_or(0)
}

fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| d.count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_libfuzzer_final_stats() {
        let log = "INFO: seed\nstat::number_of_executed_units: 123456\n\
                   stat::average_exec_per_sec:     4115\nstat::new_units_added: 7\n";
        assert_eq!(stat(log, "stat::number_of_executed_units:"), 123456);
        assert_eq!(stat(log, "stat::average_exec_per_sec:"), 4115);
        assert_eq!(stat(log, "stat::peak_rss_mb:"), 0);
    }

    #[test]
    fn targets_are_the_files_in_fuzz_targets() {
        let fuzz = workspace_root().unwrap().join("fuzz");
        let targets = known_targets(&fuzz).unwrap();
        assert!(targets.contains(&"rtl8152_rx".to_string()), "{targets:?}");
        for t in &targets {
            assert!(
                fuzz.join("corpus").join(t).is_dir(),
                "{t} has no seed corpus"
            );
        }
    }
}
