//! MicroPython object bindings for the `socket` and `network` modules.
#![cfg_attr(not(any(feature = "std", test)), no_std)]
