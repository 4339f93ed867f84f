//! `cargo xtask`: the project's tasks in one place (`cargo xtask <task> --help` for each).
//!
//! - `build`: firmware ELF and raw binary, size report per crate;
//! - `image`: K230 firmware image and SD-card layout;
//! - `flash`: write a board through the USB boot ROM or an SD card;
//! - `sim`: run a MicroPython script on the simulated board;
//! - `run`: the MicroPython firmware on QEMU, console on the terminal or a pty (mpremote);
//! - `qemu-usb`: our DWC2 and CDC-ECM drivers on QEMU raspi3b's independent DWC2 model;
//! - `bench`: throughput and memory benchmarks against a baseline measured in the same run;
//! - `fuzz`: the cargo-fuzz targets;
//! - `soak`: everything at once on the simulated board against Linux for N minutes;
//! - `test`: every check CI runs.
//!
//! The command line is parsed by clap (derive): one usage text per task, generated from the
//! argument structs below, `--help` everywhere and clap's errors for unknown flags.

mod bench;
mod bench_callgrind;
mod bench_linux;
mod bench_process;
mod bench_upy;
mod build;
mod flash;
mod fuzz;
mod image;
mod qemu_usb;
mod run;
mod sim;
mod soak;
mod soak_board;
mod soak_check;
mod soak_linux;
mod soak_protocol;
mod test;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// The project's tasks.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

/// One task.
#[derive(Debug, Subcommand)]
enum Task {
    Build(build::Args),
    Image(image::Args),
    Flash(flash::Args),
    Sim(sim::Args),
    Run(run::Args),
    QemuUsb(qemu_usb::Args),
    Bench(bench::Args),
    Fuzz(fuzz::Args),
    Soak(soak::Args),
    Test(test::Args),
}

fn main() -> Result<()> {
    match Cli::parse().task {
        Task::Build(args) => build::run(&args),
        Task::Image(args) => image::run(args),
        Task::Flash(args) => flash::run(&args),
        Task::Sim(args) => sim::run(args),
        Task::Run(args) => run::run(&args),
        Task::QemuUsb(args) => qemu_usb::run(args),
        Task::Bench(args) => bench::run(&args),
        Task::Fuzz(args) => fuzz::run(args),
        Task::Soak(args) => soak::run(&args),
        Task::Test(args) => test::run(&args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_task_has_help_and_refuses_unknown_flags() {
        let tasks: Vec<String> = Cli::command()
            .get_subcommands()
            .map(|c| c.get_name().to_string())
            .collect();
        assert_eq!(tasks.len(), 10, "{tasks:?}");
        for task in &tasks {
            let help = Cli::try_parse_from(["cargo xtask", task, "--help"]).unwrap_err();
            assert_eq!(help.kind(), ErrorKind::DisplayHelp, "{task}");
            assert_eq!(help.exit_code(), 0, "{task}");
            assert!(
                help.to_string()
                    .contains(&format!("Usage: cargo xtask {task}")),
                "{task}: {help}"
            );
            let unknown = Cli::try_parse_from(["cargo xtask", task, "--no-such-flag"]).unwrap_err();
            assert_eq!(unknown.kind(), ErrorKind::UnknownArgument, "{task}");
            assert_ne!(unknown.exit_code(), 0, "{task}");
        }
        let unknown = Cli::try_parse_from(["cargo xtask", "no-such-task"]).unwrap_err();
        assert_eq!(unknown.kind(), ErrorKind::InvalidSubcommand);
    }
}
