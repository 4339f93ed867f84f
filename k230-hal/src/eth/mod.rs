//! USB Ethernet class drivers.

pub mod cdc_ecm;
pub mod rtl8152;
