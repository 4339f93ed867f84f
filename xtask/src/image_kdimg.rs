//! `.kdimg`, the container the official `k230-flash` tool writes to a board: a 512-byte header,
//! a table of 256-byte partition entries, then the partition contents.
//!
//! Format (kendryte/k230_flash_py `src/k230_flash/kdimage.py`): header `<6I32s32s64s` = magic
//! 0x27CB8F93, CRC-32 of the 512-byte header with this field zeroed, flag, version, partition
//! count, CRC-32 of the partition table, image/chip/board info strings; version-1 partition
//! entry `<8I32s32s` = magic 0x91DF6DA4, medium offset, size, erase size, max size, flag,
//! content offset (in the file), content size, SHA-256 of the content, name. All little-endian.

use anyhow::{bail, Result};
use sha2::{Digest, Sha256};

/// Header magic.
pub const HEADER_MAGIC: u32 = 0x27CB_8F93;
/// Partition entry magic.
pub const PART_MAGIC: u32 = 0x91DF_6DA4;
/// Header length.
pub const HEADER_LEN: usize = 512;
/// Partition entry length.
pub const PART_LEN: usize = 256;
/// Where contents are aligned in the file.
const CONTENT_ALIGN: usize = 4096;
/// Medium block size: partition offsets and sizes are multiples of it.
pub const BLOCK: u64 = 512;

/// One partition to write.
#[derive(Debug, Clone)]
pub struct Partition<'a> {
    /// Name (at most 31 bytes).
    pub name: &'a str,
    /// Byte offset on the medium.
    pub offset: u64,
    /// Bytes the partition may grow to on the medium.
    pub max_size: u64,
    /// Contents.
    pub content: &'a [u8],
}

/// Strings in the header.
#[derive(Debug, Clone)]
pub struct Info<'a> {
    /// What the image is (32 bytes max).
    pub image: &'a str,
    /// The chip (32 bytes max).
    pub chip: &'a str,
    /// The board (64 bytes max).
    pub board: &'a str,
}

fn put_str(out: &mut [u8], s: &str, what: &str) -> Result<()> {
    if s.len() >= out.len() {
        bail!("{what} `{s}` is longer than {} bytes", out.len() - 1);
    }
    out[..s.len()].copy_from_slice(s.as_bytes());
    Ok(())
}

fn u32_of(v: u64, what: &str) -> Result<u32> {
    u32::try_from(v).map_err(|_| anyhow::anyhow!("{what} {v:#x} does not fit a version-1 .kdimg"))
}

/// A version-1 `.kdimg` holding `parts`.
pub fn build(info: &Info<'_>, parts: &[Partition<'_>]) -> Result<Vec<u8>> {
    let table_len = parts.len() * PART_LEN;
    let mut content_at = (HEADER_LEN + table_len).next_multiple_of(CONTENT_ALIGN);
    let mut table = vec![0u8; table_len];
    let mut contents = Vec::new();
    for (entry, p) in table.chunks_exact_mut(PART_LEN).zip(parts) {
        if p.offset % BLOCK != 0 {
            bail!(
                "partition {} offset {:#x} is not block aligned",
                p.name,
                p.offset
            );
        }
        let size = (p.content.len() as u64).next_multiple_of(BLOCK);
        if size > p.max_size {
            bail!(
                "partition {} holds {} bytes; its slot {}",
                p.name,
                p.content.len(),
                p.max_size
            );
        }
        let fields = [
            PART_MAGIC,
            u32_of(p.offset, "offset")?,
            u32_of(size, "size")?,
            BLOCK as u32,
            u32_of(p.max_size, "max size")?,
            0,
            u32_of(content_at as u64, "content offset")?,
            u32_of(p.content.len() as u64, "content size")?,
        ];
        for (i, f) in fields.iter().enumerate() {
            entry[i * 4..i * 4 + 4].copy_from_slice(&f.to_le_bytes());
        }
        entry[32..64].copy_from_slice(&Sha256::digest(p.content));
        put_str(&mut entry[64..96], p.name, "partition name")?;
        contents.push((content_at, p.content));
        content_at = (content_at + p.content.len()).next_multiple_of(CONTENT_ALIGN);
    }
    let mut header = vec![0u8; HEADER_LEN];
    let fields = [
        HEADER_MAGIC,
        0,
        0,
        1,
        u32::try_from(parts.len())?,
        crc32fast::hash(&table),
    ];
    for (i, f) in fields.iter().enumerate() {
        header[i * 4..i * 4 + 4].copy_from_slice(&f.to_le_bytes());
    }
    put_str(&mut header[24..56], info.image, "image info")?;
    put_str(&mut header[56..88], info.chip, "chip info")?;
    put_str(&mut header[88..152], info.board, "board info")?;
    let crc = crc32fast::hash(&header);
    header[4..8].copy_from_slice(&crc.to_le_bytes());

    let mut out = header;
    out.extend_from_slice(&table);
    for (at, data) in contents {
        out.resize(at, 0);
        out.extend_from_slice(data);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn le(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn header_table_and_content() {
        let info = Info {
            image: "k230-net",
            chip: "K230",
            board: "canmv",
        };
        let img = build(
            &info,
            &[Partition {
                name: "rtt",
                offset: 10 << 20,
                max_size: 40 << 20,
                content: b"payload",
            }],
        )
        .unwrap();
        assert_eq!(le(&img, 0), HEADER_MAGIC);
        let mut h = img[..HEADER_LEN].to_vec();
        h[4..8].fill(0);
        assert_eq!(le(&img, 4), crc32fast::hash(&h));
        assert_eq!(le(&img, 16), 1);
        assert_eq!(le(&img, 20), crc32fast::hash(&img[512..768]));
        assert_eq!(le(&img, 512), PART_MAGIC);
        assert_eq!(le(&img, 516), 10 << 20);
        assert_eq!(le(&img, 520), 512);
        let at = le(&img, 536) as usize;
        assert_eq!(at, 4096);
        assert_eq!(&img[at..at + 7], b"payload");
        assert_eq!(le(&img, 540), 7);
        assert_eq!(
            &img[512 + 32..512 + 64],
            Sha256::digest(b"payload").as_slice()
        );
    }

    #[test]
    fn rejects_what_the_format_cannot_say() {
        let info = Info {
            image: "x",
            chip: "K230",
            board: "b",
        };
        let part = |offset, max_size, content| Partition {
            name: "p",
            offset,
            max_size,
            content,
        };
        assert!(build(&info, &[part(1, 4096, b"x")]).is_err());
        assert!(build(&info, &[part(0, 0, b"x")]).is_err());
        assert!(build(&info, &[part(1 << 32, 1 << 20, b"x")]).is_err());
    }
}
