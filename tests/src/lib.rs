//! Shared helpers for the workspace integration tests: the Linux peer on a TAP link
//! ([`tap`], over `k230-testkit`'s namespaces), hand-made frames, the firmware on QEMU, and the
//! Linux peers and reference runs of the MicroPython scripts in `tests/upy/` ([`upy_peers`],
//! [`upy_reference`]) for every board that runs them.
pub mod peer;
pub mod qemu_board;
pub mod rawframe;
pub mod tap;
pub mod upy_peers;
pub mod upy_reference;

use std::path::{Path, PathBuf};

/// The workspace's root directory (the one above `tests/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is in the root")
        .to_path_buf()
}
