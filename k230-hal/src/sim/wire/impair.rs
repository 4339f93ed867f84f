//! A wire middleware that impairs what is sent through it: seeded, reproducible loss,
//! corruption, duplication and reordering (in the spirit of smoltcp's `FaultInjector`, which
//! does not reorder).

use super::Wire;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};

/// Impairment rates, each the chance per frame sent, in percent (0 to 100).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Impairments {
    /// Frames silently lost.
    pub drop_pct: u8,
    /// Frames delivered with one byte flipped.
    pub corrupt_pct: u8,
    /// Frames delivered twice.
    pub duplicate_pct: u8,
    /// Frames held back and delivered after the next frame sent.
    pub reorder_pct: u8,
}

/// What the middleware did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImpairStats {
    /// Frames dropped.
    pub dropped: u64,
    /// Frames corrupted.
    pub corrupted: u64,
    /// Frames duplicated.
    pub duplicated: u64,
    /// Frames delivered after a later one.
    pub reordered: u64,
}

/// Receive polls a held-back frame waits for a later frame before it goes out anyway (so a
/// last frame is late, never lost).
const HOLD_POLLS: u32 = 2;

/// A frame held back for reordering.
struct Held {
    frame: Vec<u8>,
    polls: u32,
}

/// A handle on an [`Impair`]'s counters, readable while a model owns the wire.
#[derive(Clone, Debug, Default)]
pub struct StatsHandle(Arc<Mutex<ImpairStats>>);

impl StatsHandle {
    /// The counters now.
    pub fn get(&self) -> ImpairStats {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn count(&self, f: impl FnOnce(&mut ImpairStats)) {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner));
    }
}

/// Wraps `inner`; frames sent go through the impairments, frames received pass unchanged.
pub struct Impair<W: Wire> {
    inner: W,
    rates: Impairments,
    rng: u64,
    stats: StatsHandle,
    held: Option<Held>,
}

impl<W: Wire> Impair<W> {
    /// Impairs `inner` with `rates`, randomness from `seed` (the same seed, the same faults).
    pub fn new(inner: W, rates: Impairments, seed: u64) -> Self {
        Self {
            inner,
            rates,
            rng: seed | 1,
            stats: StatsHandle::default(),
            held: None,
        }
    }

    /// The counters.
    pub fn stats(&self) -> ImpairStats {
        self.stats.get()
    }

    /// A handle on the counters that stays readable after the wire is handed to a model.
    pub fn stats_handle(&self) -> StatsHandle {
        self.stats.clone()
    }

    /// xorshift64: cheap, deterministic.
    fn next(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    fn chance(&mut self, pct: u8) -> bool {
        pct > 0 && self.next() % 100 < u64::from(pct)
    }

    /// Sends the held-back frame, if any (it may find the wire full: then it is lost, as a
    /// late frame on a congested link).
    fn release_held(&mut self) {
        if let Some(held) = self.held.take() {
            if self.inner.send(&held.frame).is_ok() {
                self.stats.count(|s| s.reordered += 1);
            } else {
                self.stats.count(|s| s.dropped += 1);
            }
        }
    }

    /// Puts one frame (possibly corrupted) on the wire.
    fn deliver(&mut self, frame: &[u8]) -> io::Result<()> {
        if !frame.is_empty() && self.chance(self.rates.corrupt_pct) {
            let mut bad = frame.to_vec();
            let at = (self.next() % bad.len() as u64) as usize;
            bad[at] ^= 1 << (self.next() % 8);
            self.inner.send(&bad)?;
            self.stats.count(|s| s.corrupted += 1);
        } else {
            self.inner.send(frame)?;
        }
        Ok(())
    }
}

impl<W: Wire> Wire for Impair<W> {
    fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        if self.chance(self.rates.drop_pct) {
            self.stats.count(|s| s.dropped += 1);
            return Ok(());
        }
        if self.held.is_none() && self.chance(self.rates.reorder_pct) {
            self.held = Some(Held {
                frame: frame.to_vec(),
                polls: 0,
            });
            return Ok(());
        }
        self.deliver(frame)?;
        // The frame held back goes out behind this later one.
        self.release_held();
        if self.chance(self.rates.duplicate_pct) {
            // The copy may find the wire full; it is only a duplicate.
            if self.inner.send(frame).is_ok() {
                self.stats.count(|s| s.duplicated += 1);
            }
        }
        Ok(())
    }

    fn recv_into(&mut self, into: &mut Vec<u8>) -> io::Result<Option<usize>> {
        if let Some(held) = &mut self.held {
            held.polls += 1;
            if held.polls >= HOLD_POLLS {
                self.release_held();
            }
        }
        self.inner.recv_into(into)
    }
}
