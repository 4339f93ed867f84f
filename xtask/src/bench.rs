//! `cargo xtask bench`.

use anyhow::{bail, Result};

/// Runs the task.
pub fn run(_args: &[String]) -> Result<()> {
    bail!("`cargo xtask bench` is not implemented yet")
}
