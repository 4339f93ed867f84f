//! The bare-metal runtime on RISC-V (k230, qemu-virt): entry, trap vector, machine-mode CSRs,
//! caches, the time counter and the CLINT timer, halt and reset (`rt_aarch64.rs` is the AArch64
//! one, same interface). There is no Rust heap (MicroPython has its GC heap); a panic goes
//! through upy-cmodule's handler to the port's `nlr_jump_fail`, which ends in [`k230upy_fatal`].
//!
//! Machine mode throughout: QEMU `-bios none` starts the hart in M-mode at the ELF entry, and the
//! vendor U-Boot starts the K230 big core from reset (reset vector register 0x9110_2104) at the
//! image's load address, also in M-mode (canmv-k230/u-boot `board/kendryte/common/k230_boot.c`,
//! `k230_boot_core` / `k230_boot_reset_big_hard_and_run`).

use core::arch::{asm, global_asm};
use core::fmt::Write as _;
use firmware::board::{Caches, PowerSpec, TimerSpec, SELECTED};
use firmware::clint::{Clint, TimeSource, CLINT_SPAN};
use k230_hal::c908::{self, C908Cache, CacheSetup};
use k230_hal::reg::dma::CacheMaintenance;
use k230_hal::reg::Mmio;
use k230_hal::sysctl;

use crate::boot::console;

// Entry: interrupts off, FPU on (lp64d code may touch FP registers), trap vector set early so a
// fault during start-up is reported, stack, thread pointer at the TLS image (picolibc's errno),
// `.tbss` and `.bss` zeroed, then `fw_main(mhartid)`.
//
// Trap entry: saves the caller-saved integer registers (the Rust handler saves the rest per the
// calling convention), passes mcause/mepc/mtval, restores and returns with `mret`. FP registers
// are not saved: the handler does no floating point.
global_asm!(
    r#"
    .section .text.entry, "ax"
    .global _start
_start:
    csrw mie, zero
    li t0, 0x2000
    csrs mstatus, t0
    la t0, _trap_entry
    csrw mtvec, t0
    la sp, _stack_top
    la tp, __tls_base
    la t0, _sbss
    la t1, _ebss
1:
    bgeu t0, t1, 2f
    sd zero, 0(t0)
    addi t0, t0, 8
    j 1b
2:
    csrr a0, mhartid
    call fw_main
3:
    wfi
    j 3b

    .section .text.trap, "ax"
    .align 4
    .global _trap_entry
_trap_entry:
    addi sp, sp, -128
    sd ra, 0(sp)
    sd t0, 8(sp)
    sd t1, 16(sp)
    sd t2, 24(sp)
    sd a0, 32(sp)
    sd a1, 40(sp)
    sd a2, 48(sp)
    sd a3, 56(sp)
    sd a4, 64(sp)
    sd a5, 72(sp)
    sd a6, 80(sp)
    sd a7, 88(sp)
    sd t3, 96(sp)
    sd t4, 104(sp)
    sd t5, 112(sp)
    sd t6, 120(sp)
    csrr a0, mcause
    csrr a1, mepc
    csrr a2, mtval
    call trap_handler
    ld ra, 0(sp)
    ld t0, 8(sp)
    ld t1, 16(sp)
    ld t2, 24(sp)
    ld a0, 32(sp)
    ld a1, 40(sp)
    ld a2, 48(sp)
    ld a3, 56(sp)
    ld a4, 64(sp)
    ld a5, 72(sp)
    ld a6, 80(sp)
    ld a7, 88(sp)
    ld t3, 96(sp)
    ld t4, 104(sp)
    ld t5, 112(sp)
    ld t6, 120(sp)
    addi sp, sp, 128
    mret
"#
);

/// `mcause` interrupt flag.
const MCAUSE_INTERRUPT: usize = 1 << 63;
/// `mcause` code of the machine timer interrupt.
const IRQ_MACHINE_TIMER: usize = 7;
/// `mie.MTIE`.
const MIE_MTIE: usize = 1 << 7;
/// `mstatus.MIE`.
const MSTATUS_MIE: usize = 1 << 3;
/// SiFive test finisher: power off, success.
const FINISHER_PASS: u32 = 0x5555;
/// SiFive test finisher: power off, failure; the exit code goes in the upper 16 bits.
const FINISHER_FAIL: u32 = 0x3333;
/// SiFive test finisher: reset (QEMU `hw/misc/sifive_test.c`).
const FINISHER_RESET: u32 = 0x7777;

/// How [`init_caches`] left the caches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheState {
    /// As the machine started (the board's caches need no set-up).
    AsReset,
    /// Set up by this firmware or found already on ([`c908::enable_caches`]).
    C908(CacheSetup),
}

/// Sets the caches up as the board needs. Call first thing, before any DMA.
pub fn init_caches() -> CacheState {
    match SELECTED.caches {
        Caches::AsReset => CacheState::AsReset,
        // SAFETY: once, in M-mode on the K230's C908, started from reset by U-Boot (nothing
        // cached yet); no DMA has started.
        Caches::TheadC908 => CacheState::C908(unsafe { c908::enable_caches() }),
        Caches::ArmIdentityMap { .. } => unreachable!("an AArch64 set-up on a RISC-V board"),
    }
}

/// The cache maintenance DMA needs on this board (none where the caches are as at reset).
#[derive(Clone, Copy, Debug, Default)]
pub struct BoardCache;

impl CacheMaintenance for BoardCache {
    fn clean(&self, addr: usize, len: usize) {
        if SELECTED.caches == Caches::TheadC908 {
            C908Cache.clean(addr, len);
        }
    }

    unsafe fn invalidate(&self, addr: usize, len: usize) {
        if SELECTED.caches == Caches::TheadC908 {
            // SAFETY: the caller's contract, passed on.
            unsafe { C908Cache.invalidate(addr, len) };
        }
    }
}

/// [`BoardCache::clean`] for upy-cmodule's `k230net_config_t.cache_clean`.
pub extern "C" fn dma_clean(addr: usize, len: usize) {
    BoardCache.clean(addr, len);
}

/// [`BoardCache::invalidate`] for upy-cmodule's `k230net_config_t.cache_invalidate`.
///
/// # Safety
/// As [`CacheMaintenance::invalidate`]: upy-cmodule's DMA mapper calls it only on buffers the
/// controller wrote, in whole lines.
pub unsafe extern "C" fn dma_invalidate(addr: usize, len: usize) {
    // SAFETY: the caller's contract, passed on.
    unsafe { BoardCache.invalidate(addr, len) };
}

/// The `time` CSR.
pub fn rdtime() -> u64 {
    let time: u64;
    // SAFETY: reading `time` has no side effect (M-mode: the K230's C908 and QEMU provide it).
    unsafe { asm!("rdtime {}", out(reg) time) };
    time
}

/// This hart's timer in the board's CLINT, and where the board reads the time counter.
fn timer() -> (Clint<Mmio>, TimeSource) {
    let TimerSpec::Clint { base, time } = SELECTED.timer else {
        unreachable!("a RISC-V board has a CLINT");
    };
    let hart: usize;
    // SAFETY: reading mhartid has no side effects.
    unsafe { asm!("csrr {}, mhartid", out(reg) hart) };
    // SAFETY: the selected board's CLINT is at `base`; only timer registers are used.
    (
        Clint::new(unsafe { Mmio::new(base, CLINT_SPAN) }, hart),
        time,
    )
}

/// The time counter at the board's timebase, from where the board has it (the `time` CSR on the
/// K230, `mtime` on QEMU virt).
pub fn timer_count() -> u64 {
    let (clint, time) = timer();
    time.now(clint.regs(), rdtime)
}

/// On a board that reads `mtime`, whether the `time` CSR reads the same counter (read between
/// two `mtime` reads); `None` on a board that reads only the CSR.
pub fn csr_in_step_with_mtime() -> Option<bool> {
    let (clint, time) = timer();
    if time != TimeSource::Mtime {
        return None;
    }
    let before = TimeSource::Mtime.now(clint.regs(), rdtime);
    let csr = rdtime();
    let after = TimeSource::Mtime.now(clint.regs(), rdtime);
    Some((before..=after).contains(&csr))
}

/// Arms the timer: its interrupt is pending while the time is at or past `deadline`.
pub fn set_timer_deadline(deadline: u64) {
    timer().0.set_deadline(deadline);
}

/// Enables the machine timer interrupt and interrupts globally.
pub fn enable_timer_interrupt() {
    // SAFETY: the trap vector is installed by `_start`; setting MTIE and MIE only lets the
    // timer interrupt reach it.
    unsafe {
        asm!("csrs mie, {}", in(reg) MIE_MTIE);
        asm!("csrs mstatus, {}", in(reg) MSTATUS_MIE);
    }
}

/// Disables interrupts globally.
fn disable_interrupts() {
    // SAFETY: clearing mstatus.MIE only masks interrupts.
    unsafe { asm!("csrc mstatus, {}", in(reg) MSTATUS_MIE) };
}

/// Sleeps until an interrupt is pending.
pub fn wait_for_interrupt() {
    // SAFETY: `wfi` has no effect beyond stalling the hart until an interrupt is pending.
    unsafe { asm!("wfi") };
}

/// Resets the machine (`machine.reset()`): the K230 through its system controller, QEMU through
/// its test finisher; returns `ENODEV` where the board has neither.
pub fn reset() -> i32 {
    match SELECTED.power {
        PowerSpec::K230Sysctl { boot } => {
            quiesce();
            // SAFETY: the board's system controller boot block, used only here; the write
            // resets the chip.
            let boot = unsafe { Mmio::new(boot, sysctl::k230::SYSCTL_BOOT_LEN) };
            sysctl::reset_soc(&boot);
        }
        PowerSpec::SifiveTest { base: finisher } => {
            quiesce();
            // SAFETY: the board's test finisher register; the write resets the machine.
            unsafe { core::ptr::write_volatile(finisher as *mut u32, FINISHER_RESET) };
        }
        PowerSpec::Bcm2835Pm { .. } => return crate::upy::ENODEV,
    }
    // Spin until the reset takes the core, as the vendor's reboot does.
    loop {
        core::hint::spin_loop();
    }
}

/// Interrupts off and the console drained: what precedes a reset or a halt.
fn quiesce() {
    disable_interrupts();
    console().flush();
}

/// Stops the machine: powers QEMU off through its finisher (exit status from `outcome`), or
/// parks the hart with interrupts off on boards without one.
pub fn halt(outcome: Result<(), u16>) -> ! {
    quiesce();
    if let PowerSpec::SifiveTest { base: finisher } = SELECTED.power {
        let value = match outcome {
            Ok(()) => FINISHER_PASS,
            Err(code) => FINISHER_FAIL | (u32::from(code) << 16),
        };
        // SAFETY: the board's test finisher register; the write powers the machine off.
        unsafe { core::ptr::write_volatile(finisher as *mut u32, value) };
    }
    loop {
        wait_for_interrupt();
    }
}

/// Called by `_trap_entry` with the trap's CSRs.
#[no_mangle]
extern "C" fn trap_handler(mcause: usize, mepc: usize, mtval: usize) {
    if mcause == MCAUSE_INTERRUPT | IRQ_MACHINE_TIMER {
        crate::boot::on_timer();
        return;
    }
    let _ = writeln!(
        console(),
        "\nTRAP: unexpected mcause {mcause:#x} at mepc {mepc:#x} (mtval {mtval:#x})"
    );
    halt(Err(2));
}

/// The end of a fatal error (after its message): powers QEMU off with a failure status, or
/// parks the hart.
#[no_mangle]
extern "C" fn k230upy_fatal() -> ! {
    halt(Err(1))
}
