//! The table of contents (TOC) of K230 boot media from canmv v1.5 / rtos SDK v0.6 on, and which
//! A/B slot the vendor U-Boot boots.
//!
//! Facts:
//! - kendryte/k230_rtos_sdk `tools/genimage/image-hd.c` (`toc = true`, `toc-offset`,
//!   `toc_insert_data`) and `boards/*/genimage-sdcard.cfg` (TOC at 0xe0000; `ota_meta` 0x800
//!   bytes at 0xf0000; `rtt_a` 10 MiB + 20 MiB, `rtapp_a` 30 MiB + 30 MiB, `rtt_b` 60 MiB,
//!   `rtapp_b` 80 MiB, FAT from 110 MiB; `load = true` and `boot = 0x3` on the rtt slots);
//! - canmv-k230/u-boot `board/kendryte/common/k230_boot.c` (canmv-v1.5 on): 16 entries of 64
//!   bytes at 0xe0000 (`k230_toc_entry`: name[32], offset u64, size u64, load u8, boot u8,
//!   padding, load_addr u32), read until a name starting with 0 or 0xff
//!   (`k230_parse_toc`); `k230_select_boot_slot`: the `ota_meta` partition holds slot A's
//!   512-byte block at its start and slot B's at half its size (`ota_slot_meta`: magic 'OTAV'
//!   0x4f544156, version, CRC-32 over the block with the CRC zeroed); neither valid: A; one
//!   valid: that one; both: the higher version, A on a tie; `k230_load_img`: loads every entry
//!   with `load`, skipping `rtt_b`/`rtapp_b` for slot A and `rtt_a`/`rtapp_a` for slot B (and
//!   retrying the other slot if a load fails); `k230_boot_img`: boot bit 0 set and core
//!   (bits 1-2) 1 is the big core's image.

use anyhow::{bail, Result};

/// Offset of the TOC on the medium.
pub const OFFSET: u64 = 0xe_0000;
/// Entries U-Boot reads.
pub const MAX_ENTRIES: usize = 16;
/// Bytes per entry.
pub const ENTRY_LEN: usize = 64;
/// Bytes U-Boot reads.
pub const LEN: usize = MAX_ENTRIES * ENTRY_LEN;
/// Bytes of one slot's OTA meta block.
const META_LEN: usize = 512;
/// `OTA_META_MAGIC` ('OTAV').
const META_MAGIC: u32 = 0x4f54_4156;

/// One TOC entry: a partition of the medium.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Partition name.
    pub name: String,
    /// Byte offset on the medium.
    pub offset: u64,
    /// Size in bytes.
    pub size: u64,
    /// U-Boot loads it.
    pub load: bool,
    /// U-Boot's boot field: bit 0 boots it, bits 1-2 the core.
    pub boot: u8,
}

impl Entry {
    /// Whether U-Boot starts the big core (core 1) with this partition's image.
    pub fn boots_big_core(&self) -> bool {
        self.load && self.boot & 1 != 0 && (self.boot >> 1) & 3 == 1
    }

    /// Whether U-Boot loads this entry when booting `slot`.
    fn in_slot(&self, slot: BootSlot) -> bool {
        let other = match slot {
            BootSlot::A => ["rtt_b", "rtapp_b"],
            BootSlot::B => ["rtt_a", "rtapp_a"],
        };
        !other.contains(&self.name.as_str())
    }
}

/// An A/B slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootSlot {
    /// Slot A (`rtt_a`, `rtapp_a`).
    A,
    /// Slot B (`rtt_b`, `rtapp_b`).
    B,
}

/// The TOC in `bytes` (the [`LEN`] bytes at [`OFFSET`]), or `None` when there is none (its
/// first entry has no name). A TOC whose entries make no sense is an error.
pub fn parse(bytes: &[u8]) -> Result<Option<Vec<Entry>>> {
    let mut entries = Vec::new();
    for raw in bytes.chunks_exact(ENTRY_LEN).take(MAX_ENTRIES) {
        if raw[0] == 0 || raw[0] == 0xff {
            break;
        }
        let name_len = raw[..32].iter().position(|&b| b == 0).unwrap_or(32);
        let name = std::str::from_utf8(&raw[..name_len])
            .ok()
            .filter(|n| n.bytes().all(|b| b.is_ascii_graphic()));
        let Some(name) = name else {
            bail!(
                "TOC entry {} at {:#x} has no readable name: not a K230 TOC?",
                entries.len(),
                OFFSET + (entries.len() * ENTRY_LEN) as u64
            );
        };
        let u64_at = |at: usize| u64::from_le_bytes(raw[at..at + 8].try_into().expect("8 bytes"));
        entries.push(Entry {
            name: name.to_string(),
            offset: u64_at(32),
            size: u64_at(40),
            load: raw[48] != 0,
            boot: raw[49],
        });
    }
    Ok((!entries.is_empty()).then_some(entries))
}

/// The version in one slot's OTA meta block, if the block is valid.
fn meta_version(block: &[u8]) -> Option<u32> {
    let u32_at = |at: usize| u32::from_le_bytes(block[at..at + 4].try_into().expect("4 bytes"));
    if block.len() < META_LEN || u32_at(0) != META_MAGIC {
        return None;
    }
    let mut zeroed = block[..META_LEN].to_vec();
    zeroed[8..12].fill(0);
    (crc32fast::hash(&zeroed) == u32_at(8)).then(|| u32_at(4))
}

/// The slot U-Boot boots, from the `ota_meta` partition in `entries` as `read(offset, len)`
/// finds it on the medium (`None` where the bytes are not available).
pub fn boot_slot(entries: &[Entry], read: impl Fn(u64, usize) -> Option<Vec<u8>>) -> BootSlot {
    let Some(meta) = entries.iter().find(|e| e.name == "ota_meta") else {
        return BootSlot::A;
    };
    let span = meta.size / 2;
    if span == 0 {
        return BootSlot::A;
    }
    let version = |at| read(at, META_LEN).and_then(|b| meta_version(&b));
    match (version(meta.offset), version(meta.offset + span)) {
        (Some(_), None) | (None, None) => BootSlot::A,
        (None, Some(_)) => BootSlot::B,
        (Some(a), Some(b)) if b > a => BootSlot::B,
        (Some(_), Some(_)) => BootSlot::A,
    }
}

/// The entry whose image U-Boot starts on the big core when booting `slot`.
pub fn big_core_image(entries: &[Entry], slot: BootSlot) -> Result<&Entry> {
    let mut found = entries
        .iter()
        .filter(|e| e.boots_big_core() && e.in_slot(slot));
    match (found.next(), found.next()) {
        (Some(e), None) => Ok(e),
        (None, _) => bail!("the TOC names no big-core image for slot {slot:?}"),
        (Some(a), Some(b)) => bail!(
            "the TOC names two big-core images for slot {slot:?} ({} and {})",
            a.name,
            b.name
        ),
    }
}

/// TOCs and OTA meta blocks as the vendor tools write them, for tests.
#[cfg(test)]
pub mod fixture {
    /// A TOC entry as genimage writes it (k230_rtos_sdk `image-hd.c` `toc_insert_data`).
    pub fn entry(name: &str, offset: u64, size: u64, load: bool, boot: u8) -> [u8; 64] {
        let mut e = [0u8; 64];
        e[..name.len()].copy_from_slice(name.as_bytes());
        e[32..40].copy_from_slice(&offset.to_le_bytes());
        e[40..48].copy_from_slice(&size.to_le_bytes());
        e[48] = u8::from(load);
        e[49] = boot;
        e
    }

    /// A partition: name, offset, size, load, boot.
    type Part = (&'static str, u64, u64, bool, u8);

    /// A TOC of `parts` in their order, then an empty entry.
    fn toc(parts: &[Part]) -> Vec<u8> {
        let mut toc: Vec<u8> = parts
            .iter()
            .flat_map(|&(name, offset, size, load, boot)| entry(name, offset, size, load, boot))
            .collect();
        toc.extend_from_slice(&[0; 64]);
        toc
    }

    const MIB: u64 = 1 << 20;

    /// The SPL, its environment and U-Boot, in every layout.
    const BOOT_CHAIN: [Part; 3] = [
        ("spl", 0x10_0000, 0x8_0000, false, 0),
        ("uboot_env", 0x1e_0000, 0x1_0000, false, 0),
        ("uboot", 0x20_0000, 0x40_0000, false, 0),
    ];

    /// An A/B layout whose `rtapp_a` is `rtapp_a` bytes: the slots and the FAT follow it.
    fn a_b(rtapp_a: u64) -> Vec<u8> {
        let rtt_b = 30 * MIB + rtapp_a;
        let mut parts = vec![("ota_meta", 0xf_0000, 0x800, false, 0)];
        parts.extend(BOOT_CHAIN);
        parts.extend([
            ("rtt_a", 10 * MIB, 20 * MIB, true, 3),
            ("rtapp_a", 30 * MIB, rtapp_a, true, 0),
            ("rtt_b", rtt_b, 20 * MIB, true, 3),
            ("rtapp_b", rtt_b + 20 * MIB, 30 * MIB, true, 0),
            ("bin", rtt_b + 50 * MIB, 20 * MIB, false, 0),
            ("app", rtt_b + 70 * MIB, 500 * MIB, false, 0),
        ]);
        toc(&parts)
    }

    /// The TOC of kendryte/k230_rtos_sdk `boards/k230_canmv/genimage-sdcard.cfg` (the same
    /// layout on every board's `genimage-sdcard.cfg` and `-rtos.cfg` but wondermk's).
    pub fn rtos_sdk() -> Vec<u8> {
        a_b(30 * MIB)
    }

    /// The TOC of k230_rtos_sdk `boards/k230_canmv_wondermk/genimage-sdcard.cfg`: `rtapp_a`
    /// of 40 MiB, so slot B starts at 70 MiB and the FAT at 120 MiB.
    pub fn wondermk() -> Vec<u8> {
        a_b(40 * MIB)
    }

    /// The TOC a card flashed with k230-flash from a `sysimage-sdcard.kdimg` gets
    /// (k230_rtos_sdk `boards/k230_canmv_{01studio,hiwonder,mrt,wondermk}/genimage-sdcard-kdimg.cfg`):
    /// one slot, `rtt` of 10 MiB, `rtapp` at 30 MiB, no OTA meta, FAT from 50 MiB.
    pub fn kdimg() -> Vec<u8> {
        let mut parts = BOOT_CHAIN.to_vec();
        parts.extend([
            ("rtt", 10 * MIB, 10 * MIB, true, 3),
            ("rtapp", 30 * MIB, 20 * MIB, true, 0),
            ("bin", 50 * MIB, 20 * MIB, false, 0),
            ("app", 100 * MIB, 512 * MIB, false, 0),
        ]);
        toc(&parts)
    }

    /// An OTA slot meta block (u-boot `ota_slot_meta`): magic 'OTAV', version, CRC-32 of the
    /// 512 bytes with the CRC field zeroed.
    pub fn meta(version: u32) -> Vec<u8> {
        let mut m = vec![0u8; 512];
        m[..4].copy_from_slice(&0x4f54_4156u32.to_le_bytes());
        m[4..8].copy_from_slice(&version.to_le_bytes());
        let crc = crc32fast::hash(&m);
        m[8..12].copy_from_slice(&crc.to_le_bytes());
        m
    }
}

#[cfg(test)]
mod tests {
    use super::fixture::entry;
    use super::*;

    #[test]
    fn parses_until_an_empty_or_erased_name() {
        let mut toc = [
            entry("rtt_a", 10 << 20, 20 << 20, true, 3),
            entry("bin", 1, 2, false, 0),
        ]
        .concat();
        toc.extend_from_slice(&[0xff; 64]);
        toc.extend_from_slice(&entry("ignored", 0, 0, false, 0));
        let entries = parse(&toc).unwrap().unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].name, "rtt_a");
        assert!(entries[0].boots_big_core());
        assert!(!entries[1].boots_big_core());
        assert_eq!(parse(&[0u8; LEN]).unwrap(), None);
        let mut garbage = vec![0x80u8; LEN];
        garbage[1] = 0;
        assert!(parse(&garbage).is_err());
    }

    #[test]
    fn the_big_core_image_follows_the_slot() {
        let entries = parse(
            &[
                entry("rtt_a", 10, 20, true, 3),
                entry("rtapp_a", 30, 30, true, 0),
                entry("rtt_b", 60, 20, true, 3),
                entry("little", 0, 1, true, 1),
            ]
            .concat(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(big_core_image(&entries, BootSlot::A).unwrap().name, "rtt_a");
        assert_eq!(big_core_image(&entries, BootSlot::B).unwrap().name, "rtt_b");
        let both = parse(&[entry("x", 0, 1, true, 3), entry("y", 1, 1, true, 3)].concat())
            .unwrap()
            .unwrap();
        assert!(big_core_image(&both, BootSlot::A).is_err());
        assert!(big_core_image(&entries[1..2], BootSlot::A).is_err());
    }
}
