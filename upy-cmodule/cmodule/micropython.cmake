# MicroPython user C module "k230net": the socket and network modules of upy-cmodule.
#
#   cargo build -p upy-cmodule --release --target riscv64gc-unknown-none-elf
#   cmake ... -DUSER_C_MODULES=<workspace>/upy-cmodule/cmodule/micropython.cmake
#
# -DK230NET_LIB=<path> names the static library if it is not where cargo puts it by default.
if(NOT K230NET_RUST_TARGET)
    set(K230NET_RUST_TARGET riscv64gc-unknown-none-elf)
endif()
if(NOT K230NET_LIB)
    get_filename_component(K230NET_WORKSPACE ${CMAKE_CURRENT_LIST_DIR}/../.. ABSOLUTE)
    set(K230NET_LIB ${K230NET_WORKSPACE}/target/${K230NET_RUST_TARGET}/release/libupy_cmodule.a)
endif()
if(NOT EXISTS ${K230NET_LIB})
    message(FATAL_ERROR "k230net: ${K230NET_LIB} is missing: run `cargo build -p upy-cmodule --release --target ${K230NET_RUST_TARGET}` or set -DK230NET_LIB")
endif()

add_library(usermod_k230net INTERFACE)
target_sources(usermod_k230net INTERFACE ${CMAKE_CURRENT_LIST_DIR}/k230net.c)
target_include_directories(usermod_k230net INTERFACE ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(usermod_k230net INTERFACE ${K230NET_LIB})
target_link_libraries(usermod INTERFACE usermod_k230net)
