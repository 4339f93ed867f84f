// The seam between the port's C and the firmware's Rust runtime (firmware/src/upy.rs).
#ifndef K230UPY_PORT_H
#define K230UPY_PORT_H

#include <stddef.h>
#include <stdint.h>

// --- Rust -> C: the port's entry, called once the runtime is up; never returns. ---
// Runs the soft-reset loop over the GC heap [heap_start, heap_end) on a stack of stack_bytes.
void k230upy_main(void *heap_start, void *heap_end, size_t stack_bytes) __attribute__((noreturn));

// --- C -> Rust: the runtime. ---
// Writes to the console UART (blocking).
void k230upy_console_write(const char *data, size_t len);
// The next byte the console received, or -1 when there is none (never blocks).
int k230upy_console_read(void);
// Whether a received byte is waiting (nonzero), without taking it.
int k230upy_console_peek(void);
// Microseconds since boot (monotonic, 64 bits).
uint64_t k230upy_ticks_us(void);
// The CPU's cycle (or fastest) counter.
uint64_t k230upy_ticks_cpu(void);
// Ends the firmware after a fatal error (QEMU: powers off with a failure status).
void k230upy_fatal(void) __attribute__((noreturn));
// os.uname()'s sysname, nodename, release, version and machine.
extern const char *const k230upy_uname[5];
// Links the port's Rust modules (time, select, os, machine) into the running interpreter; after
// every mp_init. Returns 0, or -1 if interning their names raised (MemoryError).
int k230upy_register_modules(void);
// Sleeps until the next interrupt (the timer tick comes every millisecond at the latest).
void k230upy_wait_for_interrupt(void);

#endif
