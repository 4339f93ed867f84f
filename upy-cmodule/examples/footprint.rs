//! Builds the static library for the firmware's target, as `micropython.mk` and
//! `micropython.cmake` expect it, and reports its size and what it adds to a firmware:
//!
//! ```text
//! cargo run -p upy-cmodule --example footprint
//! ```

#[path = "../tests/support/archive.rs"]
mod archive;

use std::path::PathBuf;

fn main() {
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| archive::manifest_dir().join("../target"));
    archive::cargo_build(&target_dir, &["--release", "--target", archive::TARGET]);
    let lib = target_dir
        .join(archive::TARGET)
        .join("release/libupy_cmodule.a");
    let bytes = std::fs::read(&lib).unwrap();
    let members = archive::read_members(&bytes);
    let pulled = archive::pulled_members(&members, &archive::EXPORTS);
    let size = archive::linked_footprint(&lib, &lib.with_extension("linked.elf"));
    println!("{}", lib.display());
    println!(
        "archive: {} bytes, {} members ({} linked for the exports)",
        bytes.len(),
        members.len(),
        pulled.len()
    );
    let soft: Vec<&str> = members
        .iter()
        .filter(|m| !m.lp64d)
        .map(|m| m.name.as_str())
        .collect();
    println!(
        "soft-float members: {} (e.g. {:?}); linked for the exports: {}",
        soft.len(),
        soft.first(),
        if pulled.iter().all(|m| m.lp64d) {
            "none"
        } else {
            "SOME (the firmware link will fail)"
        }
    );
    let data_objects: usize = pulled.iter().map(|m| m.data.len()).sum();
    println!("data objects defined by the linked members: {data_objects}");
    println!(
        "linked into a firmware: .text {} B, .rodata {} B, .data {} B, .bss {} B",
        size.text, size.rodata, size.data, size.bss
    );
}
