/*
 * Registers the `socket` and `network` modules of upy-cmodule (Rust static library) with
 * MicroPython, provides the library's hooks, and checks at compile time that this firmware's
 * MicroPython has the C ABI the Rust bindings were written for (upy-bindings/src/ffi.rs:
 * MicroPython v1.29, object representation A).
 */
#include <stddef.h>

#include "py/mperrno.h"
#include "py/mphal.h"
#include "py/nlr.h"
#include "py/obj.h"
#include "py/runtime.h"
#include "py/stream.h"

#include "k230net.h"

/* --- The ABI the bindings assume (a mismatch fails the build, not the board). --- */
_Static_assert(MICROPY_OBJ_REPR == MICROPY_OBJ_REPR_A, "k230net needs object representation A");
_Static_assert(offsetof(mp_obj_type_t, flags) == sizeof(void *), "mp_obj_type_t.flags");
_Static_assert(offsetof(mp_obj_type_t, slot_index_make_new) == sizeof(void *) + 4,
    "mp_obj_type_t slot indices (v1.20+ slots layout)");
_Static_assert(offsetof(mp_obj_type_t, slot_index_print) == sizeof(void *) + 5,
    "mp_obj_type_t slot order");
_Static_assert(offsetof(mp_obj_type_t, slot_index_protocol) == sizeof(void *) + 13,
    "mp_obj_type_t slot order");
_Static_assert(offsetof(mp_obj_type_t, slot_index_locals_dict) == sizeof(void *) + 15,
    "mp_obj_type_t slot order");
_Static_assert(offsetof(mp_obj_type_t, slots) == sizeof(void *) + 16, "mp_obj_type_t.slots");
_Static_assert(sizeof(mp_map_elem_t) == 2 * sizeof(void *), "mp_map_elem_t");
_Static_assert(sizeof(mp_map_t) == 3 * sizeof(void *), "mp_map_t");
_Static_assert(sizeof(mp_obj_dict_t) == 4 * sizeof(void *), "mp_obj_dict_t");
_Static_assert(sizeof(mp_obj_module_t) == 2 * sizeof(void *), "mp_obj_module_t");
_Static_assert(sizeof(mp_obj_fun_builtin_var_t) == 3 * sizeof(void *)
    && offsetof(mp_obj_fun_builtin_var_t, sig) == sizeof(void *)
    && offsetof(mp_obj_fun_builtin_var_t, fun) == 2 * sizeof(void *), "mp_obj_fun_builtin_var_t");
_Static_assert(MP_OBJ_FUN_MAKE_SIG(1, 2, true) == ((1u << 17) | (2u << 1) | 1u),
    "MP_OBJ_FUN_MAKE_SIG encoding");
_Static_assert(MP_OBJ_FUN_ARGS_MAX == 0xffff, "MP_OBJ_FUN_ARGS_MAX");
/* Object representation A's encodings (upy-bindings/src/obj.rs); GCC folds these casts. */
_Static_assert((uintptr_t)MP_OBJ_NEW_SMALL_INT(-3) == (uintptr_t)-5
    && (uintptr_t)MP_OBJ_NEW_QSTR(7) == ((7u << 3) | 2u), "small int and qstr encodings");
_Static_assert((uintptr_t)mp_const_none == 6 && (uintptr_t)mp_const_false == ((1u << 3) | 6u)
    && (uintptr_t)mp_const_true == ((3u << 3) | 6u), "None, False, True encodings");
/* mp_obj_get_float returns a double in the bindings. */
_Static_assert(!MICROPY_PY_BUILTINS_FLOAT || MICROPY_FLOAT_IMPL == MICROPY_FLOAT_IMPL_DOUBLE,
    "k230net needs MICROPY_FLOAT_IMPL_DOUBLE (mp_float_t is double in the bindings)");
_Static_assert(PRINT_REPR == 1, "mp_print_kind_t PRINT_REPR");
_Static_assert(offsetof(nlr_buf_t, ret_val) == sizeof(void *), "nlr_buf_t.ret_val");
_Static_assert(sizeof(nlr_buf_t) <= 32 * sizeof(void *), "nlr_buf_t larger than the bindings' 32 words");
_Static_assert(sizeof(mp_stream_p_t) == 4 * sizeof(void *)
    && offsetof(mp_stream_p_t, ioctl) == 2 * sizeof(void *), "mp_stream_p_t");
_Static_assert(MP_STREAM_ERROR == (mp_uint_t)-1, "MP_STREAM_ERROR");
_Static_assert(MP_STREAM_POLL == 3 && MP_STREAM_CLOSE == 4 && MP_STREAM_TIMEOUT == 5,
    "stream ioctl requests");
_Static_assert(MP_STREAM_POLL_RD == 0x1 && MP_STREAM_POLL_WR == 0x4 && MP_STREAM_POLL_ERR == 0x8
    && MP_STREAM_POLL_HUP == 0x10 && MP_STREAM_POLL_NVAL == 0x20, "stream poll flags");
_Static_assert(MP_BUFFER_READ == 1 && MP_BUFFER_WRITE == 2, "buffer flags");
_Static_assert(sizeof(mp_buffer_info_t) == 3 * sizeof(void *)
    && offsetof(mp_buffer_info_t, len) == sizeof(void *)
    && offsetof(mp_buffer_info_t, typecode) == 2 * sizeof(void *), "mp_buffer_info_t");
_Static_assert(sizeof(vstr_t) == 4 * sizeof(void *) && offsetof(vstr_t, buf) == 2 * sizeof(void *)
    && offsetof(vstr_t, fixed_buf) == 3 * sizeof(void *), "vstr_t");
/* The errno values OSError carries (Linux numbering, as MicroPython's internal errno). */
_Static_assert(MP_EBADF == 9 && MP_EAGAIN == 11 && MP_ENOMEM == 12 && MP_EACCES == 13
    && MP_ENODEV == 19 && MP_EINVAL == 22, "errno values");
_Static_assert(MP_EOPNOTSUPP == 95 && MP_EAFNOSUPPORT == 97 && MP_EADDRINUSE == 98
    && MP_ECONNABORTED == 103 && MP_ECONNRESET == 104 && MP_EISCONN == 106
    && MP_ENOTCONN == 107 && MP_ETIMEDOUT == 110 && MP_ECONNREFUSED == 111
    && MP_EHOSTUNREACH == 113 && MP_EALREADY == 114 && MP_EINPROGRESS == 115,
    "network errno values (set MICROPY_USE_INTERNAL_ERRNO to 1)");

/* --- The hooks the library calls. --- */
uint32_t k230net_ticks_us(void) {
    return (uint32_t)mp_hal_ticks_us();
}

/* A busy wait on the tick counter rather than mp_hal_delay_us(): on some ports that runs the
 * event hook, which can raise (Ctrl-C) through the library's frames. */
void k230net_delay_us(uint32_t us) {
    uint32_t start = k230net_ticks_us();
    while ((uint32_t)(k230net_ticks_us() - start) < us) {
    }
}

/* A pending exception (KeyboardInterrupt from Ctrl-C) ends a blocking socket call, which then
 * raises it (modlwip's waits run the event hook, which raises it there). */
int k230net_interrupt_pending(void) {
    return MP_STATE_THREAD(mp_pending_exception) != MP_OBJ_NULL;
}

void k230net_panic(const char *msg, size_t len) {
    mp_printf(&mp_plat_print, "k230net: Rust panic: %.*s\n", (int)len, msg);
    nlr_jump_fail(NULL);
}

/* --- The modules (the objects are defined in the library). --- */
MP_REGISTER_MODULE(MP_QSTR_socket, k230net_socket_module);
MP_REGISTER_MODULE(MP_QSTR_network, k230net_network_module);
