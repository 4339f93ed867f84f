//! `cargo xtask image`: the K230 boot payloads (options: [`Args`], `cargo xtask image --help`).
//!
//! - `rtt_system.bin`: what the vendor U-Boot boots on the big core from the RT-Smart slot: the
//!   firmware's raw binary, gzip'd, in a legacy multi-file uImage named `rtt` (load and entry
//!   at the firmware's load address), behind the 528-byte K230 firmware header;
//! - `k230-net-rtt.kdimg`: that payload as the `rtt` partition at 10 MiB, for `k230-flash`;
//! - `sdcard.img` (with `--base-image`): a whole card: the vendor release image with our payload
//!   in the slot its U-Boot boots the big core from (fixed offsets or the TOC's A/B slots, see
//!   [`sd`]), every other byte kept.
//!
//! A firmware that reaches below [`k230_hal::boot::IMAGE_BASE`], where the boot chain writes
//! before starting it, is refused ([`check_k230_placement`]).

#[path = "image_k230.rs"]
pub mod k230;
#[path = "image_kdimg.rs"]
pub mod kdimg;
#[path = "image_sd.rs"]
pub mod sd;
#[path = "image_toc.rs"]
pub mod toc;
#[path = "image_uimage.rs"]
pub mod uimage;

use crate::build::{self, elf, Board, BuildOptions};
use anyhow::{bail, Context, Result};
use flate2::{write::GzEncoder, Compression};
use sha2::{Digest, Sha256};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// File name of the RT-Smart slot payload.
pub const RTT_FILE: &str = "rtt_system.bin";
/// File name of the `.kdimg`.
pub const KDIMG_FILE: &str = "k230-net-rtt.kdimg";
/// File name of the whole-card image.
pub const SDCARD_FILE: &str = "sdcard.img";

/// The RT-Smart slot payload for a firmware raw image.
pub fn rtt_payload(raw: &elf::RawImage) -> Result<Vec<u8>> {
    let load = u32::try_from(raw.load_addr).context("load address above 4 GiB")?;
    let entry = u32::try_from(raw.entry).context("entry point above 4 GiB")?;
    let pb = build::byte_bar(raw.bytes.len() as u64, "gzip");
    let mut gz = GzEncoder::new(Vec::new(), Compression::best());
    for chunk in raw.bytes.chunks(64 << 10) {
        gz.write_all(chunk)?;
        pb.inc(chunk.len() as u64);
    }
    pb.finish_and_clear();
    let gz = gz.finish()?;
    let header = uimage::Header {
        name: "rtt".into(),
        load,
        entry,
        time: 0,
        os: uimage::OS_OPENSBI,
        arch: uimage::ARCH_RISCV,
        comp: uimage::COMP_GZIP,
    };
    Ok(k230::wrap(&uimage::multi(&header, &[&gz])?))
}

/// Refuses a K230 firmware that reaches into what the vendor boot chain writes or owns below
/// [`k230_hal::boot::IMAGE_BASE`] (it would be overwritten before it runs), or whose entry is
/// not its load address (U-Boot starts the big core at the load address).
pub fn check_k230_placement(elf_bytes: &[u8]) -> Result<()> {
    let spans = elf::footprint(elf_bytes)?;
    let mut problems = Vec::new();
    for span in &spans {
        for r in k230_hal::boot::overlaps(span.clone()) {
            problems.push(format!(
                "{:#x}..{:#x} overlaps {:#x}..{:#x} ({})",
                span.start, span.end, r.range.start, r.range.end, r.owner
            ));
        }
    }
    if !problems.is_empty() {
        bail!(
            "the firmware is placed where the vendor boot chain writes before it starts (link it \
             at {:#x} or above):\n  {}",
            k230_hal::boot::IMAGE_BASE,
            problems.join("\n  ")
        );
    }
    let raw = elf::raw_image(elf_bytes)?;
    if raw.entry != raw.load_addr {
        bail!(
            "the firmware's entry {:#x} is not its load address {:#x}: U-Boot starts the big \
             core at the load address",
            raw.entry,
            raw.load_addr
        );
    }
    Ok(())
}

/// The `.kdimg` holding `rtt` in the RT-Smart slot.
pub fn rtt_kdimg(rtt: &[u8]) -> Result<Vec<u8>> {
    kdimg::build(
        &kdimg::Info {
            image: "k230-net rtt",
            chip: "K230",
            board: "k230",
        },
        &[kdimg::Partition {
            name: "rtt",
            offset: sd::RTT,
            max_size: sd::RTT_SIZE,
            content: rtt,
        }],
    )
}

/// Makes the K230 boot payloads.
///
/// `rtt_system.bin` (the firmware for the vendor U-Boot's RT-Smart
/// slot), `k230-net-rtt.kdimg` (for `k230-flash`) and, with `--base-image`, a whole `sdcard.img`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    build: BuildOptions,
    /// Use this firmware ELF instead of building one.
    #[arg(long, value_name = "FIRMWARE.elf")]
    elf: Option<PathBuf>,
    /// Output directory (default: `<target>/firmware/k230`).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// A CanMV-K230 release image (`.img` or `.img.gz`): the SD image is this image with our
    /// payload in the slot its U-Boot boots, every other byte kept.
    #[arg(long, value_name = "CANMV.img[.gz]")]
    base_image: Option<PathBuf>,
}

/// Runs the task.
pub fn run(args: Args) -> Result<()> {
    build::exit_on_error(run_image(args))
}

/// Builds the K230 release firmware and its images into the default output directory (what
/// `cargo xtask image` does with no arguments; `flash` calls it when an image is missing).
pub fn build_default() -> Result<()> {
    run_image(Args {
        build: BuildOptions {
            board: Board::K230,
            release: true,
            features: Vec::new(),
            board_variant: None,
        },
        elf: None,
        out: None,
        base_image: None,
    })
}

fn run_image(args: Args) -> Result<()> {
    if args.build.board != Board::K230 {
        bail!("boot images are for the K230 (--board k230); QEMU boots the ELF directly");
    }
    let elf_bytes = match &args.elf {
        Some(path) => std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
        None => build::build_firmware(&args.build)?.elf,
    };
    check_k230_placement(&elf_bytes)?;
    let raw = elf::raw_image(&elf_bytes)?;
    let out = args.out.unwrap_or_else(|| build::output_dir(Board::K230));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;

    let rtt = rtt_payload(&raw)?;
    write_reported(&out.join(RTT_FILE), &rtt)?;
    write_reported(&out.join(KDIMG_FILE), &rtt_kdimg(&rtt)?)?;
    println!(
        "  firmware {} bytes at {:#x}, entry {:#x}",
        raw.bytes.len(),
        raw.load_addr,
        raw.entry
    );

    if let Some(base) = &args.base_image {
        let card = out.join(SDCARD_FILE);
        let done = compose_card(base, &rtt, &card)?;
        let layout = match done.plan.layout {
            sd::Layout::Fixed => "fixed offsets, no TOC".to_string(),
            sd::Layout::Toc(slot) => {
                format!("TOC at {:#x}, U-Boot boots slot {slot:?}", toc::OFFSET)
            }
        };
        let slot = &done.plan.slot;
        println!(
            "{}: {} bytes; base image: {layout}; payload in `{}` at {:#x} ({} bytes, {} the \
             vendor firmware there); every other byte as in the base image",
            card.display(),
            done.len,
            slot.name,
            slot.offset,
            slot.size,
            if done.replaced_rtt { "replacing" } else { "no" }
        );
    }
    Ok(())
}

fn write_reported(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))?;
    println!(
        "{}: {} bytes, sha256 {:x}",
        path.display(),
        bytes.len(),
        Sha256::digest(bytes)
    );
    Ok(())
}

/// Opens a base image, gunzipping `*.gz` on the fly.
fn open_base(path: &Path) -> Result<(Box<dyn Read>, u64)> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("opening the base image {}", path.display()))?;
    let len = file.metadata()?.len();
    let reader: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::GzDecoder::new(std::io::BufReader::new(file)))
    } else {
        Box::new(std::io::BufReader::new(file))
    };
    Ok((reader, len))
}

fn compose_card(base: &Path, rtt: &[u8], card: &Path) -> Result<sd::Composed> {
    let (mut reader, len) = open_base(base)?;
    let file =
        std::fs::File::create(card).with_context(|| format!("creating {}", card.display()))?;
    let mut writer = BufWriter::new(file);
    let pb = build::byte_bar(len, "sdcard.img");
    let done = sd::compose(&mut reader, rtt, &mut writer, |n| {
        pb.set_position(n.min(len))
    });
    pb.finish_and_clear();
    let done = done?;
    writer.flush()?;
    Ok(done)
}
