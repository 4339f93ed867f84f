/*
 * main() of the k230test mini port: what a K230 firmware's main does with k230net.h (README,
 * section 3), on MicroPython built from source with k230net.c registered by
 * MP_REGISTER_MODULE. Runs SCRIPT after boot and after a soft reset; prints what the test
 * checks. Exit status 0 only if both runs succeeded.
 */
#define _POSIX_C_SOURCE 199309L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "py/builtin.h"
#include "py/compile.h"
#include "py/cstack.h"
#include "py/gc.h"
#include "py/lexer.h"
#include "py/mperrno.h"
#include "py/mphal.h"
#include "py/runtime.h"
#include "shared/runtime/gchelper.h"

#include "k230net.h"

/* No `import socket` helper: the modules come from the port's built-in table. */
static const char SCRIPT[] =
    "import gc, errno, socket, network\n"
    "print(socket.AF_INET, socket.SOCK_STREAM)\n"
    "junk = [bytes(100) for _ in range(500)]\n"
    "junk = None\n"
    "gc.collect()\n"
    "try:\n"
    "    socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n"
    "    print('socket without a network')\n"
    "except OSError as e:\n"
    "    print('OSError', e.errno, e.errno == errno.ENODEV)\n"
    "print(network.LAN.__name__, socket.socket.__name__)\n";

static char heap[1 << 20];

static int run_script(void) {
    nlr_buf_t nlr;
    if (nlr_push(&nlr) == 0) {
        mp_lexer_t *lex = mp_lexer_new_from_str_len(MP_QSTR__lt_stdin_gt_, SCRIPT, strlen(SCRIPT), 0);
        qstr source_name = lex->source_name;
        mp_parse_tree_t tree = mp_parse(lex, MP_PARSE_FILE_INPUT);
        mp_obj_t module_fun = mp_compile(&tree, source_name, false);
        mp_call_function_0(module_fun);
        nlr_pop();
        return 0;
    }
    mp_obj_print_exception(&mp_plat_print, MP_OBJ_FROM_PTR(nlr.ret_val));
    return 1;
}

static int boot(const char *what) {
    gc_init(heap, heap + sizeof(heap));
    mp_init();
    int status = k230net_register();
    printf("%s: k230net_register() = %d\n", what, status);
    return status == K230NET_OK ? run_script() : 1;
}

int main(void) {
    mp_cstack_init_with_sp_here(256 * 1024);
    if (boot("boot") != 0) {
        return 1;
    }
    gc_sweep_all();
    mp_deinit();
    if (boot("soft reset") != 0) {
        return 1;
    }
    gc_sweep_all();
    mp_deinit();
    printf("k230net_start(NULL) = %d\n", k230net_start(NULL));
    return 0;
}

void gc_collect(void) {
    gc_collect_start();
    gc_helper_collect_regs_and_stack();
    gc_collect_end();
}

mp_lexer_t *mp_lexer_new_from_file(qstr filename) {
    (void)filename;
    mp_raise_OSError(MP_ENOENT);
}

mp_import_stat_t mp_import_stat(const char *path) {
    (void)path;
    return MP_IMPORT_STAT_NO_EXIST;
}

void nlr_jump_fail(void *val) {
    printf("nlr_jump_fail(%p)\n", val);
    exit(3);
}

/* The HAL functions py/mphal.h declares, for the build machine. */
mp_uint_t mp_hal_ticks_us(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (mp_uint_t)now.tv_sec * 1000000u + (mp_uint_t)now.tv_nsec / 1000u;
}

mp_uint_t mp_hal_ticks_ms(void) {
    return mp_hal_ticks_us() / 1000u;
}

void mp_hal_delay_ms(mp_uint_t ms) {
    mp_uint_t start = mp_hal_ticks_ms();
    while (mp_hal_ticks_ms() - start < ms) {
    }
}

mp_uint_t mp_hal_stdout_tx_strn(const char *str, size_t len) {
    fwrite(str, 1, len, stdout);
    return len;
}
