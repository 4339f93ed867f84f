// The port's own built-in modules, written in Rust (upy-bindings' `port` modules; the objects
// are defined in firmware/src/upy.rs). Upstream keeps these in extmod/, absent from the sdist.
#include "py/obj.h"

extern const mp_obj_module_t k230upy_time_module;
extern const mp_obj_module_t k230upy_select_module;
extern const mp_obj_module_t k230upy_os_module;
extern const mp_obj_module_t k230upy_machine_module;

MP_REGISTER_MODULE(MP_QSTR_time, k230upy_time_module);
MP_REGISTER_MODULE(MP_QSTR_select, k230upy_select_module);
MP_REGISTER_MODULE(MP_QSTR_os, k230upy_os_module);
MP_REGISTER_MODULE(MP_QSTR_machine, k230upy_machine_module);
