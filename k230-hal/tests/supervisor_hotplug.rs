//! The hot-plug supervisor on a simulated board (RTL8152 driver over the DWC2 driver over the
//! DWC2 and RTL8152 models): repeated USB unplug and replug, each followed by frames both
//! ways; an adapter with another MAC address plugged in its place takes the board's address.
#![cfg(feature = "sim")]

use k230_hal::eth::driver::Driver;
use k230_hal::eth::supervisor::{LinkEvent, State};
use k230_hal::sim::board::SimBoard;
use k230_hal::sim::wire::pair::{pair, PairEnd};
use k230_hal::sim::wire::Wire;
use smoltcp::phy::{Device, RxToken, TxToken};
use smoltcp::time::Instant;

const MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x0a, 0x01];
const PEER: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x0b, 0x01];

fn frame(dest: [u8; 6], src: [u8; 6], n: u32) -> Vec<u8> {
    let mut f = vec![0u8; 200];
    f[..6].copy_from_slice(&dest);
    f[6..12].copy_from_slice(&src);
    f[12..14].copy_from_slice(&[0x88, 0xb5]);
    f[14..18].copy_from_slice(&n.to_be_bytes());
    f
}

/// Sends a frame to the peer and takes one from it, polling the board a bounded number of
/// times; true when both made it.
fn exchange(board: &mut SimBoard, peer: &mut PairEnd, n: u32) -> bool {
    let now = Instant::from_millis(0);
    let out = frame(PEER, MAC, n);
    let sent = board
        .transmit(now)
        .map(|tx| tx.consume(out.len(), |b| b.copy_from_slice(&out)))
        .is_some();
    let inbound = frame(MAC, PEER, n);
    peer.send(&inbound).unwrap();
    let (mut got_out, mut got_in) = (false, false);
    for _ in 0..1000 {
        if let Some((rx, _)) = board.receive(now) {
            got_in |= rx.consume(|f| f == inbound.as_slice());
        }
        while let Some(f) = peer.recv().unwrap() {
            got_out |= f == out;
        }
        if got_in && got_out {
            break;
        }
    }
    sent && got_in && got_out
}

/// Polls the supervisor until it reports `want` (bounded).
fn wait_for(board: &mut SimBoard, want: LinkEvent) -> bool {
    (0..100u64).any(|t| board.poll(t) == Some(want))
}

#[test]
fn twenty_unplug_replug_cycles_each_bring_the_nic_back() {
    let (ours, mut peer) = pair(64);
    let mut board = SimBoard::new(ours, MAC).expect("board");
    assert!(exchange(&mut board, &mut peer, 0));
    for cycle in 1..=20 {
        assert!(board.unplug_usb());
        assert!(wait_for(&mut board, LinkEvent::DeviceLost), "cycle {cycle}");
        let now = Instant::from_millis(0);
        assert!(board.transmit(now).is_none(), "no tokens while unplugged");
        assert!(board.receive(now).is_none());
        assert!(!board.supervisor().carrier());
        assert!(board.replug_usb());
        assert!(wait_for(&mut board, LinkEvent::DeviceBack), "cycle {cycle}");
        assert_eq!(board.supervisor().state(), State::Running);
        assert!(exchange(&mut board, &mut peer, cycle), "cycle {cycle}");
    }
    assert_eq!(board.supervisor().losses(), 20);
    assert_eq!(board.nic().mac(), MAC);
    assert_eq!(board.nic_report().errors, vec![]);
    assert_eq!(board.usb_violations(), Vec::<String>::new());
}

#[test]
fn another_adapter_plugged_in_takes_the_boards_mac_address() {
    let (ours, _old_peer) = pair(64);
    let mut board = SimBoard::new(ours, MAC).expect("board");
    assert!(board.unplug_usb());
    assert!(wait_for(&mut board, LinkEvent::DeviceLost));
    let (wire, mut peer) = pair(64);
    let other = [0x00, 0xe0, 0x4c, 0x99, 0x99, 0x99];
    assert!(board.replug_other(wire, other));
    assert!(wait_for(&mut board, LinkEvent::DeviceBack));
    assert_eq!(board.nic().mac(), MAC);
    // The new chip's receive filter takes frames for the board's address.
    assert!(exchange(&mut board, &mut peer, 1));
    assert_eq!(board.nic_report().errors, vec![]);
    assert_eq!(board.usb_violations(), Vec::<String>::new());
}
