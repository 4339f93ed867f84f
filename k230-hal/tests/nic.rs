//! The NIC enum ([`k230_hal::eth::nic::Nic`]) over the simulated board's hardware: frames cross the
//! RTL8152 through it, and under the hot-plug supervisor it comes back after an unplug with its
//! MAC address and frames flow again.
#![cfg(feature = "sim")]

use k230_hal::eth::driver::{Driver, LinkState};
use k230_hal::eth::nic::Nic;
use k230_hal::eth::probe::NicKind;
use k230_hal::eth::supervisor::{LinkEvent, State, Supervisor};
use k230_hal::sim::dwc2_model::Dwc2Model;
use k230_hal::sim::rtl8152::Rtl8152Model;
use k230_hal::sim::wire::pair::pair;
use k230_hal::sim::wire::Wire;
use k230_hal::sim::SimHost;
use smoltcp::phy::{Device, RxToken as _, TxToken as _};
use smoltcp::time::Instant;

const MAC: [u8; 6] = [0x02, 0x4b, 0x32, 0x33, 0x30, 0x01];
/// Bounded number of polls for a frame to cross the simulated bus.
const POLLS: usize = 200;

fn frame(tag: u8) -> Vec<u8> {
    let mut frame = vec![0xff; 6];
    frame.extend_from_slice(&MAC);
    frame.extend_from_slice(&[0x88, 0xb5]);
    frame.extend((0..50).map(|i| i ^ tag));
    frame
}

/// The RTL8152 driver behind `Nic`, on the simulated controller (kept to unplug the NIC),
/// and the far end of its cable.
fn rtl8152() -> (Nic<SimHost>, impl Wire, Dwc2Model) {
    let (board, peer) = pair(16);
    let controller = Dwc2Model::new();
    controller.attach(Box::new(Rtl8152Model::new(board, MAC)));
    let (host, device) = controller.connect_host().unwrap();
    // The board's bring-up: the driver identify() picks for the enumerated device.
    let nic = Nic::probe(host, &device).unwrap();
    assert_eq!(nic.kind(), NicKind::Rtl8152);
    (nic, peer, controller)
}

/// Sends a frame out through `nic` and back in from `peer`, both compared.
fn frames_cross(nic: &mut impl Device, peer: &mut impl Wire, tag: u8) {
    let now = Instant::from_millis(0);
    let sent = frame(tag);
    let token = nic.transmit(now).expect("room to send");
    token.consume(sent.len(), |buf| buf.copy_from_slice(&sent));
    let mut on_wire = None;
    for _ in 0..POLLS {
        if let Some(frame) = peer.recv().unwrap() {
            on_wire = Some(frame);
            break;
        }
        let _ = nic.receive(now);
    }
    assert_eq!(
        on_wire.as_deref().map(|f| &f[..sent.len()]),
        Some(&sent[..])
    );

    let back = frame(tag.wrapping_add(1));
    peer.send(&back).unwrap();
    let mut received = None;
    for _ in 0..POLLS {
        if let Some((rx, _tx)) = nic.receive(now) {
            received = Some(rx.consume(|data| data.to_vec()));
            break;
        }
    }
    assert_eq!(received, Some(back));
}

#[test]
fn frames_cross_the_rtl8152_through_the_enum() {
    let (mut nic, mut peer, _controller) = rtl8152();
    assert_eq!(nic.mac(), MAC);
    assert_eq!(nic.link_state(), LinkState::Up, "the model starts cabled");
    assert!(nic.capabilities().max_transmission_unit >= 1514);
    frames_cross(&mut nic, &mut peer, 1);
}

/// Polls the supervisor (a bounded number of rounds, 1 ms apart) until it reports.
fn next_event(s: &mut Supervisor<Nic<SimHost>>, now_ms: &mut u64) -> Option<LinkEvent> {
    for _ in 0..POLLS {
        *now_ms += 1;
        if let Some(event) = s.poll(*now_ms) {
            return Some(event);
        }
    }
    None
}

#[test]
fn an_unplugged_and_replugged_rtl8152_comes_back_with_its_mac_and_frames_flow() {
    let (nic, mut peer, controller) = rtl8152();
    let mut s = Supervisor::new(nic);
    let mut now_ms = 0;
    frames_cross(&mut s, &mut peer, 1);

    let model = controller.detach().expect("the NIC was plugged in");
    assert_eq!(next_event(&mut s, &mut now_ms), Some(LinkEvent::DeviceLost));
    assert_eq!(s.state(), State::Detached);
    assert!(!s.carrier());
    let t = Instant::from_millis(0);
    assert!(
        s.transmit(t).is_none(),
        "no tokens while the device is gone"
    );
    assert!(s.receive(t).is_none());
    assert_eq!(next_event(&mut s, &mut now_ms), None, "reported once");

    controller.attach(model);
    assert_eq!(next_event(&mut s, &mut now_ms), Some(LinkEvent::DeviceBack));
    assert_eq!(s.state(), State::Running);
    assert_eq!(s.nic().mac(), MAC);
    assert!(s.carrier());
    assert_eq!(s.losses(), 1);
    frames_cross(&mut s, &mut peer, 3);
}

#[test]
fn a_frame_whose_transfer_completed_just_before_an_unplug_is_counted() {
    let (board, mut peer) = pair(16);
    let controller = Dwc2Model::new();
    let model = Rtl8152Model::new(board, MAC);
    let report = model.report();
    controller.attach(Box::new(model));
    let (host, device) = controller.connect_host().unwrap();
    let mut s = Supervisor::new(Nic::probe(host, &device).unwrap());
    let mut now_ms = 1;
    // The driver's bulk-IN transfer waits (NAKed, retried by the controller) ...
    assert!(s.receive(Instant::from_millis(0)).is_none());
    // ... the frame arrives and the controller completes the transfer during the supervisor's
    // next look at the NIC; the device leaves before the driver collects it.
    peer.send(&frame(1)).unwrap();
    assert_eq!(s.poll(now_ms), None);
    assert_eq!(
        report.snapshot().rx_frames,
        1,
        "the model delivered the frame"
    );
    let _model = controller.detach().expect("the NIC was plugged in");
    assert_eq!(next_event(&mut s, &mut now_ms), Some(LinkEvent::DeviceLost));
    let c = s.counters();
    assert_eq!((c.rx_frames, c.rx_dropped), (0, 1), "{c:?}");
}
