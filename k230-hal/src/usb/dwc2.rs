//! The DesignWare USB 2.0 (DWC2) host controller in buffer-DMA host mode.
