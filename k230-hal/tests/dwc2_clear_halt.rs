//! `UsbHost::clear_halt` of the DWC2 driver against the DWC2 model: CLEAR_FEATURE(ENDPOINT_HALT)
//! reaches the device, the halt feature goes away, and both sides restart the data toggle at
//! DATA0 (USB 2.0 §9.4.5). The model keeps the halt until it is cleared and flags a wrong IN
//! toggle as a toggle error; a wrong OUT toggle makes the device drop the packet as a repeat.
#![cfg(feature = "sim")]

mod dwc2_support;

use std::task::Poll;

use dwc2_support::*;
use k230_hal::usb::{Direction, Pipe, SetupPacket, Speed, TransferType, UsbError, UsbHost};

/// GET_STATUS of an endpoint: bit 0 of the answer is its halt feature.
fn endpoint_halted(host: &mut k230_hal::sim::SimHost, pipe: &Pipe) -> bool {
    let dir = if pipe.direction == Direction::In {
        0x80
    } else {
        0
    };
    let setup = SetupPacket {
        request_type: 0x82,
        request: 0,
        value: 0,
        index: u16::from(pipe.endpoint) | dir,
        length: 2,
    };
    let mut status = [0u8; 2];
    assert_eq!(
        host.control_in(pipe.device, setup, &mut status),
        Ok(2),
        "GET_STATUS"
    );
    status[0] & 1 != 0
}

#[test]
fn clear_halt_resets_both_toggles_without_a_stall_first() {
    let (model, dev, mut host, device) = setup(Speed::High);
    let inp = pipe(&device, BULK_IN, Direction::In, TransferType::Bulk, 512);
    let out = pipe(&device, BULK_OUT, Direction::Out, TransferType::Bulk, 512);
    let mut buf = [0u8; 512];
    // One packet each way: both toggles are at DATA1 now, on both sides.
    dev.state().to_host.push_back(vec![1, 2, 3]);
    assert_eq!(poll_in_ready(&mut host, &inp, &mut buf, 5), Some(Ok(3)));
    host.submit_out(&out, &[7; 5]).unwrap();
    assert_eq!(poll_out_ready(&mut host, &out, 5), Some(Ok(())));
    // Clearing resets the device's toggles to DATA0; the driver must follow.
    host.clear_halt(inp).unwrap();
    host.clear_halt(out).unwrap();
    dev.state().to_host.push_back(vec![4, 5]);
    assert_eq!(
        poll_in_ready(&mut host, &inp, &mut buf, 5),
        Some(Ok(2)),
        "an IN toggle left at DATA1 is a toggle error"
    );
    host.submit_out(&out, &[8; 6]).unwrap();
    assert_eq!(poll_out_ready(&mut host, &out, 5), Some(Ok(())));
    assert_eq!(
        dev.state().messages,
        vec![vec![7; 5], vec![8; 6]],
        "an OUT packet on the old toggle is dropped by the device as a repeat"
    );
    assert!(model.violations().is_empty(), "{:?}", model.violations());
    assert_eq!(model.mapped_buffers(), 0);
}

#[test]
fn a_halted_endpoint_stalls_until_its_halt_is_cleared() {
    let (model, dev, mut host, device) = setup(Speed::High);
    let inp = pipe(&device, BULK_IN, Direction::In, TransferType::Bulk, 512);
    let out = pipe(&device, BULK_OUT, Direction::Out, TransferType::Bulk, 512);
    let mut buf = [0u8; 512];
    model.halt_endpoint(0x80 | BULK_IN);
    model.halt_endpoint(BULK_OUT);
    assert!(endpoint_halted(&mut host, &inp));
    assert!(endpoint_halted(&mut host, &out));
    dev.state().to_host.push_back(vec![9; 10]);
    for _ in 0..2 {
        assert_eq!(
            host.poll_in(&inp, &mut buf),
            Poll::Ready(Err(UsbError::Stall))
        );
        host.submit_out(&out, &[1; 10]).unwrap();
        assert_eq!(
            poll_out_ready(&mut host, &out, 5),
            Some(Err(UsbError::Stall))
        );
    }
    host.clear_halt(inp).unwrap();
    host.clear_halt(out).unwrap();
    assert!(!endpoint_halted(&mut host, &inp));
    assert!(!endpoint_halted(&mut host, &out));
    assert_eq!(poll_in_ready(&mut host, &inp, &mut buf, 5), Some(Ok(10)));
    host.submit_out(&out, &[2; 10]).unwrap();
    assert_eq!(poll_out_ready(&mut host, &out, 5), Some(Ok(())));
    assert_eq!(dev.state().messages, vec![vec![2; 10]]);
    assert!(model.violations().is_empty(), "{:?}", model.violations());
}

#[test]
fn clear_halt_refuses_a_pipe_with_a_transfer_in_flight() {
    let (model, _dev, mut host, device) = setup(Speed::High);
    let inp = pipe(&device, BULK_IN, Direction::In, TransferType::Bulk, 512);
    let mut buf = [0u8; 512];
    // Nothing to send: the transfer stays in flight, NAKed.
    assert_eq!(host.poll_in(&inp, &mut buf), Poll::Pending);
    assert_eq!(host.clear_halt(inp), Err(UsbError::Busy));
    model.detach();
    assert_eq!(
        host.poll_in(&inp, &mut buf),
        Poll::Ready(Err(UsbError::Disconnected))
    );
    assert_eq!(host.clear_halt(inp), Err(UsbError::Disconnected));
}
