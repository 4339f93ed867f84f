//! `cargo xtask image`.

use anyhow::{bail, Result};

/// Runs the task.
pub fn run(_args: &[String]) -> Result<()> {
    bail!("`cargo xtask image` is not implemented yet")
}
