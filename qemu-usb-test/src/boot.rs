//! Reset entry: park every core but core 0, set the stack, clear .bss, allow FP/SIMD, call main.
//!
//! QEMU's raspi3b starts core 0 at the ELF entry and may start the others there too (or hold
//! them in its own spin loop); MPIDR_EL1.Aff0 tells them apart. The MMU and caches stay off, so
//! every data access is Device-nGnRnE: no cache maintenance around DMA, and the target's
//! `+strict-align` keeps the compiler from emitting unaligned accesses, which Device memory
//! faults on. CPTR_EL2/CPACR_EL1 are opened so FP/SIMD registers (which `core` uses) do not trap,
//! at whichever of EL3 (QEMU's raspi3b starts a bare ELF there), EL2 or EL1 the core starts.

core::arch::global_asm!(
    r#"
    .section .text.boot, "ax"
    .global _start
_start:
    mrs     x1, mpidr_el1
    and     x1, x1, #3
    cbz     x1, 2f
1:  wfe
    b       1b
2:  mrs     x1, CurrentEL
    lsr     x1, x1, #2
    cmp     x1, #3
    b.ne    7f
    msr     cptr_el3, xzr
7:  cmp     x1, #2
    b.lo    3f
    msr     cptr_el2, xzr
3:  mov     x1, #(3 << 20)
    msr     cpacr_el1, x1
    isb
    ldr     x1, =__stack_top
    mov     sp, x1
    ldr     x1, =__bss_start
    ldr     x2, =__bss_end
4:  cmp     x1, x2
    b.hs    5f
    str     xzr, [x1], #8
    b       4b
5:  bl      main
6:  wfe
    b       6b
"#
);

/// The exception level the core runs at (CurrentEL bits 3:2).
pub fn current_el() -> u64 {
    let el: u64;
    // SAFETY: reading CurrentEL has no side effects and is allowed at EL1 and above.
    unsafe { core::arch::asm!("mrs {}, CurrentEL", out(reg) el, options(nomem, nostack)) };
    el >> 2
}
