//! The DWC2 driver against the DWC2 model under seeded random traffic and recoverable faults:
//! data must arrive intact, in order, with no rule broken and no DMA buffer left mapped.
#![cfg(feature = "sim")]

mod dwc2_support;

use dwc2_support::*;
use k230_hal::sim::dwc2_model::{Dwc2Model, Fault};
use k230_hal::usb::dwc2::PIPE_BUFFER;
use k230_hal::usb::{Direction, SetupPacket, Speed, TransferType, UsbHost};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn recoverable_fault(rng: &mut StdRng, speed: Speed) -> Option<Fault> {
    match rng.gen_range(0..6) {
        0 => Some(Fault::Naks(rng.gen_range(1..20))),
        1 => Some(Fault::TransactionErrors(rng.gen_range(1..=3))),
        2 if speed == Speed::High => Some(Fault::Nyet),
        _ => None,
    }
}

fn run(seed: u64, model: Dwc2Model, speed: Speed) {
    let mut rng = StdRng::seed_from_u64(seed);
    let (model, dev, mut host, device) = setup_on(model, speed);
    let mps = dev.bulk_mps();
    let out = pipe(&device, BULK_OUT, Direction::Out, TransferType::Bulk, mps);
    let inp = pipe(&device, BULK_IN, Direction::In, TransferType::Bulk, mps);
    let mut buf = vec![0u8; PIPE_BUFFER];
    for round in 0..150 {
        let len = match rng.gen_range(0..4) {
            0 => rng.gen_range(0..4) * usize::from(mps),
            1 => rng.gen_range(0..64),
            _ => rng.gen_range(0..PIPE_BUFFER),
        };
        let data: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        match rng.gen_range(0..3) {
            0 => {
                if let Some(f) = recoverable_fault(&mut rng, speed) {
                    model.inject(f);
                }
                host.submit_out(&out, &data).unwrap();
                assert_eq!(
                    poll_out_ready(&mut host, &out, 100),
                    Some(Ok(())),
                    "round {round}"
                );
                assert_eq!(dev.state().messages.pop(), Some(data), "round {round}");
            }
            1 => {
                dev.state().to_host.push_back(data.clone());
                if let Some(f) = recoverable_fault(&mut rng, speed) {
                    model.inject(f);
                }
                let got = poll_in_ready(&mut host, &inp, &mut buf, 100);
                assert_eq!(got, Some(Ok(len)), "round {round}");
                assert_eq!(&buf[..len], data.as_slice(), "round {round}");
            }
            _ => {
                let want = rng.gen_range(0..1024u16);
                let setup = SetupPacket {
                    request_type: 0xc0,
                    request: REQ_PATTERN,
                    value: 0,
                    index: 0,
                    length: want,
                };
                if let Some(f) = recoverable_fault(&mut rng, speed) {
                    model.inject(f);
                }
                let mut ctl = vec![0u8; usize::from(want)];
                assert_eq!(
                    host.control_in(device.address, setup, &mut ctl),
                    Ok(usize::from(want)),
                    "round {round}"
                );
                assert!(ctl.iter().enumerate().all(|(i, &b)| b == i as u8 ^ 0x5a));
            }
        }
        assert!(
            model.violations().is_empty(),
            "round {round}: {:?}",
            model.violations()
        );
        assert_eq!(model.mapped_buffers(), 0, "round {round}");
    }
}

#[test]
fn random_traffic_high_speed() {
    for seed in 0..4 {
        run(seed, Dwc2Model::new(), Speed::High);
    }
}

#[test]
fn random_traffic_full_speed_narrow_counters() {
    for seed in 10..14 {
        run(seed, Dwc2Model::with_counter_widths(11, 4), Speed::Full);
    }
}
