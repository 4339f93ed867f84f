//! One board assembly: the path "USB controller out of reset → DWC2 host → the device on the
//! root port → its NIC driver → hot-plug supervisor → network stack" written once, for every
//! board that runs it: the firmware, the MicroPython user C module, the QEMU raspi3b test image
//! and the simulated board (`k230_hal::sim::board::SimBoard`, where only the host controller is
//! a model).
//!
//! - [`description`]: what a board is made of (its USB NIC's controller, reset, VBUS hook and
//!   connect timeout; its entropy source), with the boards this workspace knows;
//! - [`bring_up`]: the NIC brought up from a description;
//! - [`secret`]: the stack's secret (and `os.urandom`'s bytes) from the board's noise source, the
//!   K230's TRNG or a BCM2835 RNG, health-checked: the one place a board gets them;
//! - [`supervised`]: the stack over the supervised NIC, with the one address policy: an unplug
//!   releases the address (connections abort with `ECONNABORTED`), a replug restores what the
//!   user had (DHCP or the static configuration), the link state is the real carrier;
//! - [`without_nic`]: the stack of a board without NIC, loopback only, and why its secret may
//!   be a constant.
//!
//! Why a crate of its own: the NIC drivers and the supervisor live in `k230-hal`, the stack in
//! `netstack`, which sits above `k230-hal`. The address policy needs both, and layers depend
//! downwards only, so it can live in neither; this crate sits above both (and below the socket
//! layer and the MicroPython bindings, which do not need it).
#![cfg_attr(not(test), no_std)]

pub mod bring_up;
pub mod description;
pub mod secret;
pub mod supervised;
pub mod without_nic;

pub use description::{Entropy, Net, UsbNic, UsbReset};
pub use supervised::supervised;
pub use without_nic::loopback_only;
