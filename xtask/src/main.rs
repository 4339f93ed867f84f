//! `cargo xtask`: the project's tasks in one place.
//!
//! - `build`: firmware ELF and raw binary, size report per crate;
//! - `image`: K230 firmware image and SD-card layout;
//! - `flash`: write a board through the USB boot ROM or an SD card;
//! - `sim`: run a MicroPython script on the simulated board;
//! - `qemu-usb`: our DWC2 and CDC-ECM drivers on QEMU raspi3b's independent DWC2 model;
//! - `bench`: throughput and memory benchmarks against a baseline measured in the same run;
//! - `test`: every check CI runs.

mod bench;
mod build;
mod flash;
mod fuzz;
mod image;
mod qemu_usb;
mod sim;
mod test;

use anyhow::{bail, Result};

const USAGE: &str = "usage: cargo xtask <build|image|flash|sim|qemu-usb|bench|fuzz|test> [args...]";

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let Some(task) = args.next() else {
        bail!("{USAGE}");
    };
    let rest: Vec<String> = args.collect();
    match task.as_str() {
        "build" => build::run(&rest),
        "image" => image::run(&rest),
        "flash" => flash::run(&rest),
        "sim" => sim::run(&rest),
        "qemu-usb" => qemu_usb::run(&rest),
        "bench" => bench::run(&rest),
        "fuzz" => fuzz::run(&rest),
        "test" => test::run(&rest),
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown task `{other}`\n{USAGE}"),
    }
}
