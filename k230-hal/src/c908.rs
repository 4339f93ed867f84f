//! The K230's T-Head C908 cores: caches switched on as the vendor does, and data-cache
//! maintenance by address for DMA ([`C908Cache`]).
//!
//! Facts:
//! - start-up: kendryte/k230_sdk OpenSBI `platform/kendryte/fpgac908/platform.c`
//!   (`c908_final_init`, what runs on the big core before RT-Smart: `mhcr` = 0x11ff,
//!   `mcor` = 0x70013, `mccr2` = 0xe0410009, `mhint` = 0x16e30c, CSR 0x7f3 = 1) and
//!   canmv-k230/u-boot `arch/riscv/cpu/k230/cpu.c` (`improving_cpu_performance`, the same on the
//!   little core in M-mode, invalidating through `mcor` first and setting `mxstatus` = 0x638000);
//!   canmv-k230/rtsmart `bsp/maix3/c908/startup_gcc.S` (its M-mode start-up path: the same
//!   values). `mxstatus` bit 22 (THEADISAEE) lets the T-Head instructions below execute.
//! - maintenance: rtsmart `bsp/maix3/c908/cache.c` (`rt_hw_cpu_dcache_clean`: `dcache.cva` per
//!   64-byte line, `rt_hw_cpu_dcache_invalidate`: `dcache.iva` per line, each range followed by
//!   `sync.s`), which the vendor's CherryUSB DWC2 host driver calls around every transfer;
//!   encodings as there (`dcache.cva a6` = 0x0257800b, `dcache.iva a6` = 0x0268000b,
//!   `sync.s` = 0x0190000b), written here as the XTheadCmo/XTheadSync mnemonics
//!   `th.dcache.cva`, `th.dcache.iva`, `th.sync.s` that LLVM assembles to the same words.

use crate::reg::dma::{CacheMaintenance, CACHE_LINE};
use core::arch::asm;

/// `mhcr`: I-cache, D-cache, write-allocate, write-back, return stack, branch prediction,
/// BTBs, write burst (vendor value).
pub const MHCR: usize = 0x11ff;
/// `mhcr.DE`: the D-cache is on.
const MHCR_DE: usize = 1 << 1;
/// `mcor`: invalidate the I- and D-caches and the branch predictors (vendor value).
pub const MCOR_INVALIDATE_ALL: usize = 0x7_0013;
/// `mccr2`: L2 cache latencies and prefetch (the big core's vendor value).
pub const MCCR2: usize = 0xe041_0009;
/// `mhint`: prefetch and other performance hints (the big core's vendor value).
pub const MHINT: usize = 0x16_e30c;
/// `mxstatus`: T-Head extensions on (THEADISAEE), misaligned accesses, user cache
/// operations, CLINT to S-mode, extended MMU attributes (vendor value).
pub const MXSTATUS: usize = 0x63_8000;
/// CSR 0x7f3 (`msmpr`): take part in cache coherence (vendor value).
pub const MSMPR: usize = 1;

/// What [`enable_caches`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheSetup {
    /// The caches were off (as after reset): invalidated, then switched on as the vendor does.
    Enabled,
    /// The D-cache was already on: left as it was (invalidating it could lose dirty data).
    AlreadyOn,
}

/// Switches the caches on as the vendor does on the big core: invalidate I-/D-caches and
/// branch predictors, then the L2, L1, hint, extension and coherence settings.
///
/// # Safety
/// Run once, in M-mode on a C908, before any DMA; if the caches were off, nothing may be
/// cached yet (true after reset, which is how U-Boot starts the big core).
pub unsafe fn enable_caches() -> CacheSetup {
    let mhcr: usize;
    // SAFETY: reading `mhcr` has no side effect.
    unsafe { asm!("csrr {}, 0x7c1", out(reg) mhcr) };
    if mhcr & MHCR_DE != 0 {
        return CacheSetup::AlreadyOn;
    }
    // SAFETY: the caller guarantees a C908 in M-mode with nothing cached: invalidating loses
    // nothing, and the remaining writes are the vendor's own configuration.
    unsafe {
        asm!(
            "csrw 0x7c2, {mcor}",
            "csrw 0x7c3, {mccr2}",
            "csrw 0x7c1, {mhcr}",
            "csrw 0x7c0, {mxstatus}",
            "csrw 0x7c5, {mhint}",
            "csrw 0x7f3, {msmpr}",
            "fence.i",
            mcor = in(reg) MCOR_INVALIDATE_ALL,
            mccr2 = in(reg) MCCR2,
            mhcr = in(reg) MHCR,
            mxstatus = in(reg) MXSTATUS,
            mhint = in(reg) MHINT,
            msmpr = in(reg) MSMPR,
        )
    };
    CacheSetup::Enabled
}

/// The C908's data-cache maintenance by virtual (here: physical) address. Use it only after
/// [`enable_caches`] (which enables the T-Head instructions it executes).
#[derive(Clone, Copy, Debug, Default)]
pub struct C908Cache;

/// The first address of each cache line covering `addr..addr + len`.
fn lines(addr: usize, len: usize) -> impl Iterator<Item = usize> {
    let end = addr.saturating_add(len);
    (addr / CACHE_LINE * CACHE_LINE..end).step_by(CACHE_LINE)
}

impl CacheMaintenance for C908Cache {
    fn clean(&self, addr: usize, len: usize) {
        for line in lines(addr, len) {
            // SAFETY: writing a line back changes no data the CPU sees.
            unsafe {
                asm!(
                    ".option push",
                    ".option arch, +xtheadcmo",
                    "th.dcache.cva {0}",
                    ".option pop",
                    in(reg) line,
                )
            };
        }
        sync();
    }

    unsafe fn invalidate(&self, addr: usize, len: usize) {
        for line in lines(addr, len) {
            // SAFETY: the caller's contract: the lines hold nothing the CPU still needs.
            unsafe {
                asm!(
                    ".option push",
                    ".option arch, +xtheadcmo",
                    "th.dcache.iva {0}",
                    ".option pop",
                    in(reg) line,
                )
            };
        }
        sync();
    }
}

/// Waits until the cache operations before it are done (`sync.s`).
fn sync() {
    // SAFETY: a barrier; no other effect.
    unsafe {
        asm!(
            ".option push",
            ".option arch, +xtheadsync",
            "th.sync.s",
            ".option pop",
        )
    };
}
