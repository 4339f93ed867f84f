//! A simulated board under an unpaced receive flood while it transmits: the peer keeps the
//! wire full at all times (as Linux does when it sends UDP as fast as a TAP takes it), the
//! board answers with frames of its own, and neither model may see a driver error.
#![cfg(feature = "sim")]

use std::time::{Duration, Instant};

use k230_hal::eth::rtl8152::tx::TxError;
use k230_hal::sim::board::SimBoard;
use k230_hal::sim::wire::pair::pair;
use k230_hal::sim::wire::Wire;

const MAC: [u8; 6] = [0x00, 0xe0, 0x4c, 0x52, 0x79, 0x01];
const PEER: [u8; 6] = [0x02, 0, 0, 0, 0x79, 0x02];

fn frame(dst: [u8; 6], src: [u8; 6], len: usize, i: u64) -> Vec<u8> {
    let mut f = vec![0x5a; len];
    f[..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    f[12..14].copy_from_slice(&[0x88, 0xb5]);
    f[14..22].copy_from_slice(&i.to_be_bytes());
    f
}

#[test]
fn unpaced_rx_flood_while_transmitting_keeps_dma_inside_mapped_buffers() {
    // About a million flooded frames (2.5 s at the dev profile). Wrapping the model's bus
    // addresses takes ten times more; `dwc2_bulk` drives that case directly.
    const ROUNDS: u64 = 4_000;
    const LIMIT: Duration = Duration::from_secs(30);
    let (ours, mut theirs) = pair(256);
    let mut board = SimBoard::new(ours, MAC).expect("board");
    let start = Instant::now();
    let (mut flooded, mut sent, mut received) = (0u64, 0u64, 0u64);
    let mut rounds = 0;
    while rounds < ROUNDS && start.elapsed() < LIMIT {
        rounds += 1;
        // The peer fills the wire to the brim every round.
        while theirs.send(&frame(MAC, PEER, 554, flooded)).is_ok() {
            flooded += 1;
        }
        while theirs.recv().expect("wire").is_some() {}
        let nic = board.rtl8152().expect("the board's RTL8152");
        nic.poll();
        match nic.send(1514, |b| b.copy_from_slice(&frame(PEER, MAC, 1514, sent))) {
            Ok(()) => sent += 1,
            Err(TxError::Full) => {}
            Err(e) => panic!("send: {e:?}"),
        }
        while nic.recv(|_| ()).is_some() {
            received += 1;
        }
    }
    println!(
        "{rounds} rounds in {:.1} s: {flooded} frames offered, {received} received, {sent} sent; \
         virtual time {:.3} s",
        start.elapsed().as_secs_f64(),
        board.controller().now_ns() as f64 / 1e9
    );
    assert_eq!(board.usb_violations(), Vec::<String>::new());
    // Every round offers a full wire; the board still sends in (nearly) every round.
    assert!(
        received > rounds * 100,
        "{received} frames in {rounds} rounds"
    );
    assert!(sent >= rounds / 2, "{sent} frames sent in {rounds} rounds");
    assert_eq!(board.nic_report().errors, vec![]);
}
