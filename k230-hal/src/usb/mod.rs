//! USB host: the [`UsbHost`] trait that class drivers program against, descriptor views, and the
//! DesignWare DWC2 host controller driver.

pub mod descriptor;
pub mod dwc2;
mod host;

pub use host::*;
