//! DMA: the bus addresses a controller uses for buffers the driver hands it, and the cache
//! maintenance that goes with handing them over and taking them back.
//!
//! A driver calls [`Dma::map`] before it writes a bus address into a controller register and
//! [`Dma::unmap`] once the controller is done with the buffer; between the two the CPU does not
//! touch the buffer. On the K230 the bus sees physical memory at the same addresses the C908
//! uses, so [`IdentityDma`] maps by identity and leaves cache operations to a hook the firmware
//! supplies ([`CacheMaintenance`]). The host model (feature `sim`) gives out bus addresses of its
//! own and rejects DMA outside the buffers mapped there.

/// Which way the controller moves data through a mapped buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DmaDirection {
    /// The controller reads the buffer (USB OUT, SETUP).
    ToDevice,
    /// The controller writes the buffer (USB IN).
    FromDevice,
}

/// Why a buffer could not be handed to the controller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DmaError {
    /// The buffer lies outside the controller's 32-bit bus window.
    Unreachable,
    /// The buffer is not aligned as the controller requires.
    Misaligned,
}

/// Bus addresses and cache maintenance for buffers handed to a bus-master controller.
#[cfg_attr(test, mockall::automock)]
pub trait Dma {
    /// Hands `len` bytes at `ptr` to the controller and returns their bus address. Dirty cache
    /// lines are written back (and, for [`DmaDirection::FromDevice`], dropped) first.
    fn map(&mut self, ptr: *mut u8, len: usize, dir: DmaDirection) -> Result<u32, DmaError>;
    /// Takes the buffer back after the controller finished with it; for
    /// [`DmaDirection::FromDevice`] stale cache lines are dropped so the CPU sees what the
    /// controller wrote.
    fn unmap(&mut self, ptr: *mut u8, len: usize, dir: DmaDirection);
}

/// Cache maintenance by address range, supplied by the firmware (the C908 uses vendor
/// `dcache.cva`/`dcache.iva` instructions or a cache-management extension).
pub trait CacheMaintenance {
    /// Writes dirty lines covering `addr..addr + len` back to memory.
    fn clean(&self, addr: usize, len: usize);
    /// Drops lines covering `addr..addr + len` without writing them back.
    fn invalidate(&self, addr: usize, len: usize);
}

/// Cache maintenance for memory the controller sees coherently (or uncached): nothing to do.
#[derive(Clone, Copy, Debug, Default)]
pub struct Coherent;

impl CacheMaintenance for Coherent {
    fn clean(&self, _addr: usize, _len: usize) {}
    fn invalidate(&self, _addr: usize, _len: usize) {}
}

/// Identity-mapped DMA: the bus address is the CPU's physical address, as on the K230.
#[derive(Clone, Copy, Debug, Default)]
pub struct IdentityDma<C> {
    cache: C,
}

impl<C: CacheMaintenance> IdentityDma<C> {
    /// Identity mapping with the given cache maintenance.
    pub const fn new(cache: C) -> Self {
        Self { cache }
    }
}

impl<C: CacheMaintenance> Dma for IdentityDma<C> {
    fn map(&mut self, ptr: *mut u8, len: usize, dir: DmaDirection) -> Result<u32, DmaError> {
        let addr = ptr as usize;
        let end = addr.checked_add(len).ok_or(DmaError::Unreachable)?;
        if end > 1 << 32 {
            return Err(DmaError::Unreachable);
        }
        if addr % 4 != 0 {
            return Err(DmaError::Misaligned);
        }
        self.cache.clean(addr, len);
        if dir == DmaDirection::FromDevice {
            self.cache.invalidate(addr, len);
        }
        u32::try_from(addr).map_err(|_| DmaError::Unreachable)
    }

    fn unmap(&mut self, ptr: *mut u8, len: usize, dir: DmaDirection) {
        if dir == DmaDirection::FromDevice {
            self.cache.invalidate(ptr as usize, len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[derive(Default)]
    struct Log(RefCell<Vec<(&'static str, usize, usize)>>);

    impl CacheMaintenance for &Log {
        fn clean(&self, addr: usize, len: usize) {
            self.0.borrow_mut().push(("clean", addr, len));
        }
        fn invalidate(&self, addr: usize, len: usize) {
            self.0.borrow_mut().push(("inval", addr, len));
        }
    }

    #[test]
    fn identity_maps_and_maintains_caches() {
        let log = Log::default();
        let mut dma = IdentityDma::new(&log);
        let p = 0x8000_0000usize as *mut u8;
        assert_eq!(dma.map(p, 64, DmaDirection::ToDevice), Ok(0x8000_0000));
        assert_eq!(dma.map(p, 64, DmaDirection::FromDevice), Ok(0x8000_0000));
        dma.unmap(p, 64, DmaDirection::FromDevice);
        dma.unmap(p, 64, DmaDirection::ToDevice);
        let ops = log.0.borrow();
        let want = [
            ("clean", 0x8000_0000, 64),
            ("clean", 0x8000_0000, 64),
            ("inval", 0x8000_0000, 64),
            ("inval", 0x8000_0000, 64),
        ];
        assert_eq!(ops.as_slice(), &want);
    }

    #[test]
    fn identity_rejects_what_the_bus_cannot_reach() {
        let mut dma = IdentityDma::new(Coherent);
        let high = 0x1_0000_0000usize as *mut u8;
        assert_eq!(
            dma.map(high, 4, DmaDirection::ToDevice),
            Err(DmaError::Unreachable)
        );
        let edge = 0xffff_fffcusize as *mut u8;
        assert_eq!(
            dma.map(edge, 8, DmaDirection::ToDevice),
            Err(DmaError::Unreachable)
        );
        let odd = 0x1002usize as *mut u8;
        assert_eq!(
            dma.map(odd, 4, DmaDirection::ToDevice),
            Err(DmaError::Misaligned)
        );
    }
}
