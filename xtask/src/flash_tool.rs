//! The official `k230-flash` CLI (PyPI), installed on first use into the project's `.venv/`.

use crate::build::{spinner, workspace_root};
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The PyPI package.
pub const PACKAGE: &str = "k230-flash";

/// The project-local virtual environment.
pub fn venv() -> PathBuf {
    workspace_root().join(".venv")
}

/// The `k230-flash` executable inside the venv.
pub fn executable() -> PathBuf {
    venv().join("bin").join("k230-flash")
}

/// Makes sure `k230-flash` is installed in `.venv/`, creating the venv and installing the
/// package if needed.
pub fn ensure_installed() -> Result<PathBuf> {
    let exe = executable();
    if exe.exists() {
        return Ok(exe);
    }
    let venv = venv();
    if !venv.join("bin").join("pip").exists() {
        let pb = spinner(&format!("creating {}", venv.display()));
        let out = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output();
        pb.finish_and_clear();
        let out =
            out.context("python3 is needed to install k230-flash (apt-get install python3)")?;
        if !out.status.success() {
            bail!(
                "could not create {}: {}\n(on Debian: apt-get install python3-venv)",
                venv.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
    }
    let pb = spinner(&format!("installing {PACKAGE} into {}", venv.display()));
    let out = Command::new(venv.join("bin").join("pip"))
        .args(["install", "--quiet", PACKAGE])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .context("running pip")?;
    pb.finish_and_clear();
    if !out.status.success() || !exe.exists() {
        bail!(
            "could not install {PACKAGE} from PyPI: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(exe)
}
