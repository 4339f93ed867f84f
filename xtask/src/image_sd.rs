//! The K230 SD-card layout and a card image built from a vendor release image.
//!
//! Layout (kendryte/canmv_k230 `boards/k230_canmv/genimage-sdcard.cfg`): SPL at 1 MiB (backup at
//! 1.5 MiB), U-Boot environment at 0x1e0000, U-Boot at 2 MiB, the RT-Smart slot (`rtt`) at
//! 10 MiB, the FAT partition from 50 MiB. SPL and U-Boot each start with a K230 firmware header.
//! We keep the vendor's partition table, SPL, U-Boot and FAT partition and replace the RT-Smart
//! slot with our payload (zero-filled to its end).

use crate::image::k230;
use anyhow::{bail, Context, Result};
use std::io::{Read, Write};

/// SPL offset.
pub const SPL: u64 = 0x10_0000;
/// SPL backup copy offset.
pub const SPL_BACKUP: u64 = 0x18_0000;
/// U-Boot environment offset.
pub const ENV: u64 = 0x1e_0000;
/// U-Boot offset.
pub const UBOOT: u64 = 0x20_0000;
/// RT-Smart slot offset (what the vendor U-Boot boots on the big core).
pub const RTT: u64 = 10 << 20;
/// Start of the FAT partition, the end of the RT-Smart slot.
pub const FAT: u64 = 50 << 20;

/// Copy granularity; every offset above is a multiple of it.
const CHUNK: usize = 512 << 10;

/// What [`compose`] found in the base image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Composed {
    /// Bytes written.
    pub len: u64,
    /// Whether the base image's RT-Smart slot held a K230-headed image.
    pub replaced_rtt: bool,
}

/// A region of the card, for printing the plan.
pub const REGIONS: [(&str, u64, u64); 5] = [
    ("spl", SPL, SPL_BACKUP),
    ("spl (backup)", SPL_BACKUP, ENV),
    ("uboot env", ENV, UBOOT),
    ("uboot", UBOOT, RTT),
    ("rtt", RTT, FAT),
];

/// Copies `base` to `out`, with the RT-Smart slot replaced by `rtt` and zero-filled to the FAT
/// partition. The base must carry K230 headers at the SPL and U-Boot offsets and extend past
/// the slot. `progress` is told the bytes written so far.
pub fn compose(
    base: &mut impl Read,
    rtt: &[u8],
    out: &mut impl Write,
    mut progress: impl FnMut(u64),
) -> Result<Composed> {
    if rtt.len() as u64 > FAT - RTT {
        bail!(
            "payload is {} bytes; the RT-Smart slot holds {}",
            rtt.len(),
            FAT - RTT
        );
    }
    let mut buf = vec![0u8; CHUNK];
    let mut pos = 0u64;
    let mut replaced_rtt = false;
    loop {
        let n = fill(base, &mut buf).context("reading the base image")?;
        if n == 0 {
            break;
        }
        let chunk = &mut buf[..n];
        for (name, at) in [("SPL", SPL), ("U-Boot", UBOOT)] {
            if pos == at && !chunk.starts_with(k230::MAGIC) {
                bail!("the base image has no K230 header at {at:#x} where the {name} belongs: not a K230 SD-card image?");
            }
        }
        if (RTT..FAT).contains(&pos) {
            if pos == RTT {
                replaced_rtt = chunk.starts_with(k230::MAGIC);
            }
            chunk.fill(0);
            let from = (pos - RTT) as usize;
            if from < rtt.len() {
                let take = (rtt.len() - from).min(n);
                chunk[..take].copy_from_slice(&rtt[from..from + take]);
            }
        }
        out.write_all(chunk).context("writing the card image")?;
        pos += n as u64;
        progress(pos);
        if n < CHUNK {
            break;
        }
    }
    if pos <= FAT {
        bail!("the base image ends at {pos:#x}, before the FAT partition at {FAT:#x}");
    }
    Ok(Composed {
        len: pos,
        replaced_rtt,
    })
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn fill(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small fake release image: K230 headers where SPL, U-Boot and the old RTT go, 0xAA
    /// elsewhere, `len` bytes.
    fn base(len: usize) -> Vec<u8> {
        let mut img = vec![0xAA; len];
        for at in [SPL, UBOOT, RTT] {
            img[at as usize..at as usize + 4].copy_from_slice(k230::MAGIC);
        }
        img
    }

    #[test]
    fn replaces_only_the_rtt_slot() {
        let len = (FAT as usize) + (1 << 20);
        let b = base(len);
        let mut out = Vec::new();
        let mut last = 0;
        let done = compose(&mut &b[..], b"NEWRTT", &mut out, |p| last = p).unwrap();
        assert_eq!(done.len, len as u64);
        assert!(done.replaced_rtt);
        assert_eq!(last, len as u64);
        assert_eq!(&out[..RTT as usize], &b[..RTT as usize]);
        assert_eq!(&out[RTT as usize..RTT as usize + 6], b"NEWRTT");
        assert!(out[RTT as usize + 6..FAT as usize].iter().all(|&x| x == 0));
        assert_eq!(&out[FAT as usize..], &b[FAT as usize..]);
    }

    #[test]
    fn rejects_what_is_not_a_k230_card() {
        let mut b = base(FAT as usize + 4096);
        b[UBOOT as usize] = b'X';
        let err = compose(&mut &b[..], b"x", &mut Vec::new(), |_| {}).unwrap_err();
        assert!(err.to_string().contains("U-Boot"), "{err}");
        let short = base(RTT as usize + 4096);
        assert!(compose(&mut &short[..], b"x", &mut Vec::new(), |_| {}).is_err());
        let big = vec![0u8; (FAT - RTT) as usize + 1];
        assert!(compose(
            &mut &base(FAT as usize + 1)[..],
            &big,
            &mut Vec::new(),
            |_| {}
        )
        .is_err());
    }
}
