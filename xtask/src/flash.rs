//! `cargo xtask flash`.

use anyhow::{bail, Result};

/// Runs the task.
pub fn run(_args: &[String]) -> Result<()> {
    bail!("`cargo xtask flash` is not implemented yet")
}
