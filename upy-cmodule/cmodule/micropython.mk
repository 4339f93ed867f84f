# MicroPython user C module "k230net": the socket and network modules of upy-cmodule.
#
#   cargo build -p upy-cmodule --release --target riscv64gc-unknown-none-elf
#   make USER_C_MODULES=<workspace>/upy-cmodule ...
#
# K230NET_LIB names the static library if it is not where cargo puts it by default
# (CARGO_TARGET_DIR set, or another target triple in K230NET_RUST_TARGET).
K230NET_DIR := $(USERMOD_DIR)
K230NET_RUST_TARGET ?= riscv64gc-unknown-none-elf
K230NET_LIB ?= $(abspath $(K230NET_DIR)/../../target)/$(K230NET_RUST_TARGET)/release/libupy_cmodule.a

ifeq ($(filter clean,$(MAKECMDGOALS)),)
ifeq ($(wildcard $(K230NET_LIB)),)
$(error k230net: $(K230NET_LIB) is missing: run `cargo build -p upy-cmodule --release --target $(K230NET_RUST_TARGET)` or set K230NET_LIB)
endif
endif

SRC_USERMOD_C += $(K230NET_DIR)/k230net.c
CFLAGS_USERMOD += -I$(K230NET_DIR)
# The -u options make the linker take the module objects and entry points from the archive
# wherever the port puts LDFLAGS on its link line (before or after the object files).
LDFLAGS_USERMOD += -u k230net_socket_module -u k230net_network_module \
	-u k230net_start -u k230net_register -u k230net_poll $(K230NET_LIB)
