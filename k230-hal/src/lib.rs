//! A `no_std` hardware abstraction layer for the Kendryte K230.
//!
//! The K230 has no Ethernet MAC: every board's RJ45 port is a Realtek RTL8152 USB NIC on the
//! SoC's DesignWare USB 2.0 (DWC2) host controller. This crate holds the whole path:
//!
//! - [`reg`]: register access, plain volatile MMIO on the target, served by a model on the host,
//!   and the DMA rules (bus addresses, cache maintenance) for bus-master controllers;
//! - `c908` (riscv64 only): the C908 cores' cache set-up and cache maintenance;
//! - [`boot`]: where the vendor boot chain lets a big-core image live;
//! - [`sysctl`]: USB resets and USB PHY host-mode setup, the whole-chip reset;
//! - [`trng`]: the true random number generator, health-checked, as a `rand_core::CryptoRng`;
//! - [`gpio`]: the DW APB GPIO controllers and the IOMUX; [`variant`]: the K230 boards and the
//!   GPIO that powers their NIC;
//! - [`uart`]: the DW APB 16550 console;
//! - [`pl011`]: the PL011 console of QEMU's raspi3b (where the USB drivers meet QEMU's models);
//! - [`usb`]: the [`usb::UsbHost`] trait class drivers see, descriptors, and the [`usb::dwc2`] host;
//! - [`eth`]: USB NIC class drivers ([`eth::rtl8152`]), with `smoltcp::phy::Device` behind the
//!   `smoltcp` feature;
//! - `sim` (feature `sim`, std): host models of the DWC2 controller, a USB bus, the RTL8152 and
//!   wire backends.
#![cfg_attr(not(any(feature = "std", test)), no_std)]

#[cfg(feature = "loopback")]
extern crate alloc;

pub mod boot;
#[cfg(target_arch = "riscv64")]
pub mod c908;
pub mod eth;
pub mod gpio;
pub mod pl011;
pub mod reg;
pub mod sysctl;
pub mod trng;
pub mod uart;
pub mod usb;
pub mod variant;

#[cfg(feature = "sim")]
pub mod sim;
