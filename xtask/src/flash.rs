//! `cargo xtask flash`: put the firmware on a board.
//!
//! ```text
//! cargo xtask flash [--media sdcard|emmc] [--kdimg PATH] [--dry-run]   # USB boot mode, k230-flash
//! cargo xtask flash --sd DEVICE [--image PATH] [--dry-run]              # an SD card in this machine
//! cargo xtask flash --loader FILE [--dry-run]                           # run FILE from SRAM via the boot ROM
//! ```
//!
//! USB: the board must be in USB boot mode (BOOT button held while plugging in); the boot ROM is
//! greeted first (see [`bootrom`]) so a missing board gives a clear message, then the official
//! `k230-flash` tool (installed into `.venv/` on first use) writes `k230-net-rtt.kdimg` (the
//! RT-Smart slot at 10 MiB) to the board's SD card or eMMC through its loader.
//!
//! SD: writes `sdcard.img` (from `cargo xtask image --base-image`) over the whole card if it
//! exists, else `rtt_system.bin` into the RT-Smart slot of a card that already holds a CanMV
//! release. `--dry-run` prints the plan and touches nothing.

#[path = "flash_bootrom.rs"]
pub mod bootrom;
#[path = "flash_sd.rs"]
pub mod sd;
#[path = "flash_tool.rs"]
pub mod tool;
#[path = "flash_usb.rs"]
pub mod usb;

use crate::build::{self, value, Board};
use crate::image;
use anyhow::{bail, Context, Result};
use std::fmt;
use std::path::{Path, PathBuf};

const USAGE: &str = "usage: cargo xtask flash [--media sdcard|emmc] [--kdimg PATH] [--dry-run]\n       cargo xtask flash --sd DEVICE [--image PATH] [--dry-run]\n       cargo xtask flash --loader FILE [--dry-run]";

/// The medium `k230-flash` writes on the board.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Media {
    /// The SD card slot.
    SdCard,
    /// On-board eMMC.
    Emmc,
}

impl Media {
    fn parse(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "sdcard" | "sd" => Ok(Media::SdCard),
            "emmc" => Ok(Media::Emmc),
            other => bail!("unknown medium `{other}` (sdcard or emmc)"),
        }
    }

    /// The name `k230-flash -m` takes.
    pub fn tool_name(self) -> &'static str {
        match self {
            Media::SdCard => "SDCARD",
            Media::Emmc => "EMMC",
        }
    }
}

/// What `flash` will do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Write a `.kdimg` through USB boot mode with `k230-flash`.
    Usb {
        /// The image.
        kdimg: PathBuf,
        /// Where on the board.
        media: Media,
    },
    /// Write files at offsets of a local device or image file.
    Sd {
        /// The card.
        device: PathBuf,
        /// `(offset, file)` pairs.
        writes: Vec<(u64, PathBuf)>,
    },
    /// Upload a program to SRAM through the boot ROM and start it.
    Sram {
        /// The program.
        program: PathBuf,
    },
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Plan::Usb { kdimg, media } => {
                writeln!(
                    f,
                    "1. find the K230 boot ROM on USB ({:04x}:{:04x}) and greet it (GET_CPU_INFO)",
                    bootrom::VID,
                    bootrom::PID
                )?;
                writeln!(
                    f,
                    "2. make sure {} is installed in {}",
                    tool::PACKAGE,
                    tool::venv().display()
                )?;
                write!(
                    f,
                    "3. {} -m {} {}",
                    tool::executable().display(),
                    media.tool_name(),
                    kdimg.display()
                )
            }
            Plan::Sd { device, writes } => {
                for (i, (offset, file)) in writes.iter().enumerate() {
                    writeln!(f, "{}. write {} at byte {offset:#x} of {}", i + 1, file.display(), device.display())?;
                }
                write!(f, "{}. sync", writes.len() + 1)
            }
            Plan::Sram { program } => write!(
                f,
                "1. greet the boot ROM\n2. SET_DATA_ADDRESS {:#x}, send {} in {}-byte bulk chunks\n3. greet again, PROG_START {:#x}",
                bootrom::LOADER_ADDR,
                program.display(),
                bootrom::CHUNK,
                bootrom::LOADER_ADDR
            ),
        }
    }
}

/// Works out the plan from the arguments; `images` is where `cargo xtask image` put its output.
pub fn plan(args: &[String], images: &Path) -> Result<(Plan, bool)> {
    let mut dry_run = false;
    let mut media = Media::SdCard;
    let mut kdimg = None;
    let mut sd = None;
    let mut image_path = None;
    let mut loader = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--dry-run" => dry_run = true,
            "--media" => media = Media::parse(value(&mut it, "--media")?)?,
            "--kdimg" => kdimg = Some(PathBuf::from(value(&mut it, "--kdimg")?)),
            "--sd" => sd = Some(PathBuf::from(value(&mut it, "--sd")?)),
            "--image" => image_path = Some(PathBuf::from(value(&mut it, "--image")?)),
            "--loader" => loader = Some(PathBuf::from(value(&mut it, "--loader")?)),
            other => bail!("unknown argument `{other}`\n{USAGE}"),
        }
    }
    let need = |p: PathBuf| -> Result<PathBuf> {
        if p.exists() {
            Ok(p)
        } else {
            bail!(
                "{} does not exist: run `cargo xtask image` first (or name the file)",
                p.display()
            )
        }
    };
    let plan = match (sd, loader) {
        (Some(_), Some(_)) => bail!("--sd and --loader do different things; pick one\n{USAGE}"),
        (None, Some(program)) => Plan::Sram {
            program: need(program)?,
        },
        (Some(device), None) => {
            let card = images.join(image::SDCARD_FILE);
            let writes = match image_path {
                Some(p) => vec![(0, need(p)?)],
                None if card.exists() => vec![(0, card)],
                None => vec![(image::sd::RTT, need(images.join(image::RTT_FILE))?)],
            };
            Plan::Sd { device, writes }
        }
        (None, None) => Plan::Usb {
            kdimg: need(kdimg.unwrap_or_else(|| images.join(image::KDIMG_FILE)))?,
            media,
        },
    };
    Ok((plan, dry_run))
}

/// Runs the task.
pub fn run(args: &[String]) -> Result<()> {
    build::exit_on_error(run_flash(args))
}

fn run_flash(args: &[String]) -> Result<()> {
    let (plan, dry_run) = plan(args, &build::output_dir(Board::K230))?;
    println!("plan:\n{plan}");
    if dry_run {
        println!("(dry run: nothing written)");
        return Ok(());
    }
    match plan {
        Plan::Usb { kdimg, media } => flash_usb(&kdimg, media),
        Plan::Sd { device, writes } => {
            sd::write_at(&device, &writes)?;
            println!("{} written", device.display());
            Ok(())
        }
        Plan::Sram { program } => {
            let bytes = std::fs::read(&program)
                .with_context(|| format!("reading {}", program.display()))?;
            let mut link = find_board()?;
            let pb = build::byte_bar(bytes.len() as u64, "boot ROM upload");
            let done = bootrom::run_program(&mut link, &bytes, |n| pb.set_position(n as u64));
            pb.finish_and_clear();
            done?;
            println!(
                "{} started at {:#x}",
                program.display(),
                bootrom::LOADER_ADDR
            );
            Ok(())
        }
    }
}

fn find_board() -> Result<usb::UsbLink> {
    let Some(mut link) = usb::open_boot_rom().map_err(|e| anyhow::anyhow!("{e}"))? else {
        bail!(
            "no K230 in USB boot mode found (USB {:04x}:{:04x}). Hold the BOOT button while \
             connecting the board's USB-C port to this machine, then run this again.",
            bootrom::VID,
            bootrom::PID
        );
    };
    let info = bootrom::greet(&mut link)?;
    println!("found {info:?} at {}", link.location);
    Ok(link)
}

fn flash_usb(kdimg: &Path, media: Media) -> Result<()> {
    // Greeting only; the device is released before k230-flash opens it.
    drop(find_board()?);
    let exe = tool::ensure_installed()?;
    let status = std::process::Command::new(&exe)
        .args(["-m", media.tool_name()])
        .arg(kdimg)
        .status()
        .with_context(|| format!("running {}", exe.display()))?;
    if !status.success() {
        bail!("{} failed ({status})", tool::PACKAGE);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn plans_follow_the_arguments_and_the_files_present() {
        let dir = std::env::temp_dir().join(format!("xtask-flash-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // Nothing built yet: a clear error, not a plan.
        let err = plan(&args(&[]), &dir).unwrap_err().to_string();
        assert!(err.contains("cargo xtask image"), "{err}");

        for f in [image::KDIMG_FILE, image::RTT_FILE] {
            std::fs::write(dir.join(f), b"x").unwrap();
        }
        let (p, dry) = plan(&args(&["--dry-run", "--media", "emmc"]), &dir).unwrap();
        assert!(dry);
        assert_eq!(
            p,
            Plan::Usb {
                kdimg: dir.join(image::KDIMG_FILE),
                media: Media::Emmc
            }
        );
        assert!(p.to_string().contains("-m EMMC"));

        let (p, _) = plan(&args(&["--sd", "/dev/sdz"]), &dir).unwrap();
        assert_eq!(
            p,
            Plan::Sd {
                device: "/dev/sdz".into(),
                writes: vec![(10 << 20, dir.join(image::RTT_FILE))]
            }
        );
        std::fs::write(dir.join(image::SDCARD_FILE), b"x").unwrap();
        let (p, _) = plan(&args(&["--sd", "/dev/sdz"]), &dir).unwrap();
        assert!(p.to_string().contains("sdcard.img at byte 0x0"), "{p}");

        assert!(plan(&args(&["--sd", "a", "--loader", "b"]), &dir).is_err());
        assert!(plan(&args(&["--media", "floppy"]), &dir).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
