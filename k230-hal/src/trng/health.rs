//! Health tests of the TRNG's output in the spirit of NIST SP 800-90B §4.4: the repetition count
//! test (a stuck output) and the adaptive proportion test (an output that keeps coming back, a
//! short cycle or a strong bias), run over every byte and every 32-bit word read, and the
//! start-up test of §4.3 (the tests over [`STARTUP_BYTES`] bytes before anything is handed out).
//!
//! The noise source's min-entropy is not published, so the cut-offs assume a conservative
//! [`BYTE_ENTROPY_BITS`] bits per byte and [`WORD_ENTROPY_BITS`] per word (real output should
//! carry close to 8 and 32) and the false alarm probability α = 2^-20 that §4.4 recommends as the
//! largest. Cut-offs: repetition `1 + ceil(20 / H)`; adaptive proportion
//! `1 + CRITBINOM(512, 2^-H, 1 - α)`, computed with the exact binomial distribution (the tests
//! below check both against their formulas).

/// Min-entropy per byte the byte tests are sized for (H).
pub const BYTE_ENTROPY_BITS: u32 = 4;
/// Min-entropy per 32-bit word the word test is sized for.
pub const WORD_ENTROPY_BITS: u32 = 16;
/// -log2 of the false alarm probability α.
pub const ALPHA_BITS: u32 = 20;
/// Repetition count test cut-off over bytes: this many equal bytes in a row fail.
pub const RCT_CUTOFF: u32 = 1 + ALPHA_BITS.div_ceil(BYTE_ENTROPY_BITS);
/// Adaptive proportion test window, in samples (§4.4.2, non-binary samples).
pub const APT_WINDOW: u32 = 512;
/// Adaptive proportion cut-off over bytes (H = 4): CRITBINOM(512, 1/16, 1 - 2^-20) = 61.
pub const BYTE_APT_CUTOFF: u32 = 62;
/// Adaptive proportion cut-off over words (H = 16): CRITBINOM(512, 2^-16, 1 - 2^-20) = 2, so a
/// word seen three times in a 512-word window fails (any cycle shorter than 256 words).
pub const WORD_APT_CUTOFF: u32 = 3;
/// Bytes the start-up test runs over: one full word window (§4.3 asks for at least 1024
/// samples).
pub const STARTUP_BYTES: usize = 4 * APT_WINDOW as usize;

/// Which test failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HealthError {
    /// The same byte came [`RCT_CUTOFF`] times in a row (a stuck output).
    Repetition,
    /// One byte or word value came back too often within an [`APT_WINDOW`]-sample window (a
    /// repeating or badly biased output).
    Proportion,
    /// The noise source gave no output (`super::Source::raw_word`).
    Silent,
}

/// The repetition count test over samples of type `T`.
#[derive(Clone, Copy, Debug)]
struct Repetition<T> {
    last: Option<T>,
    run: u32,
}

impl<T: Copy + PartialEq> Repetition<T> {
    const fn new() -> Self {
        Self { last: None, run: 0 }
    }

    /// False when `sample` made the run reach `cutoff`.
    fn pass(&mut self, sample: T, cutoff: u32) -> bool {
        if self.last == Some(sample) {
            self.run += 1;
        } else {
            self.last = Some(sample);
            self.run = 1;
        }
        self.run < cutoff
    }
}

/// The adaptive proportion test over samples of type `T`.
#[derive(Clone, Copy, Debug)]
struct Proportion<T> {
    first: Option<T>,
    seen: u32,
    hits: u32,
}

impl<T: Copy + PartialEq> Proportion<T> {
    const fn new() -> Self {
        Self {
            first: None,
            seen: 0,
            hits: 0,
        }
    }

    /// False when the window's first sample has now come `cutoff` times.
    fn pass(&mut self, sample: T, cutoff: u32) -> bool {
        match self.first {
            Some(first) if self.seen > 0 => self.hits += u32::from(first == sample),
            _ => {
                self.first = Some(sample);
                self.hits = 1;
            }
        }
        self.seen = (self.seen + 1) % APT_WINDOW;
        self.hits < cutoff
    }
}

/// The running state of the tests.
#[derive(Clone, Copy, Debug)]
pub struct Health {
    bytes: Repetition<u8>,
    byte_share: Proportion<u8>,
    word_share: Proportion<u32>,
}

impl Default for Health {
    fn default() -> Self {
        Self::new()
    }
}

impl Health {
    /// The tests at their start.
    pub const fn new() -> Self {
        Self {
            bytes: Repetition::new(),
            byte_share: Proportion::new(),
            word_share: Proportion::new(),
        }
    }

    /// Feeds one 32-bit word of output (and its bytes, little-endian order) through the tests.
    pub fn check_word(&mut self, word: u32) -> Result<(), HealthError> {
        for byte in word.to_le_bytes() {
            if !self.bytes.pass(byte, RCT_CUTOFF) {
                return Err(HealthError::Repetition);
            }
            if !self.byte_share.pass(byte, BYTE_APT_CUTOFF) {
                return Err(HealthError::Proportion);
            }
        }
        if !self.word_share.pass(word, WORD_APT_CUTOFF) {
            return Err(HealthError::Proportion);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{RngCore, SeedableRng};

    fn run(words: impl IntoIterator<Item = u32>) -> Result<(), HealthError> {
        let mut health = Health::new();
        words.into_iter().try_for_each(|w| health.check_word(w))
    }

    /// P(X ≥ c) for X ~ Binomial(APT_WINDOW, p). `C = 1 + CRITBINOM(W, p, 1 - α)` is the
    /// smallest `c` with P(X ≥ c) ≤ α.
    fn tail(c: u32, p: f64) -> f64 {
        let n = f64::from(APT_WINDOW);
        (c..=APT_WINDOW)
            .map(|k| {
                let k = f64::from(k);
                let ln_choose = ln_gamma(n + 1.0) - ln_gamma(k + 1.0) - ln_gamma(n - k + 1.0);
                (ln_choose + k * p.ln() + (n - k) * (1.0 - p).ln()).exp()
            })
            .sum()
    }

    #[test]
    fn cutoffs_follow_the_formulas() {
        assert_eq!(RCT_CUTOFF, 6);
        // The tail at each cut-off is below α, one lower it is not.
        let alpha = 2f64.powi(-(ALPHA_BITS as i32));
        for (cutoff, h) in [
            (BYTE_APT_CUTOFF, BYTE_ENTROPY_BITS),
            (WORD_APT_CUTOFF, WORD_ENTROPY_BITS),
        ] {
            let p = 2f64.powi(-(h as i32));
            assert!(tail(cutoff, p) <= alpha, "{cutoff}: {}", tail(cutoff, p));
            assert!(
                tail(cutoff - 1, p) > alpha,
                "{cutoff}: {}",
                tail(cutoff - 1, p)
            );
        }
    }

    /// ln Γ(x) by Stirling's series (ample precision for x ≥ 1 here).
    fn ln_gamma(x: f64) -> f64 {
        if x < 8.0 {
            return ln_gamma(x + 1.0) - x.ln();
        }
        let inv = 1.0 / x;
        (x - 0.5) * x.ln() - x + 0.5 * (2.0 * std::f64::consts::PI).ln() + inv / 12.0
            - inv.powi(3) / 360.0
            + inv.powi(5) / 1260.0
    }

    #[test]
    fn random_output_passes() {
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(run((0..100_000).map(|_| rng.next_u32())), Ok(()));
    }

    #[test]
    fn a_stuck_output_fails_the_repetition_test() {
        assert_eq!(run([0; 2]), Err(HealthError::Repetition));
        assert_eq!(run([0x1111_1111; 2]), Err(HealthError::Repetition));
    }

    #[test]
    fn a_short_cycle_fails_the_proportion_test() {
        // Twelve distinct bytes, three words, over and over: neither byte test trips, the word
        // test does.
        let cycle = [0x0403_0201u32, 0x0807_0605, 0x0c0b_0a09];
        let result = run(cycle.iter().copied().cycle().take(STARTUP_BYTES / 4));
        assert_eq!(result, Err(HealthError::Proportion));
        // A cycle of 200 random words as well.
        let mut rng = StdRng::seed_from_u64(9);
        let cycle: Vec<u32> = (0..200).map(|_| rng.next_u32()).collect();
        let result = run(cycle.iter().copied().cycle().take(STARTUP_BYTES / 4));
        assert_eq!(result, Err(HealthError::Proportion));
    }

    #[test]
    fn a_biased_byte_fails_the_proportion_test() {
        // Every fourth byte zero, the others random: no run, no repeated word.
        let mut rng = StdRng::seed_from_u64(10);
        let result = run((0..STARTUP_BYTES / 4).map(|_| rng.next_u32() & 0xffff_ff00));
        assert_eq!(result, Err(HealthError::Proportion));
    }

    #[test]
    fn a_stuck_word_of_distinct_bytes_fails_too() {
        assert_eq!(
            run(core::iter::repeat_n(0xdead_beef, STARTUP_BYTES / 4)),
            Err(HealthError::Proportion)
        );
    }
}
