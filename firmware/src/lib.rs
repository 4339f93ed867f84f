//! The K230 big-core firmware's logic, kept apart from its bare-metal runtime (`main.rs`) so it
//! builds and is unit-tested on the host.
//!
//! - [`board`]: the memory map and devices of each supported board, selected by cargo feature;
//! - [`console`]: the board's UART as a `core::fmt::Write` console;
//! - [`clint`]: the machine timer (CLINT `mtime`/`mtimecmp`);
//! - [`mmu`]: the AArch64 identity map (translation tables and register values);
//! - [`selftest`]: checks that need no NIC (CRC, timer, smoltcp packet round trip).
//!
//! The network is not here: the board's NIC is a `k230-board` description ([`board::Board::nic`])
//! that the firmware hands to upy-cmodule, which brings it up and runs it through the one board
//! assembly (`k230_board`). The firmware runs no service of its own: a board listens only on
//! what scripts open.
#![cfg_attr(target_os = "none", no_std)]

pub mod board;
pub mod clint;
pub mod console;
pub mod mmu;
pub mod selftest;

/// How many `board-*` features are on.
#[cfg(target_os = "none")]
const BOARDS_CHOSEN: usize = cfg!(feature = "board-k230") as usize
    + cfg!(feature = "board-qemu-virt") as usize
    + cfg!(feature = "board-qemu-raspi3b") as usize;

// On the host several may be on (`--all-features`); only an image must know its one board.
#[cfg(target_os = "none")]
const _: () = assert!(
    BOARDS_CHOSEN == 1,
    "pick one board: --features board-k230, board-qemu-virt or board-qemu-raspi3b"
);
