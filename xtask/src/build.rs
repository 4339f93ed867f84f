//! `cargo xtask build`.

use anyhow::{bail, Result};

/// Runs the task.
pub fn run(_args: &[String]) -> Result<()> {
    bail!("`cargo xtask build` is not implemented yet")
}
