//! The committed fuzz corpora of the parser targets, replayed in the workspace's `cargo test`:
//! `fuzz/corpus/{rtl8152_rx,usb_descriptors,netstack_frames}/` through the very bodies the
//! cargo-fuzz targets run (`fuzz/src/*.rs`, compiled here as modules). Seeds and crash inputs
//! added after a fix are regression tests this way. The `dwc2_channel` and `socket_sequence`
//! bodies decode their input with `arbitrary`, which this crate does not depend on; the fuzz
//! crate's own test replays all five (`cargo test --manifest-path fuzz/Cargo.toml`).

use std::path::Path;

#[path = "../../fuzz/src/netstack_frames.rs"]
mod netstack_frames;
#[path = "../../fuzz/src/rtl8152_rx.rs"]
mod rtl8152_rx;
#[path = "../../fuzz/src/usb_descriptors.rs"]
mod usb_descriptors;

/// Runs `body` over every file of `fuzz/corpus/<target>/`.
fn replay(target: &str, body: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} has no seeds", dir.display());
    for file in &files {
        println!("{target}: {}", file.display());
        body(&std::fs::read(file).expect("readable corpus file"));
    }
}

#[test]
fn rtl8152_rx_corpus() {
    replay("rtl8152_rx", rtl8152_rx::run);
}

#[test]
fn usb_descriptors_corpus() {
    replay("usb_descriptors", usb_descriptors::run);
}

#[test]
fn netstack_frames_corpus() {
    replay("netstack_frames", netstack_frames::run);
}
