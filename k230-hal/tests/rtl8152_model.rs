//! The RTL8152 model on its own, driven through its `UsbFunction` interface the way a bus
//! would: descriptors, register requests the silicon would refuse, RX aggregation with CRC,
//! TX descriptor parsing, and backpressure from a full wire.
#![cfg(feature = "sim")]

use k230_hal::sim::rtl8152::{crc32, ModelError, Rtl8152Model};
use k230_hal::sim::rtl8152_regs::RegFault;
use k230_hal::sim::usb_function::{Handshake, InResponse, UsbFunction};
use k230_hal::sim::wire::pair::{pair, PairEnd};
use k230_hal::sim::wire::Wire;
use k230_hal::usb::descriptor::{ConfigurationDescriptor, DeviceDescriptor};
use k230_hal::usb::{DeviceAddress, SetupPacket, Speed, TransferType};

const MAC: [u8; 6] = [0x00, 0xe0, 0x4c, 0x68, 0x00, 0x01];

fn write(m: &mut Rtl8152Model<PairEnd>, addr: u16, index: u16, v: u32) {
    let s = SetupPacket {
        request_type: 0x40,
        request: 0x05,
        value: addr,
        index,
        length: 4,
    };
    m.control_out(&s, &v.to_le_bytes()).expect("register write");
}

/// A configured model with RX and TX on, accepting broadcast and its own address.
fn running(capacity: usize) -> (Rtl8152Model<PairEnd>, PairEnd) {
    let (ours, theirs) = pair(capacity);
    let mut m = Rtl8152Model::new(ours, MAC);
    m.set_configuration(1).unwrap();
    write(&mut m, 0xc010, 0x01ff, 0x0a); // RCR: AB | APM
    write(&mut m, 0xe810, 0x0188, 0x0c << 24); // CR: RE | TE
    write(&mut m, 0xe858, 0x01cc, 0); // MISC_1: RX not gated
    write(&mut m, 0xd404, 0x00cc, 0); // USB_CTRL: aggregation on
    (m, theirs)
}

/// Reads one bulk-IN transfer, packet by packet (bounded).
fn read_transfer(m: &mut Rtl8152Model<PairEnd>) -> Option<Vec<u8>> {
    let mut t = Vec::new();
    let mut packet = [0u8; 512];
    for _ in 0..100 {
        match m.data_in(1, &mut packet) {
            InResponse::Nak if t.is_empty() => return None,
            InResponse::Data(n) => {
                t.extend_from_slice(&packet[..n]);
                if n < 512 {
                    return Some(t);
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    panic!("transfer did not end");
}

/// Sends one bulk-OUT transfer; returns the handshakes.
fn write_transfer(m: &mut Rtl8152Model<PairEnd>, data: &[u8]) -> Vec<Handshake> {
    let mut hs = Vec::new();
    let mut chunks: Vec<&[u8]> = data.chunks(512).collect();
    if data.len() % 512 == 0 {
        chunks.push(&[]);
    }
    for c in chunks {
        hs.push(m.data_out(2, c));
    }
    hs
}

fn eth(dest: [u8; 6], len: usize, seed: u8) -> Vec<u8> {
    let mut f: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_add(seed)).collect();
    f[..6].copy_from_slice(&dest);
    f
}

fn tx_desc(len: usize) -> [u8; 8] {
    let mut d = [0; 8];
    d[..4].copy_from_slice(&(0xc000_0000u32 | len as u32).to_le_bytes());
    d
}

#[test]
fn descriptors_look_like_the_real_device() {
    let (m, _) = pair(1);
    let m = Rtl8152Model::new(m, MAC);
    let dd = m.device_descriptor();
    let d = DeviceDescriptor::new_checked(&dd[..]).unwrap();
    assert_eq!((d.vendor_id(), d.product_id()), (0x0bda, 0x8152));
    assert_eq!(m.speed(), Speed::High);
    let c = ConfigurationDescriptor::new_checked(m.configuration_descriptor()).unwrap();
    assert_eq!(
        usize::from(c.total_length()),
        m.configuration_descriptor().len()
    );
    let i = c.interface(0, 0).unwrap();
    assert_eq!(i.descriptor.class(), 0xff);
    let p = i.pipes(DeviceAddress::new(1).unwrap(), Speed::High);
    let (bi, bo, ii) = (
        p.bulk_in.unwrap(),
        p.bulk_out.unwrap(),
        p.interrupt_in.unwrap(),
    );
    assert_eq!((bi.endpoint, bi.max_packet_size), (1, 512));
    assert_eq!((bo.endpoint, bo.max_packet_size), (2, 512));
    assert_eq!((ii.endpoint, ii.kind), (3, TransferType::Interrupt));
    // String 3 is the MAC in hex (CherryUSB reads it).
    let s = m.string_descriptor(3, 0x0409).unwrap();
    let text: String = s[2..].chunks(2).map(|c| char::from(c[0])).collect();
    assert_eq!(text, "00E04C680001");
}

#[test]
fn bad_register_requests_stall_and_are_logged() {
    let (w, _) = pair(1);
    let mut m = Rtl8152Model::new(w, MAC);
    let report = m.report();
    let good = SetupPacket {
        request_type: 0xc0,
        request: 0x05,
        value: 0xc000,
        index: 0x0100,
        length: 8,
    };
    assert_eq!(&m.control_in(&good).unwrap()[..6], &MAC);
    let cases = [
        (
            SetupPacket {
                request_type: 0xc1,
                ..good
            },
            RegFault::BadRequestType(0xc1),
        ),
        (
            SetupPacket {
                request: 0x06,
                ..good
            },
            RegFault::BadRequest(0x06),
        ),
        (
            SetupPacket {
                index: 0x0200,
                ..good
            },
            RegFault::BadIndex(0x0200),
        ),
        (
            SetupPacket {
                value: 0xc002,
                ..good
            },
            RegFault::Unaligned {
                address: 0xc002,
                length: 8,
            },
        ),
        (
            SetupPacket { length: 6, ..good },
            RegFault::Unaligned {
                address: 0xc000,
                length: 6,
            },
        ),
    ];
    for (s, _) in &cases {
        assert!(m.control_in(s).is_err());
    }
    let w = SetupPacket {
        request_type: 0x40,
        index: 0x01ff,
        length: 8,
        ..good
    };
    assert!(m.control_out(&w, &[1; 8]).is_err(), "IDR locked");
    let errors = report.snapshot().errors;
    let mut want: Vec<ModelError> = cases
        .iter()
        .map(|(_, f)| ModelError::Register(*f))
        .collect();
    want.push(ModelError::Register(RegFault::IdrLocked));
    assert_eq!(errors, want);
}

#[test]
fn endpoints_stall_before_configuration() {
    let (w, _) = pair(1);
    let mut m = Rtl8152Model::new(w, MAC);
    let mut b = [0; 512];
    assert_eq!(m.data_in(1, &mut b), InResponse::Stall);
    assert_eq!(m.data_out(2, &[0; 10]), Handshake::Stall);
    assert_eq!(
        m.report().snapshot().errors,
        vec![ModelError::NotConfigured(1), ModelError::NotConfigured(2)]
    );
}

#[test]
fn received_frames_are_aggregated_with_descriptors_and_crc() {
    let (mut m, mut wire) = running(64);
    let frames = [eth([0xff; 6], 42, 1), eth(MAC, 1514, 2), eth(MAC, 61, 3)];
    for f in &frames {
        wire.send(f).unwrap();
    }
    wire.send(&eth([0x02, 1, 1, 1, 1, 1], 100, 4)).unwrap(); // filtered
    let t = read_transfer(&mut m).expect("an aggregate");
    let mut pos = 0;
    for f in &frames {
        let mut padded = f.clone();
        padded.resize(padded.len().max(60), 0);
        assert_eq!(pos % 8, 0);
        let opts1 = u32::from_le_bytes(t[pos..pos + 4].try_into().unwrap());
        assert_eq!(opts1 as usize & 0x7fff, padded.len() + 4);
        let body = &t[pos + 24..pos + 24 + padded.len()];
        assert_eq!(body, &padded[..]);
        let crc = &t[pos + 24 + padded.len()..pos + 28 + padded.len()];
        assert_eq!(crc, crc32(&padded).to_le_bytes());
        pos = (pos + 28 + padded.len()).next_multiple_of(8);
    }
    assert!(pos >= t.len());
    assert_eq!(read_transfer(&mut m), None);
    let r = m.report().snapshot();
    assert_eq!((r.rx_frames, r.rx_transfers, r.rx_filtered), (3, 1, 1));
}

#[test]
fn aggregation_off_sends_one_frame_per_transfer_and_gating_stops_rx() {
    let (mut m, mut wire) = running(64);
    write(&mut m, 0xd404, 0x00cc, 0x10 << 16); // RX_AGG_DISABLE
    wire.send(&eth(MAC, 100, 1)).unwrap();
    wire.send(&eth(MAC, 100, 2)).unwrap();
    assert_eq!(read_transfer(&mut m).unwrap().len(), 24 + 104);
    assert_eq!(read_transfer(&mut m).unwrap().len(), 24 + 104);
    write(&mut m, 0xe858, 0x01cc, 0x08 << 16); // RXDY_GATED_EN
    wire.send(&eth(MAC, 100, 3)).unwrap();
    assert_eq!(read_transfer(&mut m), None);
    assert_eq!(m.report().snapshot().rx_filtered, 1);
}

#[test]
fn transmitted_transfers_are_split_into_frames() {
    let (mut m, mut wire) = running(64);
    let a = eth([0x02, 0, 0, 0, 0, 9], 61, 1);
    let b = eth([0x02, 0, 0, 0, 0, 9], 1514, 2);
    let c = eth([0x02, 0, 0, 0, 0, 9], 30, 3);
    let mut t = Vec::new();
    for f in [&a, &b, &c] {
        t.resize(t.len().next_multiple_of(4), 0);
        t.extend_from_slice(&tx_desc(f.len()));
        t.extend_from_slice(f);
    }
    assert!(write_transfer(&mut m, &t)
        .iter()
        .all(|h| *h == Handshake::Ack));
    let mut c_padded = c.clone();
    c_padded.resize(60, 0);
    let got: Vec<Vec<u8>> = std::iter::from_fn(|| wire.recv().unwrap()).collect();
    assert_eq!(got, vec![a, b, c_padded]);
    assert_eq!(m.report().snapshot().errors, vec![]);
}

#[test]
fn malformed_tx_descriptors_are_rejected() {
    let good = eth([0x02, 0, 0, 0, 0, 9], 64, 1);
    let mut cases: Vec<(Vec<u8>, ModelError)> = Vec::new();
    let mut no_ls = tx_desc(64).to_vec();
    no_ls[3] = 0x80;
    no_ls.extend_from_slice(&good);
    cases.push((no_ls, ModelError::TxNotWholeFrame(0x8000_0040)));
    let mut zero = tx_desc(0).to_vec();
    zero.extend_from_slice(&good);
    cases.push((zero, ModelError::TxBadLength(0)));
    let mut huge = tx_desc(4000).to_vec();
    huge.extend_from_slice(&good);
    cases.push((huge, ModelError::TxBadLength(4000)));
    let mut cut = tx_desc(200).to_vec();
    cut.extend_from_slice(&good);
    cases.push((cut, ModelError::TxTruncatedFrame));
    let mut short_desc = tx_desc(64).to_vec();
    short_desc.extend_from_slice(&good);
    short_desc.extend_from_slice(&[0xc0, 0, 0, 0, 0]);
    cases.push((short_desc, ModelError::TxTruncatedDescriptor));
    for (t, want) in cases {
        let (mut m, mut wire) = running(64);
        write_transfer(&mut m, &t);
        assert_eq!(m.report().snapshot().errors, vec![want]);
        // Frames before the bad descriptor still go out; none after it.
        let sent: Vec<Vec<u8>> = std::iter::from_fn(|| wire.recv().unwrap()).collect();
        let expect_good = want == ModelError::TxTruncatedDescriptor;
        assert_eq!(sent.len(), usize::from(expect_good));
    }
}

/// A large-send descriptor (opts1 GTSENDV4) the model cannot carry out drops its frame, counted
/// as a driver error, and the descriptors after it go on; arbitrary large-send frames behind
/// such a descriptor never panic the model.
#[test]
fn a_malformed_large_send_is_dropped_and_counted_and_the_next_frame_goes_out() {
    use k230_hal::sim::rtl8152_large_send::{LargeSendError, TX_GTSENDV4};
    use rand::{Rng, SeedableRng};
    let large_send = |frame: &[u8], offset: u32, mss: u32| {
        let mut d = tx_desc(frame.len());
        let opts1 = u32::from_le_bytes(d[..4].try_into().unwrap()) | TX_GTSENDV4 | (offset << 18);
        d[..4].copy_from_slice(&opts1.to_le_bytes());
        d[4..].copy_from_slice(&(mss << 17).to_le_bytes());
        let mut t = d.to_vec();
        t.extend_from_slice(frame);
        t
    };
    let (mut m, mut wire) = running(64);
    let junk = eth([0x02, 0, 0, 0, 0, 9], 3000, 5);
    let good = eth([0x02, 0, 0, 0, 0, 9], 100, 6);
    let mut t = large_send(&junk, 34, 1460);
    t.resize(t.len().next_multiple_of(4), 0);
    t.extend_from_slice(&tx_desc(good.len()));
    t.extend_from_slice(&good);
    write_transfer(&mut m, &t);
    let r = m.report().snapshot();
    assert_eq!(
        r.errors,
        vec![ModelError::TxLargeSend(LargeSendError::NotIpv4Tcp)]
    );
    assert_eq!((r.tx_descriptors, r.tx_large_sends), (2, 0));
    let sent: Vec<Vec<u8>> = std::iter::from_fn(|| wire.recv().unwrap()).collect();
    assert_eq!(sent, vec![good]);
    // Random frames with an IPv4/TCP-looking start, random offsets and MSS.
    let mut rng = rand::rngs::StdRng::seed_from_u64(8152);
    for _ in 0..2000 {
        let (mut m, mut wire) = running(64);
        let len = rng.gen_range(14..4000);
        let mut f: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        if len > 40 && rng.gen_bool(0.8) {
            f[12..14].copy_from_slice(&[0x08, 0x00]);
            f[14] = 0x45;
            f[23] = 6;
        }
        write_transfer(
            &mut m,
            &large_send(&f, rng.gen_range(0..0x80), rng.gen_range(0..0x800)),
        );
        let r = m.report().snapshot();
        let sent = std::iter::from_fn(|| wire.recv().unwrap()).count() as u64;
        assert_eq!(r.tx_frames, sent);
        assert_eq!(r.errors.len() as u64 + r.tx_large_sends, 1);
    }
}

#[test]
fn tx_is_refused_while_disabled() {
    let (mut m, mut wire) = running(64);
    write(&mut m, 0xe810, 0x0188, 0x08 << 24); // RE only
    let mut t = tx_desc(60).to_vec();
    t.extend_from_slice(&[0; 60]);
    write_transfer(&mut m, &t);
    assert_eq!(m.report().snapshot().errors, vec![ModelError::TxDisabled]);
    assert_eq!(wire.recv().unwrap(), None);
}

#[test]
fn full_wire_naks_the_next_transfer() {
    let (mut m, mut wire) = running(1);
    let mut t = Vec::new();
    for _ in 0..3 {
        t.resize(t.len().next_multiple_of(4), 0);
        t.extend_from_slice(&tx_desc(100));
        t.extend_from_slice(&[7; 100]);
    }
    write_transfer(&mut m, &t);
    // One frame on the wire, two waiting in the chip: the next transfer is NAKed.
    assert_eq!(m.data_out(2, &tx_desc(60)), Handshake::Nak);
    let mut got = 0;
    for _ in 0..10 {
        if wire.recv().unwrap().is_some() {
            got += 1;
        }
        let mut b = [0; 512];
        let _ = m.data_in(3, &mut b); // any bus activity lets the chip retry the wire
    }
    assert_eq!(got, 3);
    let mut next = tx_desc(60).to_vec();
    next.extend_from_slice(&[1; 60]);
    assert_eq!(write_transfer(&mut m, &next), vec![Handshake::Ack]);
}

#[test]
fn interrupt_endpoint_reports_link_changes() {
    let (mut m, _wire) = running(1);
    let mut b = [0; 8];
    assert_eq!(m.data_in(3, &mut b), InResponse::Data(2));
    assert_eq!(u16::from_le_bytes([b[0], b[1]]) & 0x0004, 0x0004);
    assert_eq!(m.data_in(3, &mut b), InResponse::Nak);
    m.cable().unplug();
    assert_eq!(m.data_in(3, &mut b), InResponse::Data(2));
    assert_eq!(u16::from_le_bytes([b[0], b[1]]) & 0x0004, 0);
    // Unplugged, frames from the wire do not arrive.
    let (mut m2, mut wire) = running(4);
    m2.cable().unplug();
    wire.send(&eth(MAC, 100, 1)).unwrap();
    assert_eq!(read_transfer(&mut m2), None);
    m2.cable().plug();
    wire.send(&eth(MAC, 100, 2)).unwrap();
    assert!(read_transfer(&mut m2).is_some());
    let phy = SetupPacket {
        request_type: 0xc0,
        request: 5,
        value: 0xe908,
        index: 0x0100,
        length: 4,
    };
    assert_eq!(m.control_in(&phy).unwrap()[0] & 0x02, 0);
}
