//! The K230 firmware header the boot ROM and the vendor U-Boot check in front of every boot
//! payload: 528 bytes, then a 4-byte version word and the payload.
//!
//! Facts (kendryte `tools/firmware_gen.py`, `-n` mode; `firmware_head_s` in the vendor U-Boot
//! `board/canaan/common/k230_board_common.h`): magic "K230" (0x3033324B LE), u32 LE length of
//! version + payload, u32 LE crypto type (0 = none), SHA-256 of version + payload, 484 zero
//! bytes. The U-Boot reads the uImage at 4 bytes past the header.

use sha2::{Digest, Sha256};

/// The magic, as bytes.
pub const MAGIC: &[u8; 4] = b"K230";
/// Header length.
pub const HEADER_LEN: usize = 528;
/// Crypto type: none (integrity by SHA-256 only).
pub const CRYPTO_NONE: u32 = 0;
/// The version word `firmware_gen.py` puts in front of the payload.
pub const VERSION: [u8; 4] = [0; 4];

/// `payload` behind a version word and an unencrypted K230 firmware header.
pub fn wrap(payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(VERSION.len() + payload.len());
    body.extend_from_slice(&VERSION);
    body.extend_from_slice(payload);
    let len = u32::try_from(body.len()).expect("K230 payloads are far below 4 GiB");
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&CRYPTO_NONE.to_le_bytes());
    out.extend_from_slice(&Sha256::digest(&body));
    out.resize(HEADER_LEN, 0);
    out.extend_from_slice(&body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_fields() {
        let img = wrap(b"hello");
        assert_eq!(img.len(), HEADER_LEN + 4 + 5);
        assert_eq!(
            u32::from_le_bytes(img[0..4].try_into().unwrap()),
            0x3033_324B
        );
        assert_eq!(u32::from_le_bytes(img[4..8].try_into().unwrap()), 9);
        assert_eq!(&img[8..12], &[0; 4]);
        assert_eq!(&img[12..44], Sha256::digest(b"\0\0\0\0hello").as_slice());
        assert!(img[44..HEADER_LEN].iter().all(|&b| b == 0));
        assert_eq!(&img[HEADER_LEN..], b"\0\0\0\0hello");
    }
}
