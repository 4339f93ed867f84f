//! Register access: volatile MMIO on the target, a model on the host.
//!
//! Drivers are generic over [`RegisterBlock`]: on hardware [`Mmio`] compiles each access to one
//! volatile load or store; in tests a model (feature `sim`) or a mock serves the same calls.
//! Monomorphisation keeps the abstraction free on the target.
//!
//! [`dma`] is the other half of a bus master's view of memory: bus addresses of buffers the
//! driver hands to a controller, and the cache maintenance around them.

pub mod dma;

/// A block of 32-bit registers addressed by byte offset from its base.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
pub trait RegisterBlock {
    /// Reads the register at `offset` bytes from the base.
    fn read32(&self, offset: usize) -> u32;
    /// Writes the register at `offset` bytes from the base.
    fn write32(&self, offset: usize, value: u32);

    /// Read-modify-write: clears `clear` bits, then sets `set` bits.
    fn modify32(&self, offset: usize, clear: u32, set: u32) {
        let value = self.read32(offset);
        self.write32(offset, (value & !clear) | set);
    }
}

/// A memory-mapped register block at a fixed physical address.
#[derive(Debug)]
pub struct Mmio {
    base: usize,
    len: usize,
}

impl Mmio {
    /// A register block of `len` bytes at `base`.
    ///
    /// # Safety
    /// `base..base + len` must be a device register region, mapped and accessible for 32-bit
    /// volatile accesses for as long as the value lives, and not used as ordinary memory.
    pub const unsafe fn new(base: usize, len: usize) -> Self {
        Self { base, len }
    }

    /// The base address.
    pub const fn base(&self) -> usize {
        self.base
    }

    fn address(&self, offset: usize) -> *mut u32 {
        debug_assert!(
            offset % 4 == 0 && offset + 4 <= self.len,
            "register offset {offset:#x}"
        );
        (self.base + offset) as *mut u32
    }
}

impl RegisterBlock for Mmio {
    #[inline(always)]
    fn read32(&self, offset: usize) -> u32 {
        // SAFETY: `Mmio::new`'s contract makes every aligned offset inside `len` a device
        // register; a volatile load is the access the device expects.
        unsafe { core::ptr::read_volatile(self.address(offset)) }
    }

    #[inline(always)]
    fn write32(&self, offset: usize, value: u32) {
        // SAFETY: as for `read32`; a volatile store is the access the device expects.
        unsafe { core::ptr::write_volatile(self.address(offset), value) }
    }
}

/// A bit field of a 32-bit register: `width` bits starting at bit `shift`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    /// Lowest bit of the field.
    pub shift: u32,
    /// Number of bits.
    pub width: u32,
}

impl Field {
    /// A field of `width` bits at `shift`.
    pub const fn new(shift: u32, width: u32) -> Self {
        Self { shift, width }
    }

    /// The field's bits in place.
    pub const fn mask(self) -> u32 {
        (u32::MAX >> (32 - self.width)) << self.shift
    }

    /// The field's value in `reg`.
    pub const fn get(self, reg: u32) -> u32 {
        (reg & self.mask()) >> self.shift
    }

    /// `value` placed in the field (bits beyond the width are dropped).
    pub const fn val(self, value: u32) -> u32 {
        (value << self.shift) & self.mask()
    }

    /// `reg` with the field replaced by `value`.
    pub const fn set(self, reg: u32, value: u32) -> u32 {
        (reg & !self.mask()) | self.val(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_round_trips() {
        let f = Field::new(19, 10);
        assert_eq!(f.mask(), 0x3ff << 19);
        assert_eq!(f.get(f.val(0x155)), 0x155);
        assert_eq!(f.val(0x7ff), 0x3ff << 19);
        assert_eq!(f.set(u32::MAX, 0), !(0x3ff << 19));
        assert_eq!(Field::new(0, 32).mask(), u32::MAX);
    }

    #[test]
    fn mmio_reads_and_writes_memory() {
        let mut words = [0u32; 4];
        // SAFETY: plain memory stands in for a register block; it outlives `regs`.
        let regs = unsafe { Mmio::new(words.as_mut_ptr() as usize, 16) };
        regs.write32(4, 0xdead_beef);
        assert_eq!(regs.read32(4), 0xdead_beef);
        regs.modify32(4, 0xffff, 0x1);
        assert_eq!(words[1], 0xdead_0001);
    }
}
