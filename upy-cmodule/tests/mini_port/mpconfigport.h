// Port configuration of the k230test mini port: a 64-bit bare-metal style port (object
// representation A, GC, no extmod/ and no lib/) with the settings upy-cmodule's README asks a
// K230 firmware for. It runs on the build machine so that the test can execute it.
#include <alloca.h> // py/pystack.h: mp_local_alloc
#include <stdint.h>

#define MICROPY_CONFIG_ROM_LEVEL            (MICROPY_CONFIG_ROM_LEVEL_CORE_FEATURES)
#define MICROPY_OBJ_REPR                    (MICROPY_OBJ_REPR_A)
#define MICROPY_ENABLE_GC                   (1)
#define MICROPY_ENABLE_FINALISER            (1)
#define MICROPY_FLOAT_IMPL                  (MICROPY_FLOAT_IMPL_DOUBLE)
#define MICROPY_LONGINT_IMPL                (MICROPY_LONGINT_IMPL_MPZ)
#define MICROPY_ALLOC_PATH_MAX              (256)
#define MICROPY_PY_SYS_PLATFORM             "k230test"
#define MICROPY_HW_BOARD_NAME               "k230test"
#define MICROPY_HW_MCU_NAME                 "host"

// upy-cmodule's README, section 2.
#define MICROPY_PY_SOCKET                   (0)
#define MICROPY_PY_LWIP                     (0)
#define MICROPY_PY_NETWORK                  (0)
#define MICROPY_USE_INTERNAL_ERRNO          (1)
#define MICROPY_INTERNAL_EVENT_HOOK do { extern void k230net_poll(void); k230net_poll(); } while (0)

// Modules whose code is in extmod/, which this build does not have.
#define MICROPY_PY_TIME                     (0)
#define MICROPY_PY_IO                       (0) // open() needs extmod's VFS

// `import errno` in the test script (py/moderrno.c).
#define MICROPY_PY_ERRNO                    (1)

typedef intptr_t mp_int_t;
typedef uintptr_t mp_uint_t;
typedef long mp_off_t;

#define MP_STATE_PORT MP_STATE_VM
