//! USB Ethernet class drivers.

pub mod cdc_ecm;
pub mod probe;
pub mod rtl8152;
pub mod supervisor;
