//! A smoltcp-based IPv4 network stack for K230 boards.
//!
//! [`api::SocketStack`] is the small, smoltcp-free trait that `upy-socket` programs against;
//! [`Stack`] implements it over any `smoltcp::phy::Device` (the RTL8152 driver on a board, the
//! simulated board or a TAP device on the host), or over no NIC at all
//! ([`Stack::without_nic`]). [`control::InterfaceControl`] configures the interface (static or
//! DHCP) for `network.LAN`. The interface also owns 127.0.0.1/8: frames for it and for the
//! interface's own address take the [`loopback`] path and never reach the NIC.
//!
//! Memory is set aside when the stack is built ([`storage`]): fixed-size in two `static`s on the
//! board (`no_std`, no allocator; the buffers all zero, in .bss), or on the heap with feature
//! `alloc`.
//!
//! With feature `large-send` (opt-in), a TCP socket hands a NIC that offloads
//! segmentation one frame of several segments ([`loopback`]'s link passes it on whole, or cuts
//! it where it cannot go whole).
#![cfg_attr(not(any(feature = "std", test)), no_std)]
#![warn(missing_docs)]

#[cfg(feature = "alloc")]
extern crate alloc;

pub mod api;
pub mod backlog;
pub mod checksum;
pub mod control;
pub mod counters;
pub mod entropy;
pub mod gate;
pub mod lcg;
pub mod loopback;
#[cfg(feature = "std")]
pub mod phy;
pub mod ports;
mod scratch;
mod segment;
mod socket_stack;
pub mod stack;
pub mod storage;
mod tables;
#[cfg(test)]
mod testframe;

pub use control::InterfaceControl;
pub use counters::{Drops, PoolUsage};
pub use entropy::Seed;
pub use stack::{Addressing, LinkWatch, Stack, StackConfig};
#[cfg(feature = "alloc")]
pub use storage::HeapStorage;
pub use storage::{Parts, StaticBuffers, StaticStorage};
