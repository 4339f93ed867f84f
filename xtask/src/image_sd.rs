//! The K230 SD-card layouts, and a card image built from a vendor release image with our
//! payload in the slot U-Boot boots the big core from, every other byte kept.
//!
//! Two layouts (sources in `image_toc.rs` and here):
//! - fixed offsets (kendryte/canmv_k230 `boards/k230_canmv/genimage-sdcard.cfg`, canmv
//!   v1.1-v1.4; canmv-k230/u-boot `board_common.h` `RTT_SYS_IN_IMG_OFF_SEC`): SPL at 1 MiB
//!   (backup 1.5 MiB), U-Boot environment 0x1e0000, U-Boot 2 MiB, the RT-Smart slot `rtt` at
//!   10 MiB (20 MiB), FAT from 50 MiB;
//! - a TOC at 0xe0000 (canmv v1.5 / rtos SDK v0.6 on): the same SPL and U-Boot, A/B slots
//!   (`rtt_a` 10 MiB, `rtapp_a` 30 MiB, `rtt_b` 60 MiB, `rtapp_b` 80 MiB, FAT 110 MiB); U-Boot
//!   boots the slot its OTA meta blocks pick, falling back to the other when a load fails.
//!   Offsets and sizes are the TOC's: wondermk's slot B is at 70 MiB, a card flashed from a
//!   vendor `.kdimg` (`genimage-sdcard-kdimg.cfg`) has one 10 MiB slot `rtt` and no OTA meta.
//!
//! SPL and U-Boot each start with a K230 firmware header. Only the slot changes: our payload,
//! then zeros to the slot's end (no stale bytes of the vendor firmware behind ours).

use crate::image::k230;
use crate::image::toc::{self, BootSlot};
use anyhow::{bail, Context, Result};
use std::io::{Read, Write};

/// SPL offset.
pub const SPL: u64 = 0x10_0000;
/// U-Boot offset.
pub const UBOOT: u64 = 0x20_0000;
/// The fixed layout's RT-Smart slot (and the TOC layout's slot A): offset.
pub const RTT: u64 = 10 << 20;
/// Its size.
pub const RTT_SIZE: u64 = 20 << 20;

/// Bytes of a card [`plan`] needs at most: the TOC, the OTA meta blocks, the SPL and U-Boot
/// headers all lie in them.
pub const HEAD: usize = 4 << 20;
/// Copy granularity.
const CHUNK: usize = 512 << 10;

/// How a base image is laid out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Layout {
    /// No TOC: the RT-Smart slot at a fixed offset.
    Fixed,
    /// A TOC; U-Boot boots this slot.
    Toc(BootSlot),
}

/// The partition our payload goes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slot {
    /// Its name (`rtt`, `rtt_a`, `rtt_b`).
    pub name: String,
    /// Byte offset on the card.
    pub offset: u64,
    /// Size in bytes.
    pub size: u64,
}

impl Slot {
    fn end(&self) -> u64 {
        self.offset + self.size
    }
}

/// Where a base image takes our payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The base image's layout.
    pub layout: Layout,
    /// The big core's slot in it.
    pub slot: Slot,
}

/// The plan for a card whose first bytes are `head` (at least the TOC and the U-Boot header,
/// up to 4 MiB).
pub fn plan(head: &[u8]) -> Result<Plan> {
    for (name, at) in [("SPL", SPL), ("U-Boot", UBOOT)] {
        if !head
            .get(at as usize..)
            .is_some_and(|b| b.starts_with(k230::MAGIC))
        {
            bail!("the base image has no K230 header at {at:#x} where the {name} belongs: not a K230 SD-card image?");
        }
    }
    let toc_at = toc::OFFSET as usize;
    let Some(entries) = toc::parse(&head[toc_at..toc_at + toc::LEN])? else {
        return Ok(Plan {
            layout: Layout::Fixed,
            slot: Slot {
                name: "rtt".into(),
                offset: RTT,
                size: RTT_SIZE,
            },
        });
    };
    let read = |at: u64, len: usize| {
        let at = usize::try_from(at).ok()?;
        head.get(at..at.checked_add(len)?).map(<[u8]>::to_vec)
    };
    let slot = toc::boot_slot(&entries, read);
    let entry = toc::big_core_image(&entries, slot)?;
    Ok(Plan {
        layout: Layout::Toc(slot),
        slot: Slot {
            name: entry.name.clone(),
            offset: entry.offset,
            size: entry.size,
        },
    })
}

/// What [`compose`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Composed {
    /// Bytes written.
    pub len: u64,
    /// Where the payload went.
    pub plan: Plan,
    /// Whether that slot held a K230-headed image before.
    pub replaced_rtt: bool,
}

/// Copies `base` to `out` with the big core's slot ([`plan`]) holding `rtt` and zeros to its
/// end; every other byte is the base image's. The base must be a K230 card and extend past the
/// slot. `progress` is told the bytes written so far.
pub fn compose(
    base: &mut impl Read,
    rtt: &[u8],
    out: &mut impl Write,
    mut progress: impl FnMut(u64),
) -> Result<Composed> {
    let mut head = vec![0u8; HEAD];
    let got = fill(base, &mut head).context("reading the base image")?;
    head.truncate(got);
    if head.len() < UBOOT as usize + k230::MAGIC.len() {
        bail!("the base image ends at {got:#x}, before U-Boot at {UBOOT:#x}");
    }
    let plan = plan(&head)?;
    let slot = plan.slot.clone();
    if rtt.len() as u64 > slot.size {
        bail!(
            "payload is {} bytes; the slot {} holds {}",
            rtt.len(),
            slot.name,
            slot.size
        );
    }
    let mut slot_head = Vec::new();
    let mut pos = 0u64;
    let mut buf = head;
    loop {
        if buf.is_empty() {
            break;
        }
        let end = pos + buf.len() as u64;
        let (from, to) = (slot.offset.max(pos), slot.end().min(end));
        if from < to {
            let chunk = &mut buf[(from - pos) as usize..(to - pos) as usize];
            let need = k230::MAGIC.len().saturating_sub(slot_head.len());
            slot_head.extend_from_slice(&chunk[..need.min(chunk.len())]);
            chunk.fill(0);
            let at = (from - slot.offset) as usize;
            if at < rtt.len() {
                let take = (rtt.len() - at).min(chunk.len());
                chunk[..take].copy_from_slice(&rtt[at..at + take]);
            }
        }
        out.write_all(&buf).context("writing the card image")?;
        pos = end;
        progress(pos);
        buf.resize(CHUNK, 0);
        let n = fill(base, &mut buf).context("reading the base image")?;
        buf.truncate(n);
    }
    if pos < slot.end() {
        bail!(
            "the base image ends at {pos:#x}, before the end of the slot {} at {:#x}",
            slot.name,
            slot.end()
        );
    }
    Ok(Composed {
        len: pos,
        replaced_rtt: slot_head == k230::MAGIC,
        plan,
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

    use crate::image::toc::fixture::{self, meta};

    const MIB: u64 = 1 << 20;
    /// SPL backup copy offset.
    const SPL_BACKUP: u64 = 0x18_0000;

    /// A synthetic base image read in chunks without holding it: a pseudo-random pattern of
    /// the offset with `overlays` (offset, bytes) on top.
    #[derive(Clone)]
    struct Synthetic {
        len: u64,
        pos: u64,
        overlays: Vec<(u64, Vec<u8>)>,
    }

    impl Synthetic {
        /// `len` bytes with K230 headers where the SPL and U-Boot belong (both layouts) and
        /// zeros where a TOC would be (genimage leaves the gaps before the SPL zero).
        fn new(len: u64) -> Self {
            let mut s = Self {
                len,
                pos: 0,
                overlays: Vec::new(),
            };
            for at in [SPL, SPL_BACKUP, UBOOT] {
                s.put(at, k230::MAGIC);
            }
            s.put(toc::OFFSET, &[0; toc::LEN]);
            s
        }

        fn put(&mut self, at: u64, bytes: &[u8]) {
            self.overlays.push((at, bytes.to_vec()));
        }

        /// The bytes at `at..at + buf.len()`.
        fn fill_at(&self, at: u64, buf: &mut [u8]) {
            for (i, b) in buf.iter_mut().enumerate() {
                let x = (at + i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                *b = (x >> 56) as u8;
            }
            let end = at + buf.len() as u64;
            for (o, bytes) in &self.overlays {
                let (from, to) = ((*o).max(at), (o + bytes.len() as u64).min(end));
                if from < to {
                    buf[(from - at) as usize..(to - at) as usize]
                        .copy_from_slice(&bytes[(from - o) as usize..(to - o) as usize]);
                }
            }
        }
    }

    impl Read for Synthetic {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min((self.len - self.pos) as usize);
            self.fill_at(self.pos, &mut buf[..n]);
            self.pos += n as u64;
            Ok(n)
        }
    }

    /// Checks a composed card as it is written: `slot` holds `payload` then zeros, every other
    /// byte is the base image's.
    struct Expect<'a> {
        base: &'a Synthetic,
        slot: std::ops::Range<u64>,
        payload: &'a [u8],
        pos: u64,
    }

    impl Write for Expect<'_> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let mut want = vec![0u8; buf.len()];
            self.base.fill_at(self.pos, &mut want);
            for (i, w) in want.iter_mut().enumerate() {
                let at = self.pos + i as u64;
                if self.slot.contains(&at) {
                    let k = (at - self.slot.start) as usize;
                    *w = self.payload.get(k).copied().unwrap_or(0);
                }
            }
            if let Some(i) = (0..buf.len()).find(|&i| buf[i] != want[i]) {
                panic!(
                    "byte {:#x} is {:#04x}, expected {:#04x} (slot {:#x?})",
                    self.pos + i as u64,
                    buf[i],
                    want[i],
                    self.slot
                );
            }
            self.pos += buf.len() as u64;
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A card of `len` bytes with the TOC `toc_bytes` at 0xe0000, its OTA meta partition (if
    /// it has one) empty and K230 headers in its big-core slots.
    fn card(toc_bytes: Vec<u8>, len: u64) -> Synthetic {
        let mut s = Synthetic::new(len);
        for e in toc::parse(&toc_bytes).unwrap().unwrap() {
            if e.name == "ota_meta" {
                s.put(e.offset, &vec![0; e.size as usize]);
            } else if e.boots_big_core() {
                s.put(e.offset, k230::MAGIC);
            }
        }
        s.put(toc::OFFSET, &toc_bytes);
        s
    }

    /// A card laid out as kendryte/k230_rtos_sdk `boards/k230_canmv/genimage-sdcard.cfg`
    /// makes it: TOC at 0xe0000, empty OTA meta partition, K230 headers in both rtt slots.
    fn toc_base() -> Synthetic {
        card(fixture::rtos_sdk(), 112 * MIB)
    }

    /// Composes `payload` onto `base`, checking every byte against `slot`.
    fn compose_checked(base: &Synthetic, payload: &[u8], slot: std::ops::Range<u64>) -> Composed {
        let mut out = Expect {
            base,
            slot,
            payload,
            pos: 0,
        };
        let done = compose(&mut base.clone(), payload, &mut out, |_| {}).unwrap();
        assert_eq!(out.pos, base.len, "the whole image is written");
        done
    }

    fn payload() -> Vec<u8> {
        let mut p = k230::wrap(b"our firmware");
        p.resize(3 * MIB as usize + 5, 0x42);
        p
    }

    #[test]
    fn an_old_card_gets_the_payload_in_its_fixed_rtt_slot_only() {
        let mut base = Synthetic::new(52 * MIB);
        base.put(RTT, k230::MAGIC);
        compose_checked(&base, &payload(), 10 * MIB..30 * MIB);
    }

    #[test]
    fn a_toc_card_without_ota_meta_boots_slot_a() {
        compose_checked(&toc_base(), &payload(), 10 * MIB..30 * MIB);
    }

    #[test]
    fn a_toc_card_whose_meta_picks_slot_b_gets_the_payload_there() {
        let mut base = toc_base();
        base.put(0xf_0000, &meta(3));
        base.put(0xf_0400, &meta(4));
        compose_checked(&base, &payload(), 60 * MIB..80 * MIB);
        // Equal versions, or only A valid: slot A.
        let mut base = toc_base();
        base.put(0xf_0000, &meta(4));
        base.put(0xf_0400, &meta(4));
        compose_checked(&base, &payload(), 10 * MIB..30 * MIB);
        // A corrupt meta block does not count (its CRC is checked).
        let mut base = toc_base();
        let mut bad = meta(9);
        bad[100] ^= 1;
        base.put(0xf_0000, &meta(1));
        base.put(0xf_0400, &bad);
        compose_checked(&base, &payload(), 10 * MIB..30 * MIB);
    }

    /// The other layouts the vendors ship (k230_rtos_sdk `boards/*/genimage-sdcard*.cfg`):
    /// the payload goes to the slot U-Boot boots, at whatever offset and of whatever size the
    /// TOC gives it, and nothing else changes.
    #[test]
    fn every_vendor_layout_takes_the_payload_in_its_boot_slot_only() {
        let wondermk = card(fixture::wondermk(), 122 * MIB);
        compose_checked(&wondermk, &payload(), 10 * MIB..30 * MIB);
        let mut slot_b = wondermk.clone();
        slot_b.put(0xf_0400, &meta(1));
        compose_checked(&slot_b, &payload(), 70 * MIB..90 * MIB);

        let kdimg = card(fixture::kdimg(), 52 * MIB);
        let done = compose_checked(&kdimg, &payload(), 10 * MIB..20 * MIB);
        assert_eq!(done.plan.layout, Layout::Toc(BootSlot::A));
        assert_eq!(done.plan.slot.name, "rtt");
        assert!(done.replaced_rtt);
        // Its slot is 10 MiB: what the 20 MiB slots take does not fit.
        let big = vec![0u8; 10 * MIB as usize + 1];
        assert!(error(&kdimg, &big).contains("the slot rtt holds 10485760"));
    }

    #[test]
    fn the_result_says_where_the_payload_went() {
        let mut old = Synthetic::new(52 * MIB);
        old.put(RTT, k230::MAGIC);
        let done = compose_checked(&old, &payload(), 10 * MIB..30 * MIB);
        assert_eq!(done.len, 52 * MIB);
        assert_eq!(done.plan.layout, Layout::Fixed);
        assert!(done.replaced_rtt);
        let mut last = 0;
        let mut sink = std::io::sink();
        let done = compose(&mut toc_base(), b"x", &mut sink, |p| last = p).unwrap();
        assert_eq!(last, 112 * MIB);
        assert_eq!(done.plan.layout, Layout::Toc(BootSlot::A));
        assert_eq!(
            done.plan.slot,
            Slot {
                name: "rtt_a".into(),
                offset: 10 * MIB,
                size: 20 * MIB
            }
        );
        let empty = Synthetic::new(52 * MIB);
        let done = compose(&mut empty.clone(), b"x", &mut sink, |_| {}).unwrap();
        assert!(!done.replaced_rtt, "nothing K230-headed in the slot before");
    }

    fn error(base: &Synthetic, payload: &[u8]) -> String {
        let mut sink = std::io::sink();
        compose(&mut base.clone(), payload, &mut sink, |_| {})
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn rejects_what_is_not_a_k230_card_or_cannot_take_the_payload() {
        let mut no_uboot = Synthetic::new(52 * MIB);
        no_uboot.put(UBOOT, b"XXXX");
        assert!(error(&no_uboot, b"x").contains("U-Boot"));
        assert!(error(&Synthetic::new(29 * MIB), b"x").contains("before the end of the slot"));
        let big = vec![0u8; RTT_SIZE as usize + 1];
        assert!(error(&Synthetic::new(52 * MIB), &big).contains("holds"));
        let mut no_big_core = toc_base();
        no_big_core.put(0xe_0000 + 4 * 64 + 49, &[0]);
        no_big_core.put(0xe_0000 + 6 * 64 + 49, &[0]);
        assert!(error(&no_big_core, b"x").contains("no big-core image"));
        let mut garbage = Synthetic::new(52 * MIB);
        garbage.put(0xe_0000, &[0x80, 0]);
        assert!(error(&garbage, b"x").contains("TOC"));
    }
}
