//! A model of the K230's TRNG registers ([`crate::trng`]): `rn` (0x2a0) hands out a word per read,
//! `cfg` (0x2c8) bit 1 gates the generator's clock. Faults: a stuck output, a short cycle, the
//! clock left off. Any other access is recorded as a violation.

use std::sync::{Arc, Mutex, MutexGuard};

use crate::reg::RegisterBlock;
use crate::trng::{CFG, CFG_RNG_CLOCK, RN};

/// What the generator puts out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Pseudorandom words (SplitMix64 from a seed: statistically good, reproducible).
    Random(u64),
    /// The same word every time (a stuck noise source).
    Stuck(u32),
    /// These words, over and over.
    Cycle(Vec<u32>),
}

#[derive(Debug)]
struct State {
    output: Output,
    cfg: u32,
    reads: usize,
    violations: Vec<String>,
}

/// The TRNG model; clones share it. Implements [`RegisterBlock`] for the driver.
#[derive(Clone, Debug)]
pub struct TrngModel(Arc<Mutex<State>>);

impl TrngModel {
    /// A generator putting out `output`, its clock running (as after reset).
    pub fn new(output: Output) -> Self {
        Self(Arc::new(Mutex::new(State {
            output,
            cfg: CFG_RNG_CLOCK,
            reads: 0,
            violations: Vec::new(),
        })))
    }

    /// A generator whose clock is off: `rn` reads 0 until `cfg` bit 1 is set.
    pub fn clock_off(output: Output) -> Self {
        let model = Self::new(output);
        model.lock().cfg = 0;
        model
    }

    /// Changes the output from now on (e.g. the source getting stuck while in use).
    pub fn set_output(&self, output: Output) {
        self.lock().output = output;
    }

    /// Words read from `rn` so far.
    pub fn reads(&self) -> usize {
        self.lock().reads
    }

    /// Accesses the hardware would not expect.
    pub fn violations(&self) -> Vec<String> {
        self.lock().violations.clone()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl State {
    fn next(&mut self) -> u32 {
        let index = self.reads;
        self.reads += 1;
        if self.cfg & CFG_RNG_CLOCK == 0 {
            return 0;
        }
        match &mut self.output {
            Output::Random(state) => {
                // SplitMix64 (Steele, Lea, Flood 2014).
                *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
                let mut z = *state;
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                (z ^ (z >> 31)) as u32
            }
            Output::Stuck(word) => *word,
            Output::Cycle(words) => words.get(index % words.len().max(1)).copied().unwrap_or(0),
        }
    }
}

impl RegisterBlock for TrngModel {
    fn read32(&self, offset: usize) -> u32 {
        let mut s = self.lock();
        match offset {
            RN => s.next(),
            CFG => s.cfg,
            _ => {
                s.violations
                    .push(format!("read of unknown register {offset:#x}"));
                0
            }
        }
    }

    fn write32(&self, offset: usize, value: u32) {
        let mut s = self.lock();
        match offset {
            CFG => s.cfg = value,
            _ => s
                .violations
                .push(format!("write of {value:#x} to register {offset:#x}")),
        }
    }
}
