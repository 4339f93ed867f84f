//! Writing images to an SD card (a block device) or an image file.

use crate::build::byte_bar;
use crate::image::sd::{self as layout, Slot};
use anyhow::{bail, Context, Result};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

/// Refuses devices that are mounted (a partition of it appears in `mounts`).
pub fn check_not_mounted(device: &Path, mounts: &str) -> Result<()> {
    let dev = device.to_string_lossy();
    for line in mounts.lines() {
        let Some(source) = line.split_whitespace().next() else {
            continue;
        };
        if source == dev
            || (source.starts_with(dev.as_ref())
                && source[dev.len()..]
                    .trim_start_matches('p')
                    .chars()
                    .all(|c| c.is_ascii_digit()))
        {
            bail!("{source} is mounted ({line}); unmount every partition of {dev} first");
        }
    }
    Ok(())
}

/// Copies each `(offset, file)` into `device` at that byte offset, streaming with a progress bar,
/// then syncs. `device` is a block device (refused while mounted) or an image file.
pub fn write_at(device: &Path, writes: &[(u64, PathBuf)]) -> Result<()> {
    let meta =
        std::fs::metadata(device).with_context(|| format!("no device {}", device.display()))?;
    if meta.file_type().is_block_device() {
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
        check_not_mounted(device, &mounts)?;
    } else if !meta.is_file() {
        bail!(
            "{} is neither a block device nor an image file",
            device.display()
        );
    }
    let mut sources = Vec::new();
    for (offset, path) in writes {
        let file =
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let len = file.metadata()?.len();
        sources.push((*offset, file, len));
    }
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .open(device)
        .with_context(|| {
            format!(
                "opening {} for writing (root needed for devices)",
                device.display()
            )
        })?;
    let total = sources.iter().map(|(_, _, len)| len).sum();
    let pb = byte_bar(total, &format!("writing {}", device.display()));
    let mut buf = vec![0u8; 1 << 20];
    for (offset, mut file, _) in sources {
        out.seek(SeekFrom::Start(offset))?;
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n])
                .with_context(|| format!("writing {}", device.display()))?;
            pb.inc(n as u64);
        }
    }
    out.sync_all().context("syncing")?;
    pb.finish_and_clear();
    Ok(())
}

/// Writes `payload` at the start of the slot `device`'s U-Boot boots the big core from (its
/// layout read from the card, [`layout::plan`]); returns the slot.
pub fn write_to_boot_slot(device: &Path, payload: &Path) -> Result<Slot> {
    let mut card =
        std::fs::File::open(device).with_context(|| format!("opening {}", device.display()))?;
    let mut head = Vec::new();
    (&mut card)
        .take(layout::HEAD as u64)
        .read_to_end(&mut head)
        .with_context(|| format!("reading {}", device.display()))?;
    let slot = layout::plan(&head)
        .with_context(|| format!("reading the layout of {}", device.display()))?
        .slot;
    let len = std::fs::metadata(payload)
        .with_context(|| format!("reading {}", payload.display()))?
        .len();
    if len > slot.size {
        bail!(
            "{} is {len} bytes; the slot {} holds {}",
            payload.display(),
            slot.name,
            slot.size
        );
    }
    write_at(device, &[(slot.offset, payload.to_path_buf())])?;
    Ok(slot)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounted_partitions_are_refused() {
        let mounts = "/dev/sdb1 /media/card vfat rw 0 0\n/dev/mmcblk0p2 / ext4 rw 0 0\n";
        assert!(check_not_mounted(Path::new("/dev/sdb"), mounts).is_err());
        assert!(check_not_mounted(Path::new("/dev/mmcblk0"), mounts).is_err());
        assert!(check_not_mounted(Path::new("/dev/sdc"), mounts).is_ok());
        // sdb1 is not a partition of sd.
        assert!(check_not_mounted(Path::new("/dev/sd"), mounts).is_ok());
    }

    #[test]
    fn writes_land_at_their_offsets_in_an_image_file() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let img = dir.join("card.img");
        std::fs::write(&img, vec![0xEEu8; 64]).unwrap();
        let (a, b) = (dir.join("a"), dir.join("b"));
        std::fs::write(&a, b"abc").unwrap();
        std::fs::write(&b, b"wxyz").unwrap();
        write_at(&img, &[(8, a), (60, b)]).unwrap();
        let got = std::fs::read(&img).unwrap();
        assert_eq!(&got[8..11], b"abc");
        assert_eq!(&got[60..], b"wxyz");
        assert_eq!(got[7], 0xEE);
        assert_eq!(got.len(), 64);
    }

    #[test]
    fn the_payload_goes_to_the_slot_the_cards_u_boot_boots() {
        use crate::image::{k230, toc::fixture};
        const MIB: u64 = 1 << 20;
        let tmp = tempfile::tempdir().unwrap();
        let payload = tmp.path().join("rtt_system.bin");
        std::fs::write(&payload, b"K230 ours").unwrap();
        let card = |toc: Option<(u32, u32)>| {
            let img = tmp.path().join("card.img");
            let mut f = std::fs::File::create(&img).unwrap();
            f.set_len(90 * MIB).unwrap();
            let mut put = |at: u64, bytes: &[u8]| {
                f.seek(SeekFrom::Start(at)).unwrap();
                f.write_all(bytes).unwrap();
            };
            for at in [0x10_0000, 0x20_0000] {
                put(at, k230::MAGIC);
            }
            if let Some((a, b)) = toc {
                put(crate::image::toc::OFFSET, &fixture::rtos_sdk());
                put(0xf_0000, &fixture::meta(a));
                put(0xf_0400, &fixture::meta(b));
            }
            img
        };
        for (toc, name, at) in [
            (None, "rtt", 10 * MIB),
            (Some((2, 1)), "rtt_a", 10 * MIB),
            (Some((1, 2)), "rtt_b", 60 * MIB),
        ] {
            let img = card(toc);
            let slot = write_to_boot_slot(&img, &payload).unwrap();
            assert_eq!((slot.name.as_str(), slot.offset), (name, at));
            let got = std::fs::read(&img).unwrap();
            assert_eq!(&got[at as usize..at as usize + 9], b"K230 ours");
            let other = if at == 10 * MIB { 60 * MIB } else { 10 * MIB } as usize;
            assert_eq!(
                got[other..other + 9],
                [0; 9],
                "{name}: the other slot untouched"
            );
        }
    }
}
