//! MicroPython's socket semantics, generic over a network stack and a clock.
#![cfg_attr(not(any(feature = "std", test)), no_std)]
