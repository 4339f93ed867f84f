//! The in-process wire pair (byte-exact, across threads, backpressure) and the pcap middleware
//! (the file parses back into the frames that crossed).
#![cfg(feature = "sim")]

use k230_hal::sim::wire::pair::pair;
use k230_hal::sim::wire::pcap::PcapWriter;
use k230_hal::sim::wire::Wire;
use std::io::ErrorKind;
use std::time::{Duration, Instant};

fn frame(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) ^ seed) as u8)
        .collect()
}

#[test]
fn pair_is_byte_exact_in_both_directions() {
    let (mut a, mut b) = pair(16);
    for i in 0..10 {
        a.send(&frame(60 + i * 100, i as u32)).unwrap();
        b.send(&frame(1514 - i * 100, 100 + i as u32)).unwrap();
    }
    for i in 0..10 {
        assert_eq!(b.recv().unwrap(), Some(frame(60 + i * 100, i as u32)));
        assert_eq!(
            a.recv().unwrap(),
            Some(frame(1514 - i * 100, 100 + i as u32))
        );
    }
    assert_eq!(a.recv().unwrap(), None);
    assert_eq!(b.recv().unwrap(), None);
}

#[test]
fn full_pair_pushes_back() {
    let (mut a, mut b) = pair(2);
    a.send(&[1; 60]).unwrap();
    a.send(&[2; 60]).unwrap();
    assert_eq!(a.send(&[3; 60]).unwrap_err().kind(), ErrorKind::WouldBlock);
    assert_eq!(b.recv().unwrap(), Some(vec![1; 60]));
    a.send(&[3; 60]).unwrap();
}

#[test]
fn pair_carries_frames_between_threads() {
    let (mut a, mut b) = pair(8);
    const N: u32 = 2000;
    let sender = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut i = 0;
        while i < N && Instant::now() < deadline {
            match a.send(&frame(60 + (i as usize * 7) % 1455, i)) {
                Ok(()) => i += 1,
                Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(e) => panic!("{e}"),
            }
        }
        i
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut got = 0;
    while got < N && Instant::now() < deadline {
        match b.recv().unwrap() {
            Some(f) => {
                assert_eq!(f, frame(60 + (got as usize * 7) % 1455, got));
                got += 1;
            }
            None => std::thread::yield_now(),
        }
    }
    assert_eq!(sender.join().unwrap(), N);
    assert_eq!(got, N);
}

/// Parses a classic pcap file into (link type, frames).
fn parse_pcap(b: &[u8]) -> (u32, Vec<Vec<u8>>) {
    let u32_at = |at: usize| u32::from_ne_bytes(b[at..at + 4].try_into().unwrap());
    assert_eq!(u32_at(0), 0xa1b2_c3d4);
    assert_eq!(u16::from_ne_bytes([b[4], b[5]]), 2);
    assert_eq!(u16::from_ne_bytes([b[6], b[7]]), 4);
    let linktype = u32_at(20);
    let mut frames = Vec::new();
    let mut pos = 24;
    while pos < b.len() {
        let (caplen, origlen) = (u32_at(pos + 8) as usize, u32_at(pos + 12) as usize);
        assert_eq!(caplen, origlen);
        frames.push(b[pos + 16..pos + 16 + caplen].to_vec());
        pos += 16 + caplen;
    }
    assert_eq!(pos, b.len());
    (linktype, frames)
}

#[test]
fn pcap_records_both_directions_and_passes_frames_through() {
    let (a, mut b) = pair(8);
    let mut w = PcapWriter::new(a, Vec::new()).unwrap();
    w.send(&frame(60, 1)).unwrap();
    b.send(&frame(1514, 2)).unwrap();
    assert_eq!(w.recv().unwrap(), Some(frame(1514, 2)));
    assert_eq!(w.recv().unwrap(), None);
    assert_eq!(b.recv().unwrap(), Some(frame(60, 1)));
    let (_, file) = w.into_inner();
    let (linktype, frames) = parse_pcap(&file);
    assert_eq!(linktype, 1);
    assert_eq!(frames, vec![frame(60, 1), frame(1514, 2)]);
}

#[test]
fn pcap_file_is_read_by_tcpdump_when_available() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let path = file.path();
    let (a, _b) = pair(8);
    let mut arp = vec![0xff; 6];
    arp.extend([0x02, 0, 0, 0, 0, 2, 0x08, 0x06]);
    arp.extend([0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 2, 192, 0, 2, 2]);
    arp.extend([0, 0, 0, 0, 0, 0, 192, 0, 2, 1]);
    let mut w = PcapWriter::new(a, std::fs::File::create(path).unwrap()).unwrap();
    w.send(&arp).unwrap();
    drop(w);
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(parse_pcap(&bytes).1, vec![arp]);
    match std::process::Command::new("tcpdump")
        .args(["-nn", "-r"])
        .arg(path)
        .output()
    {
        Ok(out) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                text.contains("ARP, Request who-has 192.0.2.1 tell 192.0.2.2"),
                "{text}"
            );
        }
        _ => println!("tcpdump not available: parsed the file ourselves only"),
    }
}

/// A 100-byte frame that differs from every other index's.
fn unique(i: u32) -> Vec<u8> {
    let mut f = frame(100, i);
    f[..4].copy_from_slice(&i.to_be_bytes());
    // The complement too, so that no bit flip turns one frame into another.
    f[4..8].copy_from_slice(&(!i).to_be_bytes());
    f
}

#[test]
fn impairments_are_reproducible_and_counted() {
    use k230_hal::sim::wire::impair::{Impair, Impairments};
    let rates = Impairments {
        drop_pct: 10,
        corrupt_pct: 10,
        duplicate_pct: 10,
        reorder_pct: 10,
    };
    let run = |seed| {
        let (a, mut b) = pair(4096);
        let mut w = Impair::new(a, rates, seed);
        for i in 0..1000 {
            w.send(&unique(i)).unwrap();
        }
        // A frame still held back goes out after a few receive polls.
        for _ in 0..2 {
            assert_eq!(w.recv().unwrap(), None);
        }
        let got: Vec<Vec<u8>> = std::iter::from_fn(|| b.recv().unwrap()).collect();
        (w.stats(), got)
    };
    let (stats, got) = run(7);
    assert_eq!(run(7).1, got, "same seed, same faults");
    assert_ne!(run(8).1, got);
    for n in [
        stats.dropped,
        stats.corrupted,
        stats.duplicated,
        stats.reordered,
    ] {
        assert!((50..=150).contains(&n), "{stats:?}");
    }
    // Reordered frames arrive after a frame sent later than them.
    let index = |f: &Vec<u8>| u32::from_be_bytes([f[0], f[1], f[2], f[3]]);
    let late = got
        .windows(2)
        .filter(|w| index(&w[1]) < index(&w[0]))
        .count() as u64;
    assert!(late >= stats.reordered / 2, "{late} late of {stats:?}");
    assert_eq!(got.len() as u64, 1000 - stats.dropped + stats.duplicated);
    // Every frame that is not one of the originals is a corrupted one.
    let originals: Vec<Vec<u8>> = (0..1000).map(unique).collect();
    let bad = got.iter().filter(|f| !originals.contains(f)).count() as u64;
    assert_eq!(bad, stats.corrupted);
    // Passing everything through when no impairment is set.
    let (a, mut b) = pair(8);
    let mut clean = Impair::new(a, Impairments::default(), 1);
    clean.send(&frame(60, 1)).unwrap();
    assert_eq!(b.recv().unwrap(), Some(frame(60, 1)));
}
