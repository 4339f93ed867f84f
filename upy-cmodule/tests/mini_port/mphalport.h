// HAL of the k230test mini port: main.c implements mp_hal_ticks_us and the other functions
// py/mphal.h declares.

// Pins as a bare-metal port names them (a number); without this py/mphal.h falls back to
// extmod/virtpin.h, which this build does not have.
#define mp_hal_pin_obj_t uint32_t
