//! upy-bindings' `socket` and `network` modules as a MicroPython user C module.
//!
//! The crate builds a static library (`libupy_cmodule.a`) for the firmware's target; the C side
//! in `cmodule/` (`k230net.c`, `k230net.h`, `micropython.mk`, `micropython.cmake`) registers the
//! module objects with `MP_REGISTER_MODULE` and links the library into the firmware.
//!
//! Design:
//! - **Module objects** ([`modules`]): `k230net_socket_module` and `k230net_network_module` are
//!   `mp_obj_module_t`s defined here, around the globals dicts of upy-bindings' modules.
//! - **Qstrs**: one mechanism, as on the host: names are interned at run time with
//!   `qstr_from_strn` by `k230net_register()`, which the firmware calls after every `mp_init()`
//!   (a soft reset empties the pool of run-time qstrs). Names the port already has as static
//!   qstrs resolve to their static index. Only the two module names are build-time qstrs
//!   (`MP_QSTR_socket`, `MP_QSTR_network` in `k230net.c`), because the port's built-in module
//!   table is generated at build time.
//! - **Memory**: no Rust heap and no `#[global_allocator]`: the network state (DWC2 DMA memory,
//!   the NIC driver, the netstack's socket buffers, the socket tables) lives in `static`s sized
//!   at build time ([`net`]), invisible to MicroPython's GC and untouched by soft resets. Python
//!   objects (sockets, `bytes`) are allocated by upy-bindings in the GC heap as usual. Memory
//!   from `m_malloc` is not used for Rust state: the GC does not scan Rust statics, so it would
//!   free memory Rust still points to.
//! - **Hooks** ([`hooks`]): the firmware supplies time (`k230net_ticks_us`, `k230net_delay_us`)
//!   and the panic sink (`k230net_panic`); `k230net.c` implements them with `mp_hal_ticks_us`
//!   and `nlr_jump_fail`.
//! - **Panics**: on the bare-metal target a panic calls `k230net_panic` with the message, which
//!   must not return (it ends in the port's `nlr_jump_fail`). A panic never becomes a Python
//!   exception: raising would jump over Rust frames and leave their state half-changed.
#![cfg_attr(target_os = "none", no_std)]

pub mod abi;
pub mod clock;
pub mod config;
pub mod hooks;
pub mod message;
pub mod modules;
pub mod net;
#[cfg(target_os = "none")]
mod panic;
