/*
 * k230net: the `socket` and `network` modules of the K230 Rust network stack (upy-cmodule,
 * a Rust static library) as a MicroPython user C module.
 *
 * The firmware, in this order:
 *   1. once, before or after the interpreter starts:  k230net_start(&config)
 *      (USB controller reset, DWC2 host, the RTL8152 or a CDC-ECM function on the root port,
 *      netstack, DHCP);
 *   2. after every mp_init() (boot and soft reset), before any script runs:  k230net_register()
 *      (interns the modules' names as qstrs and fills their globals);
 *   3. often, from the port's event hook:  k230net_poll()
 *      (MICROPY_INTERNAL_EVENT_HOOK on MicroPython >= 1.22, MICROPY_EVENT_POLL_HOOK before).
 * All three run on the interpreter's thread. `import socket` works after step 2; the sockets
 * raise OSError(ENODEV) until step 1 succeeded.
 *
 * The firmware also provides the hooks at the end of this file; k230net.c implements them with
 * mp_hal_ticks_us() (which must count all 32 low bits before it wraps) and nlr_jump_fail().
 *
 * Memory: the library has no heap. Its state is static, about 350 KiB, almost all in .bss (zero
 * bytes, not in the image): the netstack's socket buffers (about 208 KiB), the DWC2 DMA memory
 * and the NIC and socket tables; only the netstack's sockets and tables, whose empty state is not
 * all zero bytes, are in .data (about 10 KiB, also in the image).
 * Stack: k230net_start needs about 120 KiB (measured in the riscv64 release build: its own frame
 * 66 KiB, the RTL8152 probe's 32 KiB, which grew by the RTL8152 driver's 17 KiB of larger TX
 * buffers since; drivers are built on the stack before they move into their statics); call it
 * where the stack is that large, e.g. from main() on the boot stack.
 * k230net_poll and the socket calls need a few KiB.
 * DMA uses physical addresses: the firmware must run with the K230's memory and registers
 * identity-mapped (bare metal), and call nothing else that drives the same USB controller.
 */
#ifndef K230NET_H
#define K230NET_H

#include <stddef.h>
#include <stdint.h>

/* Results of k230net_start and k230net_register. */
#define K230NET_OK                 (0)
#define K230NET_E_CONFIG           (-1) /* null config or unknown usb_port */
#define K230NET_E_STARTED          (-2) /* k230net_start already succeeded */
#define K230NET_E_USB_RESET        (-3) /* the controller's reset did not report done */
#define K230NET_E_DWC2             (-4) /* the DWC2 core did not come up in host mode */
#define K230NET_E_NO_DEVICE        (-5) /* nothing enumerated within connect_timeout_ms */
#define K230NET_E_UNSUPPORTED_NIC  (-6) /* neither an RTL8152 nor a CDC-ECM function */
#define K230NET_E_NIC              (-7) /* the NIC failed to initialise */
#define K230NET_E_REGISTER         (-8) /* interning names failed (MemoryError) */
#define K230NET_E_ENTROPY          (-9) /* the TRNG failed its health test: no network */

/* The K230's USB controllers (Synopsys DWC2). */
#define K230NET_USB0               (0u) /* registers at 0x91500000 */
#define K230NET_USB1               (1u) /* registers at 0x91540000: the boards' RJ45 RTL8152 */

/* Cache maintenance over [addr, addr + len). */
typedef void (*k230net_cache_fn)(uintptr_t addr, size_t len);

/* What k230net_start needs. */
typedef struct {
    uint32_t usb_port;            /* K230NET_USB0 or K230NET_USB1 */
    uint32_t connect_timeout_ms;  /* how long to wait for the NIC on the root port */
    uint64_t seed;                /* reserved, ignored: the secret comes from the TRNG */
    k230net_cache_fn cache_clean;      /* write back before DMA reads; NULL if coherent */
    k230net_cache_fn cache_invalidate; /* drop lines DMA wrote; NULL if coherent */
} k230net_config_t;

/* Brings the network up; may be retried after an error. Returns K230NET_OK or K230NET_E_*. */
int k230net_start(const k230net_config_t *config);

/* Links the modules into the running interpreter; after every mp_init(). */
int k230net_register(void);

/* One round of network work (frames, timers, DHCP, link state). */
void k230net_poll(void);

/* The module objects (registered by k230net.c with MP_REGISTER_MODULE). */
struct _mp_obj_module_t;
extern const struct _mp_obj_module_t k230net_socket_module;
extern const struct _mp_obj_module_t k230net_network_module;

/* Hooks the firmware provides (k230net.c has the MicroPython versions). */
uint32_t k230net_ticks_us(void);          /* microseconds, may wrap at 2^32 */
void k230net_delay_us(uint32_t us);       /* busy wait; must not raise */
int k230net_interrupt_pending(void);      /* nonzero: an exception is pending (Ctrl-C), a
                                             blocking socket call gives up and raises it */
void k230net_panic(const char *msg, size_t len) __attribute__((noreturn)); /* fatal */

#endif /* K230NET_H */
