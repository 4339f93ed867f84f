//! Writing images to an SD card (a block device) or an image file.

use crate::build::byte_bar;
use anyhow::{bail, Context, Result};
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

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

/// Writes each `(offset, bytes)` to `device`, with a progress bar, then syncs.
pub fn write_at(device: &Path, writes: &[(u64, &[u8])]) -> Result<()> {
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
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(device)
        .with_context(|| {
            format!(
                "opening {} for writing (root needed for devices)",
                device.display()
            )
        })?;
    let total: u64 = writes.iter().map(|(_, b)| b.len() as u64).sum();
    let pb = byte_bar(total, &format!("writing {}", device.display()));
    for (offset, bytes) in writes {
        file.seek(SeekFrom::Start(*offset))?;
        for chunk in bytes.chunks(1 << 20) {
            file.write_all(chunk)
                .with_context(|| format!("writing {}", device.display()))?;
            pb.inc(chunk.len() as u64);
        }
    }
    file.sync_all().context("syncing")?;
    pb.finish_and_clear();
    Ok(())
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
        let dir = std::env::temp_dir().join(format!("xtask-sd-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let img = dir.join("card.img");
        std::fs::write(&img, vec![0xEEu8; 64]).unwrap();
        write_at(&img, &[(8, b"abc"), (60, b"wxyz")]).unwrap();
        let got = std::fs::read(&img).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(&got[8..11], b"abc");
        assert_eq!(&got[60..], b"wxyz");
        assert_eq!(got[7], 0xEE);
        assert_eq!(got.len(), 64);
    }
}
