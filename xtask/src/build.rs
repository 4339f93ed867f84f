//! `cargo xtask build`: the firmware ELF and raw binary for a board, and a size report (options:
//! [`Args`], `cargo xtask build --help`).

#[path = "image_elf.rs"]
pub mod elf;

use anyhow::{bail, Context, Result};
use clap::builder::TypedValueParser as _;
use indicatif::{ProgressBar, ProgressStyle};
use k230_hal::variant::BoardVariant;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// A board the firmware can be built for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Board {
    /// The K230 big core.
    K230,
    /// QEMU `virt` (riscv64).
    QemuVirt,
    /// QEMU `raspi3b` (aarch64), its USB host with a `usb-net`.
    QemuRaspi3b,
}

impl Board {
    /// The board's name.
    pub fn name(self) -> &'static str {
        match self {
            Board::K230 => "k230",
            Board::QemuVirt => "qemu-virt",
            Board::QemuRaspi3b => "qemu-raspi3b",
        }
    }

    /// The bare-metal Rust target the firmware is built for.
    pub fn target(self) -> &'static str {
        match self {
            Board::K230 | Board::QemuVirt => "riscv64gc-unknown-none-elf",
            Board::QemuRaspi3b => "aarch64-unknown-none",
        }
    }
}

/// What to build.
#[derive(Clone, Debug, PartialEq, Eq, clap::Args)]
pub struct BuildOptions {
    /// Board to build for.
    #[arg(long, value_enum, default_value_t = Board::K230)]
    pub board: Board,
    /// Dev profile instead of release (size-optimised, LTO).
    #[arg(long = "debug", action = clap::ArgAction::SetFalse)]
    pub release: bool,
    /// Extra firmware features (e.g. `panic-test`), comma-separated or repeated.
    #[arg(long, value_name = "F,G", value_delimiter = ',')]
    pub features: Vec<String>,
    /// Which K230 board (default `canmv-v1`): it says which GPIO powers the NIC's VBUS
    /// (firmware/README.md). Passed to the firmware build as `K230_BOARD_VARIANT`.
    #[arg(long, value_name = "VARIANT", value_parser = variant_parser())]
    pub board_variant: Option<BoardVariant>,
}

/// `--board-variant`'s parser: the names of [`BoardVariant::ALL`].
fn variant_parser() -> impl clap::builder::TypedValueParser<Value = BoardVariant> {
    clap::builder::PossibleValuesParser::new(BoardVariant::ALL.map(BoardVariant::name))
        .map(|name: String| BoardVariant::from_name(&name).expect("a listed name"))
}

/// The environment variable the firmware reads its K230 board variant from at build time.
pub const VARIANT_ENV: &str = "K230_BOARD_VARIANT";

/// Builds the firmware ELF and raw binary for a board and prints a size report.
///
/// Writes `<target>/firmware/<board>/firmware.elf` and `firmware.bin` (the loadable segments from
/// the load address, as `objcopy -O binary` would) and prints section sizes and `.text` per crate.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    build: BuildOptions,
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
    features.extend(opts.features.iter().filter(|f| !f.is_empty()).cloned());
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(workspace_root())
        .args(["build", "-p", "firmware", "--target", opts.board.target()])
        .args(["--features", &features.join(",")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if opts.release {
        cmd.arg("--release");
    }
    if let Some(variant) = opts.board_variant {
        if opts.board != Board::K230 {
            bail!(
                "--board-variant names a K230 board; it means nothing for {}",
                opts.board.name()
            );
        }
        cmd.env(VARIANT_ENV, variant.name());
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
        .join(opts.board.target())
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
pub fn run(args: &Args) -> Result<()> {
    exit_on_error(run_build(&args.build))
}

fn run_build(opts: &BuildOptions) -> Result<()> {
    let fw = build_firmware(opts)?;
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
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        build: BuildOptions,
    }

    fn parse(args: &[&str]) -> Result<BuildOptions, clap::Error> {
        Cli::try_parse_from(std::iter::once("build").chain(args.iter().copied())).map(|c| c.build)
    }

    #[test]
    fn options_parse() {
        let raspi3b = parse(&["--board", "qemu-raspi3b"]).unwrap();
        assert_eq!(raspi3b.board.target(), "aarch64-unknown-none");
        let opts = parse(&["--board", "qemu-virt", "--features", "panic-test"]).unwrap();
        assert_eq!(opts.board, Board::QemuVirt);
        assert!(opts.release);
        assert_eq!(opts.features, vec!["panic-test".to_string()]);
        let opts = parse(&["--debug", "--features", "a,b", "--features", "c"]).unwrap();
        assert_eq!(opts.board, Board::K230);
        assert!(!opts.release);
        assert_eq!(opts.features, ["a", "b", "c"]);
        assert!(parse(&["--board", "pc"]).is_err());
        assert!(parse(&["--board"]).is_err());
        assert!(parse(&["--out", "x"]).is_err());
    }

    #[test]
    fn board_variants_are_the_hals_names() {
        assert_eq!(parse(&[]).unwrap().board_variant, None);
        for v in BoardVariant::ALL {
            let opts = parse(&["--board-variant", v.name()]).unwrap();
            assert_eq!(opts.board_variant, Some(v));
        }
        assert!(parse(&["--board-variant", "canmv"]).is_err());
        let qemu = parse(&["--board", "qemu-virt", "--board-variant", "evb"]).unwrap();
        let err = build_firmware(&qemu).unwrap_err().to_string();
        assert!(err.contains("K230 board"), "{err}");
    }
}
