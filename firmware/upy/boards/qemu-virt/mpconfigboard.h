// QEMU `virt` (riscv64), console on its 16550; no NIC: sockets over the loopback interface.
#define K230NET_BOARD_NAME "QEMU virt"
#define K230NET_MCU_NAME "RV64GC"
