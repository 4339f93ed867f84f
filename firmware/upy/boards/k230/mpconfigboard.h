// The K230 big core (C908, RV64GC), console on UART0.
#define K230NET_BOARD_NAME "K230"
#define K230NET_MCU_NAME "RISC-V C908"
