//! The machine timer: the time counter, and this hart's `mtimecmp` compare register in a CLINT.
//!
//! Layout (SiFive CLINT, also the K230's per canmv-k230/rtsmart `bsp/maix3/c908/clint.h`):
//! `mtimecmp[hart]` at +0x4000 + 8 * hart, written as 32-bit halves as rtsmart `c908/clint.c`
//! does, and on QEMU `mtime` at +0xBFF8. The K230's core has no readable `mtime`: its CLINT is a
//! `thead,c900-clint`, for which OpenSBI records that there is no mtime register, not even for
//! reading (riscv-software-src/opensbi `lib/utils/timer/fdt_timer_mtimer.c`); the vendor reads
//! the `time` CSR (rtsmart `c908/clint.c` `counter()`, `c908/tick.c`; U-Boot's K230 `start.S`
//! executes `rdtime` in M-mode). The board table says which counter a board has.

use k230_hal::reg::RegisterBlock;

/// Offset of hart 0's `mtimecmp`.
const MTIMECMP: usize = 0x4000;
/// Offset of `mtime`.
const MTIME: usize = 0xBFF8;
/// Bytes of register space the driver touches (for sizing the MMIO block).
pub const CLINT_SPAN: usize = 0xC000;

/// Where a board's time counter is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeSource {
    /// The `time` CSR (`rdtime`): the K230's.
    Csr,
    /// The CLINT's `mtime` register (QEMU virt).
    Mtime,
}

impl TimeSource {
    /// The current time: from `csr` (which reads the `time` CSR) or the `mtime` register of the
    /// CLINT behind `clint`, read as two halves without tearing.
    pub fn now(self, clint: &impl RegisterBlock, csr: impl FnOnce() -> u64) -> u64 {
        match self {
            Self::Csr => csr(),
            Self::Mtime => loop {
                let hi = clint.read32(MTIME + 4);
                let lo = clint.read32(MTIME);
                if clint.read32(MTIME + 4) == hi {
                    break (u64::from(hi) << 32) | u64::from(lo);
                }
            },
        }
    }
}

/// This hart's timer compare register in a CLINT.
#[derive(Debug)]
pub struct Clint<R> {
    regs: R,
    hart: usize,
}

impl<R: RegisterBlock> Clint<R> {
    /// The timer of `hart` in the CLINT behind `regs`.
    pub fn new(regs: R, hart: usize) -> Self {
        Self { regs, hart }
    }

    /// The CLINT's registers.
    pub fn regs(&self) -> &R {
        &self.regs
    }

    /// Sets this hart's compare value; the timer interrupt is pending while the time is at or
    /// past `deadline`.
    ///
    /// The high half goes to all-ones first so no intermediate value fires early.
    pub fn set_deadline(&self, deadline: u64) {
        let at = MTIMECMP + 8 * self.hart;
        self.regs.write32(at + 4, u32::MAX);
        self.regs.write32(at, deadline as u32);
        self.regs.write32(at + 4, (deadline >> 32) as u32);
    }
}

/// `mtime` ticks in `micros` microseconds at `timebase_hz`, saturating.
pub fn ticks_in(micros: u64, timebase_hz: u64) -> u64 {
    let ticks = u128::from(micros) * u128::from(timebase_hz) / 1_000_000;
    u64::try_from(ticks).unwrap_or(u64::MAX)
}

/// Microseconds in `ticks` at `timebase_hz` (0 Hz gives 0).
pub fn micros_in(ticks: u64, timebase_hz: u64) -> u64 {
    if timebase_hz == 0 {
        return 0;
    }
    let micros = u128::from(ticks) * 1_000_000 / u128::from(timebase_hz);
    u64::try_from(micros).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k230_hal::reg::MockRegisterBlock;
    use mockall::{predicate::eq, Sequence};

    #[test]
    fn conversions() {
        assert_eq!(ticks_in(100_000, 27_000_000), 2_700_000);
        assert_eq!(ticks_in(1, 10_000_000), 10);
        assert_eq!(ticks_in(u64::MAX, u64::MAX), u64::MAX);
        assert_eq!(micros_in(27_000_000, 27_000_000), 1_000_000);
        assert_eq!(micros_in(5, 0), 0);
    }

    #[test]
    fn deadline_is_written_high_first_for_the_harts_slot() {
        let mut regs = MockRegisterBlock::new();
        let mut seq = Sequence::new();
        let slot = MTIMECMP + 8 * 3;
        for (offset, value) in [
            (slot + 4, u32::MAX),
            (slot, 0x9abc_def0),
            (slot + 4, 0x1234_5678),
        ] {
            regs.expect_write32()
                .with(eq(offset), eq(value))
                .times(1)
                .in_sequence(&mut seq)
                .return_const(());
        }
        Clint::new(regs, 3).set_deadline(0x1234_5678_9abc_def0);
    }

    #[test]
    fn the_csr_source_reads_no_clint_register() {
        // No expectations: any CLINT access fails the test.
        let regs = MockRegisterBlock::new();
        assert_eq!(
            TimeSource::Csr.now(&regs, || 0x1234_5678_9abc),
            0x1234_5678_9abc
        );
    }

    #[test]
    fn now_rereads_when_the_low_half_wraps() {
        let mut regs = MockRegisterBlock::new();
        let mut seq = Sequence::new();
        // First attempt: high half changes between reads (low wrapped); second is stable.
        let reads: [(usize, u32); 6] = [
            (MTIME + 4, 1),
            (MTIME, 0xffff_fff0),
            (MTIME + 4, 2),
            (MTIME + 4, 2),
            (MTIME, 0x10),
            (MTIME + 4, 2),
        ];
        for (offset, value) in reads {
            regs.expect_read32()
                .with(eq(offset))
                .times(1)
                .in_sequence(&mut seq)
                .return_const(value);
        }
        let csr = || panic!("mtime boards do not read the CSR");
        assert_eq!(TimeSource::Mtime.now(&regs, csr), (2 << 32) | 0x10);
    }
}
