// py/mphal.h's functions over the firmware's Rust runtime (port.h).
#include "py/mphal.h"
#include "py/runtime.h"
#include "py/stream.h"

#include "port.h"

mp_uint_t mp_hal_stdout_tx_strn(const char *str, size_t len) {
    k230upy_console_write(str, len);
    return len;
}

// Waits for a byte; the network and the scheduler run meanwhile (the REPL's idle time).
int mp_hal_stdin_rx_chr(void) {
    for (;;) {
        int c = k230upy_console_read();
        if (c >= 0) {
            return c;
        }
        mp_event_wait_indefinite();
    }
}

uintptr_t mp_hal_stdio_poll(uintptr_t poll_flags) {
    uintptr_t ready = poll_flags & MP_STREAM_POLL_WR;
    if ((poll_flags & MP_STREAM_POLL_RD) && k230upy_console_peek()) {
        ready |= MP_STREAM_POLL_RD;
    }
    return ready;
}

mp_uint_t mp_hal_ticks_us(void) {
    return (mp_uint_t)k230upy_ticks_us();
}

mp_uint_t mp_hal_ticks_ms(void) {
    return (mp_uint_t)(k230upy_ticks_us() / 1000u);
}

mp_uint_t mp_hal_ticks_cpu(void) {
    return (mp_uint_t)k230upy_ticks_cpu();
}

// Sleeps with the network and the scheduler running (a pending KeyboardInterrupt raises here).
void mp_hal_delay_ms(mp_uint_t ms) {
    uint64_t end = k230upy_ticks_us() + (uint64_t)ms * 1000u;
    while (k230upy_ticks_us() < end) {
        mp_event_wait_ms(1);
    }
}

// Short waits are busy waits (no event handling, no raise).
void mp_hal_delay_us(mp_uint_t us) {
    uint64_t end = k230upy_ticks_us() + us;
    while (k230upy_ticks_us() < end) {
    }
}
