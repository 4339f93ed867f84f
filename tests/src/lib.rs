//! Shared helpers for the workspace integration tests (network namespaces, TAP devices, peers,
//! hand-made frames, the firmware on QEMU).
pub mod netns;
pub mod peer;
pub mod qemu_board;
pub mod rawframe;
