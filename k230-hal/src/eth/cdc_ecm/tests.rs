//! Unit tests of the CDC-ECM driver against a mocked USB host.

use core::task::Poll;

use mockall::{predicate::*, Sequence};
use rand::{Rng, SeedableRng};

use super::*;
use crate::usb::{MockUsbHost, MAX_CONFIG_DESCRIPTOR};

const ADDR: u8 = 3;

/// Configuration with an ECM function laid out like QEMU's `usb-net` CDC configuration
/// (value 1): control interface 0 with header, union (0 -> 1) and Ethernet descriptors and an
/// interrupt IN endpoint 1; data interface 1, alt 0 without endpoints, alt 1 with bulk 0x82/0x02.
fn ecm_config() -> Vec<u8> {
    let mut c = vec![9, 0x02, 0, 0, 2, 1, 7, 0xC0, 0x32];
    c.extend([9, 0x04, 0, 0, 1, 0x02, 0x06, 0x00, 5]);
    c.extend([5, 0x24, 0x00, 0x10, 0x01]);
    c.extend([5, 0x24, 0x06, 0, 1]);
    c.extend([13, 0x24, 0x0F, 3, 0, 0, 0, 0, 0xEA, 0x05, 0, 0, 0]);
    c.extend([7, 0x05, 0x81, 0x03, 16, 0, 32]);
    c.extend([9, 0x04, 1, 0, 0, 0x0A, 0, 0, 0]);
    c.extend([9, 0x04, 1, 1, 2, 0x0A, 0, 0, 4]);
    c.extend([7, 0x05, 0x82, 0x02, 64, 0, 0]);
    c.extend([7, 0x05, 0x02, 0x02, 64, 0, 0]);
    let total = c.len() as u16;
    c[2..4].copy_from_slice(&total.to_le_bytes());
    c
}

/// Configuration laid out like QEMU's RNDIS configuration (value 2): CDC ACM subclass with
/// vendor protocol, no Ethernet descriptor, a data interface without alternate settings.
fn rndis_config() -> Vec<u8> {
    let mut c = vec![9, 0x02, 0, 0, 2, 2, 9, 0xC0, 0x32];
    c.extend([9, 0x04, 0, 0, 1, 0x02, 0x02, 0xFF, 6]);
    c.extend([5, 0x24, 0x00, 0x10, 0x01]);
    c.extend([5, 0x24, 0x01, 0x00, 0x01]);
    c.extend([4, 0x24, 0x02, 0x00]);
    c.extend([5, 0x24, 0x06, 0, 1]);
    c.extend([7, 0x05, 0x81, 0x03, 16, 0, 32]);
    c.extend([9, 0x04, 1, 0, 2, 0x0A, 0, 0, 4]);
    c.extend([7, 0x05, 0x82, 0x02, 64, 0, 0]);
    c.extend([7, 0x05, 0x02, 0x02, 64, 0, 0]);
    let total = c.len() as u16;
    c[2..4].copy_from_slice(&total.to_le_bytes());
    c
}

fn string_descriptor(s: &str) -> Vec<u8> {
    let mut d = vec![0, 0x03];
    for u in s.encode_utf16() {
        d.extend(u.to_le_bytes());
    }
    d[0] = d.len() as u8;
    d
}

/// A device as enumeration leaves it: configuration index 0 (RNDIS, like QEMU) read.
fn usb_device(config: &[u8], num_configs: u8) -> UsbDevice {
    let mut device_descriptor = [0u8; 18];
    device_descriptor[..2].copy_from_slice(&[18, 0x01]);
    device_descriptor[4] = 0x02;
    device_descriptor[7] = 64;
    device_descriptor[8..12].copy_from_slice(&[0x25, 0x05, 0xA2, 0xA4]);
    device_descriptor[17] = num_configs;
    let mut config_descriptor = [0u8; MAX_CONFIG_DESCRIPTOR];
    config_descriptor[..config.len()].copy_from_slice(config);
    UsbDevice {
        address: DeviceAddress::new(ADDR).unwrap(),
        speed: Speed::Full,
        device_descriptor,
        config_descriptor,
        config_len: config.len(),
    }
}

fn copy_reply(reply: &[u8], data: &mut [u8]) -> Result<usize, UsbError> {
    let n = reply.len().min(data.len());
    data[..n].copy_from_slice(&reply[..n]);
    Ok(n)
}

fn expect_get_descriptor(
    host: &mut MockUsbHost,
    seq: &mut Sequence,
    value: u16,
    index: u16,
    reply: Vec<u8>,
) {
    host.expect_control_in()
        .withf(move |d, s, _| {
            d.get() == ADDR
                && s.request_type == 0x80
                && s.request == 0x06
                && s.value == value
                && s.index == index
        })
        .times(1)
        .in_sequence(seq)
        .returning(move |_, _, data| copy_reply(&reply, data));
}

fn expect_control_out(
    host: &mut MockUsbHost,
    seq: &mut Sequence,
    setup: SetupPacket,
    result: Result<(), UsbError>,
) {
    host.expect_control_out()
        .withf(move |d, s, data| d.get() == ADDR && *s == setup && data.is_empty())
        .times(1)
        .in_sequence(seq)
        .returning(move |_, _, _| result);
}

const SET_CONFIG_1: SetupPacket = SetupPacket {
    request_type: 0x00,
    request: 0x09,
    value: 1,
    index: 0,
    length: 0,
};
const SET_ALT_0: SetupPacket = SetupPacket {
    request_type: 0x01,
    request: 0x0B,
    value: 0,
    index: 1,
    length: 0,
};
const SET_ALT_1: SetupPacket = SetupPacket {
    request_type: 0x01,
    request: 0x0B,
    value: 1,
    index: 1,
    length: 0,
};
const SET_FILTER: SetupPacket = SetupPacket {
    request_type: 0x21,
    request: 0x43,
    value: 0x0E,
    index: 0,
    length: 0,
};

/// The whole probe of a QEMU-like device, with the filter request answered by `filter`.
fn qemu_like_probe(host: &mut MockUsbHost, filter: Result<(), UsbError>) {
    let mut seq = Sequence::new();
    expect_get_descriptor(host, &mut seq, 0x0200, 0, rndis_config());
    expect_get_descriptor(host, &mut seq, 0x0201, 0, ecm_config());
    expect_control_out(host, &mut seq, SET_CONFIG_1, Ok(()));
    expect_get_descriptor(host, &mut seq, 0x0300, 0, vec![4, 0x03, 0x09, 0x04]);
    expect_get_descriptor(
        host,
        &mut seq,
        0x0303,
        0x0409,
        string_descriptor("40540012345a"),
    );
    expect_control_out(host, &mut seq, SET_ALT_0, Ok(()));
    expect_control_out(host, &mut seq, SET_ALT_1, Ok(()));
    expect_control_out(host, &mut seq, SET_FILTER, filter);
}

fn probed() -> EcmDevice {
    let mut host = MockUsbHost::new();
    qemu_like_probe(&mut host, Err(UsbError::Stall));
    probe(&mut host, &usb_device(&rndis_config(), 2)).expect("probe")
}

#[test]
fn finds_the_ecm_function_like_qemu_presents_it() {
    let f = EcmFunction::find(&ecm_config()).unwrap();
    assert_eq!(f.configuration, 1);
    assert_eq!(
        (f.control_interface, f.data_interface, f.data_alt_setting),
        (0, 1, 1)
    );
    assert_eq!(
        f.bulk_in,
        Endpoint {
            number: 2,
            max_packet_size: 64,
            interval: 0
        }
    );
    assert_eq!(
        f.bulk_out,
        Endpoint {
            number: 2,
            max_packet_size: 64,
            interval: 0
        }
    );
    assert_eq!(
        f.notify,
        Some(Endpoint {
            number: 1,
            max_packet_size: 16,
            interval: 32
        })
    );
    assert_eq!((f.mac_string, f.max_segment_size), (3, 1514));
}

#[test]
fn rndis_configuration_is_not_ecm() {
    assert_eq!(
        EcmFunction::find(&rndis_config()),
        Err(FunctionError::NotEcm)
    );
}

#[test]
fn missing_functional_descriptors_are_named() {
    let c = ecm_config();
    let without = |at: usize, len: usize| [&c[..at], &c[at + len..]].concat();
    assert_eq!(
        EcmFunction::find(&without(18, 5)),
        Err(FunctionError::MissingHeader)
    );
    assert_eq!(
        EcmFunction::find(&without(23, 5)),
        Err(FunctionError::MissingUnion)
    );
    assert_eq!(
        EcmFunction::find(&without(28, 13)),
        Err(FunctionError::MissingEthernet)
    );
    // Without the bulk OUT endpoint no alternate setting qualifies.
    assert_eq!(
        EcmFunction::find(&c[..c.len() - 7]),
        Err(FunctionError::NoDataEndpoints)
    );
}

#[test]
fn malformed_descriptors_are_rejected_without_panic() {
    let c = ecm_config();
    // A zero bLength in the middle of the chain.
    let mut zero = c.clone();
    zero[18] = 0;
    assert_eq!(EcmFunction::find(&zero), Err(FunctionError::Malformed));
    // A descriptor running past the end.
    let mut overrun = c.clone();
    let last = overrun.len() - 7;
    overrun[last] = 40;
    assert_eq!(EcmFunction::find(&overrun), Err(FunctionError::Malformed));
    // Not a configuration descriptor first.
    assert_eq!(EcmFunction::find(&c[9..]), Err(FunctionError::Malformed));
    assert_eq!(EcmFunction::find(&[]), Err(FunctionError::Malformed));
    // An Ethernet descriptor too short for its fields is skipped, not read past.
    let mut short = c.clone();
    short[28] = 5;
    short.drain(33..41);
    assert_eq!(
        EcmFunction::find(&short),
        Err(FunctionError::MissingEthernet)
    );
}

#[test]
fn random_and_truncated_descriptors_never_panic() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0xEC);
    let c = ecm_config();
    for cut in 0..c.len() {
        let _ = EcmFunction::find(&c[..cut]);
    }
    for _ in 0..2000 {
        let mut buf = c.clone();
        let flips = rng.gen_range(1..6);
        for _ in 0..flips {
            let i = rng.gen_range(0..buf.len());
            buf[i] = rng.gen();
        }
        let _ = EcmFunction::find(&buf);
        let noise: Vec<u8> = (0..rng.gen_range(0..64)).map(|_| rng.gen()).collect();
        let _ = parse_mac_string(&noise);
        let _ = Notification::new_checked(&noise[..]).map(|n| n.event());
    }
}

#[test]
fn mac_string_parses_12_hex_characters() {
    assert_eq!(
        parse_mac_string(&string_descriptor("40540012345a")),
        Ok([0x40, 0x54, 0x00, 0x12, 0x34, 0x5A])
    );
    assert_eq!(
        parse_mac_string(&string_descriptor("0200DEADBEEF")),
        Ok([0x02, 0x00, 0xDE, 0xAD, 0xBE, 0xEF])
    );
}

#[test]
fn bad_mac_strings_are_refused() {
    assert_eq!(
        parse_mac_string(&string_descriptor("4054001234")),
        Err(MacError::WrongLength)
    );
    assert_eq!(
        parse_mac_string(&string_descriptor("40540012345a00")),
        Err(MacError::WrongLength)
    );
    assert_eq!(
        parse_mac_string(&string_descriptor("40540012345g")),
        Err(MacError::NotHex)
    );
    assert_eq!(
        parse_mac_string(&string_descriptor("4054001234５a")),
        Err(MacError::NotHex)
    );
    assert_eq!(
        parse_mac_string(&string_descriptor("41540012345a")),
        Err(MacError::Multicast)
    );
    let mut truncated = string_descriptor("40540012345a");
    truncated.truncate(20);
    assert_eq!(parse_mac_string(&truncated), Err(MacError::NotString));
    let mut not_string = string_descriptor("40540012345a");
    not_string[1] = 0x02;
    assert_eq!(parse_mac_string(&not_string), Err(MacError::NotString));
    assert_eq!(parse_mac_string(&[]), Err(MacError::NotString));
}

#[test]
fn notifications_decode() {
    let up = [0xA1, 0x00, 1, 0, 0, 0, 0, 0];
    assert_eq!(
        Notification::new_checked(&up[..]).unwrap().event(),
        Some(Event::Connection(true))
    );
    let down = [0xA1, 0x00, 0, 0, 0, 0, 0, 0];
    assert_eq!(
        Notification::new_checked(&down[..]).unwrap().event(),
        Some(Event::Connection(false))
    );
    let mut speed = vec![0xA1, 0x2A, 0, 0, 0, 0, 8, 0];
    speed.extend(100_000_000u32.to_le_bytes());
    speed.extend(10_000_000u32.to_le_bytes());
    let n = Notification::new_checked(&speed[..]).unwrap();
    assert_eq!(
        n.event(),
        Some(Event::Speed {
            downstream: 100_000_000,
            upstream: 10_000_000
        })
    );
    assert_eq!(
        Notification::new_checked(&speed[..12]).err(),
        Some(NotificationError::Truncated)
    );
    assert_eq!(
        Notification::new_checked(&up[..7]).err(),
        Some(NotificationError::Truncated)
    );
    let mut vendor = up;
    vendor[0] = 0xC1;
    assert_eq!(
        Notification::new_checked(&vendor[..]).err(),
        Some(NotificationError::NotCdc)
    );
    // A speed change that declares fewer than 8 data bytes carries no rates.
    let short = [0xA1, 0x2A, 0, 0, 0, 0, 4, 0, 1, 2, 3, 4];
    assert_eq!(Notification::new_checked(&short[..]).unwrap().event(), None);
}

#[test]
fn probe_picks_the_ecm_configuration_and_tolerates_a_stalled_filter() {
    let dev = probed();
    assert_eq!(dev.mac, [0x40, 0x54, 0x00, 0x12, 0x34, 0x5A]);
    assert_eq!(dev.function.configuration, 1);
    assert_eq!(dev.speed, Speed::Full);
}

#[test]
fn probe_uses_the_enumerated_configuration_when_it_is_ecm() {
    let mut host = MockUsbHost::new();
    let mut seq = Sequence::new();
    expect_control_out(&mut host, &mut seq, SET_CONFIG_1, Ok(()));
    // No language table: en-US is used.
    host.expect_control_in()
        .withf(|_, s, _| s.value == 0x0300)
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Err(UsbError::Stall));
    expect_get_descriptor(
        &mut host,
        &mut seq,
        0x0303,
        0x0409,
        string_descriptor("020000000001"),
    );
    expect_control_out(&mut host, &mut seq, SET_ALT_0, Ok(()));
    expect_control_out(&mut host, &mut seq, SET_ALT_1, Ok(()));
    expect_control_out(&mut host, &mut seq, SET_FILTER, Ok(()));
    let dev = probe(&mut host, &usb_device(&ecm_config(), 1)).unwrap();
    assert_eq!(dev.mac, [2, 0, 0, 0, 0, 1]);
}

#[test]
fn probe_reports_a_device_without_ecm() {
    let mut host = MockUsbHost::new();
    let mut seq = Sequence::new();
    expect_get_descriptor(&mut host, &mut seq, 0x0200, 0, rndis_config());
    let err = probe(&mut host, &usb_device(&rndis_config(), 1)).unwrap_err();
    assert_eq!(err, Error::NoFunction(FunctionError::NotEcm));
    let mut host = MockUsbHost::new();
    assert_eq!(
        probe(&mut host, &usb_device(&rndis_config(), 0)),
        Err(Error::NoConfiguration)
    );
}

#[test]
fn probe_fails_on_a_filter_error_other_than_stall() {
    let mut host = MockUsbHost::new();
    qemu_like_probe(&mut host, Err(UsbError::Timeout));
    assert_eq!(
        probe(&mut host, &usb_device(&rndis_config(), 2)),
        Err(Error::Usb(UsbError::Timeout))
    );
}

#[test]
fn probe_refuses_a_bad_mac_string() {
    let mut host = MockUsbHost::new();
    let mut seq = Sequence::new();
    expect_control_out(&mut host, &mut seq, SET_CONFIG_1, Ok(()));
    expect_get_descriptor(&mut host, &mut seq, 0x0300, 0, vec![4, 0x03, 0x09, 0x04]);
    expect_get_descriptor(
        &mut host,
        &mut seq,
        0x0303,
        0x0409,
        string_descriptor("not-a-mac!!!"),
    );
    let err = probe(&mut host, &usb_device(&ecm_config(), 1)).unwrap_err();
    assert_eq!(err, Error::BadMac(MacError::NotHex));
}

fn is_pipe(
    endpoint: u8,
    direction: Direction,
    kind: TransferType,
) -> impl Fn(&Pipe) -> bool + Clone {
    move |p: &Pipe| {
        p.device.get() == ADDR
            && p.endpoint == endpoint
            && p.direction == direction
            && p.kind == kind
    }
}

/// A frame of `len` bytes whose content depends on `seed`.
fn frame(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed))
        .collect()
}

/// The interrupt endpoint answers NAK: no notification pending.
fn quiet_notifications(host: &mut MockUsbHost) {
    let notify = is_pipe(1, Direction::In, TransferType::Interrupt);
    host.expect_poll_in()
        .withf(move |p, _| notify(p))
        .returning(|_, _| Poll::Pending);
}

#[test]
fn receives_frames_and_skips_zero_length_and_runt_transfers() {
    let mut host = MockUsbHost::new();
    quiet_notifications(&mut host);
    let bulk = is_pipe(2, Direction::In, TransferType::Bulk);
    let mut replies = vec![
        Poll::Ready(Ok(frame(128, 1))),
        Poll::Ready(Ok(vec![])),
        Poll::Ready(Ok(frame(10, 2))),
        Poll::Ready(Err(UsbError::Babble)),
        Poll::Pending,
        Poll::Ready(Ok(frame(1514, 3))),
    ]
    .into_iter();
    host.expect_poll_in()
        .withf(move |p, buf| bulk(p) && buf.len() >= 1514)
        .times(6)
        .returning(move |_, buf| match replies.next().unwrap() {
            Poll::Ready(Ok(f)) => Poll::Ready(copy_reply(&f, buf)),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        });
    let mut nic = CdcEcm::new(host, probed());
    assert_eq!(nic.recv(|f| f.to_vec()), Some(frame(128, 1)));
    for _ in 0..4 {
        assert_eq!(nic.recv(|f| f.len()), None);
    }
    assert_eq!(nic.recv(|f| f.to_vec()), Some(frame(1514, 3)));
    let stats = nic.counters();
    // The runt is malformed data, the babble a failed transfer (one counter each, as the
    // RTL8152 driver counts them).
    assert_eq!(
        (stats.rx_frames, stats.rx_errors, stats.rx_malformed),
        (2, 1, 1)
    );
    assert_eq!(stats.rx_bytes, 128 + 1514);
}

#[test]
fn sends_frames_one_transfer_at_a_time_without_dropping() {
    let mut host = MockUsbHost::new();
    quiet_notifications(&mut host);
    let out = is_pipe(2, Direction::Out, TransferType::Bulk);
    let mut seq = Sequence::new();
    let first = frame(64, 1);
    let second = frame(60, 2);
    let (f1, f2) = (first.clone(), second.clone());
    let out1 = out.clone();
    // Frame 1 goes out at once (a multiple of the packet size: the host adds the ZLP).
    host.expect_submit_out()
        .withf(move |p, d| out1(p) && d == &f1[..])
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| Ok(()));
    // Frame 2 waits while frame 1 is in flight; a third frame is refused meanwhile.
    let out2 = out.clone();
    host.expect_poll_out()
        .withf(move |p| out2(p))
        .times(3)
        .in_sequence(&mut seq)
        .returning(|_| Poll::Pending);
    let out3 = out.clone();
    host.expect_poll_out()
        .withf(move |p| out3(p))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Poll::Ready(Err(UsbError::Transaction)));
    let out4 = out.clone();
    host.expect_submit_out()
        .withf(move |p, d| out(p) && d == &f2[..])
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| Ok(()));
    host.expect_poll_out()
        .withf(move |p| out4(p))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Poll::Ready(Ok(())));
    let mut nic = CdcEcm::new(host, probed());
    assert_eq!(nic.send(&first), Ok(()));
    assert_eq!(nic.send(&second), Ok(()));
    assert!(nic.tx_pending());
    assert_eq!(nic.send(&first), Err(SendError::Busy));
    nic.poll();
    assert!(!nic.tx_pending());
    // Frame 1's transfer failed (one error, one frame lost); frame 2 is in flight.
    let stats = nic.counters();
    assert_eq!(
        (stats.tx_frames, stats.tx_errors, stats.tx_dropped),
        (0, 1, 1)
    );
    nic.poll();
    let stats = nic.counters();
    assert_eq!((stats.tx_frames, stats.tx_bytes), (1, 60), "frame 2 sent");
    assert_eq!(nic.send(&[0; 13]), Err(SendError::BadLength));
    assert_eq!(nic.send(&[0; MAX_FRAME + 1]), Err(SendError::BadLength));
    let stats = nic.counters();
    assert_eq!(
        (stats.tx_dropped, stats.tx_errors),
        (3, 1),
        "refused frames dropped"
    );
}

#[test]
fn a_busy_controller_keeps_the_frame_for_later() {
    let mut host = MockUsbHost::new();
    quiet_notifications(&mut host);
    let mut seq = Sequence::new();
    host.expect_submit_out()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| Err(UsbError::Busy));
    host.expect_submit_out()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| Ok(()));
    host.expect_poll_out()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Poll::Ready(Ok(())));
    let mut nic = CdcEcm::new(host, probed());
    assert_eq!(nic.send(&frame(100, 0)), Ok(()));
    assert!(nic.tx_pending());
    nic.poll();
    assert!(!nic.tx_pending());
    assert_eq!(nic.counters().tx_frames, 0, "in flight, not sent yet");
    nic.poll();
    assert_eq!(nic.counters().tx_frames, 1);
}

#[test]
fn notifications_drive_link_state_and_speed() {
    let mut host = MockUsbHost::new();
    let notify = is_pipe(1, Direction::In, TransferType::Interrupt);
    let mut speed = vec![0xA1, 0x2A, 0, 0, 0, 0, 8, 0];
    speed.extend(100_000_000u32.to_le_bytes());
    speed.extend(100_000_000u32.to_le_bytes());
    let mut replies = vec![
        vec![0xA1, 0x00, 0, 0, 0, 0, 0, 0],
        vec![0xA1, 0x00, 1],
        speed,
        vec![0xA1, 0x00, 1, 0, 0, 0, 0, 0],
    ]
    .into_iter();
    host.expect_poll_in()
        .withf(move |p, buf| notify(p) && buf.len() == 16)
        .times(4)
        .returning(move |_, buf| Poll::Ready(copy_reply(&replies.next().unwrap(), buf)));
    host.expect_submit_out().times(1).returning(|_, _| Ok(()));
    let mut nic = CdcEcm::new(host, probed());
    assert_eq!(nic.link(), LinkState::Unknown);
    nic.poll();
    assert_eq!(nic.link(), LinkState::Down);
    assert_eq!(nic.send(&frame(60, 0)), Err(SendError::Busy));
    nic.poll();
    assert_eq!(
        nic.link(),
        LinkState::Down,
        "a truncated notification changes nothing"
    );
    nic.poll();
    assert_eq!(
        nic.speed(),
        Some(LinkSpeed {
            downstream: 100_000_000,
            upstream: 100_000_000
        })
    );
    nic.poll();
    assert_eq!(nic.link(), LinkState::Up);
    assert_eq!(nic.send(&frame(60, 0)), Ok(()));
}

#[test]
fn a_vanished_device_is_left_alone_until_rebind() {
    let mut host = MockUsbHost::new();
    quiet_notifications(&mut host);
    let bulk = is_pipe(2, Direction::In, TransferType::Bulk);
    let mut replies = vec![Err(UsbError::Disconnected), Ok(frame(60, 4))].into_iter();
    // Exactly two polls: none between the disconnection and the rebind.
    host.expect_poll_in()
        .withf(move |p, _| bulk(p))
        .times(2)
        .returning(move |_, buf| match replies.next().unwrap() {
            Ok(f) => Poll::Ready(copy_reply(&f, buf)),
            Err(e) => Poll::Ready(Err(e)),
        });
    let mut nic = CdcEcm::new(host, probed());
    assert_eq!(nic.recv(|f| f.len()), None);
    assert_eq!(nic.link(), LinkState::Gone);
    assert_eq!(nic.recv(|f| f.len()), None);
    assert_eq!(nic.send(&frame(60, 0)), Err(SendError::Busy));
    assert_eq!(
        nic.counters().rx_errors,
        0,
        "a disconnection is a state, not an error"
    );
    nic.rebind(probed());
    assert_eq!(nic.link(), LinkState::Unknown);
    assert_eq!(nic.recv(|f| f.to_vec()), Some(frame(60, 4)));
}

#[test]
fn a_frame_waiting_when_the_device_vanishes_is_counted() {
    let mut host = MockUsbHost::new();
    quiet_notifications(&mut host);
    let mut seq = Sequence::new();
    host.expect_submit_out()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| Ok(()));
    host.expect_poll_out()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Poll::Pending);
    host.expect_poll_out()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Poll::Pending);
    host.expect_poll_out()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Poll::Ready(Err(UsbError::Disconnected)));
    let mut nic = CdcEcm::new(host, probed());
    assert_eq!(nic.send(&frame(100, 1)), Ok(()));
    assert_eq!(nic.send(&frame(100, 2)), Ok(()));
    assert!(nic.tx_pending());
    nic.poll();
    assert!(!nic.tx_pending());
    assert_eq!(nic.link(), LinkState::Gone);
    // Frame 1's transfer failed with the device (one error, one frame), frame 2 was dropped.
    let stats = nic.counters();
    assert_eq!(
        (stats.tx_frames, stats.tx_errors, stats.tx_dropped),
        (0, 1, 2)
    );
}

/// A received frame is counted once: in `rx_frames` when handed up, or in `rx_dropped` when the
/// device goes (or is rebound) first.
#[test]
fn a_received_frame_not_handed_up_when_the_device_goes_counts_as_dropped() {
    let mut host = MockUsbHost::new();
    let bulk = is_pipe(2, Direction::In, TransferType::Bulk);
    host.expect_poll_in()
        .withf(move |p, _| bulk(p))
        .times(2)
        .returning(|_, buf| Poll::Ready(copy_reply(&frame(60, 1), buf)));
    let mut nic = CdcEcm::new(host, probed());
    assert!(nic.fill_rx());
    nic.forget_device();
    nic.rebind(probed());
    assert!(nic.fill_rx());
    nic.rebind(probed());
    let c = nic.counters();
    assert_eq!((c.rx_frames, c.rx_bytes, c.rx_dropped), (0, 0, 2), "{c:?}");
}

#[cfg(feature = "smoltcp")]
mod device {
    use smoltcp::phy::{Device, RxToken, TxToken};
    use smoltcp::time::Instant;

    use super::*;

    #[test]
    fn smoltcp_device_applies_backpressure_and_sends_what_it_is_given() {
        let mut host = MockUsbHost::new();
        quiet_notifications(&mut host);
        let bulk_in = is_pipe(2, Direction::In, TransferType::Bulk);
        let rx = frame(98, 5);
        let rx_copy = rx.clone();
        host.expect_poll_in()
            .withf(move |p, _| bulk_in(p))
            .times(1)
            .returning(move |_, buf| Poll::Ready(copy_reply(&rx_copy, buf)));
        let reply = frame(98, 9);
        let reply_copy = reply.clone();
        host.expect_submit_out()
            .withf(move |_, d| d == &reply_copy[..])
            .times(1)
            .returning(|_, _| Ok(()));
        host.expect_poll_out().returning(|_| Poll::Pending);
        let mut nic = CdcEcm::new(host, probed());
        let now = Instant::from_millis(0);
        assert_eq!(nic.capabilities().max_transmission_unit, MAX_FRAME);
        let (rxt, txt) = nic.receive(now).expect("a frame");
        assert_eq!(rxt.consume(|f| f.to_vec()), rx);
        txt.consume(reply.len(), |buf| buf.copy_from_slice(&reply));
        // The frame is in flight: the next one can wait in the slot, a third cannot.
        let txt = nic.transmit(now).expect("slot free");
        txt.consume(60, |buf| buf.fill(0xAA));
        assert!(nic.tx_pending());
        assert!(nic.transmit(now).is_none());
        assert!(
            nic.receive(now).is_none(),
            "no receive token without transmit room"
        );
        let c = nic.counters();
        assert_eq!(
            (c.tx_frames, c.tx_dropped),
            (0, 0),
            "one in flight, one waiting"
        );
    }

    /// An oversize frame handed to a transmit token is not sent and is counted where the
    /// RTL8152 driver counts it: `tx_dropped`, not a transfer error.
    #[test]
    fn an_oversize_frame_is_dropped_and_counted() {
        let mut host = MockUsbHost::new();
        quiet_notifications(&mut host);
        let mut nic = CdcEcm::new(host, probed());
        let token = nic.transmit(Instant::from_millis(0)).expect("slot free");
        let written = token.consume(MAX_FRAME + 1, |buf| buf.len());
        assert_eq!(written, MAX_FRAME);
        assert!(!nic.tx_pending());
        let c = nic.counters();
        assert_eq!((c.tx_dropped, c.tx_errors, c.tx_frames), (1, 0, 0));
    }
}

/// Unplug and replug under the supervisor: a host that is a mocked controller and a mocked
/// root port.
mod hotplug {
    use super::*;
    use crate::eth::supervisor::{HotPlug, LinkEvent, State, Supervisor};
    use crate::usb::{MockRootPort, PortEvent, RootPort};

    struct Plugged {
        usb: MockUsbHost,
        port: MockRootPort,
    }

    impl UsbHost for Plugged {
        fn control_in(
            &mut self,
            device: DeviceAddress,
            setup: SetupPacket,
            data: &mut [u8],
        ) -> Result<usize, UsbError> {
            self.usb.control_in(device, setup, data)
        }
        fn control_out(
            &mut self,
            device: DeviceAddress,
            setup: SetupPacket,
            data: &[u8],
        ) -> Result<(), UsbError> {
            self.usb.control_out(device, setup, data)
        }
        fn poll_in(&mut self, pipe: &Pipe, buf: &mut [u8]) -> Poll<Result<usize, UsbError>> {
            self.usb.poll_in(pipe, buf)
        }
        fn submit_out(&mut self, pipe: &Pipe, data: &[u8]) -> Result<(), UsbError> {
            self.usb.submit_out(pipe, data)
        }
        fn poll_out(&mut self, pipe: &Pipe) -> Poll<Result<(), UsbError>> {
            self.usb.poll_out(pipe)
        }
        fn clear_halt(&mut self, pipe: Pipe) -> Result<(), UsbError> {
            self.usb.clear_halt(pipe)
        }
    }

    impl RootPort for Plugged {
        fn poll_port(&mut self) -> Option<PortEvent> {
            self.port.poll_port()
        }
        fn connect(
            &mut self,
            address: DeviceAddress,
            timeout_ms: u32,
        ) -> Result<UsbDevice, UsbError> {
            self.port.connect(address, timeout_ms)
        }
    }

    const MAC: [u8; 6] = [0x40, 0x54, 0x00, 0x12, 0x34, 0x5a];

    /// A running NIC on a plugged host whose mocks have no expectations yet.
    fn running() -> CdcEcm<Plugged> {
        let nic = CdcEcm::new(
            Plugged {
                usb: MockUsbHost::new(),
                port: MockRootPort::new(),
            },
            probed(),
        );
        assert_eq!(nic.mac(), MAC);
        nic
    }

    /// The root port enumerates the replugged device (QEMU-like) at the NIC's address.
    fn replugged(port: &mut MockRootPort) {
        port.expect_connect()
            .withf(|a, _| a.get() == ADDR)
            .times(1)
            .returning(|_, _| Ok(usb_device(&rndis_config(), 2)));
    }

    #[test]
    fn reattach_probes_the_replugged_function_and_frames_flow_again() {
        let mut nic = running();
        let h = nic.host_mut();
        replugged(&mut h.port);
        qemu_like_probe(&mut h.usb, Ok(()));
        quiet_notifications(&mut h.usb);
        let bulk = is_pipe(2, Direction::In, TransferType::Bulk);
        h.usb
            .expect_poll_in()
            .withf(move |p, _| bulk(p))
            .times(1)
            .returning(|_, buf| Poll::Ready(copy_reply(&frame(60, 7), buf)));
        h.usb.expect_submit_out().times(1).returning(|_, _| Ok(()));
        h.usb
            .expect_poll_out()
            .times(1)
            .returning(|_| Poll::Ready(Ok(())));

        nic.detached();
        assert!(!nic.link_state().is_up());
        assert_eq!(nic.recv(|f| f.len()), None, "nothing polled while gone");
        nic.reattach().expect("brought up");
        assert_eq!(nic.link(), LinkState::Unknown);
        assert!(nic.link_state().is_up());
        assert_eq!(nic.mac(), MAC);
        assert_eq!(nic.recv(|f| f.to_vec()), Some(frame(60, 7)));
        assert_eq!(nic.send(&frame(60, 1)), Ok(()));
        nic.maintain();
        assert_eq!(nic.counters().tx_frames, 1);
    }

    #[test]
    fn a_device_reporting_another_mac_keeps_ours_and_gets_a_promiscuous_filter() {
        let mut nic = running();
        let h = nic.host_mut();
        replugged(&mut h.port);
        let mut seq = Sequence::new();
        let u = &mut h.usb;
        expect_get_descriptor(u, &mut seq, 0x0200, 0, rndis_config());
        expect_get_descriptor(u, &mut seq, 0x0201, 0, ecm_config());
        expect_control_out(u, &mut seq, SET_CONFIG_1, Ok(()));
        expect_get_descriptor(u, &mut seq, 0x0300, 0, vec![4, 0x03, 0x09, 0x04]);
        let other = string_descriptor("02aabbccddee");
        expect_get_descriptor(u, &mut seq, 0x0303, 0x0409, other);
        expect_control_out(u, &mut seq, SET_ALT_0, Ok(()));
        expect_control_out(u, &mut seq, SET_ALT_1, Ok(()));
        expect_control_out(u, &mut seq, SET_FILTER, Ok(()));
        let promiscuous = SetupPacket {
            value: 0x0F,
            ..SET_FILTER
        };
        expect_control_out(u, &mut seq, promiscuous, Ok(()));

        nic.detached();
        nic.reattach().expect("brought up");
        assert_eq!(nic.mac(), MAC, "the station address stays");
    }

    #[test]
    fn a_replugged_device_that_is_not_ecm_or_does_not_enumerate_fails_the_reattach() {
        let mut nic = running();
        let h = nic.host_mut();
        let mut seq = Sequence::new();
        h.port
            .expect_connect()
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _| Err(UsbError::Timeout));
        h.port
            .expect_connect()
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _| {
                let mut d = usb_device(&[9, 0x02, 9, 0, 0, 1, 0, 0x80, 0x32], 1);
                // An RTL8152 (its IDs pick that driver) without an ECM configuration.
                d.device_descriptor[4] = 0;
                d.device_descriptor[8..12].copy_from_slice(&[0xda, 0x0b, 0x52, 0x81]);
                Ok(d)
            });
        // No control transfer at all: mocks without expectations panic when called.
        nic.detached();
        assert_eq!(nic.reattach(), Err(Error::Usb(UsbError::Timeout)));
        assert_eq!(nic.reattach(), Err(Error::NotEcm));
        assert!(!nic.link_state().is_up());
    }

    #[test]
    fn detached_drops_the_waiting_frame_and_maintain_polls_nothing_until_reattach() {
        let mut nic = running();
        let h = nic.host_mut();
        h.usb.expect_submit_out().times(1).returning(|_, _| Ok(()));
        // The second send finds the first transfer running, before and after queueing.
        h.usb
            .expect_poll_out()
            .times(2)
            .returning(|_| Poll::Pending);
        assert_eq!(nic.send(&frame(80, 1)), Ok(()));
        assert_eq!(nic.send(&frame(80, 2)), Ok(()), "waits for the pipe");
        nic.detached();
        assert!(!nic.tx_pending());
        // The waiting frame and the one in flight are lost with the device; no transfer failed.
        let c = nic.counters();
        assert_eq!((c.tx_dropped, c.tx_errors), (2, 0));
        // The OUT and interrupt pipes are left alone: the mock panics at a third poll_out and
        // at any poll_in.
        nic.maintain();
        nic.maintain();
        assert_eq!(nic.link(), LinkState::Gone);
        assert_eq!(nic.send(&frame(80, 3)), Err(SendError::Busy));
    }

    /// A bulk-IN transfer that completed before the unplug is collected before the port is
    /// looked at (even when a notification poll saw the device go first), so its frame counts.
    #[test]
    fn a_transfer_completed_before_the_unplug_is_collected_and_counted() {
        let mut nic = running();
        let h = nic.host_mut();
        let notify = is_pipe(1, Direction::In, TransferType::Interrupt);
        let mut notes = vec![Poll::Pending, Poll::Ready(Err(UsbError::Disconnected))].into_iter();
        h.usb
            .expect_poll_in()
            .withf(move |p, _| notify(p))
            .times(2)
            .returning(move |_, _| notes.next().unwrap());
        let bulk = is_pipe(2, Direction::In, TransferType::Bulk);
        let mut transfers = vec![Poll::Pending, Poll::Ready(frame(60, 2))].into_iter();
        h.usb
            .expect_poll_in()
            .withf(move |p, _| bulk(p))
            .times(2)
            .returning(move |_, buf| transfers.next().unwrap().map(|f| copy_reply(&f, buf)));
        h.port
            .expect_poll_port()
            .times(1)
            .return_const(Some(PortEvent::Disconnected));

        assert_eq!(nic.recv(|f| f.len()), None, "the transfer waits");
        nic.maintain();
        assert_eq!(
            nic.link(),
            LinkState::Gone,
            "the notification poll saw it go"
        );
        assert_eq!(nic.poll_port(), Some(PortEvent::Disconnected));
        nic.detached();
        let c = nic.counters();
        assert_eq!((c.rx_frames, c.rx_dropped, c.rx_errors), (0, 1, 0), "{c:?}");
    }

    #[test]
    fn the_supervisor_fails_the_nic_on_unplug_and_brings_it_back_on_replug() {
        let mut nic = running();
        let h = nic.host_mut();
        let mut seq = Sequence::new();
        for event in [
            None,
            Some(PortEvent::Disconnected),
            None,
            Some(PortEvent::Connected),
        ] {
            h.port
                .expect_poll_port()
                .times(1)
                .in_sequence(&mut seq)
                .return_const(event);
        }
        h.port.expect_poll_port().return_const(None);
        replugged(&mut h.port);
        qemu_like_probe(&mut h.usb, Err(UsbError::Stall));
        quiet_notifications(&mut h.usb);
        let mut s = Supervisor::new(nic);

        assert_eq!(s.poll(0), None);
        assert!(s.carrier());
        assert_eq!(s.poll(1), Some(LinkEvent::DeviceLost));
        assert_eq!((s.state(), s.carrier()), (State::Detached, false));
        assert_eq!(s.poll(2), None);
        assert_eq!(s.poll(3), Some(LinkEvent::DeviceBack));
        assert_eq!((s.state(), s.carrier()), (State::Running, true));
        assert_eq!(s.nic().mac(), MAC);
        assert_eq!(s.poll(4), None);
    }
}
