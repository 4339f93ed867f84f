//! smoltcp 0.14's random number generator, as the stack must know it: every `Interface` has one
//! (`src/rand.rs`, seeded from `Config::random_seed`), and smoltcp draws TCP initial sequence
//! numbers, DNS ids and ports and DHCP transaction ids from it ([`crate::scratch`]).
//!
//! Facts (smoltcp 0.14.0 `src/rand.rs`): a 64-bit linear congruential generator whose state
//! steps as `s = s * 0xbb2efcec3c39611d + 0x7590ef39`; a 32-bit draw is
//! `(s >> (29 - (s >> 61))) as u32` of the stepped state (32 of its top 35 bits, the top three
//! choosing which); a 16-bit draw is the 32-bit one folded (`n ^ n >> 16`). Two consecutive
//! 32-bit draws leave about one state possible, so they predict every later draw.

/// smoltcp's multiplier.
pub const MUL: u64 = 0xbb2e_fcec_3c39_611d;
/// smoltcp's increment.
pub const INC: u64 = 0x7590_ef39;
/// `MUL`'s inverse modulo 2^64 (Newton's iteration doubles the correct low bits each step; an
/// odd number is its own inverse modulo 8).
pub const MUL_INV: u64 = {
    let mut x = MUL;
    let mut i = 0;
    while i < 5 {
        x = x.wrapping_mul(2u64.wrapping_sub(MUL.wrapping_mul(x)));
        i += 1;
    }
    x
};

/// The state after one step from `s`.
pub const fn step(s: u64) -> u64 {
    s.wrapping_mul(MUL).wrapping_add(INC)
}

/// The state one step before `s`.
pub const fn unstep(s: u64) -> u64 {
    s.wrapping_sub(INC).wrapping_mul(MUL_INV)
}

/// The 32-bit draw of stepped state `s`.
pub const fn draw32(s: u64) -> u32 {
    (s >> (29 - (s >> 61))) as u32
}

/// The 16-bit draw of stepped state `s`.
pub const fn draw16(s: u64) -> u16 {
    let n = draw32(s);
    (n ^ (n >> 16)) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unstep_inverts_step() {
        assert_eq!(MUL.wrapping_mul(MUL_INV), 1);
        for s in [0, 1, u64::MAX, 0x0123_4567_89ab_cdef] {
            assert_eq!(unstep(step(s)), s);
        }
    }
}
