//! A smoltcp-based IPv4 network stack for K230 boards.
//!
//! [`api::SocketStack`] is the small, smoltcp-free trait that `upy-socket` programs against;
//! the stack built on smoltcp implements it over any `smoltcp::phy::Device` (the RTL8152 driver on
//! a board, the simulated board on the host).
#![cfg_attr(not(any(feature = "std", test)), no_std)]

pub mod api;
