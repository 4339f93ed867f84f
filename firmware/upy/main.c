// The port's main loop: MicroPython over the GC heap the runtime hands over, the REPL on the
// console (friendly, raw and raw-paste: shared/runtime/pyexec.c, what mpremote talks to), and a
// soft reset (Ctrl-D) that runs every finaliser (Python sockets close) and starts afresh.
#include <string.h>

#include "py/builtin.h"
#include "py/compile.h"
#include "py/cstack.h"
#include "py/gc.h"
#include "py/lexer.h"
#include "py/mperrno.h"
#include "py/mphal.h"
#include "py/runtime.h"
#include "py/stackctrl.h"
#include "shared/readline/readline.h"
#include "shared/runtime/gchelper.h"
#include "shared/runtime/pyexec.h"

#include "genhdr/mpversion.h"
#include "k230net.h"
#include "port.h"

const char *const k230upy_uname[5] = {
    MICROPY_PY_SYS_PLATFORM,
    MICROPY_PY_SYS_PLATFORM,
    MICROPY_VERSION_STRING,
    MICROPY_GIT_TAG " on " MICROPY_BUILD_DATE,
    MICROPY_BANNER_MACHINE,
};

void k230upy_main(void *heap_start, void *heap_end, size_t stack_bytes) {
    mp_cstack_init_with_sp_here(stack_bytes);
    for (;;) {
        gc_init(heap_start, heap_end);
        mp_init();
        // Both intern the modules' names in the fresh qstr pool; they are usable only after.
        int net = k230net_register();
        int port = k230upy_register_modules();
        if (net != K230NET_OK || port != 0) {
            mp_printf(&mp_plat_print, "k230-net: registering modules failed (%d, %d)\n", net, port);
        }
        readline_init0();
        for (;;) {
            if (pyexec_mode_kind == PYEXEC_MODE_RAW_REPL) {
                if (pyexec_raw_repl() != 0) {
                    break;
                }
            } else {
                if (pyexec_friendly_repl() != 0) {
                    break;
                }
            }
        }
        mp_printf(&mp_plat_print, "MPY: soft reboot\n");
        gc_sweep_all();
        mp_deinit();
    }
}

void gc_collect(void) {
    gc_collect_start();
    gc_helper_collect_regs_and_stack();
    gc_collect_end();
}

// An exception with no handler, or a Rust panic (upy-cmodule's handler calls k230net_panic,
// which prints the message and ends here).
void nlr_jump_fail(void *val) {
    mp_printf(&mp_plat_print, "FATAL: uncaught NLR %p\n", val);
    k230upy_fatal();
}

// A failed assert() in py/ (asserts stay on): the message, then the fatal end.
void __assert_func(const char *file, int line, const char *func, const char *expr) {
    mp_printf(&mp_plat_print, "FATAL: assertion \"%s\" failed: %s:%d (%s)\n", expr, file, line,
        func ? func : "");
    k230upy_fatal();
}

// No filesystem: imports find only built-in modules, open() has nothing to open.
mp_lexer_t *mp_lexer_new_from_file(qstr filename) {
    (void)filename;
    mp_raise_OSError(MP_ENOENT);
}

mp_import_stat_t mp_import_stat(const char *path) {
    (void)path;
    return MP_IMPORT_STAT_NO_EXIST;
}

mp_obj_t mp_builtin_open(size_t n_args, const mp_obj_t *args, mp_map_t *kwargs) {
    (void)n_args;
    (void)args;
    (void)kwargs;
    mp_raise_OSError(MP_ENOENT);
}
MP_DEFINE_CONST_FUN_OBJ_KW(mp_builtin_open_obj, 1, mp_builtin_open);
