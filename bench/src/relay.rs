//! The Linux-to-Linux baseline's link: two TAP devices in two namespaces, frames copied across
//! by this process (the same kind of TAP path our stack and lwIP run on).

use std::os::fd::AsRawFd;
use std::path::Path;

use anyhow::{Context, Result};
use k230_hal::sim::wire::tap::Tap;
use k230_hal::sim::wire::Wire;
use upy_bindings::host::clock::readable;

use crate::say;

/// Frames moved in one direction before looking at the other.
const BATCH: usize = 64;

/// Creates both TAPs, prints `ready`, then copies frames until stdin ends.
pub fn run(left: &str, left_netns: &Path, right: &str, right_netns: &Path) -> Result<()> {
    let mut a = Tap::open_in_netns(left, left_netns).context("open left TAP")?;
    let mut b = Tap::open_in_netns(right, right_netns).context("open right TAP")?;
    say("ready");
    let stdin = std::io::stdin().as_raw_fd();
    let mut frame = Vec::new();
    loop {
        let moved = forward(&mut a, &mut b, &mut frame) | forward(&mut b, &mut a, &mut frame);
        if !moved {
            let [_, _, quit] = readable([a.as_raw_fd(), b.as_raw_fd(), stdin], None)?;
            if quit {
                return Ok(());
            }
        }
    }
}

/// Moves up to [`BATCH`] waiting frames from `from` to `to`; true if any moved. A frame the
/// other side cannot take (its interface not up yet) is dropped, as a cable would. `frame` is
/// the reused buffer.
fn forward(from: &mut Tap, to: &mut Tap, frame: &mut Vec<u8>) -> bool {
    let mut moved = false;
    for _ in 0..BATCH {
        frame.clear();
        match from.recv_into(frame) {
            Ok(Some(_)) => {
                moved = true;
                let _ = to.send(frame);
            }
            Ok(None) | Err(_) => break,
        }
    }
    moved
}
