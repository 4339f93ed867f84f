//! The firmware ELF: its raw memory image (what `objcopy -O binary` gives) and where its code
//! size goes, by crate.

use anyhow::{bail, Context, Result};
use object::{Object, ObjectSection, ObjectSegment, ObjectSymbol, SymbolKind};
use std::collections::BTreeMap;
use std::ops::Range;

/// The loadable bytes of an ELF, laid out from its lowest load address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawImage {
    /// Address of the first byte.
    pub load_addr: u64,
    /// The ELF entry point.
    pub entry: u64,
    /// Memory contents from `load_addr`; gaps between segments are zero.
    pub bytes: Vec<u8>,
}

/// Flattens the `PT_LOAD` segments of `elf` (file contents only: `.bss` is left to the
/// firmware's start-up code) into one image.
pub fn raw_image(elf: &[u8]) -> Result<RawImage> {
    let file = object::File::parse(elf).context("parsing the firmware ELF")?;
    let mut parts = Vec::new();
    for seg in file.segments() {
        let data = seg.data().context("reading an ELF segment")?;
        if !data.is_empty() {
            parts.push((seg.address(), data));
        }
    }
    let Some(load_addr) = parts.iter().map(|(a, _)| *a).min() else {
        bail!("the ELF has no loadable contents");
    };
    let end = parts
        .iter()
        .map(|(a, d)| a + d.len() as u64)
        .max()
        .unwrap_or(load_addr);
    let len = usize::try_from(end - load_addr).context("image size")?;
    if len > 256 << 20 {
        bail!("loadable segments span {len} bytes: more than a firmware image can be");
    }
    let mut bytes = vec![0u8; len];
    for (addr, data) in parts {
        let at = (addr - load_addr) as usize;
        bytes[at..at + data.len()].copy_from_slice(data);
    }
    Ok(RawImage {
        load_addr,
        entry: file.entry(),
        bytes,
    })
}

/// The memory each `PT_LOAD` segment of `elf` occupies once loaded and started (`.bss`, stack
/// and heap included: its memory size, not only its file contents).
pub fn footprint(elf: &[u8]) -> Result<Vec<Range<u64>>> {
    let file = object::File::parse(elf).context("parsing the firmware ELF")?;
    let mut spans = Vec::new();
    for seg in file.segments() {
        let end = seg
            .address()
            .checked_add(seg.size())
            .context("an ELF segment runs past the end of memory")?;
        if end > seg.address() {
            spans.push(seg.address()..end);
        }
    }
    Ok(spans)
}

/// Code and data sizes of the firmware.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SizeReport {
    /// Bytes of each output section that occupies memory (`.text`, `.rodata`, `.data`, `.bss`…).
    pub sections: Vec<(String, u64)>,
    /// `.text` bytes per crate, largest first; symbols that are not Rust go to `[non-Rust]`.
    pub text_by_crate: Vec<(String, u64)>,
}

/// Sizes of the allocated sections and of the function symbols, attributed to crates by the
/// first path segment of their demangled names.
pub fn size_report(elf: &[u8]) -> Result<SizeReport> {
    let file = object::File::parse(elf).context("parsing the firmware ELF")?;
    let sections = file
        .sections()
        .filter(|s| s.address() != 0 || s.size() != 0)
        .filter(|s| {
            matches!(
                s.kind(),
                object::SectionKind::Text
                    | object::SectionKind::Data
                    | object::SectionKind::ReadOnlyData
                    | object::SectionKind::ReadOnlyString
                    | object::SectionKind::UninitializedData
            )
        })
        .map(|s| Ok((s.name()?.to_string(), s.size())))
        .collect::<Result<Vec<_>>>()?;
    let mut by_crate: BTreeMap<String, u64> = BTreeMap::new();
    for sym in file.symbols() {
        if sym.kind() != SymbolKind::Text || sym.size() == 0 {
            continue;
        }
        let name = sym.name().unwrap_or("");
        *by_crate.entry(crate_of(name)).or_default() += sym.size();
    }
    let mut text_by_crate: Vec<_> = by_crate.into_iter().collect();
    text_by_crate.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(SizeReport {
        sections,
        text_by_crate,
    })
}

/// The crate a (mangled) symbol belongs to: the first path segment of its demangled name. For
/// trait impls (`<A as B>::f`) that is `A`'s crate when `A` is a path, else `B`'s
/// (`<u32 as core::fmt::Display>::fmt` is `core`); inherent impls on primitives go to `core`.
pub fn crate_of(symbol: &str) -> String {
    let Ok(demangled) = rustc_demangle::try_demangle(symbol) else {
        return "[non-Rust]".to_string();
    };
    let text = format!("{demangled:#}");
    let Some(inner) = text.strip_prefix('<') else {
        return first_segment(&text).unwrap_or("[non-Rust]").to_string();
    };
    // `inner` is `SelfType as Trait>::rest` or `SelfType>::rest`.
    let mut depth = 0usize;
    let mut self_end = inner.len();
    let mut trait_start = None;
    for (i, c) in inner.char_indices() {
        match c {
            '<' => depth += 1,
            '>' if depth == 0 => {
                self_end = i;
                break;
            }
            '>' => depth -= 1,
            ' ' if depth == 0 && inner[i..].starts_with(" as ") => {
                self_end = i;
                trait_start = Some(i + 4);
                break;
            }
            _ => {}
        }
    }
    if let Some(krate) = first_segment(&inner[..self_end]) {
        return krate.to_string();
    }
    match trait_start.and_then(|t| first_segment(&inner[t..])) {
        Some(krate) => krate.to_string(),
        None => "core".to_string(),
    }
}

/// The first segment of a path, if the text is a path with at least two segments (after `&`,
/// `*`, `mut `, `const `, `dyn `, `[`, `(`).
fn first_segment(path: &str) -> Option<&str> {
    let mut rest = path;
    loop {
        let trimmed = rest
            .trim_start_matches(['&', '*', '(', '['])
            .trim_start_matches("mut ")
            .trim_start_matches("const ")
            .trim_start_matches("dyn ");
        if trimmed == rest {
            break;
        }
        rest = trimmed;
    }
    let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_'))?;
    (end > 0 && rest[end..].starts_with("::")).then(|| &rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crate_of_demangles_legacy_and_v0_paths() {
        // core::fmt::write
        assert_eq!(crate_of("_ZN4core3fmt5write17h0123456789abcdefE"), "core");
        // <k230_hal::uart::Uart<R> as core::fmt::Write>::write_str (legacy mangling)
        assert_eq!(
            crate_of("_ZN66_$LT$k230_hal..uart..Uart$LT$R$GT$$u20$as$u20$core..fmt..Write$GT$9write_str17h0123456789abcdefE"),
            "k230_hal"
        );
        // v0 mangling of firmware::selftest::crc32
        assert_eq!(
            crate_of("_RNvNtCs1234_8firmware8selftest5crc32"),
            "firmware"
        );
        // <u32 as core::fmt::Display>::fmt
        assert_eq!(
            crate_of("_ZN4core3fmt3num3imp52_$LT$impl$u20$core..fmt..Display$u20$for$u20$u32$GT$3fmt17h0123456789abcdefE"),
            "core"
        );
        assert_eq!(crate_of("_start"), "[non-Rust]");
        assert_eq!(crate_of("memcpy"), "[non-Rust]");
    }

    #[test]
    fn non_elf_input_is_an_error_not_a_panic() {
        assert!(raw_image(b"not an elf").is_err());
        assert!(size_report(&[0x7f, b'E', b'L', b'F', 2, 1]).is_err());
    }
}
