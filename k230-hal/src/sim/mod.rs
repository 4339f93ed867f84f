//! Host models of the hardware: DWC2 controller, USB bus, RTL8152, CDC-ECM adapter, TRNG, wire
//! backends.
//!
//! The models are written from the hardware facts, separately from the drivers, and reject what
//! the silicon would (bad requests, wrong lengths, DMA to memory the driver does not own), so
//! that they catch driver bugs instead of agreeing with them.

mod cache;
#[cfg(test)]
mod dma_rules;
pub mod dwc2_host;
pub mod dwc2_model;
pub mod usb_bus;
pub mod usb_function;
pub use dwc2_host::SimHost;
pub mod board;
pub mod cdc_ecm;
pub mod report;
pub mod rtl8152;
pub mod rtl8152_csum;
pub mod rtl8152_large_send;
pub mod rtl8152_regs;
pub mod trng;
pub mod wire;
