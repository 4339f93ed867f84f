//! The DWC2 driver against the DWC2 model: bring-up, enumeration and control transfers.
#![cfg(feature = "sim")]

mod dwc2_support;

use dwc2_support::*;
use k230_hal::reg::RegisterBlock;
use k230_hal::sim::dwc2_model::{Dwc2Model, Fault};
use k230_hal::usb::dwc2::PortEvent;
use k230_hal::usb::{DeviceAddress, SetupPacket, Speed, UsbError, UsbHost};

fn vendor(request: u8, is_in: bool, length: u16) -> SetupPacket {
    SetupPacket {
        request_type: if is_in { 0xc0 } else { 0x40 },
        request,
        value: 0,
        index: 0,
        length,
    }
}

#[test]
fn enumeration_reads_descriptors_back_exactly() {
    for speed in [Speed::High, Speed::Full] {
        let (model, dev, _host, device) = setup(speed);
        assert_eq!(device.speed, speed);
        assert_eq!(device.address, DeviceAddress::new(1).unwrap());
        assert_eq!(device.device_descriptor, dev.descriptor());
        assert_eq!(device.config(), dev.config().as_slice());
        assert_eq!((device.vendor_id(), device.product_id()), (VID, PID));
        assert_eq!(
            model.device_state(),
            Some((1, 1)),
            "addressed and configured"
        );
        assert_eq!(dev.state().configuration, 1);
        assert_eq!(dev.state().resets, 1, "one bus reset");
        assert!(model.violations().is_empty(), "{:?}", model.violations());
        assert_eq!(model.mapped_buffers(), 0, "every DMA buffer taken back");
        // UTMI+ high-speed PHY, 16 bits wide (GHWCFG4 allows it), forced host mode.
        let gusbcfg = model.regs().read32(0x00c);
        assert_eq!(gusbcfg & ((1 << 6) | (1 << 4) | (1 << 3)), 1 << 3);
        assert_ne!(gusbcfg & (1 << 29), 0);
    }
}

#[test]
fn bring_up_respects_reset_and_mode_timing() {
    let model = Dwc2Model::new();
    model.attach(Box::new(Loopback::new(Speed::High)));
    let (_host, _device) = model.connect_host().unwrap();
    // 25 ms host mode + 100 ms debounce + 50 ms reset + 10 ms recovery + 2 ms SET_ADDRESS.
    let t = model.now_ns();
    assert!(t >= 187_000_000, "virtual time {t} ns");
    assert!(t < 400_000_000, "virtual time {t} ns");
}

#[test]
fn no_device_means_connect_fails_after_its_timeout() {
    let model = Dwc2Model::new();
    let mut host = model.host().unwrap();
    let before = model.now_ns();
    let r = host.connect(DeviceAddress::new(1).unwrap(), 20);
    assert_eq!(r.unwrap_err(), UsbError::Disconnected);
    let waited = model.now_ns() - before;
    assert!(
        (20_000_000..30_000_000).contains(&waited),
        "waited {waited} ns"
    );
    assert!(model.violations().is_empty(), "{:?}", model.violations());
}

#[test]
fn control_in_and_out_move_data() {
    let (model, dev, mut host, device) = setup(Speed::High);
    let a = addr(&device);
    // IN, several packets with a short last one.
    let mut buf = [0u8; 200];
    let n = host
        .control_in(a, vendor(REQ_PATTERN, true, 200), &mut buf)
        .unwrap();
    assert_eq!(n, 200);
    assert!(buf.iter().enumerate().all(|(i, &b)| b == i as u8 ^ 0x5a));
    // OUT with data, then read back (short answer: fewer bytes than asked).
    let data: Vec<u8> = (0..130u8).collect();
    host.control_out(a, vendor(REQ_WRITE, false, 130), &data)
        .unwrap();
    assert_eq!(dev.state().scratch, data);
    let mut back = [0u8; 256];
    let n = host
        .control_in(a, vendor(REQ_READ, true, 256), &mut back)
        .unwrap();
    assert_eq!(&back[..n], data.as_slice());
    // Exactly one packet's worth.
    let mut one = [0u8; 64];
    assert_eq!(
        host.control_in(a, vendor(REQ_PATTERN, true, 64), &mut one),
        Ok(64)
    );
    assert!(model.violations().is_empty(), "{:?}", model.violations());
    assert_eq!(model.mapped_buffers(), 0);
}

#[test]
fn control_rejects_bad_lengths_without_touching_the_bus() {
    let (model, _dev, mut host, device) = setup(Speed::High);
    let a = addr(&device);
    let mut small = [0u8; 4];
    assert_eq!(
        host.control_in(a, vendor(REQ_PATTERN, true, 8), &mut small),
        Err(UsbError::BadLength)
    );
    assert_eq!(
        host.control_out(a, vendor(REQ_WRITE, false, 8), &[1, 2, 3]),
        Err(UsbError::BadLength)
    );
    let big = vec![0u8; 2000];
    assert_eq!(
        host.control_out(a, vendor(REQ_WRITE, false, 2000), &big),
        Err(UsbError::BadLength)
    );
    let mut huge = vec![0u8; 2048];
    assert_eq!(
        host.control_in(a, vendor(REQ_PATTERN, true, 2048), &mut huge),
        Err(UsbError::BadLength)
    );
    assert!(model.violations().is_empty(), "{:?}", model.violations());
}

#[test]
fn control_stall_is_reported_and_the_pipe_recovers() {
    let (model, _dev, mut host, device) = setup(Speed::High);
    let a = addr(&device);
    let mut buf = [0u8; 8];
    assert_eq!(
        host.control_in(a, vendor(REQ_STALL, true, 8), &mut buf),
        Err(UsbError::Stall)
    );
    assert_eq!(
        host.control_out(a, vendor(REQ_STALL, false, 0), &[]),
        Err(UsbError::Stall)
    );
    assert_eq!(
        host.control_in(a, vendor(REQ_PATTERN, true, 8), &mut buf),
        Ok(8)
    );
    assert!(model.violations().is_empty(), "{:?}", model.violations());
}

#[test]
fn control_naks_are_retried_then_time_out() {
    let (model, _dev, mut host, device) = setup(Speed::High);
    let a = addr(&device);
    let mut buf = [0u8; 8];
    // A few NAKs: the core retries, the transfer succeeds.
    model.inject(Fault::Naks(5));
    assert_eq!(
        host.control_in(a, vendor(REQ_PATTERN, true, 8), &mut buf),
        Ok(8)
    );
    // NAK forever: bounded by the control timeout (500 ms of virtual time).
    model.inject(Fault::Naks(u32::MAX));
    let before = model.now_ns();
    assert_eq!(
        host.control_in(a, vendor(REQ_PATTERN, true, 8), &mut buf),
        Err(UsbError::Timeout)
    );
    let waited = model.now_ns() - before;
    assert!(
        (500_000_000..600_000_000).contains(&waited),
        "waited {waited} ns"
    );
    assert_eq!(model.mapped_buffers(), 0);
    assert!(model.violations().is_empty(), "{:?}", model.violations());
}

#[test]
fn control_transaction_errors_are_retried_three_times() {
    let (model, _dev, mut host, device) = setup(Speed::High);
    let a = addr(&device);
    let mut buf = [0u8; 100];
    model.inject(Fault::TransactionErrors(3));
    assert_eq!(
        host.control_in(a, vendor(REQ_PATTERN, true, 100), &mut buf),
        Ok(100)
    );
    assert!(buf.iter().enumerate().all(|(i, &b)| b == i as u8 ^ 0x5a));
    model.inject(Fault::TransactionErrors(4));
    assert_eq!(
        host.control_in(a, vendor(REQ_PATTERN, true, 100), &mut buf),
        Err(UsbError::Transaction)
    );
    assert!(model.violations().is_empty(), "{:?}", model.violations());
}

#[test]
fn unplug_and_replug_re_enumerates() {
    let (model, _dev, mut host, device) = setup(Speed::High);
    let a = addr(&device);
    assert_eq!(host.poll_port(), None);
    let _ = model.detach();
    assert_eq!(host.poll_port(), Some(PortEvent::Disconnected));
    let mut buf = [0u8; 8];
    assert_eq!(
        host.control_in(a, vendor(REQ_PATTERN, true, 8), &mut buf),
        Err(UsbError::Disconnected)
    );
    let dev2 = Loopback::new(Speed::Full);
    model.attach(Box::new(dev2.clone()));
    assert_eq!(host.poll_port(), Some(PortEvent::Connected));
    let device = host.connect(DeviceAddress::new(7).unwrap(), 100).unwrap();
    assert_eq!(device.speed, Speed::Full);
    assert_eq!(model.device_state(), Some((7, 1)));
    assert_eq!(
        host.control_in(device.address, vendor(REQ_PATTERN, true, 8), &mut buf),
        Ok(8)
    );
    assert!(model.violations().is_empty(), "{:?}", model.violations());
}

#[test]
fn low_speed_device_enumerates_and_polls_its_interrupt_endpoint() {
    let (model, dev, mut host, device) = setup(Speed::Low);
    assert_eq!(device.speed, Speed::Low);
    assert_eq!(device.max_packet_size0(), 8);
    assert_eq!(device.config(), dev.config().as_slice());
    let a = addr(&device);
    let mut buf = [0u8; 20];
    assert_eq!(
        host.control_in(a, vendor(REQ_PATTERN, true, 20), &mut buf),
        Ok(20)
    );
    let intr = pipe(
        &device,
        INTR_IN,
        k230_hal::usb::Direction::In,
        k230_hal::usb::TransferType::Interrupt,
        8,
    );
    dev.state().interrupts.push_back(vec![5; 8]);
    let mut report = [0u8; 8];
    assert_eq!(poll_in_ready(&mut host, &intr, &mut report, 3), Some(Ok(8)));
    assert!(model.violations().is_empty(), "{:?}", model.violations());
}

#[test]
fn a_gated_phy_clock_left_by_earlier_firmware_is_restarted() {
    let model = Dwc2Model::new();
    model.attach(Box::new(Loopback::new(Speed::High)));
    // PCGCTL.STOPPCLK | GATEHCLK as a suspended boot stage might leave them.
    model.regs().write32(0xe00, 0b11);
    let (_host, device) = model.connect_host().expect("enumeration");
    assert_eq!(device.vendor_id(), VID);
    assert!(model.violations().is_empty(), "{:?}", model.violations());
}
