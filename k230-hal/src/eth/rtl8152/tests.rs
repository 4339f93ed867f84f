//! mockall tests of the driver against a mocked [`UsbHost`]: the exact vendor requests of the
//! bring-up, the MAC read, RX aggregation parsing, TX descriptors and backpressure.

use super::tx::TxError;
use super::*;
use crate::usb::{MockUsbHost, SetupPacket, TransferType, MAX_CONFIG_DESCRIPTOR};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::vec::Vec;

const MAC: [u8; 6] = [0x00, 0xe0, 0x4c, 0xab, 0xcd, 0xef];

/// One vendor request as the mock saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Req {
    /// Read: wValue, wIndex, wLength.
    R(u16, u16, u16),
    /// Write: wValue, wIndex, data.
    W(u16, u16, Vec<u8>),
}
use Req::{R, W};

/// A minimal register file behind the mock: byte enables applied, CR_RST self-clearing.
#[derive(Default)]
struct Chip {
    mem: HashMap<(u16, u16), u8>,
    log: Vec<Req>,
}

impl Chip {
    fn new() -> Self {
        let mut c = Self::default();
        for (i, b) in MAC.iter().enumerate() {
            c.mem.insert((0x100, 0xc000 + i as u16), *b);
        }
        c.mem.insert((0x100, 0xe612), 0x10); // TCR1 = 0x4c10 (RTL_VER_02)
        c.mem.insert((0x100, 0xe613), 0x4c);
        c.mem.insert((0x100, 0xe84f), LINK_LIST_READY);
        c.mem.insert((0x100, 0xe908), 0x0b); // link, 100 Mbit/s, full duplex
        c
    }
}

/// A mocked host whose control transfers reach `chip`.
fn host_with_chip(chip: Arc<Mutex<Chip>>) -> MockUsbHost {
    let mut host = MockUsbHost::new();
    let c = chip.clone();
    host.expect_control_in()
        .returning(move |_, s: SetupPacket, data: &mut [u8]| {
            let mut chip = c.lock().unwrap();
            assert_eq!((s.request_type, s.request), (0xc0, 0x05));
            chip.log.push(R(s.value, s.index, s.length));
            for (i, b) in data.iter_mut().enumerate().take(usize::from(s.length)) {
                *b = *chip
                    .mem
                    .get(&(s.index & 0xff00, s.value + i as u16))
                    .unwrap_or(&0);
            }
            Ok(usize::from(s.length))
        });
    host.expect_control_out()
        .returning(move |_, s: SetupPacket, data: &[u8]| {
            let mut chip = chip.lock().unwrap();
            assert_eq!((s.request_type, s.request), (0x40, 0x05));
            chip.log.push(W(s.value, s.index, data.to_vec()));
            let en = s.index as u8;
            for (i, &b) in data.iter().enumerate() {
                let nibble = if i < 4 { en & 0xf } else { en >> 4 };
                if nibble & (1 << (i % 4)) != 0 {
                    let mut v = b;
                    if (s.index & 0xff00, s.value + i as u16) == (0x100, 0xe813) {
                        v &= !CR_RST;
                    }
                    chip.mem.insert((s.index & 0xff00, s.value + i as u16), v);
                }
            }
            Ok(())
        });
    host
}

fn device() -> UsbDevice {
    let config: [u8; 39] = [
        9, 2, 39, 0, 1, 1, 0, 0xa0, 50, //
        9, 4, 0, 0, 3, 0xff, 0xff, 0, 0, //
        7, 5, 0x81, 2, 0x00, 0x02, 0, //
        7, 5, 0x02, 2, 0x00, 0x02, 0, //
        7, 5, 0x83, 3, 0x02, 0x00, 8,
    ];
    let mut d = UsbDevice {
        address: DeviceAddress::new(3).unwrap(),
        speed: Speed::High,
        device_descriptor: [
            18, 1, 0x10, 0x02, 0, 0, 0, 64, 0xda, 0x0b, 0x52, 0x81, 0, 0x20, 1, 2, 3, 1,
        ],
        config_descriptor: [0; MAX_CONFIG_DESCRIPTOR],
        config_len: config.len(),
    };
    d.config_descriptor[..39].copy_from_slice(&config);
    d
}

fn le(v: u32) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}

#[test]
fn bring_up_sends_exactly_the_expected_vendor_requests() {
    let chip = Arc::new(Mutex::new(Chip::new()));
    let nic = Rtl8152::probe(host_with_chip(chip.clone()), &device()).unwrap();
    assert_eq!(nic.mac(), MAC);
    assert!(nic.link_state().is_up());
    let expected = vec![
        R(0xe610, 0x0100, 4), // version (PLA_TCR0/TCR1)
        // r8152b_init
        W(0xe86c, 0x0133, le(0xa000)), // PHY OCP page 0xa000
        R(0xb400, 0x0133, 4),          // BMCR: not powered down
        R(0xd800, 0x0033, 4),
        W(0xd800, 0x0033, le(0)), // power cut off
        R(0xd430, 0x00cc, 4),
        W(0xd430, 0x00cc, le(0)),
        R(0xe800, 0x0133, 4),
        W(0xe800, 0x0133, le(1)), // tally reset
        R(0xd404, 0x00cc, 4),
        W(0xd404, 0x00cc, le(0)), // RX aggregation on
        // r8152b_exit_oob
        R(0xc010, 0x0100, 4),
        W(0xc010, 0x01ff, le(0)), // RCR: accept nothing
        R(0xe858, 0x01cc, 4),
        W(0xe858, 0x01cc, le(0x0008 << 16)), // MISC_1: RX gated
        W(0xe81c, 0x0111, le(0)),            // CRWECR normal
        W(0xe810, 0x0188, le(0)),            // CR = 0
        R(0xe84c, 0x0100, 4),
        W(0xe84c, 0x0188, le(0x02 << 24)), // OOB_CTRL: leave OOB
        R(0xe8dc, 0x01cc, 4),
        W(0xe8dc, 0x01cc, le(0)), // SFF_STS_7: MCU_BORW_EN off
        R(0xe84c, 0x0100, 4),     // link list ready
        R(0xe8dc, 0x01cc, 4),
        W(0xe8dc, 0x01cc, le(0x8000 << 16)), // RE_INIT_LL
        R(0xe84c, 0x0100, 4),                // link list ready
        W(0xe810, 0x0188, le(0x10 << 24)),   // CR_RST
        R(0xe810, 0x0100, 4),                // reset done
        W(0xc0a0, 0x01ff, le(0x0008_0002)),
        W(0xc0a4, 0x01ff, le(0x38)),
        W(0xc0a8, 0x01ff, le(0x48)),
        W(0xe618, 0x01ff, le(0x0100_0008)),
        W(0xd408, 0x0044, le(0x03 << 16)), // USB_TX_AGG (byte at d40a)
        W(0xd40c, 0x00ff, le(0x7a12_0180)),
        W(0xd434, 0x00ff, le(0x0101)),
        R(0xe854, 0x0133, 4),
        W(0xe854, 0x0133, le(0x40)),       // CPCR: RX VLAN
        W(0xc014, 0x01cc, le(1522 << 16)), // RMS (word at c016)
        R(0xe610, 0x0133, 4),
        W(0xe610, 0x0133, le(0x80)), // TCR0 auto FIFO
        R(0xc000, 0x0100, 8),        // MAC
        // rtl_enable
        R(0xc0b4, 0x0133, 4),
        W(0xc0b4, 0x0133, le(0)),
        W(0xc0b4, 0x0133, le(1)),
        R(0xe810, 0x0100, 4),
        W(0xe810, 0x0188, le(0x0c << 24)), // CR: RE | TE
        R(0xe858, 0x01cc, 4),
        W(0xe858, 0x01cc, le(0)), // RX ungated
        // rtl8152_set_rx_mode
        W(0xcd00, 0x01ff, vec![0xff; 8]),
        R(0xc010, 0x0100, 4),
        W(0xc010, 0x01ff, le(0x0e)), // AB | AM | APM
        // rtl8152_set_speed: advertise 10/100, restart auto-negotiation
        W(0xe86c, 0x0133, le(0xa000)),
        R(0xb408, 0x0133, 4),
        W(0xe86c, 0x0133, le(0xa000)),
        W(0xb408, 0x0133, le(0x01e0)),
        W(0xe86c, 0x0133, le(0xa000)),
        W(0xb400, 0x0133, le(0x1200)),
        R(0xe908, 0x0133, 4), // PHYSTATUS
    ];
    let log = chip.lock().unwrap().log.clone();
    for (i, (got, want)) in log.iter().zip(&expected).enumerate() {
        assert_eq!(got, want, "request {i}");
    }
    assert_eq!(log.len(), expected.len());
}

#[test]
fn powered_down_phy_is_powered_up() {
    let chip = Arc::new(Mutex::new(Chip::new()));
    chip.lock()
        .unwrap()
        .mem
        .insert((0x100, 0xb401), 0x08 | 0x10); // BMCR: PDOWN | ANENABLE
    Rtl8152::probe(host_with_chip(chip.clone()), &device()).unwrap();
    let log = chip.lock().unwrap().log.clone();
    assert_eq!(log[3], W(0xe86c, 0x0133, le(0xa000)));
    assert_eq!(
        log[4],
        W(0xb400, 0x0133, le(0x1000)),
        "PDOWN cleared, rest kept"
    );
}

#[test]
fn probe_refuses_other_devices_versions_and_layouts() {
    let mut other = device();
    other.device_descriptor[10] = 0x53;
    let chip = Arc::new(Mutex::new(Chip::new()));
    assert_eq!(
        Rtl8152::probe(host_with_chip(chip.clone()), &other).err(),
        Some(Error::NotRtl8152)
    );
    assert!(chip.lock().unwrap().log.is_empty());

    let mut no_int = device();
    no_int.config_len = 32;
    no_int.config_descriptor[2] = 32;
    no_int.config_descriptor[13] = 2;
    assert_eq!(
        Rtl8152::probe(host_with_chip(chip.clone()), &no_int).err(),
        Some(Error::MissingEndpoints)
    );

    chip.lock().unwrap().mem.insert((0x100, 0xe613), 0x5c); // RTL8153
    assert_eq!(
        Rtl8152::probe(host_with_chip(chip), &device()).err(),
        Some(Error::UnsupportedVersion(0x5c10))
    );
}

#[test]
fn failed_register_access_fails_probe() {
    let mut host = MockUsbHost::new();
    host.expect_control_in()
        .times(1)
        .returning(|_, _, _| Err(UsbError::Stall));
    assert_eq!(
        Rtl8152::probe(host, &device()).err(),
        Some(Error::Usb(UsbError::Stall))
    );
}

#[test]
fn short_register_read_fails_probe() {
    let mut host = MockUsbHost::new();
    host.expect_control_in().times(1).returning(|_, _, _| Ok(2));
    assert_eq!(
        Rtl8152::probe(host, &device()).err(),
        Some(Error::ShortRead)
    );
}

#[test]
fn chip_that_never_gets_ready_times_out() {
    let chip = Arc::new(Mutex::new(Chip::new()));
    chip.lock().unwrap().mem.insert((0x100, 0xe84f), 0); // LINK_LIST_READY never set
    assert_eq!(
        Rtl8152::probe(host_with_chip(chip.clone()), &device()).err(),
        Some(Error::Timeout)
    );
    let reads = chip
        .lock()
        .unwrap()
        .log
        .iter()
        .filter(|r| **r == R(0xe84c, 0x0100, 4))
        .count();
    assert_eq!(reads, 1 + POLL_LIMIT, "bounded polling");
}

/// A probed driver whose bulk and interrupt pipes answer from the given queues.
struct Harness {
    nic: Rtl8152<MockUsbHost>,
    submitted: Arc<Mutex<Vec<Vec<u8>>>>,
    out_busy: Arc<Mutex<bool>>,
}

/// Bulk-IN transfers to deliver, in order; `None` is a NAK (Pending).
fn harness(transfers: Vec<Option<Vec<u8>>>) -> Harness {
    let chip = Arc::new(Mutex::new(Chip::new()));
    let mut host = host_with_chip(chip);
    let queue = Arc::new(Mutex::new(std::collections::VecDeque::from(transfers)));
    host.expect_poll_in()
        .returning(move |pipe: &Pipe, buf: &mut [u8]| {
            match (pipe.kind, pipe.endpoint) {
                (TransferType::Bulk, 1) => {}
                (TransferType::Interrupt, 3) => return Poll::Pending,
                other => panic!("poll_in on {other:?}"),
            }
            assert_eq!(buf.len(), rx::RX_BUF_SIZE);
            match queue.lock().unwrap().pop_front().flatten() {
                None => Poll::Pending,
                Some(t) => {
                    buf[..t.len()].copy_from_slice(&t);
                    Poll::Ready(Ok(t.len()))
                }
            }
        });
    let submitted = Arc::new(Mutex::new(Vec::new()));
    let out_busy = Arc::new(Mutex::new(false));
    let (s, b) = (submitted.clone(), out_busy.clone());
    host.expect_submit_out()
        .returning(move |pipe: &Pipe, data: &[u8]| {
            assert_eq!(pipe.endpoint, 2);
            let mut busy = b.lock().unwrap();
            if *busy {
                return Err(UsbError::Busy);
            }
            *busy = true;
            s.lock().unwrap().push(data.to_vec());
            Ok(())
        });
    let b = out_busy.clone();
    host.expect_poll_out().returning(move |_| {
        if *b.lock().unwrap() {
            Poll::Pending
        } else {
            Poll::Ready(Ok(()))
        }
    });
    Harness {
        nic: Rtl8152::probe(host, &device()).unwrap(),
        submitted,
        out_busy,
    }
}

/// An aggregate as the chip builds it: descriptor, frame, 4 CRC bytes, 8-byte alignment.
fn aggregate(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut t = Vec::new();
    for f in frames {
        t.resize(t.len().next_multiple_of(8), 0);
        t.extend_from_slice(&((f.len() + 4) as u32).to_le_bytes());
        t.extend_from_slice(&[0; 20]);
        t.extend_from_slice(f);
        t.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
    }
    t
}

fn frame(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8) ^ seed).collect()
}

fn drain(nic: &mut Rtl8152<MockUsbHost>) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    for _ in 0..100 {
        match nic.recv(|f| f.to_vec()) {
            Some(f) => got.push(f),
            None => break,
        }
    }
    got
}

#[test]
fn rx_zero_one_many_and_truncated_transfers() {
    let many: Vec<Vec<u8>> = (0..9).map(|i| frame(60 + i * 101, i as u8)).collect();
    let mut truncated = aggregate(&[frame(64, 1), frame(500, 2)]);
    truncated.truncate(truncated.len() - 100);
    let mut h = harness(vec![
        Some(vec![]),
        None,
        Some(aggregate(&[frame(60, 9)])),
        None,
        Some(aggregate(&many)),
        None,
        Some(truncated),
        None,
    ]);
    // Each drain reads until the host answers Pending (the `None`s). Empty transfer: nothing.
    assert_eq!(drain(&mut h.nic), Vec::<Vec<u8>>::new());
    assert_eq!(drain(&mut h.nic), vec![frame(60, 9)]);
    assert_eq!(drain(&mut h.nic), many);
    assert_eq!(drain(&mut h.nic), vec![frame(64, 1)]);
    let s = h.nic.counters();
    assert_eq!(s.rx_frames, 11);
    assert_eq!(s.rx_malformed, 1);
    assert_eq!(
        s.rx_bytes,
        60 + 64 + many.iter().map(|f| f.len() as u64).sum::<u64>()
    );
}

#[test]
fn tx_frames_get_descriptors_and_share_a_transfer_while_the_pipe_is_busy() {
    let mut h = harness(vec![]);
    h.nic
        .send(60, |b| b.copy_from_slice(&frame(60, 1)))
        .unwrap();
    // Pipe now busy: the next two frames are batched.
    h.nic
        .send(61, |b| b.copy_from_slice(&frame(61, 2)))
        .unwrap();
    h.nic
        .send(100, |b| b.copy_from_slice(&frame(100, 3)))
        .unwrap();
    assert_eq!(h.submitted.lock().unwrap().len(), 1);
    *h.out_busy.lock().unwrap() = false;
    h.nic.poll();
    let sub = h.submitted.lock().unwrap().clone();
    assert_eq!(sub.len(), 2);
    let mut first = vec![60, 0, 0, 0xc0, 0, 0, 0, 0];
    first.extend(frame(60, 1));
    assert_eq!(sub[0], first);
    let mut second = vec![61, 0, 0, 0xc0, 0, 0, 0, 0];
    second.extend(frame(61, 2));
    second.extend([0, 0, 0]); // next descriptor 4-byte aligned
    second.extend([100, 0, 0, 0xc0, 0, 0, 0, 0]);
    second.extend(frame(100, 3));
    assert_eq!(sub[1], second);
    *h.out_busy.lock().unwrap() = false;
    h.nic.poll();
    assert_eq!(h.nic.counters().tx_frames, 3);
    assert_eq!(h.nic.counters().tx_bytes, 221);
}

#[test]
fn busy_pipe_gives_backpressure_not_drops() {
    let mut h = harness(vec![Some(aggregate(&[frame(80, 5)]))]);
    h.nic.send(1514, |_| ()).unwrap(); // in flight
    let mut batched = 0;
    while h.nic.send(1514, |_| ()).is_ok() {
        batched += 1;
        assert!(batched < 100);
    }
    assert_eq!(batched, tx::MAX_BURST);
    assert_eq!(h.nic.send(1514, |_| ()), Err(TxError::Full));
    assert_eq!(h.nic.send(1515, |_| ()), Err(TxError::BadLength));
    assert_eq!(h.nic.counters().tx_dropped, 1, "only the oversize frame");

    #[cfg(feature = "smoltcp")]
    {
        use smoltcp::phy::Device;
        let now = smoltcp::time::Instant::from_millis(0);
        assert!(h.nic.transmit(now).is_none());
        assert!(h.nic.receive(now).is_none(), "RX waits for TX room");
        *h.out_busy.lock().unwrap() = false;
        assert!(h.nic.receive(now).is_some());
    }
    assert_eq!(h.nic.counters().tx_dropped, 1);
}

/// An oversize frame handed to a transmit token is not sent and is counted in `tx_dropped`, as
/// the CDC-ECM driver counts it.
#[cfg(feature = "smoltcp")]
#[test]
fn an_oversize_frame_through_a_token_is_dropped_and_counted() {
    use smoltcp::phy::{Device, TxToken};
    let mut h = harness(vec![]);
    let token = h
        .nic
        .transmit(smoltcp::time::Instant::from_millis(0))
        .unwrap();
    token.consume(tx::MAX_FRAME + 1, |_| ());
    let c = h.nic.counters();
    assert_eq!((c.tx_dropped, c.tx_errors, c.tx_frames), (1, 0, 0));
}

/// A large frame whose token got a segmentation size goes behind a large-send descriptor
/// (opts1 GTSENDV4, the TCP header's offset at bit 18; opts2 the MSS at bit 17; no checksum
/// bits) with Linux's pseudo-header sum over the whole TCP length in its checksum field; the
/// next frame, without one, goes whole with checksum offload in the same transfer; a
/// segmentation size on a frame that is not IPv4 TCP drops it (counted). The counters count the
/// segments on the wire.
#[cfg(feature = "large-send")]
#[test]
fn a_token_with_a_segmentation_size_sends_a_large_send_descriptor() {
    use core::num::NonZeroU16;
    use smoltcp::phy::{Device, PacketMeta, TxToken};
    use smoltcp::wire::{checksum, IpProtocol, Ipv4Address};
    let now = smoltcp::time::Instant::from_millis(0);
    let payload: Vec<u8> = (0..5000u32).map(|i| (i * 13) as u8).collect();
    let large = offload::tests::tcp_frame(&payload);
    let small = offload::tests::tcp_frame(b"small");
    let mut h = harness(vec![]);
    // Keep the pipe busy so that both frames share the next transfer.
    *h.out_busy.lock().unwrap() = true;
    let mut meta = PacketMeta::default();
    meta.segmentation_offload_size = NonZeroU16::new(1400);
    let mut token = h.nic.transmit(now).unwrap();
    token.set_meta(meta);
    token.consume(large.len(), |b| b.copy_from_slice(&large));
    let token = h.nic.transmit(now).unwrap();
    token.consume(small.len(), |b| b.copy_from_slice(&small));
    let mut arp = vec![0u8; 6000];
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    let mut token = h.nic.transmit(now).unwrap();
    token.set_meta(meta);
    token.consume(arp.len(), |b| b.copy_from_slice(&arp));
    assert_eq!(h.nic.counters().tx_dropped, 1, "the unsegmentable frame");
    *h.out_busy.lock().unwrap() = false;
    h.nic.poll();
    let sub = h.submitted.lock().unwrap().clone();
    assert_eq!(sub.len(), 1);
    let t = &sub[0];
    let d = tx::TxDescriptor::new_checked(&t[..8]).unwrap();
    assert!(d.is_whole_frame());
    assert_eq!(d.frame_len(), large.len());
    assert_eq!(
        d.opts1(),
        (1 << 31) | (1 << 30) | (1 << 28) | (34 << 18) | large.len() as u32
    );
    assert_eq!(d.opts2(), 1400 << 17);
    assert_eq!(d.large_send(), Some((34, 1400)));
    let sent = &t[8..8 + large.len()];
    let pseudo = checksum::pseudo_header_v4(
        &Ipv4Address::new(10, 0, 0, 2),
        &Ipv4Address::new(10, 0, 0, 1),
        IpProtocol::Tcp,
        (large.len() - 34) as u32,
    );
    assert_eq!(sent[50..52], pseudo.to_be_bytes());
    assert_eq!(sent[..50], large[..50]);
    assert_eq!(sent[52..], large[52..]);
    let at = (8 + large.len()).next_multiple_of(4);
    let d = tx::TxDescriptor::new_checked(&t[at..]).unwrap();
    assert_eq!(d.large_send(), None);
    assert_eq!(d.frame_len(), small.len());
    assert_ne!(d.opts2() & offload::TX_TCP_CS, 0);
    assert_eq!(
        t.len(),
        at + 8 + small.len(),
        "the dropped frame left no trace"
    );
    *h.out_busy.lock().unwrap() = false;
    h.nic.poll();
    let c = h.nic.counters();
    // 5000 payload bytes in 1400-byte segments: 4 segments, each with 54 header bytes.
    assert_eq!(c.tx_frames, 4 + 1);
    assert_eq!(c.tx_bytes, (large.len() + 3 * 54 + small.len()) as u64);
}

/// What the driver submitted on bulk OUT, and which pipes it cleared halts of.
type Submitted = Arc<Mutex<Vec<Vec<u8>>>>;
type Cleared = Arc<Mutex<Vec<(u8, crate::usb::Direction)>>>;

/// A probed driver whose bulk IN answers `rx` in order (then NAKs) and whose bulk-OUT
/// transfers complete with `out` in order (then succeed); records submissions and halt clears.
fn stalling(
    rx: Vec<Poll<Result<Vec<u8>, UsbError>>>,
    out: Vec<Result<(), UsbError>>,
) -> (Rtl8152<MockUsbHost>, Submitted, Cleared) {
    let mut host = host_with_chip(Arc::new(Mutex::new(Chip::new())));
    let rx = Arc::new(Mutex::new(std::collections::VecDeque::from(rx)));
    host.expect_poll_in()
        .returning(move |pipe: &Pipe, buf: &mut [u8]| {
            if pipe.kind == TransferType::Interrupt {
                return Poll::Pending;
            }
            match rx.lock().unwrap().pop_front() {
                None | Some(Poll::Pending) => Poll::Pending,
                Some(Poll::Ready(Err(e))) => Poll::Ready(Err(e)),
                Some(Poll::Ready(Ok(t))) => {
                    buf[..t.len()].copy_from_slice(&t);
                    Poll::Ready(Ok(t.len()))
                }
            }
        });
    let submitted = Arc::new(Mutex::new(Vec::new()));
    let in_flight = Arc::new(Mutex::new(false));
    let (s, f) = (submitted.clone(), in_flight.clone());
    host.expect_submit_out().returning(move |_, data: &[u8]| {
        s.lock().unwrap().push(data.to_vec());
        *f.lock().unwrap() = true;
        Ok(())
    });
    let out = Arc::new(Mutex::new(std::collections::VecDeque::from(out)));
    host.expect_poll_out().returning(move |_| {
        // An idle pipe reports Ok; a transfer in flight ends with the next queued result.
        let busy = std::mem::take(&mut *in_flight.lock().unwrap());
        let result = if busy {
            out.lock().unwrap().pop_front()
        } else {
            None
        };
        Poll::Ready(result.unwrap_or(Ok(())))
    });
    let cleared = Arc::new(Mutex::new(Vec::new()));
    let c = cleared.clone();
    host.expect_clear_halt().returning(move |pipe: Pipe| {
        c.lock().unwrap().push((pipe.endpoint, pipe.direction));
        Ok(())
    });
    let nic = Rtl8152::probe(host, &device()).unwrap();
    (nic, submitted, cleared)
}

#[test]
fn stalled_bulk_in_is_cleared_and_the_transfer_restarted() {
    use crate::usb::Direction;
    let (mut nic, _, cleared) = stalling(
        vec![
            Poll::Ready(Err(UsbError::Stall)),
            Poll::Ready(Ok(aggregate(&[frame(70, 9)]))),
        ],
        vec![],
    );
    assert_eq!(nic.recv(|f| f.to_vec()), None);
    assert_eq!(*cleared.lock().unwrap(), vec![(1, Direction::In)]);
    assert_eq!(nic.recv(|f| f.to_vec()), Some(frame(70, 9)));
    assert_eq!(nic.counters().rx_errors, 1);
}

#[test]
fn stalled_bulk_out_is_cleared_and_sent_once_more() {
    use crate::usb::Direction;
    // First transfer: STALL, then the retry completes.
    let (mut nic, submitted, cleared) = stalling(vec![], vec![Err(UsbError::Stall), Ok(())]);
    nic.send(60, |b| b.copy_from_slice(&frame(60, 1))).unwrap();
    nic.poll();
    nic.poll();
    let sub = submitted.lock().unwrap().clone();
    assert_eq!(sub.len(), 2, "resent once");
    assert_eq!(sub[0], sub[1]);
    assert_eq!(*cleared.lock().unwrap(), vec![(2, Direction::Out)]);
    assert_eq!(
        (nic.counters().tx_frames, nic.counters().tx_dropped),
        (1, 0)
    );

    // A retry that stalls again: the frames are lost, no third attempt.
    let (mut nic, submitted, cleared) = stalling(
        vec![],
        vec![Err(UsbError::Stall), Err(UsbError::Stall), Ok(())],
    );
    nic.send(60, |b| b.copy_from_slice(&frame(60, 2))).unwrap();
    for _ in 0..3 {
        nic.poll();
    }
    assert_eq!(submitted.lock().unwrap().len(), 2);
    assert_eq!(cleared.lock().unwrap().len(), 1);
    let s = nic.counters();
    assert_eq!((s.tx_frames, s.tx_dropped, s.tx_errors), (0, 1, 1));
}

#[test]
fn restart_brings_the_chip_up_again_and_keeps_the_mac_address() {
    let chip = Arc::new(Mutex::new(Chip::new()));
    let mut nic = Rtl8152::probe(host_with_chip(chip.clone()), &device()).unwrap();
    let probe_log = std::mem::take(&mut chip.lock().unwrap().log);

    // Same chip again: the same registers as the probe, no address write (values of
    // read-modify-writes differ: the chip kept its state).
    let registers = |log: &[Req]| -> Vec<(bool, u16, u16)> {
        log.iter()
            .map(|r| match r {
                R(v, i, _) => (false, *v, *i),
                W(v, i, _) => (true, *v, *i),
            })
            .collect()
    };
    nic.restart(&device()).unwrap();
    let log = std::mem::take(&mut chip.lock().unwrap().log);
    assert_eq!(registers(&log), registers(&probe_log));
    assert_eq!(nic.mac(), MAC);

    // A chip that reports another address gets ours written, with PLA_IDR unlocked for it.
    {
        let mut c = chip.lock().unwrap();
        for i in 0..6u16 {
            c.mem.insert((0x100, 0xc000 + i), 0x20 + i as u8);
        }
    }
    nic.restart(&device()).unwrap();
    assert_eq!(nic.mac(), MAC);
    let c = chip.lock().unwrap();
    let mut idr = MAC.to_vec();
    idr.extend([0, 0]);
    let at = c
        .log
        .iter()
        .position(|r| *r == W(0xc000, 0x013f, idr.clone()))
        .expect("PLA_IDR written with six byte enables");
    assert_eq!(
        c.log[at - 1],
        W(0xe81c, 0x0111, le(u32::from(CRWECR_CONFIG)))
    );
    assert_eq!(
        c.log[at + 1],
        W(0xe81c, 0x0111, le(u32::from(CRWECR_NORMAL)))
    );
    let stored: Vec<u8> = (0..6u16).map(|i| c.mem[&(0x100, 0xc000 + i)]).collect();
    assert_eq!(stored, MAC);
}

#[test]
fn a_restart_drops_what_was_queued_for_the_old_device() {
    let mut h = harness(vec![]);
    h.nic.send(60, |_| ()).unwrap(); // in flight
    h.nic.send(60, |_| ()).unwrap(); // batched
    h.nic.restart(&device()).unwrap();
    assert_eq!(h.nic.counters().tx_dropped, 2);
    *h.out_busy.lock().unwrap() = false;
    h.nic.poll();
    assert_eq!(
        h.nic.counters().tx_frames,
        0,
        "nothing of the old device is counted as sent"
    );
}
