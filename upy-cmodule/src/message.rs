//! A fixed-size text buffer for messages formatted where there is no heap (the panic handler).

use core::fmt;

/// Up to `N` bytes of formatted text; what does not fit is cut off (at a character boundary).
pub struct Message<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Message<N> {
    /// An empty message.
    pub const fn new() -> Self {
        Self {
            buf: [0; N],
            len: 0,
        }
    }

    /// The text so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl<const N: usize> Default for Message<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> fmt::Write for Message<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = N - self.len;
        let mut take = s.len().min(room);
        while !s.is_char_boundary(take) {
            take -= 1;
        }
        self.buf[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::fmt::Write;

    #[test]
    fn keeps_what_fits_and_cuts_at_a_character() {
        let mut m = Message::<8>::new();
        write!(m, "ab{}", 12).unwrap();
        assert_eq!(m.as_bytes(), b"ab12");
        write!(m, "cdé€").unwrap();
        // "ab12cd" is 6 bytes, "é" 2 more fills it; "€" (3 bytes) is dropped whole.
        assert_eq!(m.as_bytes(), "ab12cdé".as_bytes());
        write!(m, "more").unwrap();
        assert_eq!(m.as_bytes().len(), 8);
    }
}
