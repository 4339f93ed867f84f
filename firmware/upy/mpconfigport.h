// Configuration of the k230-net MicroPython port: bare metal, one core, the Rust runtime of the
// firmware crate underneath (console, timer, network), py/ and shared/ from the pinned sdist.
//
// What the bindings need (upy-cmodule's k230net.c checks these at compile time): object
// representation A, double floats, MicroPython's own errno numbers, and no socket/network
// module of MicroPython's own. Modules that upstream keeps in extmod/ (absent from the sdist) are
// off here; time, select, os and machine come from upy-bindings (Rust) instead, registered in
// modules.c.
#include <alloca.h>
#include <stdint.h>

// The board (K230NET_BOARD_NAME, K230NET_MCU_NAME): boards/<board>/mpconfigboard.h.
#include "mpconfigboard.h"
#define MICROPY_HW_BOARD_NAME               K230NET_BOARD_NAME
#define MICROPY_HW_MCU_NAME                 K230NET_MCU_NAME
#define MICROPY_PY_SYS_PLATFORM             "k230"

#define MICROPY_CONFIG_ROM_LEVEL            (MICROPY_CONFIG_ROM_LEVEL_CORE_FEATURES)
#define MICROPY_OBJ_REPR                    (MICROPY_OBJ_REPR_A)
#define MICROPY_FLOAT_IMPL                  (MICROPY_FLOAT_IMPL_DOUBLE)
#define MICROPY_LONGINT_IMPL                (MICROPY_LONGINT_IMPL_MPZ)
#define MICROPY_ENABLE_GC                   (1)
#define MICROPY_ENABLE_FINALISER            (1)
#define MICROPY_STACK_CHECK                 (1)
#define MICROPY_ENABLE_SCHEDULER            (1)
#define MICROPY_KBD_EXCEPTION               (1)
#define MICROPY_ALLOC_PATH_MAX              (256)
#define MICROPY_ERROR_REPORTING             (MICROPY_ERROR_REPORTING_NORMAL)
#define MICROPY_USE_INTERNAL_ERRNO          (1)

// The REPL on the console UART: friendly and raw REPL, raw-paste (shared/runtime/pyexec.c), so
// mpremote works unchanged.
#define MICROPY_HELPER_REPL                 (1)
#define MICROPY_REPL_AUTO_INDENT            (1)
#define MICROPY_REPL_EMACS_KEYS             (1)
#define MICROPY_PY_BUILTINS_INPUT           (1)
#define MICROPY_PY_BUILTINS_HELP            (1)
#define MICROPY_PY_BUILTINS_HELP_MODULES    (1)
// A non-blocking socket's read/readinto/readline with nothing to read return None, as upstream
// ports with modlwip do (py/stream.c; the core-features level leaves it off: EAGAIN raised).
#define MICROPY_STREAMS_NON_BLOCK           (1)
#define MICROPY_PY_SYS_STDFILES             (1)
#define MICROPY_PY_SYS_STDIO_BUFFER         (1)
#define MICROPY_PY_SYS_EXIT                 (1)
#define MICROPY_PY_SYS_MAXSIZE              (1)
#define MICROPY_MODULE_BUILTIN_INIT         (1)

// py/'s own modules: sys, gc, micropython, io, struct, errno, math, array, collections.
#define MICROPY_PY_ERRNO                    (1)
#define MICROPY_PY_IO                       (1)
#define MICROPY_PY_MATH_SPECIAL_FUNCTIONS   (1)
#define MICROPY_PY_MATH_ISCLOSE             (1)
#define MICROPY_PY_COLLECTIONS_DEQUE        (1)
#define MICROPY_PY_COLLECTIONS_ORDEREDDICT  (1)
#define MICROPY_PY_MICROPYTHON_MEM_INFO     (1)
#define MICROPY_PY_BUILTINS_STR_UNICODE     (1)
#define MICROPY_PY_BUILTINS_BYTEARRAY       (1)
#define MICROPY_PY_BUILTINS_MEMORYVIEW      (1)
#define MICROPY_PY_BUILTINS_FROZENSET       (1)
#define MICROPY_PY_BUILTINS_SET             (1)
#define MICROPY_PY_BUILTINS_SLICE           (1)
#define MICROPY_PY_BUILTINS_PROPERTY        (1)
#define MICROPY_PY_BUILTINS_ENUMERATE       (1)
#define MICROPY_PY_BUILTINS_REVERSED        (1)
#define MICROPY_PY_BUILTINS_MIN_MAX         (1)
#define MICROPY_PY_ALL_SPECIAL_METHODS      (1)
#define MICROPY_PY_FUNCTION_ATTRS           (1)
#define MICROPY_PY_DESCRIPTORS              (1)

// Upstream's extmod/ modules: not in the sdist. time/select/os/machine are ours (modules.c).
#define MICROPY_PY_TIME                     (0)
#define MICROPY_PY_SELECT                   (0)
#define MICROPY_PY_OS                       (0)
#define MICROPY_PY_MACHINE                  (0)
// upy-cmodule's `socket` and `network` replace modsocket/modlwip/modnetwork.
#define MICROPY_PY_SOCKET                   (0)
#define MICROPY_PY_LWIP                     (0)
#define MICROPY_PY_NETWORK                  (0)

// Network work while Python runs or waits (upy-cmodule README, section 2), and the console's
// waiting: a wait for an event sleeps until the next interrupt (the 1 kHz timer tick at most).
#define MICROPY_INTERNAL_EVENT_HOOK do { extern void k230net_poll(void); k230net_poll(); } while (0)
#define MICROPY_INTERNAL_WFE(timeout_ms) do { extern void k230upy_wait_for_interrupt(void); k230upy_wait_for_interrupt(); } while (0)

typedef intptr_t mp_int_t;
typedef uintptr_t mp_uint_t;
typedef long mp_off_t;
// picolibc defines SSIZE_MAX only for POSIX builds.
#define MP_SSIZE_MAX                        (INTPTR_MAX)

#define MP_STATE_PORT MP_STATE_VM
