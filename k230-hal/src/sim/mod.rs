//! Host models of the hardware: DWC2 controller, USB bus, RTL8152, wire backends.
