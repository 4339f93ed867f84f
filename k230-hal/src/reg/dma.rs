//! DMA: the bus addresses a controller uses for buffers the driver hands it, and the cache
//! maintenance that goes with handing them over and taking them back.
//!
//! A driver calls [`Dma::map`] after the CPU has filled a buffer and before it writes the bus
//! address into a controller register, and [`Dma::unmap`] once the controller is done with the
//! buffer and before the CPU reads it; between the two the CPU does not touch the buffer. Those
//! two calls are the moments of cache maintenance: the K230 is `dma-noncoherent` (the controller
//! sees memory, not the C908's data cache), so every mapper runs the same rules ([`for_device`]
//! and [`for_cpu`]), the ones the vendor's DWC2 host driver follows:
//!
//! - before the controller touches a buffer, its dirty lines are written back (cleaned): for
//!   [`DmaDirection::ToDevice`] so the controller reads what the CPU wrote, for
//!   [`DmaDirection::FromDevice`] so no dirty line is evicted over what the controller writes;
//! - after the controller wrote a buffer, its lines are invalidated so the CPU reads memory
//!   rather than stale lines (a speculative fetch may have brought them in meanwhile);
//! - a buffer the controller writes owns whole cache lines ([`CACHE_LINE`]): invalidating a line
//!   shared with other data would throw away the CPU's newer copy of that data, so such a
//!   buffer is refused ([`DmaError::Misaligned`]).
//!
//! Facts: CherryUSB `port/dwc2/usb_hc_dwc2.c` as the vendor ships it in canmv-k230/rtsmart
//! (`rt_hw_cpu_dcache_clean` of the DMA buffer before every channel start, whatever the
//! direction; `rt_hw_cpu_dcache_invalidate` of the received bytes when an IN channel completes;
//! a bounce buffer whenever a buffer is not 64-byte aligned or not a multiple of 64 bytes);
//! rtsmart `bsp/maix3/c908/cache.h` (`L1_CACHE_BYTES` 64); the Linux K230 device tree
//! (`dma-noncoherent`).
//!
//! On the K230 the bus sees physical memory at the same addresses the C908 uses, so
//! [`IdentityDma`] maps by identity with a [`CacheMaintenance`] for the core
//! (`crate::c908::C908Cache` on the target). The host model (feature `sim`) gives out bus
//! addresses of its own, runs the same rules against a model of a non-coherent cache, and
//! rejects DMA outside the buffers mapped there.

/// Bytes in one data-cache line of the K230's C908 cores (rtsmart `c908/cache.h`
/// `L1_CACHE_BYTES`), and so the alignment of a buffer a controller writes.
pub const CACHE_LINE: usize = 64;

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
    /// The buffer is not aligned as the controller requires, or (for the controller to write)
    /// shares a cache line with other data.
    Misaligned,
}

/// Bus addresses and cache maintenance for buffers handed to a bus-master controller.
///
/// `ptr..ptr + len` must be memory the caller owns and keeps in place from `map` to `unmap`.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
pub trait Dma {
    /// Hands `len` bytes at `ptr` to the controller and returns their bus address, after the
    /// cache maintenance [`for_device`] does.
    fn map(&mut self, ptr: *mut u8, len: usize, dir: DmaDirection) -> Result<u32, DmaError>;
    /// Takes the buffer back after the controller finished with it, with the cache maintenance
    /// [`for_cpu`] does (so the CPU sees what the controller wrote).
    fn unmap(&mut self, ptr: *mut u8, len: usize, dir: DmaDirection);
}

/// Data-cache maintenance by address range. Implementations work on whole lines: a range that
/// starts or ends inside a line takes in the whole line.
pub trait CacheMaintenance {
    /// Writes dirty lines covering `addr..addr + len` back to memory; the lines stay valid.
    fn clean(&self, addr: usize, len: usize);
    /// Drops the lines covering `addr..addr + len` without writing them back.
    ///
    /// # Safety
    /// No data the CPU still needs may be in those lines only: the range must be whole lines
    /// owned by the caller, whose contents the caller is about to take from memory.
    unsafe fn invalidate(&self, addr: usize, len: usize);
}

/// Cache maintenance for memory the controller sees coherently (or uncached): nothing to do.
#[derive(Clone, Copy, Debug, Default)]
pub struct Coherent;

impl CacheMaintenance for Coherent {
    fn clean(&self, _addr: usize, _len: usize) {}
    unsafe fn invalidate(&self, _addr: usize, _len: usize) {}
}

/// The cache maintenance before the controller touches `addr..addr + len`: a buffer it will
/// write must own whole cache lines; dirty lines are written back in either direction.
pub fn for_device(
    cache: &impl CacheMaintenance,
    addr: usize,
    len: usize,
    dir: DmaDirection,
) -> Result<(), DmaError> {
    let whole_lines = addr % CACHE_LINE == 0 && len % CACHE_LINE == 0;
    if dir == DmaDirection::FromDevice && !whole_lines && !mutation::skips(Point::WholeLines) {
        return Err(DmaError::Misaligned);
    }
    let point = match dir {
        DmaDirection::ToDevice => Point::CleanToDevice,
        DmaDirection::FromDevice => Point::CleanFromDevice,
    };
    if !mutation::skips(point) {
        cache.clean(addr, len);
    }
    Ok(())
}

/// The cache maintenance after the controller is done with `addr..addr + len` (mapped with
/// [`for_device`]): what it wrote is taken from memory.
pub fn for_cpu(cache: &impl CacheMaintenance, addr: usize, len: usize, dir: DmaDirection) {
    if dir == DmaDirection::FromDevice && !mutation::skips(Point::InvalidateFromDevice) {
        // SAFETY: `for_device` accepted the buffer for the controller to write only if it owns
        // whole lines, and the caller is taking back what the controller wrote into them.
        unsafe { cache.invalidate(addr, len) };
    }
}

/// The maintenance steps of [`for_device`] and [`for_cpu`], named so that tests can leave one
/// out and show that a test fails without it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Point {
    /// Refusing a buffer for the controller to write that shares a cache line.
    WholeLines,
    /// Cleaning before the controller reads.
    CleanToDevice,
    /// Cleaning before the controller writes.
    CleanFromDevice,
    /// Invalidating before the CPU reads what the controller wrote.
    InvalidateFromDevice,
}

/// Test-only removal of one maintenance step (per thread, so tests running in parallel do not
/// see each other's): compiled to nothing outside `cfg(test)`.
pub(crate) mod mutation {
    use super::Point;

    #[cfg(test)]
    std::thread_local! {
        static SKIPPED: core::cell::Cell<Option<Point>> = const { core::cell::Cell::new(None) };
    }

    /// Whether `point` is left out on this thread.
    #[cfg(test)]
    pub(crate) fn skips(point: Point) -> bool {
        SKIPPED.with(|s| s.get() == Some(point))
    }

    /// Whether `point` is left out: never, outside tests.
    #[cfg(not(test))]
    #[inline(always)]
    pub(crate) fn skips(_point: Point) -> bool {
        false
    }

    /// Runs `f` on this thread with `point` left out.
    #[cfg(test)]
    pub(crate) fn without<T>(point: Point, f: impl FnOnce() -> T) -> T {
        SKIPPED.with(|s| s.set(Some(point)));
        let out = f();
        SKIPPED.with(|s| s.set(None));
        out
    }
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
        for_device(&self.cache, addr, len, dir)?;
        u32::try_from(addr).map_err(|_| DmaError::Unreachable)
    }

    fn unmap(&mut self, ptr: *mut u8, len: usize, dir: DmaDirection) {
        for_cpu(&self.cache, ptr as usize, len, dir);
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
        unsafe fn invalidate(&self, addr: usize, len: usize) {
            self.0.borrow_mut().push(("inval", addr, len));
        }
    }

    #[test]
    fn cleans_before_the_controller_and_invalidates_what_it_wrote() {
        let log = Log::default();
        let mut dma = IdentityDma::new(&log);
        let p = 0x8000_0000usize as *mut u8;
        assert_eq!(dma.map(p, 8, DmaDirection::ToDevice), Ok(0x8000_0000));
        dma.unmap(p, 8, DmaDirection::ToDevice);
        assert_eq!(dma.map(p, 128, DmaDirection::FromDevice), Ok(0x8000_0000));
        dma.unmap(p, 128, DmaDirection::FromDevice);
        let ops = log.0.borrow();
        let want = [
            ("clean", 0x8000_0000, 8),
            ("clean", 0x8000_0000, 128),
            ("inval", 0x8000_0000, 128),
        ];
        assert_eq!(ops.as_slice(), &want);
    }

    #[test]
    fn a_buffer_the_controller_writes_must_own_whole_lines() {
        let log = Log::default();
        let mut dma = IdentityDma::new(&log);
        for (addr, len) in [(0x1000, 8), (0x1020, 64), (0x1000, 100)] {
            let p = addr as *mut u8;
            assert_eq!(
                dma.map(p, len, DmaDirection::FromDevice),
                Err(DmaError::Misaligned),
                "{addr:#x}+{len}"
            );
            // The controller may read from anywhere 4-byte aligned.
            assert_eq!(dma.map(p, len, DmaDirection::ToDevice), Ok(addr as u32));
        }
        assert!(log.0.borrow().iter().all(|op| op.0 == "clean"));
    }

    #[test]
    fn identity_rejects_what_the_bus_cannot_reach() {
        let mut dma = IdentityDma::new(Coherent);
        let high = 0x1_0000_0000usize as *mut u8;
        assert_eq!(
            dma.map(high, 64, DmaDirection::ToDevice),
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

    #[test]
    fn a_left_out_step_is_left_out_on_this_thread_only() {
        let log = Log::default();
        mutation::without(Point::CleanToDevice, || {
            for_device(&&log, 0x40, 8, DmaDirection::ToDevice).unwrap();
            std::thread::scope(|s| {
                s.spawn(|| assert!(!mutation::skips(Point::CleanToDevice)));
            });
        });
        assert!(log.0.borrow().is_empty());
        for_device(&&log, 0x40, 8, DmaDirection::ToDevice).unwrap();
        assert_eq!(log.0.borrow().len(), 1);
    }
}
