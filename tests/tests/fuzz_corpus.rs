//! The committed fuzz corpora, replayed in the workspace's `cargo test`: every file of
//! `fuzz/corpus/<target>/` through the very body the cargo-fuzz target runs (`fuzz/src/*.rs`,
//! compiled here as modules). Seeds and crash inputs added after a fix are regression tests
//! this way, on stable and without libFuzzer.

use std::path::{Path, PathBuf};

#[path = "../../fuzz/src/dwc2_channel.rs"]
mod dwc2_channel;
#[path = "../../fuzz/src/netstack_frames.rs"]
mod netstack_frames;
#[path = "../../fuzz/src/rtl8152_rx.rs"]
mod rtl8152_rx;
#[path = "../../fuzz/src/socket_sequence.rs"]
mod socket_sequence;
#[path = "../../fuzz/src/upy_calls.rs"]
mod upy_calls;
#[path = "../../fuzz/src/usb_descriptors.rs"]
mod usb_descriptors;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The body of the target called `name`.
fn body(name: &str) -> Option<fn(&[u8])> {
    Some(match name {
        "rtl8152_rx" => rtl8152_rx::run,
        "usb_descriptors" => usb_descriptors::run,
        "dwc2_channel" => dwc2_channel::run,
        "netstack_frames" => netstack_frames::run,
        "socket_sequence" => socket_sequence::run,
        "upy_calls" => upy_calls::run,
        _ => return None,
    })
}

/// Runs the target's body over every file of `fuzz/corpus/<target>/`.
fn replay(target: &str) {
    let body = body(target).expect("a known target");
    let dir = fuzz_dir().join("corpus").join(target);
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
    replay("rtl8152_rx");
}

#[test]
fn usb_descriptors_corpus() {
    replay("usb_descriptors");
}

#[test]
fn dwc2_channel_corpus() {
    replay("dwc2_channel");
}

#[test]
fn netstack_frames_corpus() {
    replay("netstack_frames");
}

#[test]
fn socket_sequence_corpus() {
    replay("socket_sequence");
}

/// Skipped (by the test kit's rule) without the MicroPython library.
#[test]
fn upy_calls_corpus() {
    replay("upy_calls");
}

#[test]
fn every_fuzz_target_is_replayed_here() {
    let targets = fuzz_dir().join("fuzz_targets");
    let mut seen = 0;
    for entry in std::fs::read_dir(&targets).expect("fuzz/fuzz_targets") {
        let path = entry.expect("directory entry").path();
        let name = path.file_stem().and_then(|s| s.to_str()).expect("a name");
        assert!(body(name).is_some(), "{name} has no replay here");
        assert!(
            include_str!("fuzz_corpus.rs").contains(&format!("fn {name}_corpus")),
            "{name} has no corpus test here"
        );
        seen += 1;
    }
    assert_eq!(seen, 6, "targets in {}", targets.display());
}
