//! The K230 USB boot ROM protocol: what the chip answers in USB boot mode, before any loader.
//!
//! Facts (kendryte/k230_burning_tool `canaan-burn/burn/k230/k230_burn.isp.c`, kendryte/
//! k230_flash_py `burners.py`): VID:PID 29f1:0230; vendor control requests to the device:
//! 0 GET_CPU_INFO (IN, answers text containing "K230"), 1 SET_DATA_ADDRESS and 4 PROG_START
//! (OUT, no data, address high 16 bits in wValue and low 16 bits in wIndex); data goes to bulk
//! OUT endpoint 0x01 in 1000-byte chunks after one SET_DATA_ADDRESS; loaders run from SRAM at
//! 0x8036_0000.

use std::fmt;

/// Boot ROM vendor id.
pub const VID: u16 = 0x29f1;
/// Boot ROM product id.
pub const PID: u16 = 0x0230;
/// GET_CPU_INFO.
pub const REQ_GET_CPU_INFO: u8 = 0;
/// SET_DATA_ADDRESS.
pub const REQ_SET_DATA_ADDRESS: u8 = 1;
/// PROG_START.
pub const REQ_PROG_START: u8 = 4;
/// Bytes GET_CPU_INFO asks for.
pub const CPU_INFO_LEN: u16 = 32;
/// Bytes per bulk transfer.
pub const CHUNK: usize = 1000;
/// The bulk OUT endpoint.
pub const BULK_OUT: u8 = 0x01;
/// Where loaders are put and started.
pub const LOADER_ADDR: u32 = 0x8036_0000;
/// What a running loader answers GET_CPU_INFO with (k230_flash_py `usb_utils.py`).
const LOADER_STAGE: &str = "Uboot Stage";

/// A USB link to a device in boot-ROM mode: vendor requests to the device and bulk OUT.
pub trait BootRomLink {
    /// A vendor IN control request; returns the bytes the device sent.
    fn control_in(
        &mut self,
        request: u8,
        value: u16,
        index: u16,
        len: u16,
    ) -> Result<Vec<u8>, LinkError>;
    /// A vendor OUT control request without data.
    fn control_out(&mut self, request: u8, value: u16, index: u16) -> Result<(), LinkError>;
    /// One bulk OUT transfer on [`BULK_OUT`]; returns the bytes taken.
    fn bulk_out(&mut self, data: &[u8]) -> Result<usize, LinkError>;
}

/// A USB transfer that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkError(pub String);

impl fmt::Display for LinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a boot-ROM operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootRomError {
    /// The transfer failed.
    Link(LinkError),
    /// The device answered GET_CPU_INFO with something other than the K230 boot ROM.
    NotBootRom(String),
    /// The device took fewer bytes than sent.
    ShortWrite {
        /// Bytes sent.
        sent: usize,
        /// Bytes taken.
        taken: usize,
    },
}

impl fmt::Display for BootRomError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BootRomError::Link(e) => write!(f, "USB transfer failed: {e}"),
            BootRomError::NotBootRom(info) => {
                write!(f, "device says {info:?}, not the K230 boot ROM")
            }
            BootRomError::ShortWrite { sent, taken } => {
                write!(f, "device took {taken} of {sent} bytes")
            }
        }
    }
}

impl std::error::Error for BootRomError {}

impl From<LinkError> for BootRomError {
    fn from(e: LinkError) -> Self {
        BootRomError::Link(e)
    }
}

fn split(addr: u32) -> (u16, u16) {
    ((addr >> 16) as u16, (addr & 0xffff) as u16)
}

/// Asks the device what it is; succeeds with its answer if it is the K230 boot ROM.
pub fn greet(link: &mut impl BootRomLink) -> Result<String, BootRomError> {
    let info = link.control_in(REQ_GET_CPU_INFO, 0, 0, CPU_INFO_LEN)?;
    let text = String::from_utf8_lossy(&info)
        .trim_end_matches('\0')
        .trim()
        .to_string();
    if text.contains("K230") && !text.contains(LOADER_STAGE) {
        Ok(text)
    } else {
        Err(BootRomError::NotBootRom(text))
    }
}

/// Writes `data` to device memory at `addr`: one SET_DATA_ADDRESS, then [`CHUNK`]-byte bulk
/// transfers. `progress` is told the bytes written so far.
pub fn write_memory(
    link: &mut impl BootRomLink,
    addr: u32,
    data: &[u8],
    mut progress: impl FnMut(usize),
) -> Result<(), BootRomError> {
    let (hi, lo) = split(addr);
    link.control_out(REQ_SET_DATA_ADDRESS, hi, lo)?;
    let mut done = 0;
    for chunk in data.chunks(CHUNK) {
        let taken = link.bulk_out(chunk)?;
        if taken != chunk.len() {
            return Err(BootRomError::ShortWrite {
                sent: chunk.len(),
                taken,
            });
        }
        done += chunk.len();
        progress(done);
    }
    Ok(())
}

/// Loads `program` at [`LOADER_ADDR`] and starts it: greet, write, greet again, PROG_START.
pub fn run_program(
    link: &mut impl BootRomLink,
    program: &[u8],
    progress: impl FnMut(usize),
) -> Result<(), BootRomError> {
    greet(link)?;
    write_memory(link, LOADER_ADDR, program, progress)?;
    greet(link)?;
    let (hi, lo) = split(LOADER_ADDR);
    link.control_out(REQ_PROG_START, hi, lo)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the mock saw.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Op {
        In {
            request: u8,
            value: u16,
            index: u16,
            len: u16,
        },
        Out {
            request: u8,
            value: u16,
            index: u16,
        },
        Bulk(Vec<u8>),
    }

    /// A boot ROM that records every request and answers GET_CPU_INFO with `info`.
    struct Recorder {
        ops: Vec<Op>,
        info: &'static [u8],
        /// Accept at most this many bytes per bulk transfer.
        bulk_limit: usize,
        /// Fail the bulk transfer with this index.
        fail_bulk: Option<usize>,
    }

    impl Recorder {
        fn new() -> Self {
            Recorder {
                ops: Vec::new(),
                info: b"K230\0\0\0\0",
                bulk_limit: usize::MAX,
                fail_bulk: None,
            }
        }
    }

    impl BootRomLink for Recorder {
        fn control_in(
            &mut self,
            request: u8,
            value: u16,
            index: u16,
            len: u16,
        ) -> Result<Vec<u8>, LinkError> {
            self.ops.push(Op::In {
                request,
                value,
                index,
                len,
            });
            Ok(self.info.to_vec())
        }
        fn control_out(&mut self, request: u8, value: u16, index: u16) -> Result<(), LinkError> {
            self.ops.push(Op::Out {
                request,
                value,
                index,
            });
            Ok(())
        }
        fn bulk_out(&mut self, data: &[u8]) -> Result<usize, LinkError> {
            let n = self.ops.iter().filter(|o| matches!(o, Op::Bulk(_))).count();
            if self.fail_bulk == Some(n) {
                return Err(LinkError("pipe".into()));
            }
            self.ops.push(Op::Bulk(data.to_vec()));
            Ok(data.len().min(self.bulk_limit))
        }
    }

    const GREET: Op = Op::In {
        request: 0,
        value: 0,
        index: 0,
        len: 32,
    };

    #[test]
    fn run_program_sends_the_exact_sequence_in_1000_byte_chunks() {
        let program: Vec<u8> = (0..2500u32).map(|i| i as u8).collect();
        let mut rom = Recorder::new();
        let mut seen = Vec::new();
        run_program(&mut rom, &program, |n| seen.push(n)).unwrap();
        let expected = vec![
            GREET,
            Op::Out {
                request: 1,
                value: 0x8036,
                index: 0x0000,
            },
            Op::Bulk(program[..1000].to_vec()),
            Op::Bulk(program[1000..2000].to_vec()),
            Op::Bulk(program[2000..].to_vec()),
            GREET,
            Op::Out {
                request: 4,
                value: 0x8036,
                index: 0x0000,
            },
        ];
        assert_eq!(rom.ops, expected);
        assert_eq!(seen, vec![1000, 2000, 2500]);
    }

    #[test]
    fn write_memory_splits_the_address() {
        let mut rom = Recorder::new();
        write_memory(&mut rom, 0x1234_5678, &[7; 1000], |_| {}).unwrap();
        assert_eq!(
            rom.ops,
            vec![
                Op::Out {
                    request: 1,
                    value: 0x1234,
                    index: 0x5678
                },
                Op::Bulk(vec![7; 1000])
            ]
        );
    }

    #[test]
    fn something_else_is_not_started() {
        let mut rom = Recorder::new();
        // A running loader also names the K230, but it is not the boot ROM.
        rom.info = b"Uboot Stage for K230";
        assert!(matches!(greet(&mut rom), Err(BootRomError::NotBootRom(_))));
        let mut other = Recorder::new();
        other.info = b"CH340";
        assert!(run_program(&mut other, b"x", |_| {}).is_err());
        assert_eq!(
            other.ops,
            vec![GREET],
            "nothing is written after a failed greeting"
        );
    }

    #[test]
    fn short_and_failed_writes_stop_the_upload() {
        let mut rom = Recorder::new();
        rom.bulk_limit = 999;
        assert_eq!(
            run_program(&mut rom, &[0; 3000], |_| {}),
            Err(BootRomError::ShortWrite {
                sent: 1000,
                taken: 999
            })
        );
        assert_eq!(rom.ops.len(), 3, "greet, address, one chunk");
        let mut rom = Recorder::new();
        rom.fail_bulk = Some(1);
        assert!(matches!(
            run_program(&mut rom, &[0; 3000], |_| {}),
            Err(BootRomError::Link(_))
        ));
        assert!(!rom
            .ops
            .iter()
            .any(|o| matches!(o, Op::Out { request: 4, .. })));
    }
}
