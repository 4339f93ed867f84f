//! The `cargo xtask` binary's command line: `--help` for every task exits 0 with the task's
//! usage, unknown flags and tasks fail with clap's errors, and `flash --dry-run` prints the plan
//! the README shows without writing anything.

use std::process::{Command, Output};

fn xtask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .output()
        .expect("running xtask")
}

/// The task names `cargo xtask help` lists.
fn tasks() -> Vec<String> {
    let out = xtask(&["help"]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let commands = text.split("Commands:").nth(1).expect("a Commands section");
    commands
        .lines()
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

#[test]
fn every_task_answers_help_and_refuses_unknown_flags() {
    let tasks = tasks();
    assert_eq!(
        tasks,
        ["build", "image", "flash", "sim", "run", "qemu-usb", "bench", "fuzz", "soak", "test"],
        "the tasks `cargo xtask help` lists"
    );
    for task in &tasks {
        let out = xtask(&[task, "--help"]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{task} --help: {out:?}");
        assert!(
            stdout.contains(&format!("Usage: cargo xtask {task}")),
            "{task} --help:\n{stdout}"
        );

        let out = xtask(&[task, "--no-such-flag"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{task} --no-such-flag: {out:?}");
        assert!(
            stderr.contains("unexpected argument '--no-such-flag'"),
            "{task}:\n{stderr}"
        );
    }
    let out = xtask(&["no-such-task"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(!xtask(&[]).status.success());
}

#[test]
fn flash_dry_runs_print_the_plan_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let kdimg = dir.path().join("fw.kdimg");
    std::fs::write(&kdimg, b"kdimg").unwrap();
    let out = xtask(&["flash", "--kdimg", kdimg.to_str().unwrap(), "--dry-run"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout.starts_with("plan:\n1. find the K230 boot ROM on USB (29f1:0230)"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("-m SDCARD {}\n", kdimg.display())),
        "{stdout}"
    );
    assert!(stdout.ends_with("(dry run: nothing written)\n"), "{stdout}");

    let card = dir.path().join("card.img");
    std::fs::write(&card, [0u8; 16]).unwrap();
    let out = xtask(&[
        "flash",
        "--sd",
        card.to_str().unwrap(),
        "--image",
        kdimg.to_str().unwrap(),
        "--dry-run",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        stdout,
        format!(
            "plan:\n1. write {} at byte 0x0 of {}\n2. sync\n(dry run: nothing written)\n",
            kdimg.display(),
            card.display()
        )
    );
    assert_eq!(std::fs::read(&card).unwrap(), [0u8; 16]);

    let out = xtask(&["flash", "--sd", "a", "--loader", "b"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}
