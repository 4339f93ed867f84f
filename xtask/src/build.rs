//! `cargo xtask build`: the firmware ELF and raw binary for a board, and a size report.
//!
//! ```text
//! cargo xtask build [--board k230|qemu-virt] [--debug] [--features F,G]
//! ```
//!
//! Writes `<target>/firmware/<board>/firmware.elf` and `firmware.bin` (the loadable segments from
//! the load address, as `objcopy -O binary` would) and prints section sizes and `.text` per crate.

#[path = "image_elf.rs"]
pub mod elf;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The bare-metal target the firmware is built for.
pub const FIRMWARE_TARGET: &str = "riscv64gc-unknown-none-elf";

/// A board the firmware can be built for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Board {
    /// The K230 big core.
    K230,
    /// QEMU `virt`.
    QemuVirt,
}

impl Board {
    /// Parses a board name as `--board` takes it.
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "k230" => Ok(Board::K230),
            "qemu-virt" => Ok(Board::QemuVirt),
            other => bail!("unknown board `{other}` (k230 or qemu-virt)"),
        }
    }

    /// The board's name.
    pub fn name(self) -> &'static str {
        match self {
            Board::K230 => "k230",
            Board::QemuVirt => "qemu-virt",
        }
    }
}

/// What to build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildOptions {
    /// Board to build for.
    pub board: Board,
    /// Release profile (size-optimised, LTO) rather than dev.
    pub release: bool,
    /// Extra firmware features (e.g. `panic-test`).
    pub features: Vec<String>,
}

impl BuildOptions {
    /// Parses `--board`, `--debug` and `--features`; returns the options and the arguments it
    /// did not recognise.
    pub fn parse(args: &[String]) -> Result<(Self, Vec<String>)> {
        let mut opts = BuildOptions {
            board: Board::K230,
            release: true,
            features: Vec::new(),
        };
        let mut rest = Vec::new();
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "--board" => opts.board = Board::parse(value(&mut it, "--board")?)?,
                "--debug" => opts.release = false,
                "--features" => opts.features.extend(
                    value(&mut it, "--features")?
                        .split(',')
                        .filter(|f| !f.is_empty())
                        .map(str::to_string),
                ),
                _ => rest.push(arg.clone()),
            }
        }
        Ok((opts, rest))
    }
}

/// The value after a flag.
pub fn value<'a>(it: &mut impl Iterator<Item = &'a String>, flag: &str) -> Result<&'a str> {
    it.next()
        .map(String::as_str)
        .with_context(|| format!("{flag} needs a value"))
}

/// A built firmware.
#[derive(Debug)]
pub struct Firmware {
    /// The ELF as cargo left it.
    pub elf_path: PathBuf,
    /// The ELF's bytes.
    pub elf: Vec<u8>,
    /// Its flat memory image.
    pub raw: elf::RawImage,
}

/// The workspace root (the directory above `xtask/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// Cargo's target directory for this workspace.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// A spinner for a step of unknown length.
pub fn spinner(message: &str) -> ProgressBar {
    let pb = ProgressBar::new_spinner();
    pb.set_style(ProgressStyle::with_template("{spinner} {msg} [{elapsed}]").expect("template"));
    pb.set_message(message.to_string());
    pb.enable_steady_tick(Duration::from_millis(120));
    pb
}

/// A byte-counting progress bar.
pub fn byte_bar(len: u64, message: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
            .expect("template")
            .progress_chars("=> "),
    );
    pb.set_message(message.to_string());
    pb
}

/// Builds the firmware with cargo and reads the result.
pub fn build_firmware(opts: &BuildOptions) -> Result<Firmware> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut features = vec![format!("board-{}", opts.board.name())];
    features.extend(opts.features.iter().cloned());
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(workspace_root())
        .args(["build", "-p", "firmware", "--target", FIRMWARE_TARGET])
        .args(["--features", &features.join(",")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if opts.release {
        cmd.arg("--release");
    }
    let pb = spinner(&format!(
        "building firmware for {} ({})",
        opts.board.name(),
        if opts.release { "release" } else { "debug" }
    ));
    let out = cmd.output().with_context(|| format!("running {cargo}"))?;
    pb.finish_and_clear();
    if !out.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
        bail!("building the firmware failed ({})", out.status);
    }
    let elf_path = target_dir()
        .join(FIRMWARE_TARGET)
        .join(if opts.release { "release" } else { "debug" })
        .join("firmware");
    let elf =
        std::fs::read(&elf_path).with_context(|| format!("reading {}", elf_path.display()))?;
    let raw = elf::raw_image(&elf)?;
    Ok(Firmware { elf_path, elf, raw })
}

/// Where `cargo xtask` puts a board's build products.
pub fn output_dir(board: Board) -> PathBuf {
    target_dir().join("firmware").join(board.name())
}

/// Ends the process with `error`'s message chain on stderr and status 1: a task's failure is
/// news for the user, not a backtrace (anyhow prints one when `RUST_BACKTRACE` is set).
pub fn exit_on_error(result: Result<()>) -> Result<()> {
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
    Ok(())
}

/// Runs the task.
pub fn run(args: &[String]) -> Result<()> {
    exit_on_error(run_build(args))
}

fn run_build(args: &[String]) -> Result<()> {
    let (opts, rest) = BuildOptions::parse(args)?;
    if let Some(extra) = rest.first() {
        bail!("unknown argument `{extra}`\nusage: cargo xtask build [--board k230|qemu-virt] [--debug] [--features F]");
    }
    let fw = build_firmware(&opts)?;
    let dir = output_dir(opts.board);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let elf_out = dir.join("firmware.elf");
    let bin_out = dir.join("firmware.bin");
    std::fs::write(&elf_out, &fw.elf)?;
    std::fs::write(&bin_out, &fw.raw.bytes)?;
    println!(
        "{}: load {:#x}, entry {:#x}, {} bytes raw",
        bin_out.display(),
        fw.raw.load_addr,
        fw.raw.entry,
        fw.raw.bytes.len()
    );
    println!("{} (built as {})", elf_out.display(), fw.elf_path.display());
    print_size_report(&elf::size_report(&fw.elf)?);
    Ok(())
}

fn print_size_report(report: &elf::SizeReport) {
    println!("\nsection            bytes");
    for (name, size) in &report.sections {
        println!("  {name:<16} {size:>8}");
    }
    let total: u64 = report.text_by_crate.iter().map(|(_, s)| s).sum();
    println!("\n.text by crate                 bytes      %");
    for (name, size) in &report.text_by_crate {
        let pct = if total == 0 {
            0.0
        } else {
            *size as f64 * 100.0 / total as f64
        };
        println!("  {name:<24} {size:>8} {pct:>6.1}");
    }
    println!("  {:<24} {total:>8}", "(functions)");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn options_parse_and_leave_the_rest() {
        let (opts, rest) = BuildOptions::parse(&args(&[
            "--board",
            "qemu-virt",
            "--features",
            "panic-test",
            "--out",
            "x",
        ]))
        .unwrap();
        assert_eq!(opts.board, Board::QemuVirt);
        assert!(opts.release);
        assert_eq!(opts.features, vec!["panic-test".to_string()]);
        assert_eq!(rest, args(&["--out", "x"]));
        assert!(BuildOptions::parse(&args(&["--board", "pc"])).is_err());
        assert!(BuildOptions::parse(&args(&["--board"])).is_err());
    }
}
