//! USB Ethernet class drivers.

pub mod cdc_ecm;
pub mod driver;
#[cfg(feature = "loopback")]
pub mod loopback;
pub mod nic;
pub mod probe;
pub mod rtl8152;
pub mod supervisor;
