// QEMU `raspi3b` (aarch64, Cortex-A53), console on its PL011; QEMU's DWC2 with a `usb-net`
// through our DWC2 and CDC-ECM drivers.
#define K230NET_BOARD_NAME "QEMU raspi3b"
#define K230NET_MCU_NAME "Cortex-A53"
