//! U-Boot legacy images (`uImage`): a 64-byte big-endian header with CRC-32s of itself and of the
//! data. Layout and codes from U-Boot `include/image.h` (`image_header_t`, `IH_*` enums); the
//! multi-file data layout (a zero-terminated table of big-endian sizes, then each file padded
//! to 4 bytes) from U-Boot `boot/image.c` `image_multi_getimg` and `tools/mkimage.c`.

use anyhow::{bail, Result};

/// `IH_MAGIC`.
pub const MAGIC: u32 = 0x2705_1956;
/// Header length.
pub const HEADER_LEN: usize = 64;
/// `IH_NMLEN`: bytes of the name field.
pub const NAME_LEN: usize = 32;

/// `IH_OS_OPENSBI`: what the vendor tooling marks the K230 `rtt` image with.
pub const OS_OPENSBI: u8 = 27;
/// `IH_ARCH_RISCV`.
pub const ARCH_RISCV: u8 = 26;
/// `IH_TYPE_MULTI`.
pub const TYPE_MULTI: u8 = 4;
/// `IH_COMP_GZIP`.
pub const COMP_GZIP: u8 = 1;

/// The header fields a caller chooses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Image name (at most 31 bytes; the vendor U-Boot dispatches on `rtt`).
    pub name: String,
    /// Load address (where U-Boot decompresses the first file to).
    pub load: u32,
    /// Entry point.
    pub entry: u32,
    /// Creation time, seconds since the epoch (0 keeps builds reproducible).
    pub time: u32,
    /// `IH_OS_*`.
    pub os: u8,
    /// `IH_ARCH_*`.
    pub arch: u8,
    /// `IH_COMP_*` of the files.
    pub comp: u8,
}

/// A multi-file legacy image holding `files`.
pub fn multi(header: &Header, files: &[&[u8]]) -> Result<Vec<u8>> {
    if header.name.len() >= NAME_LEN {
        bail!(
            "uImage name `{}` is longer than {} bytes",
            header.name,
            NAME_LEN - 1
        );
    }
    if files.is_empty() {
        bail!("a multi-file uImage needs at least one file");
    }
    let mut data = Vec::new();
    for f in files {
        let len = u32::try_from(f.len())?;
        data.extend_from_slice(&len.to_be_bytes());
    }
    data.extend_from_slice(&0u32.to_be_bytes());
    for (i, f) in files.iter().enumerate() {
        data.extend_from_slice(f);
        if i + 1 < files.len() {
            data.resize(data.len().next_multiple_of(4), 0);
        }
    }
    let mut image = vec![0u8; HEADER_LEN];
    image[0..4].copy_from_slice(&MAGIC.to_be_bytes());
    image[8..12].copy_from_slice(&header.time.to_be_bytes());
    image[12..16].copy_from_slice(&u32::try_from(data.len())?.to_be_bytes());
    image[16..20].copy_from_slice(&header.load.to_be_bytes());
    image[20..24].copy_from_slice(&header.entry.to_be_bytes());
    image[24..28].copy_from_slice(&crc32fast::hash(&data).to_be_bytes());
    image[28] = header.os;
    image[29] = header.arch;
    image[30] = TYPE_MULTI;
    image[31] = header.comp;
    image[32..32 + header.name.len()].copy_from_slice(header.name.as_bytes());
    let hcrc = crc32fast::hash(&image);
    image[4..8].copy_from_slice(&hcrc.to_be_bytes());
    image.extend_from_slice(&data);
    Ok(image)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            name: "rtt".into(),
            load: 0,
            entry: 0,
            time: 0,
            os: OS_OPENSBI,
            arch: ARCH_RISCV,
            comp: COMP_GZIP,
        }
    }

    #[test]
    fn single_file_layout() {
        let img = multi(&header(), &[b"abcde"]).unwrap();
        assert_eq!(&img[0..4], &[0x27, 0x05, 0x19, 0x56]);
        assert_eq!(u32::from_be_bytes(img[12..16].try_into().unwrap()), 8 + 5);
        assert_eq!(&img[64..72], &[0, 0, 0, 5, 0, 0, 0, 0]);
        assert_eq!(&img[72..], b"abcde");
        assert_eq!(&img[32..36], b"rtt\0");
        assert_eq!((img[28], img[29], img[30], img[31]), (27, 26, 4, 1));
    }

    #[test]
    fn files_before_the_last_are_padded() {
        let img = multi(&header(), &[b"abc", b"xy"]).unwrap();
        assert_eq!(&img[64..76], &[0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 0]);
        assert_eq!(&img[76..], b"abc\0xy");
    }

    #[test]
    fn bad_requests_are_errors() {
        let mut h = header();
        h.name = "x".repeat(32);
        assert!(multi(&h, &[b"a"]).is_err());
        assert!(multi(&header(), &[]).is_err());
    }
}
