//! The CPU's data cache as a bus master sees it on the K230: write-back, 64-byte lines, not
//! coherent with DMA (the Linux K230 device tree marks the SoC `dma-noncoherent`; the vendor's
//! DWC2 driver cleans and invalidates every DMA buffer).
//!
//! The host's memory holds what the CPU sees (the cache, or memory where a line is not
//! cached); this model holds what the controller sees: memory, one [`Line`] per 64 bytes the
//! controller or a cache operation touched. A line starts out dirty with junk in memory, as
//! memory the CPU has just zeroed or filled (a `.bss` buffer) is. Then:
//!
//! - a clean copies the CPU's bytes to memory; an invalidate copies memory to the CPU's bytes
//!   (and must cover whole lines: the hardware drops a whole line, neighbours included);
//! - the controller reads memory: bytes the CPU wrote and did not clean are stale to it;
//! - the controller writes memory; the CPU sees that only after an invalidate (a speculative
//!   fetch may bring a line in at any time, so the model assumes it did at once);
//! - a line the cache holds dirty may be written back at any time, so when the controller
//!   writes into one the model writes it back right after, over what the controller wrote.
//!
//! Each of these is also reported, as a violation of the DMA rules. The CPU writing a byte with
//! the value it already had is not seen as a write (the model compares contents).

use std::collections::HashMap;
use std::ops::Range;

use crate::reg::dma::CACHE_LINE;

/// What memory holds where nothing defined was ever written back.
const JUNK: u8 = 0xa5;

/// One cache line's worth of memory, and what the cache held when the CPU last synchronised it.
struct Line {
    /// Memory (what the controller sees).
    memory: [u8; CACHE_LINE],
    /// The CPU's view right after the last clean or invalidate of each byte.
    synced: [u8; CACHE_LINE],
    /// Bit `i`: byte `i` was cleaned or invalidated at least once.
    known: u64,
    /// The controller wrote the line since the CPU last invalidated it.
    written: bool,
}

impl Line {
    fn new() -> Self {
        Self {
            memory: [JUNK; CACHE_LINE],
            synced: [0; CACHE_LINE],
            known: 0,
            written: false,
        }
    }
}

/// The controller's view of memory behind the CPU's data cache.
#[derive(Default)]
pub(crate) struct CacheModel {
    lines: HashMap<usize, Line>,
}

/// The `(line address, byte range within the line)` pieces of `range`.
fn pieces(range: Range<usize>) -> impl Iterator<Item = (usize, Range<usize>)> {
    let first = range.start / CACHE_LINE * CACHE_LINE;
    (first..range.end).step_by(CACHE_LINE).map(move |line| {
        let from = range.start.max(line) - line;
        let to = range.end.min(line + CACHE_LINE) - line;
        (line, from..to)
    })
}

/// Copies the CPU's view of `bytes` of the line at `line` into `out[bytes]`.
///
/// # Safety
/// Those bytes must be readable host memory.
unsafe fn cpu_read(line: usize, bytes: Range<usize>, out: &mut [u8; CACHE_LINE]) {
    let dst = &mut out[bytes.clone()];
    // SAFETY: the caller's contract; `dst` is a distinct buffer of the same length.
    unsafe {
        core::ptr::copy_nonoverlapping(
            (line + bytes.start) as *const u8,
            dst.as_mut_ptr(),
            dst.len(),
        )
    };
}

/// The mask of `bytes` in a line's `known` bits.
fn mask(bytes: &Range<usize>) -> u64 {
    let width = bytes.len() as u32;
    let ones = if width >= 64 {
        u64::MAX
    } else {
        (1 << width) - 1
    };
    ones << bytes.start
}

impl CacheModel {
    fn line(&mut self, addr: usize) -> &mut Line {
        self.lines.entry(addr).or_insert_with(Line::new)
    }

    /// Whether the CPU holds data in `bytes` of the line at `line` that memory has not got.
    ///
    /// # Safety
    /// Those bytes must be readable host memory.
    unsafe fn dirty(&mut self, line: usize, bytes: Range<usize>) -> bool {
        let l = self.line(line);
        if l.known & mask(&bytes) != mask(&bytes) {
            return true;
        }
        let mut cpu = [0; CACHE_LINE];
        // SAFETY: the caller's contract.
        unsafe { cpu_read(line, bytes.clone(), &mut cpu) };
        cpu[bytes.clone()] != l.synced[bytes]
    }

    /// Makes memory and the synchronised view of `bytes` of the line at `line` what the CPU
    /// sees.
    ///
    /// # Safety
    /// Those bytes must be readable host memory.
    unsafe fn write_back(&mut self, line: usize, bytes: Range<usize>) {
        let l = self.line(line);
        // SAFETY: the caller's contract.
        unsafe { cpu_read(line, bytes.clone(), &mut l.memory) };
        l.synced[bytes.clone()].copy_from_slice(&l.memory[bytes.clone()]);
        l.known |= mask(&bytes);
    }

    /// Writes the CPU's view of `range` back to memory.
    ///
    /// # Safety
    /// `range` must be readable host memory.
    pub(crate) unsafe fn clean(&mut self, range: Range<usize>) {
        for (line, bytes) in pieces(range) {
            // SAFETY: the caller's contract.
            unsafe { self.write_back(line, bytes) };
        }
    }

    /// Drops the CPU's view of `range`: the CPU sees memory there from now on.
    ///
    /// # Safety
    /// `range` must be writable host memory nothing else uses meanwhile.
    pub(crate) unsafe fn invalidate(&mut self, range: Range<usize>) -> Result<(), String> {
        let whole = range.start % CACHE_LINE == 0 && range.end % CACHE_LINE == 0;
        let (start, len) = (range.start, range.len());
        for (line, bytes) in pieces(range) {
            let l = self.line(line);
            let src = &l.memory[bytes.clone()];
            // SAFETY: the caller's contract; `src` is the model's own buffer.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    src.as_ptr(),
                    (line + bytes.start) as *mut u8,
                    src.len(),
                )
            };
            l.synced[bytes.clone()].copy_from_slice(&l.memory[bytes.clone()]);
            l.known |= mask(&bytes);
            l.written = false;
        }
        if whole {
            Ok(())
        } else {
            Err(format!(
                "invalidate of {len} bytes at {start:#x}: not whole cache lines, the rest of \
                 each line (another buffer's data) is dropped with it"
            ))
        }
    }

    /// The controller reads `out.len()` bytes of memory at `addr`.
    ///
    /// # Safety
    /// `addr..addr + out.len()` must be readable host memory.
    pub(crate) unsafe fn device_read(&mut self, addr: usize, out: &mut [u8]) -> Result<(), String> {
        let mut stale = 0;
        let mut at = 0;
        for (line, bytes) in pieces(addr..addr + out.len()) {
            // SAFETY: the caller's contract covers these bytes.
            if unsafe { self.dirty(line, bytes.clone()) } {
                stale += 1;
            }
            let l = self.line(line);
            out[at..at + bytes.len()].copy_from_slice(&l.memory[bytes.clone()]);
            at += bytes.len();
        }
        if stale == 0 {
            Ok(())
        } else {
            Err(format!(
                "DMA read of {} bytes at {addr:#x}: {stale} cache line(s) hold CPU data not \
                 written back (no clean before the transfer), the controller reads stale memory",
                out.len()
            ))
        }
    }

    /// The controller writes `data` to memory at `addr`, inside the mapped buffer `buffer`.
    /// A line the CPU holds dirty is then written back over it.
    ///
    /// # Safety
    /// `buffer` must be readable host memory and hold `addr..addr + data.len()`.
    pub(crate) unsafe fn device_write(
        &mut self,
        addr: usize,
        data: &[u8],
        buffer: Range<usize>,
    ) -> Result<(), String> {
        let mut evicted = 0;
        let mut at = 0;
        for (line, bytes) in pieces(addr..addr + data.len()) {
            let own = buffer.start.max(line) - line..buffer.end.min(line + CACHE_LINE) - line;
            // SAFETY: `own` lies in `buffer` (the caller's contract).
            let dirty = unsafe { self.dirty(line, own.clone()) };
            let l = self.line(line);
            l.memory[bytes.clone()].copy_from_slice(&data[at..at + bytes.len()]);
            at += bytes.len();
            l.written = true;
            if dirty {
                evicted += 1;
                // SAFETY: as above.
                unsafe { self.write_back(line, own) };
            }
        }
        if evicted == 0 {
            Ok(())
        } else {
            Err(format!(
                "DMA write of {} bytes at {addr:#x}: {evicted} cache line(s) held dirty CPU data \
                 (no clean before the transfer); written back, they overwrite what the \
                 controller wrote",
                data.len()
            ))
        }
    }

    /// Checks `range`, going back to the CPU, for lines the controller wrote and the CPU did
    /// not invalidate: the CPU would read stale data there.
    pub(crate) fn taken_back(&self, range: Range<usize>) -> Result<(), String> {
        let (start, len) = (range.start, range.len());
        let stale = pieces(range)
            .filter(|(line, _)| self.lines.get(line).is_some_and(|l| l.written))
            .count();
        if stale == 0 {
            Ok(())
        } else {
            Err(format!(
                "buffer of {len} bytes at {start:#x} taken back with {stale} line(s) the \
                 controller wrote not invalidated: the CPU reads stale data"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two cache lines of host memory standing in for the CPU's view of a buffer; every access
    /// goes through its address, as the model's do.
    #[repr(C, align(64))]
    struct Lines([u8; 128]);

    struct Cpu(Box<Lines>);

    impl Cpu {
        fn new(fill: u8) -> Self {
            Self(Box::new(Lines([fill; 128])))
        }

        fn range(&mut self) -> Range<usize> {
            let a = self.0 .0.as_mut_ptr() as usize;
            a..a + 128
        }

        fn bytes(&mut self) -> [u8; 128] {
            let a = self.range().start;
            // SAFETY: our own 128 bytes.
            unsafe { core::ptr::read_volatile(a as *const [u8; 128]) }
        }

        fn poke(&mut self, i: usize, value: u8) {
            let a = self.range().start;
            // SAFETY: `i` indexes our own 128 bytes.
            unsafe { core::ptr::write_volatile((a + i) as *mut u8, value) }
        }
    }

    // SAFETY (every model call below): the ranges are the `Cpu` buffer's, alive throughout and
    // used only through its address.

    #[test]
    fn memory_sees_only_what_was_cleaned() {
        let mut cpu = Cpu::new(7);
        let r = cpu.range();
        let mut m = CacheModel::default();
        let mut seen = [0u8; 128];
        assert!(unsafe { m.device_read(r.start, &mut seen) }.is_err());
        assert_eq!(seen, [JUNK; 128]);
        unsafe { m.clean(r.clone()) };
        unsafe { m.device_read(r.start, &mut seen) }.unwrap();
        assert_eq!(seen, [7; 128]);
        cpu.poke(100, 9);
        assert!(unsafe { m.device_read(r.start, &mut seen) }.is_err());
        assert_eq!(seen[100], 7, "the controller still reads memory");
        unsafe { m.device_read(r.start, &mut seen[..64]) }.unwrap();
    }

    #[test]
    fn the_cpu_sees_what_the_controller_wrote_only_after_an_invalidate() {
        let mut cpu = Cpu::new(0);
        let r = cpu.range();
        let mut m = CacheModel::default();
        unsafe { m.clean(r.clone()) };
        unsafe { m.device_write(r.start + 64, &[1; 64], r.clone()) }.unwrap();
        assert!(m.taken_back(r.clone()).is_err());
        assert_eq!(cpu.bytes()[64], 0, "stale until invalidated");
        unsafe { m.invalidate(r.clone()) }.unwrap();
        let seen = cpu.bytes();
        assert_eq!(seen[64..], [1; 64]);
        assert_eq!(seen[..64], [0; 64]);
        m.taken_back(r).unwrap();
    }

    #[test]
    fn a_dirty_line_is_written_back_over_the_controllers_data() {
        let mut cpu = Cpu::new(5);
        let r = cpu.range();
        let mut m = CacheModel::default();
        // Never cleaned: the CPU's 5s are dirty in the cache.
        let why = unsafe { m.device_write(r.start, &[1; 128], r.clone()) }.unwrap_err();
        assert!(why.contains("2 cache line(s)"), "{why}");
        unsafe { m.invalidate(r.clone()) }.unwrap();
        assert_eq!(cpu.bytes(), [5; 128], "the controller's data is lost");
    }

    #[test]
    fn invalidating_part_of_a_line_is_reported() {
        let mut cpu = Cpu::new(0);
        let r = cpu.range();
        let mut m = CacheModel::default();
        let why = unsafe { m.invalidate(r.start + 8..r.start + 64) }.unwrap_err();
        assert!(why.contains("not whole cache lines"), "{why}");
        unsafe { m.invalidate(r.start..r.start + 64) }.unwrap();
    }
}
