//! Where the vendor boot chain lets a big-core image live in the K230's DDR.
//!
//! After loading the big-core image and before starting the core, the vendor U-Boot writes into
//! low DDR: canmv-v1.2 to v1.4 a 16-byte DDR-size tag at 0x1FFF0, canmv-v1.5 on (and the
//! rtos SDK's U-Boot) zeroes 0x1C000-0x1FFF0 and writes boot tags there. In the vendor layout
//! OpenSBI owns 0-0x20000 and RT-Smart runs from 0x20000. An image that places anything below
//! 0x20000 is overwritten before it runs (or overwrites the tags).
//!
//! Facts: canmv-k230/u-boot `board/kendryte/common/k230_boot.c` (canmv-v1.2-v1.4:
//! `k230_boot_write_ddr_size_for_rtsmart` copies the tag to
//! `CONFIG_RTSMART_OPENSIB_MEMORY_SIZE - sizeof(tag)`), `k230_atag.c`/`k230_atag.h` (canmv-v1.5
//! on: `K230_ATAG_BASE` = `CONFIG_RTSMART_OPENSIB_MEMORY_SIZE - 0x4000`, zeroed up to
//! `- 0x10`), `board_common.h` (`CONFIG_RTSMART_OPENSIB_MEMORY_SIZE` default 0x20000);
//! kendryte/canmv_k230 `boards/Kconfig` (`MEM_RTSMART_BASE` 0, `RTSMART_OPENSIB_MEMORY_SIZE`
//! 0x20000, RT-Smart at base + 0x20000).

use core::ops::Range;

/// A part of low DDR the boot chain writes or owns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reserved {
    /// Who writes there.
    pub owner: &'static str,
    /// The bytes.
    pub range: Range<u64>,
}

/// What the vendor boot chain writes or owns below [`IMAGE_BASE`].
pub const RESERVED: [Reserved; 3] = [
    Reserved {
        owner: "OpenSBI in the vendor layout",
        range: 0..0x2_0000,
    },
    Reserved {
        owner: "U-Boot's boot tags (canmv-v1.5 on, zeroed before start)",
        range: 0x1_c000..0x1_fff0,
    },
    Reserved {
        owner: "U-Boot's DDR-size tag (canmv-v1.2 to v1.4)",
        range: 0x1_fff0..0x2_0000,
    },
];

/// Where a big-core image starts: RT-Smart's address in the vendor layout, above everything
/// in [`RESERVED`].
pub const IMAGE_BASE: u64 = 0x2_0000;

/// The reserved regions `range` overlaps.
pub fn overlaps(range: Range<u64>) -> impl Iterator<Item = &'static Reserved> {
    RESERVED.iter().filter(move |r| {
        !range.is_empty() && range.start < r.range.end && r.range.start < range.end
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_image_base_is_above_every_reserved_region() {
        assert!(RESERVED.iter().all(|r| r.range.end <= IMAGE_BASE));
        assert_eq!(overlaps(IMAGE_BASE..IMAGE_BASE + (64 << 20)).count(), 0);
    }

    #[test]
    fn an_image_at_zero_overlaps_all_of_them() {
        let hit: Vec<_> = overlaps(0..0x4_0000).map(|r| r.owner).collect();
        assert_eq!(hit.len(), 3, "{hit:?}");
        let tag_only: Vec<_> = overlaps(0x1_fff8..0x1_fffc).collect();
        assert_eq!(tag_only.len(), 2);
        assert_eq!(overlaps(0x1_fff0..0x1_fff0).count(), 0, "empty range");
    }
}
