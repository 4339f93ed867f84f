//! USB Ethernet class drivers.

pub mod rtl8152;
