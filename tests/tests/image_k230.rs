//! `cargo xtask image` output, checked by readers written here from the format facts, not by the
//! writer's code: the K230 firmware header (magic, length, SHA-256), the legacy uImage (header
//! and data CRC-32, multi-file table, gzip'd firmware that `gzip` itself unpacks to the ELF's
//! loadable bytes), the SD card composed from a (fake) vendor image, U-Boot's own `dumpimage`
//! when installed, and the `.kdimg` as the official `k230-flash` package parses it.
//!
//! Facts: K230 header per kendryte `firmware_gen.py` (magic "K230", u32 LE length, u32 LE crypto
//! type 0, SHA-256, 484 zero bytes, then a 4-byte version word); uImage per U-Boot
//! `include/image.h` (big-endian, magic 0x27051956, CRC-32 of the 64-byte header with its CRC
//! field zeroed, CRC-32 of the data; multi images start with a zero-terminated size table);
//! SD layout per canmv_k230 `genimage-sdcard.cfg` (SPL 1 MiB, U-Boot 2 MiB, RT-Smart slot at
//! 10 MiB of 20 MiB, FAT 50 MiB; no TOC, so zeros at 0xe0000); what U-Boot writes below
//! 0x20000 per k230-hal `boot.rs`.
//!
//! Needs the `riscv64gc-unknown-none-elf` target and `gzip`; the `.kdimg` test needs
//! `python3 -m venv` and PyPI. Without them a test prints "SKIPPED" and passes, unless
//! `K230_REQUIRE_ROOT_TESTS=1`, when it fails.

use integration_tests::workspace_root;
use k230_testkit::require::{skip as skip_unless_required, Need};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use integration_tests::qemu_board::{Board, Console, Load, Qemu};

const K230_HEADER: usize = 528;
const MIB: usize = 1 << 20;
const SPL: usize = MIB;
const UBOOT: usize = 2 * MIB;
const RTT: usize = 10 * MIB;
const RTT_END: usize = 30 * MIB;
const FAT: usize = 50 * MIB;
/// Size of the fake vendor card image.
const BASE_LEN: usize = 52 * MIB;

/// Skips (or, with K230_REQUIRE_ROOT_TESTS=1, fails) for a missing prerequisite.
fn skip(why: &str) {
    skip_unless_required(Need::Root, "image_k230", why);
}

fn tmp() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("k230-image")
}

/// What `cargo xtask image --base-image` produced, with the ELF it was built from.
struct Images {
    dir: PathBuf,
    elf: PathBuf,
}

/// A fake CanMV release card: K230 headers at the SPL and U-Boot offsets, an old RT-Smart image,
/// a marker in the FAT partition.
fn fake_base(path: &Path) {
    let mut img = vec![0x5Au8; BASE_LEN];
    img[0xe_0000..0xe_0400].fill(0);
    for at in [SPL, UBOOT, RTT] {
        img[at..at + 4].copy_from_slice(b"K230");
    }
    img[FAT..FAT + 9].copy_from_slice(b"FAT-START");
    std::fs::write(path, img).expect("writing the fake base image");
}

/// Runs `cargo xtask` with `args` in the tests' own target directory (the outer cargo holds the
/// main one).
fn xtask(args: &[&std::ffi::OsStr]) -> std::io::Result<std::process::Output> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    Command::new(cargo)
        .current_dir(workspace_root())
        .args(["run", "-q", "-p", "xtask", "--"])
        .args(args)
        .env("CARGO_TARGET_DIR", tmp().join("target"))
        .output()
}

/// Runs `cargo xtask image` once per test binary (in a target directory of its own: the outer
/// cargo holds the main one).
fn images() -> Result<&'static Images, String> {
    static IMAGES: OnceLock<Result<Images, String>> = OnceLock::new();
    IMAGES
        .get_or_init(|| {
            let dir = tmp().join("out");
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            let base = tmp().join("base.img");
            fake_base(&base);
            let target_dir = tmp().join("target");
            let out = xtask(&[
                "image".as_ref(),
                "--out".as_ref(),
                dir.as_ref(),
                "--base-image".as_ref(),
                base.as_ref(),
            ])
            .map_err(|e| format!("running cargo: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "cargo xtask image failed:\n{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            println!("{}", String::from_utf8_lossy(&out.stdout));
            // A copy: other tests build other boards into the same target directory.
            let built = target_dir
                .join("riscv64gc-unknown-none-elf")
                .join("release")
                .join("firmware");
            let elf = dir.join("firmware-k230.elf");
            std::fs::copy(&built, &elf).map_err(|e| format!("copying {}: {e}", built.display()))?;
            Ok(Images { dir, elf })
        })
        .as_ref()
        .map_err(Clone::clone)
}

fn images_or_skip() -> Option<&'static Images> {
    match images() {
        Ok(i) => Some(i),
        Err(e) if e.contains("target may not be installed") => {
            skip("riscv64gc-unknown-none-elf not installed");
            None
        }
        Err(e) => panic!("{e}"),
    }
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

/// CRC-32/IEEE, bit by bit (reflected, polynomial 0xEDB88320).
fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// The loadable bytes of an ELF64 little-endian file from its lowest `PT_LOAD` physical
/// address, and its entry point.
fn elf_load_image(elf: &[u8]) -> (u64, u64, Vec<u8>) {
    assert_eq!(&elf[..4], b"\x7fELF");
    assert_eq!(elf[4], 2, "ELF64");
    let u64_at = |at: usize| u64::from_le_bytes(elf[at..at + 8].try_into().unwrap());
    let u16_at = |at: usize| u16::from_le_bytes(elf[at..at + 2].try_into().unwrap());
    let entry = u64_at(24);
    let phoff = u64_at(32) as usize;
    let (phentsize, phnum) = (u16_at(54) as usize, u16_at(56) as usize);
    let mut loads = Vec::new();
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        let p_type = le32(elf, ph);
        let (offset, paddr, filesz) = (u64_at(ph + 8), u64_at(ph + 24), u64_at(ph + 32));
        if p_type == 1 && filesz > 0 {
            loads.push((paddr, &elf[offset as usize..(offset + filesz) as usize]));
        }
    }
    let base = loads.iter().map(|(a, _)| *a).min().expect("PT_LOAD");
    let end = loads.iter().map(|(a, d)| a + d.len() as u64).max().unwrap();
    let mut image = vec![0u8; (end - base) as usize];
    for (addr, data) in loads {
        let at = (addr - base) as usize;
        image[at..at + data.len()].copy_from_slice(data);
    }
    (base, entry, image)
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut child = Command::new("gzip")
        .arg("-dc")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("gzip (Debian package gzip)");
    let mut stdin = child.stdin.take().unwrap();
    let input = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success(), "gzip -dc rejected the payload");
    out.stdout
}

#[test]
fn rtt_payload_has_valid_k230_header_and_uimage() {
    let Some(images) = images_or_skip() else {
        return;
    };
    let rtt = std::fs::read(images.dir.join("rtt_system.bin")).unwrap();

    // K230 firmware header.
    assert_eq!(&rtt[0..4], b"K230");
    assert_eq!(le32(&rtt, 0), 0x3033_324B);
    let body = &rtt[K230_HEADER..];
    assert_eq!(le32(&rtt, 4) as usize, body.len(), "length field");
    assert_eq!(le32(&rtt, 8), 0, "crypto type: none");
    assert_eq!(&rtt[12..44], Sha256::digest(body).as_slice(), "SHA-256");
    assert!(rtt[44..K230_HEADER].iter().all(|&b| b == 0));
    assert_eq!(&body[..4], &[0, 0, 0, 0], "version word");

    // Legacy uImage.
    let uimg = &body[4..];
    assert_eq!(be32(uimg, 0), 0x2705_1956, "IH_MAGIC");
    let mut header = uimg[..64].to_vec();
    header[4..8].fill(0);
    assert_eq!(be32(uimg, 4), crc32(&header), "header CRC");
    let data = &uimg[64..];
    assert_eq!(be32(uimg, 12) as usize, data.len(), "ih_size");
    assert_eq!(be32(uimg, 24), crc32(data), "data CRC");
    let (os, arch, kind, comp) = (uimg[28], uimg[29], uimg[30], uimg[31]);
    assert_eq!(
        (os, arch, kind, comp),
        (27, 26, 4, 1),
        "opensbi, riscv, multi, gzip"
    );
    assert_eq!(&uimg[32..36], b"rtt\0", "name");

    // Multi-file table: one file, then the terminator.
    let gz_len = be32(data, 0) as usize;
    assert_eq!(be32(data, 4), 0);
    assert_eq!(8 + gz_len, data.len());
    let gz = &data[8..];
    assert_eq!(&gz[..3], &[0x1f, 0x8b, 8], "gzip, deflate");

    // The payload is the ELF's loadable bytes, loaded and entered where the ELF says.
    let elf = std::fs::read(&images.elf).unwrap();
    let (load, entry, expected) = elf_load_image(&elf);
    assert_eq!(u64::from(be32(uimg, 16)), load, "ih_load");
    assert_eq!(u64::from(be32(uimg, 20)), entry, "ih_ep");
    assert_eq!(
        load, 0x2_0000,
        "loaded where RT-Smart runs, above what U-Boot writes (k230-hal boot.rs)"
    );
    assert_eq!(gunzip(gz), expected);
}

/// Whether `code` holds a 32-bit instruction `w` with `w & mask == want` at any 2-byte boundary
/// (compressed instructions leave 4-byte ones 2-byte aligned).
fn has_instruction(code: &[u8], mask: u32, want: u32) -> bool {
    (0..code.len().saturating_sub(3))
        .step_by(2)
        .any(|at| le32(code, at) & mask == want)
}

/// The K230 build switches the caches on and maintains DMA buffers with the instructions the
/// vendor's own K230 code uses, encoded as there (canmv-k230/rtsmart `bsp/maix3/c908/cache.c`:
/// `dcache.cva a6` 0x0257800b, `dcache.iva a6` 0x0268000b; `opcode.h`: `sync.s` 0x0190000b;
/// `startup_gcc.S`: `csrw mhcr` is CSR 0x7c1). The register field (rs1, bits 15-19) may differ.
#[test]
fn k230_image_uses_the_vendors_cache_instructions() {
    let Some(images) = images_or_skip() else {
        return;
    };
    let elf = std::fs::read(&images.elf).unwrap();
    let (_, _, code) = elf_load_image(&elf);
    let any_rs1 = !(0x1f << 15);
    assert!(
        has_instruction(&code, any_rs1, 0x0257800b & any_rs1),
        "dcache.cva"
    );
    assert!(
        has_instruction(&code, any_rs1, 0x0268000b & any_rs1),
        "dcache.iva"
    );
    assert!(has_instruction(&code, u32::MAX, 0x0190000b), "sync.s");
    // csrw 0x7c1, rs1 (csrrw x0): CSR in bits 20-31, funct3 1, rd 0, opcode SYSTEM.
    assert!(
        has_instruction(&code, 0xfff0_7fff, 0x7c10_1073),
        "csrw mhcr"
    );
}

#[test]
fn uboot_tools_accept_the_uimage() {
    if Command::new("dumpimage").arg("-V").output().is_err() {
        println!("SKIPPED (dumpimage not installed; Debian package u-boot-tools)");
        return;
    }
    let Some(images) = images_or_skip() else {
        return;
    };
    let rtt = std::fs::read(images.dir.join("rtt_system.bin")).unwrap();
    let uimage = &rtt[K230_HEADER + 4..];
    let dir = images.dir.join("dumpimage");
    std::fs::create_dir_all(&dir).unwrap();
    // U-Boot's own reader verifies the header and data CRCs and extracts file 0.
    let extract = |name: &str, bytes: &[u8]| {
        let input = dir.join(name);
        let output = dir.join(format!("{name}.0"));
        let _ = std::fs::remove_file(&output);
        std::fs::write(&input, bytes).unwrap();
        let out = Command::new("dumpimage")
            .args(["-T", "multi", "-p", "0", "-o"])
            .arg(&output)
            .arg(&input)
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| std::fs::read(&output).unwrap())
    };
    let file0 = extract("rtt.uimage", uimage).expect("dumpimage rejected the uImage");
    let gz_len = be32(uimage, 64) as usize;
    assert_eq!(file0, &uimage[72..72 + gz_len]);
    let listed = Command::new("dumpimage")
        .arg("-l")
        .arg(dir.join("rtt.uimage"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&listed.stdout);
    println!("{text}");
    assert!(text.contains("Image Name:   rtt"), "{text}");
    assert!(
        text.contains("OpenSBI Multi-File Image (gzip compressed)"),
        "{text}"
    );
    // Flipped bits in the data or the header must be caught.
    for (name, at) in [
        ("bad-data.uimage", uimage.len() - 1),
        ("bad-header.uimage", 40),
    ] {
        let mut bad = uimage.to_vec();
        bad[at] ^= 0x80;
        assert!(extract(name, &bad).is_none(), "dumpimage accepted {name}");
    }
}

#[test]
fn sd_card_keeps_vendor_boot_chain_and_replaces_rtt_slot() {
    let Some(images) = images_or_skip() else {
        return;
    };
    let card = std::fs::read(images.dir.join("sdcard.img")).unwrap();
    let base = std::fs::read(tmp().join("base.img")).unwrap();
    let rtt = std::fs::read(images.dir.join("rtt_system.bin")).unwrap();
    assert_eq!(card.len(), base.len());
    assert_eq!(
        &card[..RTT],
        &base[..RTT],
        "partition table, SPL, env, U-Boot"
    );
    assert_eq!(&card[RTT..RTT + rtt.len()], &rtt[..]);
    assert!(card[RTT + rtt.len()..RTT_END].iter().all(|&b| b == 0));
    assert_eq!(
        &card[RTT_END..],
        &base[RTT_END..],
        "after the slot, FAT partition"
    );
    assert_eq!(&card[FAT..FAT + 9], b"FAT-START");
}

/// The K230 firmware ELF moved to a wrong link address: every segment and the entry `down`
/// bytes lower (ELF64 little-endian program headers: p_vaddr at +16, p_paddr at +24).
fn relinked(elf: &[u8], down: u64) -> Vec<u8> {
    let mut out = elf.to_vec();
    let u64_at = |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap());
    let u16_at = |at: usize| u16::from_le_bytes(elf[at..at + 2].try_into().unwrap()) as usize;
    let mut lower = |at: usize| {
        let v = u64_at(&out, at) - down;
        out[at..at + 8].copy_from_slice(&v.to_le_bytes());
    };
    lower(24);
    let (phoff, phentsize, phnum) = (u64_at(elf, 32) as usize, u16_at(54), u16_at(56));
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        if le32(elf, ph) == 1 {
            lower(ph + 16);
            lower(ph + 24);
        }
    }
    out
}

/// `cargo xtask image` refuses the firmware linked at 0, where U-Boot writes its tags and
/// OpenSBI lives, and writes nothing.
#[test]
fn an_image_linked_below_0x20000_is_refused() {
    let Some(images) = images_or_skip() else {
        return;
    };
    let elf = std::fs::read(&images.elf).unwrap();
    let wrong = tmp().join("firmware-at-0.elf");
    std::fs::write(&wrong, relinked(&elf, 0x2_0000)).unwrap();
    let out_dir = tmp().join("refused");
    let _ = std::fs::remove_dir_all(&out_dir);
    let out = xtask(&[
        "image".as_ref(),
        "--elf".as_ref(),
        wrong.as_ref(),
        "--out".as_ref(),
        out_dir.as_ref(),
    ])
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "accepted: {stderr}");
    for owner in ["OpenSBI", "boot tags", "DDR-size tag"] {
        assert!(stderr.contains(owner), "{owner}: {stderr}");
    }
    assert!(!out_dir.join("rtt_system.bin").exists());
}

#[test]
fn k230_flash_parses_the_kdimg() {
    let Some(images) = images_or_skip() else {
        return;
    };
    let venv = tmp().join("venv");
    let python = venv.join("bin").join("python");
    if !python.exists() {
        let made = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .output();
        if !made.is_ok_and(|o| o.status.success()) {
            skip("python3 -m venv failed (Debian package python3-venv)");
            return;
        }
    }
    let pip = Command::new(venv.join("bin").join("pip"))
        .args(["install", "--quiet", "k230-flash"])
        .output()
        .unwrap();
    if !pip.status.success() {
        skip(&format!(
            "pip install k230-flash failed: {}",
            String::from_utf8_lossy(&pip.stderr)
        ));
        return;
    }
    let kdimg = images.dir.join("k230-net-rtt.kdimg");
    let script = r#"
import sys
from k230_flash.kdimage import KburnKdImage
img = KburnKdImage(sys.argv[1])
items = img.items()
assert items is not None, "k230-flash rejected the image"
for it in items:
    data = img.read_part_data(it)
    print(f"{it.partName} {it.partOffset} {it.partContentSize} {len(data)} {data.hex()}")
"#;
    let out = Command::new(&python)
        .arg("-c")
        .arg(script)
        .arg(&kdimg)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "k230-flash: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one partition: {stdout}");
    let fields: Vec<&str> = lines[0].split(' ').collect();
    let rtt = std::fs::read(images.dir.join("rtt_system.bin")).unwrap();
    assert_eq!(fields[0], "rtt");
    assert_eq!(fields[1].parse::<usize>().unwrap(), RTT);
    assert_eq!(fields[2].parse::<usize>().unwrap(), rtt.len());
    // What k230-flash would write: the payload, padded with 0xFF to the partition size.
    let written: Vec<u8> = (0..fields[4].len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&fields[4][i..i + 2], 16).unwrap())
        .collect();
    assert_eq!(written.len(), fields[3].parse::<usize>().unwrap());
    assert_eq!(&written[..rtt.len()], &rtt[..]);
    assert!(written[rtt.len()..].iter().all(|&b| b == 0xFF));
}

/// `cargo xtask build`'s raw binary (not the ELF) boots: QEMU `virt` loads it at RAM base and
/// starts there, and the firmware passes its self-test and answers at the MicroPython prompt.
#[test]
fn raw_binary_boots_on_qemu() {
    // After the K230 images: both build into the same target directory.
    if images_or_skip().is_none() {
        return;
    }
    if Command::new("qemu-system-riscv64")
        .arg("--version")
        .output()
        .is_err()
    {
        skip("qemu-system-riscv64 not found; apt-get install qemu-system-misc");
        return;
    }
    let target_dir = tmp().join("target");
    let out = xtask(&["build".as_ref(), "--board".as_ref(), "qemu-virt".as_ref()]).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("target may not be installed") {
        skip("riscv64gc-unknown-none-elf not installed");
        return;
    }
    assert!(out.status.success(), "cargo xtask build: {stderr}");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        report.contains("load 0x80000000, entry 0x80000000"),
        "{report}"
    );
    assert!(report.contains(".text by crate"), "{report}");
    let bin = target_dir.join("firmware/qemu-virt/firmware.bin");
    // Loaded where a boot loader puts the raw image: it runs to MicroPython's prompt and
    // evaluates what is typed.
    let mut qemu = Qemu::boot_from(
        Board::QemuVirt,
        Load::Raw {
            path: &bin,
            addr: 0x8000_0000,
        },
        Console::Pipes,
        &[],
    );
    let boot = qemu.expect(">>> ", Duration::from_secs(60));
    assert!(
        boot.contains("self-test: crc32 ok, timer ok, icmp ok -> PASS"),
        "{boot}"
    );
    qemu.send(b"print(6 * 7)\r");
    let reply = qemu.expect("\n>>> ", Duration::from_secs(20));
    assert!(reply.contains("42\n"), "{reply}");
}
