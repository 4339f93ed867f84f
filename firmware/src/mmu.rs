//! AArch64 translation tables for the identity map the firmware runs on (QEMU raspi3b).
//!
//! The MMU is on for one reason: with it off every data access is Device memory, where an
//! unaligned access faults and `dc zva` is not allowed, and the C side (MicroPython, picolibc's
//! string functions) uses both. The map is the identity: 4 KiB granule, 32-bit input addresses
//! (`T0SZ = 32`, walks start at level 1: four 1 GiB entries), the first GiB in 2 MiB blocks of a
//! level-2 table. Below [`Layout::device_from`] memory is Normal write-back cacheable, from there
//! to [`Layout::mapped_end`] Device-nGnRnE and never executable, above it nothing is mapped.
//! Descriptor and register encodings: Arm Architecture Reference Manual for A-profile (ARM DDI
//! 0487), D8 (VMSAv8-64 translation) and the MAIR_EL1/TCR_EL1/SCTLR_EL1 register descriptions.

/// Bytes one level-1 entry maps.
pub const GIB: u64 = 1 << 30;
/// Bytes one level-2 block maps.
pub const BLOCK: u64 = 2 << 20;
/// Entries in a 4 KiB table.
const ENTRIES: usize = 512;

/// Descriptor type: a table (levels 1 and 2 point to the next level).
const TABLE: u64 = 0b11;
/// Descriptor type: a block (1 GiB at level 1, 2 MiB at level 2).
const BLOCK_DESC: u64 = 0b01;
/// Memory attribute index into MAIR_EL1, bits 4:2.
const fn attr(index: u64) -> u64 {
    index << 2
}
/// Inner shareable (SH, bits 9:8).
const INNER_SHAREABLE: u64 = 0b11 << 8;
/// Access flag (bit 10): set, or the first access faults.
const ACCESS_FLAG: u64 = 1 << 10;
/// Privileged and unprivileged execute-never (bits 53, 54).
const EXECUTE_NEVER: u64 = (1 << 53) | (1 << 54);

/// MAIR_EL1 index of Normal memory.
const NORMAL: u64 = 0;
/// MAIR_EL1 index of Device memory.
const DEVICE: u64 = 1;

/// MAIR_EL1: attribute 0 Normal, inner and outer write-back read/write-allocate (0xFF);
/// attribute 1 Device-nGnRnE (0x00).
pub const MAIR_EL1: u64 = 0xFF;

/// TCR_EL1: T0SZ 32 (bits 5:0), table walks inner and outer write-back write-allocate cacheable
/// (IRGN0/ORGN0 = 0b01, bits 9:8 and 11:10) and inner shareable (SH0, bits 13:12), 4 KiB granule
/// (TG0 = 0), no walks through TTBR1 (EPD1, bit 23), 32-bit physical addresses (IPS = 0).
pub const TCR_EL1: u64 = 32 | (0b01 << 8) | (0b01 << 10) | (0b11 << 12) | (1 << 23);

/// SCTLR_EL1: its RES1 bits (11, 20, 22, 23, 28, 29), MMU on (M, bit 0), data and instruction
/// caches on (C, bit 2; I, bit 12). Alignment checking (A, bit 1) stays off.
pub const SCTLR_EL1: u64 = 0x30D0_0800 | 1 | (1 << 2) | (1 << 12);

/// What the identity map covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// First byte of the device region (everything below is RAM); a multiple of 2 MiB.
    pub device_from: u64,
    /// End of the mapped space (device from `device_from` up to here); a multiple of 1 GiB, at
    /// most 4 GiB.
    pub mapped_end: u64,
}

/// Why a [`Layout`] cannot be mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayoutError {
    /// `device_from` is not on a 2 MiB boundary, or not inside the first GiB.
    DeviceStart,
    /// `mapped_end` is not a whole number of GiB up to 4, or below `device_from`.
    MappedEnd,
}

/// The level-1 and level-2 tables, page aligned as TTBR0_EL1 and table descriptors require.
#[repr(C, align(4096))]
pub struct Tables {
    l1: [u64; ENTRIES],
    l2: [u64; ENTRIES],
}

impl Tables {
    /// Empty tables (nothing mapped).
    pub const fn new() -> Self {
        Self {
            l1: [0; ENTRIES],
            l2: [0; ENTRIES],
        }
    }

    /// Fills the tables with the identity map of `layout`. `l2_address` is where the level-2
    /// table is ([`Tables::l2_address`]; a parameter so that host tests need no real address).
    pub fn map(&mut self, layout: Layout, l2_address: u64) -> Result<(), LayoutError> {
        if layout.device_from % BLOCK != 0 || layout.device_from > GIB {
            return Err(LayoutError::DeviceStart);
        }
        if layout.mapped_end % GIB != 0
            || layout.mapped_end > 4 * GIB
            || layout.mapped_end < GIB
            || layout.mapped_end < layout.device_from
        {
            return Err(LayoutError::MappedEnd);
        }
        for (i, entry) in self.l2.iter_mut().enumerate() {
            let address = i as u64 * BLOCK;
            *entry = block(address, address < layout.device_from);
        }
        self.l1 = [0; ENTRIES];
        self.l1[0] = l2_address | TABLE;
        for i in 1..(layout.mapped_end / GIB) as usize {
            self.l1[i] = block(i as u64 * GIB, false);
        }
        Ok(())
    }

    /// The level-1 table's address (TTBR0_EL1).
    pub fn l1_address(&self) -> u64 {
        self.l1.as_ptr() as u64
    }

    /// The level-2 table's address.
    pub fn l2_address(&self) -> u64 {
        self.l2.as_ptr() as u64
    }

    /// The descriptor that maps `address`: level 1, or level 2 for the first GiB.
    pub fn descriptor(&self, address: u64) -> u64 {
        if address < GIB {
            self.l2[(address / BLOCK) as usize]
        } else {
            self.l1.get((address / GIB) as usize).copied().unwrap_or(0)
        }
    }
}

impl Default for Tables {
    fn default() -> Self {
        Self::new()
    }
}

/// A block descriptor for `address`: Normal cacheable memory or Device memory.
const fn block(address: u64, normal: bool) -> u64 {
    if normal {
        address | BLOCK_DESC | attr(NORMAL) | INNER_SHAREABLE | ACCESS_FLAG
    } else {
        address | BLOCK_DESC | attr(DEVICE) | ACCESS_FLAG | EXECUTE_NEVER
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// raspi3b: RAM below the peripherals at 0x3F00_0000, local peripherals at 0x4000_0000.
    const RASPI3B: Layout = Layout {
        device_from: 0x3F00_0000,
        mapped_end: 2 * GIB,
    };

    fn mapped() -> Tables {
        let mut t = Tables::new();
        t.map(RASPI3B, 0x1234_5000).unwrap();
        t
    }

    #[test]
    fn ram_is_normal_cacheable_and_executable() {
        let t = mapped();
        for address in [0, 0x8_0000, 0x3EE0_0000] {
            let d = t.descriptor(address);
            assert_eq!(d & 0b11, BLOCK_DESC, "{address:#x}");
            assert_eq!(d & 0xFFFF_FFFF_F000, address & !(BLOCK - 1), "identity");
            assert_eq!((d >> 2) & 0b111, NORMAL);
            assert_ne!(d & ACCESS_FLAG, 0);
            assert_eq!(d & EXECUTE_NEVER, 0);
            assert_eq!(d & INNER_SHAREABLE, INNER_SHAREABLE);
        }
    }

    #[test]
    fn peripherals_are_device_memory_and_never_executable() {
        let t = mapped();
        // The PL011, the DWC2 and the local interrupt controller.
        for address in [0x3F20_1000, 0x3F98_0000, 0x4000_0040] {
            let d = t.descriptor(address);
            assert_eq!(d & 0b11, BLOCK_DESC, "{address:#x}");
            assert_eq!((d >> 2) & 0b111, DEVICE, "{address:#x}");
            assert_eq!(d & EXECUTE_NEVER, EXECUTE_NEVER, "{address:#x}");
            assert_ne!(d & ACCESS_FLAG, 0);
        }
        assert_eq!(
            t.descriptor(0x4000_0000) & !0xFFF & 0xFFFF_FFFF,
            0x4000_0000
        );
    }

    #[test]
    fn first_gib_walks_to_the_level_2_table_and_the_rest_is_unmapped() {
        let t = mapped();
        assert_eq!(t.l1[0], 0x1234_5000 | TABLE);
        assert_eq!(t.l1[2], 0, "nothing above 2 GiB");
        assert_eq!(t.l1[3], 0);
        assert_eq!(t.descriptor(3 * GIB), 0);
    }

    #[test]
    fn layouts_that_blocks_cannot_express_are_refused() {
        let mut t = Tables::new();
        let bad_start = Layout {
            device_from: 0x3F10_0000,
            ..RASPI3B
        };
        assert_eq!(t.map(bad_start, 0), Err(LayoutError::DeviceStart));
        let bad_end = Layout {
            mapped_end: GIB + BLOCK,
            ..RASPI3B
        };
        assert_eq!(t.map(bad_end, 0), Err(LayoutError::MappedEnd));
        let too_far = Layout {
            mapped_end: 8 * GIB,
            ..RASPI3B
        };
        assert_eq!(t.map(too_far, 0), Err(LayoutError::MappedEnd));
    }

    #[test]
    fn register_values() {
        assert_eq!(TCR_EL1 & 0x3F, 32, "T0SZ: 4 GiB of input addresses");
        assert_eq!((TCR_EL1 >> 14) & 0b11, 0, "4 KiB granule");
        assert_eq!((TCR_EL1 >> 32) & 0b111, 0, "32-bit physical addresses");
        assert_eq!(MAIR_EL1 & 0xFF, 0xFF, "attribute 0: Normal write-back");
        assert_eq!((MAIR_EL1 >> 8) & 0xFF, 0, "attribute 1: Device-nGnRnE");
        assert_eq!(
            SCTLR_EL1 & 0b111,
            0b101,
            "MMU and data cache on, no alignment check"
        );
    }
}
