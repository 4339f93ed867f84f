//! `cargo xtask sim`.

use anyhow::{bail, Result};

/// Runs the task.
pub fn run(_args: &[String]) -> Result<()> {
    bail!("`cargo xtask sim` is not implemented yet")
}
