// The port's HAL: the console, time and waits are in the Rust runtime (firmware/src/upy.rs);
// mphalport.c implements py/mphal.h's functions with them.
#include "shared/runtime/interrupt_char.h"

// Pins as a bare-metal port names them (a number); without this py/mphal.h falls back to
// extmod/virtpin.h, which the sdist does not have.
#define mp_hal_pin_obj_t uint32_t
