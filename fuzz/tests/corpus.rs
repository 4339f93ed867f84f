//! Replays every committed corpus file (seeds, and crash inputs added as regressions) through
//! the same bodies the fuzz targets run, on stable: `cargo test --manifest-path fuzz/Cargo.toml`.

use std::path::Path;
use std::time::Instant;

fn replay(target: &str) {
    let body = k230_fuzz::body(target).expect("a known target");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} has no seeds", dir.display());
    let start = Instant::now();
    for file in &files {
        let data = std::fs::read(file).expect("readable corpus file");
        println!("{target}: {}", file.display());
        body(&data);
    }
    println!("{target}: {} inputs in {:?}", files.len(), start.elapsed());
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

#[test]
fn every_target_has_a_corpus_test() {
    let here = include_str!("corpus.rs");
    for target in k230_fuzz::TARGETS {
        assert!(here.contains(&format!("fn {target}_corpus")), "{target}");
    }
}
