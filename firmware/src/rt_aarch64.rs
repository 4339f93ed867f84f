//! The bare-metal runtime on AArch64 (QEMU raspi3b): entry, exception levels, the identity map,
//! exception vectors, the generic timer and its interrupt, halt and reset. Same interface as the
//! RISC-V runtime (`rt.rs`), which `main.rs` picks for the other boards.
//!
//! Entry: QEMU starts core 0 at the ELF entry at EL3 (and may start the others there too: they
//! park); a boot loader may start it at EL2. `_start` drops to EL1 (AArch64, non-secure, no
//! FP/SIMD traps at any level, EL1 allowed the physical counter, a zero virtual offset), installs
//! the vectors, sets the stack and the thread pointer (picolibc's TLS errno), zeroes `.tbss` and
//! `.bss` and calls `fw_main(0)`. [`init_caches`] then switches the MMU on with an identity map
//! ([`firmware::mmu`]): RAM Normal cacheable (the C side needs unaligned accesses and `dc zva`),
//! devices Device-nGnRnE. The DWC2's DMA buffers are in cacheable RAM, and a BCM2837's DWC2 does
//! not snoop the ARM caches, so they are maintained by virtual address to the point of coherency
//! ([`dma_clean`], [`dma_invalidate`]); QEMU has no cache model (its DMA sees what the CPU wrote
//! at once), so there the instructions run but change nothing a test could see.
//!
//! The timer is the generic timer's virtual timer (`CNTV_*`, counting `CNTVCT_EL0`); its
//! interrupt reaches the core through the BCM2836 local interrupt controller (QA7 rev 3.4: core
//! 0's timer interrupt control at +0x40, bit 3 `nCNTVIRQ` IRQ enable; core 0's IRQ source at
//! +0x60, bit 3 `CNTVIRQ`). Register encodings: Arm Architecture Reference Manual (ARM DDI 0487).

use core::arch::{asm, global_asm};
use core::fmt::Write as _;
use firmware::board::{Caches, PowerSpec, TimerSpec, SELECTED};
use firmware::mmu::{self, Layout, Tables};
use k230_hal::reg::{Mmio, RegisterBlock};

use crate::boot;

// Entry. Secondary cores wait forever. From EL3: lower levels AArch64 and non-secure (SCR_EL3
// RW bit 10, NS bit 0, RES1 bits 5:4), no FP traps (CPTR_EL3 = 0). From EL3 or EL2: EL1 is AArch64
// (HCR_EL2.RW bit 31; IRQs stay at EL1), EL1 may read the physical counter and timer
// (CNTHCTL_EL2 EL1PCTEN, EL1PCEN), CNTVOFF_EL2 = 0 so the virtual counter is the physical one,
// no FP traps (CPTR_EL2: its RES1 bits only); then `eret` to EL1h with DAIF masked (SPSR 0x3c5).
// At EL1: FP/SIMD on (CPACR_EL1.FPEN), vectors, stack, TLS, .tbss/.bss zeroed, fw_main(0).
global_asm!(
    r#"
    .section .text.entry, "ax"
    .global _start
_start:
    mrs     x0, mpidr_el1
    and     x0, x0, #0xff
    cbz     x0, 2f
1:  wfe
    b       1b
2:  mrs     x0, CurrentEL
    lsr     x0, x0, #2
    cmp     x0, #2
    b.lo    5f
    mov     x1, #(1 << 31)
    msr     hcr_el2, x1
    mov     x1, #3
    msr     cnthctl_el2, x1
    msr     cntvoff_el2, xzr
    mov     x1, #0x33ff
    msr     cptr_el2, x1
    mov     x1, #0x3c5
    adr     x2, 5f
    cmp     x0, #3
    b.ne    3f
    msr     cptr_el3, xzr
    mov     x3, #0x431
    msr     scr_el3, x3
    msr     spsr_el3, x1
    msr     elr_el3, x2
    eret
3:  msr     spsr_el2, x1
    msr     elr_el2, x2
    eret
5:  mov     x1, #(3 << 20)
    msr     cpacr_el1, x1
    isb
    adr     x1, _vectors
    msr     vbar_el1, x1
    ldr     x1, =_stack_top
    mov     sp, x1
    ldr     x1, =__tls_base
    sub     x1, x1, #16
    msr     tpidr_el0, x1
    ldr     x1, =_sbss
    ldr     x2, =_ebss
6:  cmp     x1, x2
    b.hs    7f
    str     xzr, [x1], #8
    b       6b
7:  mov     x0, #0
    bl      fw_main
8:  wfi
    b       8b
"#
);

// Exception vectors (VBAR_EL1, 2 KiB aligned, 16 entries of 0x80 bytes). The firmware runs at
// EL1 on SP_EL1, so the IRQ entry of "current EL with SPx" (offset 0x280) is the timer's; every
// other entry is a fault, reported with its number by `exception_handler`.
//
// The IRQ entry saves what the interrupted code may hold: all general registers, ELR/SPSR, the
// FP control and status, and all 32 SIMD registers (Rust may use them for any copy, and the
// C code holds doubles there), then calls `irq_handler`.
global_asm!(
    r#"
    .section .text.vectors, "ax"
    .balign 2048
    .global _vectors
_vectors:
    .irp n, 0, 1, 2, 3, 4
    .balign 128
    mov     x0, #\n
    b       _fault_entry
    .endr
    .balign 128
    b       _irq_entry
    .irp n, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
    .balign 128
    mov     x0, #\n
    b       _fault_entry
    .endr

_fault_entry:
    mrs     x1, esr_el1
    mrs     x2, elr_el1
    mrs     x3, far_el1
    bl      exception_handler
9:  wfi
    b       9b

_irq_entry:
    sub     sp, sp, #800
    stp     x0, x1, [sp, #0]
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x19, [sp, #144]
    stp     x20, x21, [sp, #160]
    stp     x22, x23, [sp, #176]
    stp     x24, x25, [sp, #192]
    stp     x26, x27, [sp, #208]
    stp     x28, x29, [sp, #224]
    mrs     x0, elr_el1
    stp     x30, x0, [sp, #240]
    mrs     x0, spsr_el1
    mrs     x1, fpcr
    stp     x0, x1, [sp, #256]
    mrs     x0, fpsr
    str     x0, [sp, #272]
    add     x0, sp, #288
    stp     q0, q1, [x0, #0]
    stp     q2, q3, [x0, #32]
    stp     q4, q5, [x0, #64]
    stp     q6, q7, [x0, #96]
    stp     q8, q9, [x0, #128]
    stp     q10, q11, [x0, #160]
    stp     q12, q13, [x0, #192]
    stp     q14, q15, [x0, #224]
    stp     q16, q17, [x0, #256]
    stp     q18, q19, [x0, #288]
    stp     q20, q21, [x0, #320]
    stp     q22, q23, [x0, #352]
    stp     q24, q25, [x0, #384]
    stp     q26, q27, [x0, #416]
    stp     q28, q29, [x0, #448]
    stp     q30, q31, [x0, #480]
    bl      irq_handler
    add     x0, sp, #288
    ldp     q0, q1, [x0, #0]
    ldp     q2, q3, [x0, #32]
    ldp     q4, q5, [x0, #64]
    ldp     q6, q7, [x0, #96]
    ldp     q8, q9, [x0, #128]
    ldp     q10, q11, [x0, #160]
    ldp     q12, q13, [x0, #192]
    ldp     q14, q15, [x0, #224]
    ldp     q16, q17, [x0, #256]
    ldp     q18, q19, [x0, #288]
    ldp     q20, q21, [x0, #320]
    ldp     q22, q23, [x0, #352]
    ldp     q24, q25, [x0, #384]
    ldp     q26, q27, [x0, #416]
    ldp     q28, q29, [x0, #448]
    ldp     q30, q31, [x0, #480]
    ldr     x0, [sp, #272]
    msr     fpsr, x0
    ldp     x0, x1, [sp, #256]
    msr     spsr_el1, x0
    msr     fpcr, x1
    ldp     x30, x0, [sp, #240]
    msr     elr_el1, x0
    ldp     x0, x1, [sp, #0]
    ldp     x2, x3, [sp, #16]
    ldp     x4, x5, [sp, #32]
    ldp     x6, x7, [sp, #48]
    ldp     x8, x9, [sp, #64]
    ldp     x10, x11, [sp, #80]
    ldp     x12, x13, [sp, #96]
    ldp     x14, x15, [sp, #112]
    ldp     x16, x17, [sp, #128]
    ldp     x18, x19, [sp, #144]
    ldp     x20, x21, [sp, #160]
    ldp     x22, x23, [sp, #176]
    ldp     x24, x25, [sp, #192]
    ldp     x26, x27, [sp, #208]
    ldp     x28, x29, [sp, #224]
    add     sp, sp, #800
    eret
"#
);

/// Core 0's Core Timers interrupt control register, from the local peripherals' base.
const CORE0_TIMER_IRQ_CONTROL: usize = 0x40;
/// Core 0's IRQ source register.
const CORE0_IRQ_SOURCE: usize = 0x60;
/// Both: bit 3, the virtual timer (`nCNTVIRQ`).
const CNTV_IRQ: u32 = 1 << 3;
/// Bytes of the local peripherals the runtime touches.
const LOCAL_INTC_LEN: usize = 0x100;
/// `CNTV_CTL_EL0.ENABLE` (interrupt unmasked: IMASK clear).
const CNTV_ENABLE: u64 = 1;

/// `PM_RSTC`, `PM_RSTS`, `PM_WDOG` of the BCM2835 power management block, the password every
/// write carries, the full-reset configuration and the "partition 63" halt marker (Linux
/// `drivers/watchdog/bcm2835_wdt.c`; QEMU `hw/misc/bcm2835_powermgt.c`).
const PM_RSTC: usize = 0x1C;
const PM_RSTS: usize = 0x20;
const PM_WDOG: usize = 0x24;
const PM_PASSWORD: u32 = 0x5A00_0000;
const PM_RSTC_FULL_RESET: u32 = 0x20;
const PM_RSTS_HALT: u32 = 0x555;
/// Watchdog ticks (of 16 µs) before the reset on hardware; QEMU resets at once.
const PM_WDOG_TICKS: u32 = 10;
/// Bytes of the power management block used.
const PM_LEN: usize = 0x28;

/// The translation tables of the identity map.
static mut TABLES: Tables = Tables::new();

/// How [`init_caches`] left memory, for the boot log: the identity map is on, RAM cacheable
/// below this address, devices from it.
pub struct CacheState {
    devices_from: usize,
}

impl core::fmt::Debug for CacheState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "MMU on, identity map: RAM cacheable below {:#x}, devices above",
            self.devices_from
        )
    }
}

/// Switches the MMU and caches on over the identity map. First thing in `fw_main`: until then
/// only Rust (built for strict alignment) runs.
pub fn init_caches() -> CacheState {
    let Caches::ArmIdentityMap { devices_from } = SELECTED.caches else {
        unreachable!("an AArch64 board runs on an identity map");
    };
    let layout = Layout {
        device_from: devices_from as u64,
        mapped_end: 2 * mmu::GIB,
    };
    // SAFETY: the only reference ever made to TABLES, on the only core, before the MMU uses it.
    let tables = unsafe { &mut *(&raw mut TABLES) };
    let l2 = tables.l2_address();
    if tables.map(layout, l2).is_err() {
        // The board table's layout is checked by a unit test; nothing is mapped otherwise.
        halt(Err(4));
    }
    // SAFETY: the tables map every address the firmware uses to itself (code, data, stack and
    // heap are RAM below `devices_from`, registers above), so turning translation on changes
    // no address; the barriers make the table writes visible to the walker first and the new
    // regime effective before the next instruction.
    unsafe {
        asm!("msr mair_el1, {}", in(reg) mmu::MAIR_EL1, options(nostack));
        asm!("msr tcr_el1, {}", in(reg) mmu::TCR_EL1, options(nostack));
        asm!("msr ttbr0_el1, {}", in(reg) tables.l1_address(), options(nostack));
        asm!(
            "dsb ish",
            "tlbi vmalle1",
            "dsb ish",
            "isb",
            options(nostack)
        );
        asm!("msr sctlr_el1, {}", "isb", in(reg) mmu::SCTLR_EL1, options(nostack));
    }
    CacheState { devices_from }
}

fn local_intc() -> Mmio {
    let TimerSpec::ArmGeneric { local_intc } = SELECTED.timer else {
        unreachable!("an AArch64 board has the generic timer");
    };
    // SAFETY: the board's BCM2836 local peripherals; the runtime uses only core 0's timer
    // interrupt control and IRQ source words.
    unsafe { Mmio::new(local_intc, LOCAL_INTC_LEN) }
}

/// Bytes of the smallest data cache line (`CTR_EL0.DminLine`, log2 of 4-byte words; 64 on the
/// Cortex-A53).
fn dcache_line() -> usize {
    let ctr: u64;
    // SAFETY: reading CTR_EL0 has no side effects and is allowed at EL1.
    unsafe { asm!("mrs {}, ctr_el0", out(reg) ctr, options(nomem, nostack)) };
    4 << ((ctr >> 16) & 0xf)
}

/// Runs `op` on the address of every data cache line covering `addr..addr + len`, then waits
/// (`dsb sy`) until the maintenance is complete for every observer, the DWC2 included.
fn by_line(addr: usize, len: usize, op: impl Fn(usize)) {
    let line = dcache_line();
    let mut at = addr & !(line - 1);
    while at < addr.saturating_add(len) {
        op(at);
        at += line;
    }
    // SAFETY: a barrier only.
    unsafe { asm!("dsb sy", options(nostack)) };
}

/// Cleans `addr..addr + len` to the point of coherency (`dc cvac`): what the CPU wrote is in
/// memory before the controller reads it (upy-cmodule's `CacheHooks` clean).
pub extern "C" fn dma_clean(addr: usize, len: usize) {
    by_line(addr, len, |at| {
        // SAFETY: cleaning a line writes back dirty data and changes no value the CPU reads;
        // the address is mapped (the driver's buffers are RAM of the identity map).
        unsafe { asm!("dc cvac, {}", in(reg) at, options(nostack)) }
    });
}

/// Invalidates `addr..addr + len` to the point of coherency (`dc ivac`): the CPU's next reads
/// come from what the controller wrote (upy-cmodule's `CacheHooks` invalidate).
///
/// # Safety
/// As `k230_hal::reg::dma::CacheMaintenance::invalidate`: whole lines the controller wrote,
/// holding nothing the CPU still needs.
pub unsafe extern "C" fn dma_invalidate(addr: usize, len: usize) {
    by_line(addr, len, |at| {
        // SAFETY: per the caller, the lines hold no data of the CPU's; the address is mapped.
        unsafe { asm!("dc ivac, {}", in(reg) at, options(nostack)) }
    });
}

/// The time counter (`CNTVCT_EL0`, at the board's timebase).
pub fn timer_count() -> u64 {
    let count: u64;
    // SAFETY: reading the virtual counter has no side effects; EL1 may read it.
    unsafe { asm!("isb", "mrs {}, cntvct_el0", out(reg) count, options(nomem, nostack)) };
    count
}

/// Arms the timer: its interrupt is pending while the counter is at or past `deadline`.
pub fn set_timer_deadline(deadline: u64) {
    // SAFETY: the virtual timer belongs to this runtime; writing its compare value and enabling
    // it only decides when its interrupt is raised.
    unsafe {
        asm!("msr cntv_cval_el0, {}", in(reg) deadline, options(nomem, nostack));
        asm!("msr cntv_ctl_el0, {}", "isb", in(reg) CNTV_ENABLE, options(nomem, nostack));
    }
}

/// Routes the virtual timer's interrupt to core 0's IRQ and unmasks IRQs.
pub fn enable_timer_interrupt() {
    local_intc().write32(CORE0_TIMER_IRQ_CONTROL, CNTV_IRQ);
    // SAFETY: the vectors are installed; clearing DAIF.I only lets IRQs reach them.
    unsafe { asm!("msr daifclr, #2", options(nomem, nostack)) };
}

/// Masks IRQs.
fn disable_interrupts() {
    // SAFETY: setting DAIF.I only masks IRQs.
    unsafe { asm!("msr daifset, #2", options(nomem, nostack)) };
}

/// Sleeps until an interrupt is pending.
pub fn wait_for_interrupt() {
    // SAFETY: `wfi` only stalls the core until an interrupt is pending.
    unsafe { asm!("wfi", options(nomem, nostack)) };
}

fn power_management() -> Option<Mmio> {
    match SELECTED.power {
        // SAFETY: the board's power management block; its reset registers are used only here.
        PowerSpec::Bcm2835Pm { base } => Some(unsafe { Mmio::new(base, PM_LEN) }),
        _ => None,
    }
}

/// Resets the machine through the power-management watchdog (`machine.reset()`); returns
/// `ENODEV` where the board has none.
pub fn reset() -> i32 {
    let Some(pm) = power_management() else {
        return crate::upy::ENODEV;
    };
    disable_interrupts();
    boot::console().flush();
    pm.write32(PM_WDOG, PM_PASSWORD | PM_WDOG_TICKS);
    pm.write32(PM_RSTC, PM_PASSWORD | PM_RSTC_FULL_RESET);
    loop {
        wait_for_interrupt();
    }
}

/// Stops the machine: a success powers QEMU off (halt marker, then the reset), a failure parks
/// the core with interrupts off (the watchdog cannot carry an exit status).
pub fn halt(outcome: Result<(), u16>) -> ! {
    disable_interrupts();
    boot::console().flush();
    if let (Ok(()), Some(pm)) = (outcome, power_management()) {
        pm.write32(PM_RSTS, PM_PASSWORD | PM_RSTS_HALT);
        pm.write32(PM_RSTC, PM_PASSWORD | PM_RSTC_FULL_RESET);
    }
    loop {
        wait_for_interrupt();
    }
}

/// Called by the IRQ vector.
#[no_mangle]
extern "C" fn irq_handler() {
    if local_intc().read32(CORE0_IRQ_SOURCE) & CNTV_IRQ != 0 {
        boot::on_timer();
    }
}

/// Called by every other vector: reports the exception and parks.
#[no_mangle]
extern "C" fn exception_handler(vector: usize, esr: u64, elr: u64, far: u64) -> ! {
    let _ = writeln!(
        boot::console(),
        "\nEXCEPTION: vector {vector} ESR_EL1 {esr:#x} at ELR_EL1 {elr:#x} (FAR_EL1 {far:#x})"
    );
    halt(Err(2))
}

/// The end of a fatal error (after its message): parks the core.
#[no_mangle]
extern "C" fn k230upy_fatal() -> ! {
    halt(Err(1))
}
