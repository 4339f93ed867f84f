//! `cargo xtask flash`: put the firmware on a board (options: [`Args`], `cargo xtask flash --help`).
//!
//! USB: the board must be in USB boot mode (BOOT button held while plugging in); the boot ROM is
//! greeted first (see [`bootrom`]) so a missing board gives a clear message, then the official
//! `k230-flash` tool (installed into `.venv/` on first use) writes `k230-net-rtt.kdimg` (the
//! RT-Smart slot at 10 MiB) to the board's SD card or eMMC through its loader.
//!
//! SD: writes `sdcard.img` (from `cargo xtask image --base-image`) over the whole card if it
//! exists, else `rtt_system.bin` into the slot the U-Boot of a card that already holds a CanMV
//! release boots the big core from (read from the card: its TOC, or the fixed RT-Smart slot;
//! see `image_sd.rs`). `--dry-run` prints the plan and touches nothing.

#[path = "flash_bootrom.rs"]
pub mod bootrom;
#[path = "flash_sd.rs"]
pub mod sd;
#[path = "flash_tool.rs"]
pub mod tool;
#[path = "flash_usb.rs"]
pub mod usb;

use crate::build::{self, Board};
use crate::image;
use anyhow::{bail, Context, Result};
use std::fmt;
use std::path::{Path, PathBuf};

/// Puts the firmware on a board.
///
/// Through the USB boot ROM with `k230-flash` (the default, the
/// board in USB boot mode), onto an SD card in this machine (`--sd`), or into SRAM through the
/// boot ROM (`--loader`).
#[derive(Debug, clap::Args)]
#[command(
    override_usage = "cargo xtask flash [--media sdcard|emmc] [--kdimg PATH] [--dry-run]\n       \
                      cargo xtask flash --sd DEVICE [--image PATH] [--dry-run]\n       \
                      cargo xtask flash --loader FILE [--dry-run]"
)]
pub struct Args {
    /// Print the plan and write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Where `k230-flash` writes on the board (USB boot mode).
    #[arg(long, value_enum, ignore_case = true, default_value_t = Media::SdCard)]
    media: Media,
    /// The `.kdimg` to write (USB boot mode; default: the one `cargo xtask image` made).
    #[arg(long, value_name = "PATH")]
    kdimg: Option<PathBuf>,
    /// Write an SD card (block device) or card image file in this machine instead.
    #[arg(long, value_name = "DEVICE", conflicts_with = "loader")]
    sd: Option<PathBuf>,
    /// The whole-card image to write with `--sd` (default: `sdcard.img`, else `rtt_system.bin`
    /// into the RT-Smart slot).
    #[arg(long, value_name = "PATH", requires = "sd")]
    image: Option<PathBuf>,
    /// Upload FILE to SRAM through the boot ROM and start it.
    #[arg(long, value_name = "FILE")]
    loader: Option<PathBuf>,
}

/// The medium `k230-flash` writes on the board.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Media {
    /// The SD card slot.
    #[value(name = "sdcard", alias = "sd")]
    SdCard,
    /// On-board eMMC.
    Emmc,
}

impl Media {
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
    /// Write a payload into the slot a local card's U-Boot boots the big core from.
    SdSlot {
        /// The card.
        device: PathBuf,
        /// `rtt_system.bin`.
        payload: PathBuf,
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
    /// Build the firmware and its images first (`cargo xtask image`: one of them is missing),
    /// then do the rest.
    BuildThen(Box<Plan>),
}

impl Plan {
    /// The plan's steps, in order.
    fn steps(&self) -> Vec<String> {
        match self {
            Plan::Usb { kdimg, media } => vec![
                format!(
                    "find the K230 boot ROM on USB ({:04x}:{:04x}) and greet it (GET_CPU_INFO)",
                    bootrom::VID,
                    bootrom::PID
                ),
                format!(
                    "make sure {} is installed in {}",
                    tool::PACKAGE,
                    tool::venv().display()
                ),
                format!(
                    "{} -m {} {}",
                    tool::executable().display(),
                    media.tool_name(),
                    kdimg.display()
                ),
            ],
            Plan::SdSlot { device, payload } => vec![
                format!(
                    "read the layout of {} (a TOC at {:#x}: the slot its U-Boot boots the big \
                     core from; no TOC: the RT-Smart slot at {:#x})",
                    device.display(),
                    image::toc::OFFSET,
                    image::sd::RTT
                ),
                format!("write {} at the start of that slot", payload.display()),
                "sync".into(),
            ],
            Plan::Sd { device, writes } => {
                let mut steps: Vec<String> = writes
                    .iter()
                    .map(|(offset, file)| {
                        format!(
                            "write {} at byte {offset:#x} of {}",
                            file.display(),
                            device.display()
                        )
                    })
                    .collect();
                steps.push("sync".into());
                steps
            }
            Plan::Sram { program } => vec![
                "greet the boot ROM".into(),
                format!(
                    "SET_DATA_ADDRESS {:#x}, send {} in {}-byte bulk chunks",
                    bootrom::LOADER_ADDR,
                    program.display(),
                    bootrom::CHUNK
                ),
                format!("greet again, PROG_START {:#x}", bootrom::LOADER_ADDR),
            ],
            Plan::BuildThen(rest) => {
                let mut steps =
                    vec!["build the K230 firmware and its images (cargo xtask image)".to_string()];
                steps.extend(rest.steps());
                steps
            }
        }
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let steps = self.steps();
        for (i, step) in steps.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}. {step}", i + 1)?;
        }
        Ok(())
    }
}

/// Works out the plan from the arguments; `images` is where `cargo xtask image` puts its
/// output. A file the user names must exist; a missing default image is built first.
pub fn plan(args: &Args, images: &Path) -> Result<Plan> {
    let need = |p: &Path| -> Result<PathBuf> {
        if p.exists() {
            Ok(p.to_path_buf())
        } else {
            bail!("{} does not exist", p.display())
        }
    };
    let mut build = false;
    let mut default = |p: PathBuf| -> PathBuf {
        build |= !p.exists();
        p
    };
    let plan = match (&args.sd, &args.loader) {
        (Some(_), Some(_)) => bail!("--sd and --loader do different things; pick one"),
        (None, Some(program)) => Plan::Sram {
            program: need(program)?,
        },
        (Some(device), None) => {
            let card = images.join(image::SDCARD_FILE);
            let whole = match &args.image {
                Some(p) => Some(need(p)?),
                None => card.exists().then_some(card),
            };
            match whole {
                Some(image) => Plan::Sd {
                    device: device.clone(),
                    writes: vec![(0, image)],
                },
                None => Plan::SdSlot {
                    device: device.clone(),
                    payload: default(images.join(image::RTT_FILE)),
                },
            }
        }
        (None, None) => Plan::Usb {
            kdimg: match &args.kdimg {
                Some(p) => need(p)?,
                None => default(images.join(image::KDIMG_FILE)),
            },
            media: args.media,
        },
    };
    Ok(if build {
        Plan::BuildThen(Box::new(plan))
    } else {
        plan
    })
}

/// Runs the task.
pub fn run(args: &Args) -> Result<()> {
    build::exit_on_error(run_flash(args))
}

fn run_flash(args: &Args) -> Result<()> {
    let plan = plan(args, &build::output_dir(Board::K230))?;
    println!("plan:\n{plan}");
    if args.dry_run {
        println!("(dry run: nothing written)");
        return Ok(());
    }
    execute(plan)
}

fn execute(plan: Plan) -> Result<()> {
    match plan {
        Plan::BuildThen(rest) => {
            image::build_default()?;
            execute(*rest)
        }
        Plan::Usb { kdimg, media } => flash_usb(&kdimg, media),
        Plan::SdSlot { device, payload } => {
            let slot = sd::write_to_boot_slot(&device, &payload)?;
            println!(
                "{} written: {} in `{}` at {:#x}",
                device.display(),
                payload.display(),
                slot.name,
                slot.offset
            );
            Ok(())
        }
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
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        flash: Args,
    }

    fn args(list: &[&str]) -> Args {
        Cli::try_parse_from(std::iter::once("flash").chain(list.iter().copied()))
            .unwrap()
            .flash
    }

    fn refused(list: &[&str]) -> bool {
        Cli::try_parse_from(std::iter::once("flash").chain(list.iter().copied())).is_err()
    }

    #[test]
    fn plans_follow_the_arguments_and_the_files_present() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        // Nothing built yet: the plan builds the images first.
        let p = plan(&args(&["--dry-run"]), dir).unwrap();
        assert_eq!(
            p,
            Plan::BuildThen(Box::new(Plan::Usb {
                kdimg: dir.join(image::KDIMG_FILE),
                media: Media::SdCard
            }))
        );
        let text = p.to_string();
        assert!(text.starts_with("1. build the K230 firmware and its images (cargo xtask image)\n2. find the K230 boot ROM"), "{text}");
        assert!(text.contains("\n4. ") && !text.contains("\n5. "), "{text}");
        // A file the user names must be there.
        let err = plan(&args(&["--kdimg", "/nonexistent.kdimg"]), dir).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");

        for f in [image::KDIMG_FILE, image::RTT_FILE] {
            std::fs::write(dir.join(f), b"x").unwrap();
        }
        let a = args(&["--dry-run", "--media", "emmc"]);
        assert!(a.dry_run);
        let p = plan(&a, dir).unwrap();
        assert_eq!(
            p,
            Plan::Usb {
                kdimg: dir.join(image::KDIMG_FILE),
                media: Media::Emmc
            }
        );
        assert!(p.to_string().contains("-m EMMC"));
        assert_eq!(args(&["--media", "SD"]).media, Media::SdCard);

        let p = plan(&args(&["--sd", "/dev/sdz"]), dir).unwrap();
        assert_eq!(
            p,
            Plan::SdSlot {
                device: "/dev/sdz".into(),
                payload: dir.join(image::RTT_FILE)
            }
        );
        assert!(p.to_string().contains("the slot its U-Boot boots"), "{p}");
        std::fs::write(dir.join(image::SDCARD_FILE), b"x").unwrap();
        let p = plan(&args(&["--sd", "/dev/sdz"]), dir).unwrap();
        assert!(p.to_string().contains("sdcard.img at byte 0x0"), "{p}");

        assert!(refused(&["--sd", "a", "--loader", "b"]));
        assert!(refused(&["--media", "floppy"]));
        assert!(refused(&["--sd"]));
    }
}
