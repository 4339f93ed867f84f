//! The Realtek RTL8152 USB 10/100 Ethernet NIC.
