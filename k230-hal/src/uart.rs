//! The DW APB 16550 console UART.
