//! The DWC2 driver against the DWC2 model: every error path of split-phase transfers.
#![cfg(feature = "sim")]

mod dwc2_support;

use std::task::Poll;

use dwc2_support::*;
use k230_hal::sim::dwc2_model::Fault;
use k230_hal::usb::dwc2::PortEvent;
use k230_hal::usb::{
    DeviceAddress, Direction, SetupPacket, Speed, TransferType, UsbError, UsbHost,
};

fn clear_halt(endpoint: u8) -> SetupPacket {
    SetupPacket {
        request_type: 0x02,
        request: 1,
        value: 0,
        index: u16::from(endpoint),
        length: 0,
    }
}

#[test]
fn bulk_stall_is_reported_and_cleared() {
    let (model, dev, mut host, device) = setup(Speed::High);
    let inp = pipe(&device, BULK_IN, Direction::In, TransferType::Bulk, 512);
    let out = pipe(&device, BULK_OUT, Direction::Out, TransferType::Bulk, 512);
    let mut buf = [0u8; 512];
    // Move the IN toggle to DATA1 first, so that clearing the halt must reset it.
    dev.state().to_host.push_back(vec![1, 2, 3]);
    assert_eq!(poll_in_ready(&mut host, &inp, &mut buf, 5), Some(Ok(3)));
    dev.state().stall_in = true;
    assert_eq!(
        host.poll_in(&inp, &mut buf),
        Poll::Ready(Err(UsbError::Stall))
    );
    dev.state().stall_in = false;
    host.control_out(device.address, clear_halt(0x80 | BULK_IN), &[])
        .unwrap();
    dev.state().to_host.push_back(vec![4, 5]);
    assert_eq!(poll_in_ready(&mut host, &inp, &mut buf, 5), Some(Ok(2)));
    assert_eq!(&buf[..2], &[4, 5]);

    dev.state().stall_out = true;
    host.submit_out(&out, &[9; 10]).unwrap();
    assert_eq!(
        poll_out_ready(&mut host, &out, 5),
        Some(Err(UsbError::Stall))
    );
    assert_eq!(
        poll_out_ready(&mut host, &out, 5),
        Some(Ok(())),
        "reported once"
    );
    assert_eq!(model.mapped_buffers(), 0);
    assert!(model.violations().is_empty(), "{:?}", model.violations());
}

#[test]
fn babble_toggle_and_dma_errors_fail_the_transfer() {
    let (model, dev, mut host, device) = setup(Speed::High);
    let inp = pipe(&device, BULK_IN, Direction::In, TransferType::Bulk, 512);
    let out = pipe(&device, BULK_OUT, Direction::Out, TransferType::Bulk, 512);
    let mut buf = [0u8; 1024];
    for (fault, error) in [
        (Fault::Babble, UsbError::Babble),
        (Fault::ToggleError, UsbError::DataToggle),
        (Fault::AhbError, UsbError::Dma),
    ] {
        dev.state().to_host.push_back(vec![0x55; 600]);
        model.inject(fault);
        assert_eq!(
            poll_in_ready(&mut host, &inp, &mut buf, 5),
            Some(Err(error)),
            "{fault:?}"
        );
        assert_eq!(model.mapped_buffers(), 0);
        dev.state().to_host.clear();
    }
    model.inject(Fault::AhbError);
    host.submit_out(&out, &[1; 100]).unwrap();
    assert_eq!(poll_out_ready(&mut host, &out, 5), Some(Err(UsbError::Dma)));
    assert!(
        dev.state().messages.is_empty(),
        "nothing reached the device"
    );
    assert_eq!(model.mapped_buffers(), 0);
    assert!(model.violations().is_empty(), "{:?}", model.violations());
}

#[test]
fn transaction_errors_are_retried_up_to_three_times() {
    let (model, dev, mut host, device) = setup(Speed::High);
    let inp = pipe(&device, BULK_IN, Direction::In, TransferType::Bulk, 512);
    let out = pipe(&device, BULK_OUT, Direction::Out, TransferType::Bulk, 512);
    let mut buf = [0u8; 2048];
    let msg: Vec<u8> = (0..1300u32).map(|i| i as u8).collect();
    dev.state().to_host.push_back(msg.clone());
    model.inject(Fault::TransactionErrors(3));
    assert_eq!(poll_in_ready(&mut host, &inp, &mut buf, 10), Some(Ok(1300)));
    assert_eq!(&buf[..1300], msg.as_slice());

    dev.state().to_host.push_back(msg.clone());
    model.inject(Fault::TransactionErrors(4));
    assert_eq!(
        poll_in_ready(&mut host, &inp, &mut buf, 10),
        Some(Err(UsbError::Transaction))
    );
    dev.state().to_host.clear();

    model.inject(Fault::TransactionErrors(2));
    host.submit_out(&out, &msg).unwrap();
    assert_eq!(poll_out_ready(&mut host, &out, 10), Some(Ok(())));
    assert_eq!(dev.state().messages, vec![msg]);
    assert_eq!(model.mapped_buffers(), 0);
    assert!(model.violations().is_empty(), "{:?}", model.violations());
}

#[test]
fn disconnect_mid_transfer_fails_pipes_and_reconnect_re_enumerates() {
    let (model, dev, mut host, device) = setup(Speed::High);
    let inp = pipe(&device, BULK_IN, Direction::In, TransferType::Bulk, 512);
    let out = pipe(&device, BULK_OUT, Direction::Out, TransferType::Bulk, 512);
    let mut buf = [0u8; 2048];
    assert_eq!(host.poll_in(&inp, &mut buf), Poll::Pending);
    dev.state().nak_out = true;
    host.submit_out(&out, &[3; 700]).unwrap();
    assert_eq!(host.poll_out(&out), Poll::Pending);
    assert_eq!(model.mapped_buffers(), 2);

    let _ = model.detach();
    assert_eq!(
        host.poll_in(&inp, &mut buf),
        Poll::Ready(Err(UsbError::Disconnected))
    );
    assert_eq!(
        host.poll_out(&out),
        Poll::Ready(Err(UsbError::Disconnected))
    );
    assert_eq!(
        model.mapped_buffers(),
        0,
        "buffers taken back from the halted channels"
    );
    assert_eq!(host.poll_port(), Some(PortEvent::Disconnected));
    assert_eq!(host.poll_port(), None);
    assert_eq!(host.submit_out(&out, &[1]), Err(UsbError::Disconnected));

    let fresh = Loopback::new(Speed::High);
    model.attach(Box::new(fresh.clone()));
    assert_eq!(host.poll_port(), Some(PortEvent::Connected));
    let device = host.connect(DeviceAddress::new(1).unwrap(), 100).unwrap();
    assert_eq!(device.device_descriptor, fresh.descriptor());
    let inp = pipe(&device, BULK_IN, Direction::In, TransferType::Bulk, 512);
    fresh.state().to_host.push_back(vec![42; 10]);
    assert_eq!(poll_in_ready(&mut host, &inp, &mut buf, 5), Some(Ok(10)));
    assert!(model.violations().is_empty(), "{:?}", model.violations());
}

#[test]
fn pipes_are_limited_by_channels_and_slots() {
    let (model, _dev, mut host, device) = setup(Speed::High);
    let mut buf = [0u8; 64];
    // Four pipe slots: the fifth distinct endpoint finds none free.
    for ep in 1..=4u8 {
        let p = pipe(&device, ep, Direction::In, TransferType::Interrupt, 16);
        let _ = host.poll_in(&p, &mut buf);
    }
    let fifth = pipe(&device, 5, Direction::In, TransferType::Interrupt, 16);
    assert_eq!(
        host.poll_in(&fifth, &mut buf),
        Poll::Ready(Err(UsbError::Busy))
    );
    drop(model);
}

#[test]
fn nyet_on_high_speed_out_resumes_with_ping() {
    let (model, dev, mut host, device) = setup(Speed::High);
    let out = pipe(&device, BULK_OUT, Direction::Out, TransferType::Bulk, 512);
    let data: Vec<u8> = (0..2000u32).map(|i| (i % 251) as u8).collect();
    model.inject(Fault::Nyet);
    model.inject(Fault::Nyet);
    host.submit_out(&out, &data).unwrap();
    assert_eq!(poll_out_ready(&mut host, &out, 10), Some(Ok(())));
    assert_eq!(dev.state().messages, vec![data]);
    assert_eq!(dev.state().out_packets, vec![512, 512, 512, 464]);
    assert!(model.violations().is_empty(), "{:?}", model.violations());
}
