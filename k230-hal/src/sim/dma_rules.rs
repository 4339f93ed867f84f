//! Every cache-maintenance step of the DMA rules ([`crate::reg::dma`]) is needed: the simulated
//! board's whole network path (DWC2 bring-up, enumeration, RTL8152 probe over control
//! transfers, frames both ways over bulk IN and OUT) passes over the non-coherent cache model
//! with all of them, and fails with any one left out.

use crate::reg::dma::{mutation, Dma, DmaDirection, DmaError, Point, CACHE_LINE};
use crate::sim::board::SimBoard;
use crate::sim::dwc2_model::Dwc2Model;
use crate::sim::wire::pair::pair;
use crate::sim::wire::Wire;

const MAC: [u8; 6] = [0x00, 0xe0, 0x4c, 0x00, 0x00, 0x01];
const PEER: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

/// An Ethernet frame of `len` bytes from `src` to `dst` with a payload made from `seed`.
fn frame(dst: [u8; 6], src: [u8; 6], len: usize, seed: u8) -> Vec<u8> {
    let mut f = vec![0; len];
    f[..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    f[12..14].copy_from_slice(&[0x88, 0xb5]);
    for (i, b) in f[14..].iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(29).wrapping_add(seed);
    }
    f
}

/// The part of the path that runs with a maintenance step left out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Controller bring-up, enumeration and the RTL8152 probe (control transfers).
    BringUp,
    /// Frames both ways once the NIC is up (bulk OUT and IN).
    Frames,
}

/// Runs `f`, with `point` left out if it is given.
fn run_without<T>(point: Option<Point>, f: impl FnOnce() -> T) -> T {
    match point {
        Some(point) => mutation::without(point, f),
        None => f(),
    }
}

/// Brings a simulated board up and moves frames both ways, with `left_out` (a step and the
/// phase it is left out in) if given; describes what went wrong: a failed bring-up, a frame
/// lost or changed, and the rules the model saw broken.
fn board_path(left_out: Option<(Point, Phase)>) -> Result<(), String> {
    let skip = |phase| left_out.filter(|l| l.1 == phase).map(|l| l.0);
    let (ours, mut wire) = pair(64);
    let controller = Dwc2Model::new();
    let bring_up = run_without(skip(Phase::BringUp), || {
        SimBoard::with_controller(controller.clone(), ours, MAC)
    });
    let outcome = match bring_up {
        Ok(mut board) => run_without(skip(Phase::Frames), || {
            frames_both_ways(&mut board, &mut wire)
        }),
        Err(e) => Err(format!("bring-up failed: {e:?}")),
    };
    let violations = controller.violations();
    if !violations.is_empty() {
        return Err(format!("{outcome:?}; DMA rules broken: {violations:?}"));
    }
    outcome
}

fn frames_both_ways(board: &mut SimBoard, wire: &mut impl Wire) -> Result<(), String> {
    let to_wire: Vec<_> = (0..4)
        .map(|i| frame(PEER, MAC, 60 + 400 * i, i as u8))
        .collect();
    let to_board: Vec<_> = (0..4)
        .map(|i| frame(MAC, PEER, 1514 - 300 * i, 0x80 + i as u8))
        .collect();
    let nic = board
        .rtl8152()
        .ok_or("the simulated NIC is not an RTL8152")?;
    for f in &to_wire {
        nic.send(f.len(), |b| b.copy_from_slice(f))
            .map_err(|e| format!("send: {e:?}"))?;
    }
    for f in &to_board {
        wire.send(f).map_err(|e| format!("wire: {e}"))?;
    }
    let (mut sent, mut received) = (Vec::new(), Vec::new());
    for _ in 0..200 {
        nic.poll();
        while let Some(f) = nic.recv(|f| f.to_vec()) {
            received.push(f);
        }
        while let Some(f) = wire.recv().map_err(|e| format!("wire: {e}"))? {
            sent.push(f);
        }
        if sent.len() >= to_wire.len() && received.len() >= to_board.len() {
            break;
        }
    }
    if sent != to_wire {
        return Err(format!(
            "the wire got {} frames, not what was sent",
            sent.len()
        ));
    }
    if received != to_board {
        return Err(format!(
            "the board got {} frames, not what was sent",
            received.len()
        ));
    }
    Ok(())
}

#[test]
fn the_board_path_passes_over_a_non_coherent_cache() {
    board_path(None).unwrap();
}

/// The path's failure with `point` left out in `phase`.
fn failure(point: Point, phase: Phase) -> String {
    let why = board_path(Some((point, phase))).unwrap_err();
    println!("{point:?} left out in {phase:?}: {why}");
    why
}

#[test]
fn without_the_clean_before_the_controller_reads_it_reads_stale_memory() {
    for phase in [Phase::BringUp, Phase::Frames] {
        let why = failure(Point::CleanToDevice, phase);
        assert!(why.contains("controller reads stale memory"), "{why}");
    }
}

#[test]
fn without_the_clean_before_the_controller_writes_dirty_lines_overwrite_its_data() {
    // The driver's buffers start out dirty (zeroed by the CPU) and are first written by the
    // controller during enumeration; afterwards only the CPU's own SETUP and OUT data dirty
    // them, and those are cleaned before the controller reads them.
    let why = failure(Point::CleanFromDevice, Phase::BringUp);
    assert!(why.contains("overwrite what the controller wrote"), "{why}");
}

#[test]
fn without_the_invalidate_before_the_cpu_reads_it_reads_stale_data() {
    for phase in [Phase::BringUp, Phase::Frames] {
        let why = failure(Point::InvalidateFromDevice, phase);
        assert!(why.contains("the CPU reads stale data"), "{why}");
    }
}

/// Two buffers sharing a cache line: the controller is to write the first 64 bytes at an
/// offset of 32, the CPU keeps data in the 32 bytes before.
#[repr(C, align(64))]
struct Shared([u8; 3 * CACHE_LINE]);

#[test]
fn a_buffer_sharing_a_line_is_refused_else_the_neighbours_data_is_lost() {
    let shared = || {
        let model = Dwc2Model::new();
        let mut dma = model.dma();
        let mut mem = Box::new(Shared([0; 3 * CACHE_LINE]));
        let p = mem.0.as_mut_ptr().wrapping_add(32);
        let mapped = dma.map(p, 2 * CACHE_LINE, DmaDirection::FromDevice);
        if mapped.is_ok() {
            dma.unmap(p, 2 * CACHE_LINE, DmaDirection::FromDevice);
        }
        (mapped, model.violations())
    };
    assert_eq!(shared(), (Err(DmaError::Misaligned), vec![]));
    let (mapped, violations) = mutation::without(Point::WholeLines, shared);
    assert!(mapped.is_ok());
    assert!(
        violations
            .iter()
            .any(|v| v.contains("not whole cache lines")),
        "{violations:?}"
    );
}
