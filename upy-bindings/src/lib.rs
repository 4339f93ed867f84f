//! MicroPython object bindings for the `socket` and `network` modules.
//!
//! Layers, bottom up: [`ffi`] (the C ABI), [`obj`] and [`qstr`] (safe handles), [`runtime`]
//! (the single place exceptions cross between C and Rust), [`object`] (static functions, types
//! and modules), then the modules themselves. With feature `host`, [`host`] runs the real
//! MicroPython (unix port, pinned PyPI build) in-process.
#![cfg_attr(not(any(feature = "std", test)), no_std)]

pub mod args;
pub mod backend;
pub mod error;
pub mod ffi;
#[cfg(feature = "host")]
pub mod host;
pub mod network;
pub mod obj;
pub mod object;
pub mod port;
pub mod qstr;
pub mod runtime;
pub mod socket;
pub mod statics;

/// The modules this crate provides, as the host runtime's [`host::Interpreter`] takes them.
pub static MODULES: [&object::Module; 2] = [&socket::MODULE, &network::MODULE];
