//! Shared helpers for the workspace integration tests: the Linux peer on a TAP link
//! ([`tap`], over `k230-testkit`'s namespaces), hand-made frames, the firmware on QEMU.
pub mod peer;
pub mod qemu_board;
pub mod rawframe;
pub mod tap;
