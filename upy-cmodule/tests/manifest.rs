//! `cmodule/micropython.mk` as MicroPython's make build includes it.
//!
//! The harness Makefile below does what `py/py.mk` (micropython/micropython) does with
//! `USER_C_MODULES`: for every `$(USER_C_MODULES)/*/micropython.mk` it sets `USERMOD_DIR` to that
//! file's directory and includes it, then uses `SRC_USERMOD_C`, `CFLAGS_USERMOD` and
//! `LDFLAGS_USERMOD`. (`micropython.cmake` is not checked: CMake is not installed here.)

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const HARNESS: &str = r#"
SRC_USERMOD_C :=
SRC_USERMOD :=
CFLAGS_USERMOD :=
LDFLAGS_USERMOD :=
$(foreach mk,$(wildcard $(USER_C_MODULES)/*/micropython.mk),\
  $(eval USERMOD_DIR = $(patsubst %/,%,$(dir $(mk))))$(eval include $(mk)))
SRC_USERMOD_C += $(SRC_USERMOD)
show:
	@echo "SRC=$(SRC_USERMOD_C)"
	@echo "CFLAGS=$(CFLAGS_USERMOD)"
	@echo "LDFLAGS=$(LDFLAGS_USERMOD)"
clean:
	@echo cleaned
"#;

fn module_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .canonicalize()
        .unwrap()
}

/// Runs the harness for `goal` with extra make variables; `test` names the harness file (tests
/// run in parallel, and a file being rewritten must not be read).
fn make(test: &str, goal: &str, vars: &[String]) -> Output {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("upy-cmodule-manifest");
    std::fs::create_dir_all(&dir).unwrap();
    let makefile = dir.join(format!("{test}.mk"));
    std::fs::write(&makefile, HARNESS).unwrap();
    Command::new("make")
        .arg("--no-print-directory")
        .arg("-f")
        .arg(&makefile)
        .arg(format!("USER_C_MODULES={}", module_dir().display()))
        .args(vars)
        .arg(goal)
        .output()
        .expect("run make")
}

#[test]
fn make_build_compiles_k230net_c_and_links_the_library() {
    let lib = Path::new(env!("CARGO_TARGET_TMPDIR")).join("libupy_cmodule.a");
    std::fs::write(&lib, b"!<arch>\n").unwrap();
    let out = make("build", "show", &[format!("K230NET_LIB={}", lib.display())]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cmodule = module_dir().join("cmodule");
    let line = |key: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key} in {stdout}"))
            .split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        line("SRC="),
        [cmodule.join("k230net.c").display().to_string()]
    );
    assert_eq!(line("CFLAGS="), [format!("-I{}", cmodule.display())]);
    let ldflags = line("LDFLAGS=");
    for export in [
        "k230net_socket_module",
        "k230net_network_module",
        "k230net_start",
        "k230net_register",
        "k230net_poll",
    ] {
        assert!(
            ldflags.windows(2).any(|w| w[0] == "-u" && w[1] == export),
            "-u {export} missing: {ldflags:?}"
        );
    }
    assert_eq!(ldflags.last(), Some(&lib.display().to_string()));
}

#[test]
fn make_build_names_the_cargo_command_when_the_library_is_missing() {
    let out = make(
        "missing",
        "show",
        &["K230NET_RUST_TARGET=no-such-target".into()],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    let workspace = module_dir().parent().unwrap().to_path_buf();
    let expected = workspace.join("target/no-such-target/release/libupy_cmodule.a");
    assert!(stderr.contains(&expected.display().to_string()), "{stderr}");
    assert!(
        stderr.contains("cargo build -p upy-cmodule --release --target no-such-target"),
        "{stderr}"
    );
    // `make clean` works without the library.
    let clean = make(
        "missing",
        "clean",
        &["K230NET_RUST_TARGET=no-such-target".into()],
    );
    assert!(clean.status.success(), "{clean:?}");
}
