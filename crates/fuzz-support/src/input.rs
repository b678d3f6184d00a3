// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The fuzz input as a source of choices.

/// The fuzz input, consumed front to back. Reads past its end give zeros, so every input,
/// however short, is a complete run of a target; integers are little-endian, so a kept input
/// reads the same as long as the target asks the same questions.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    /// Reads from the start of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    /// Whether everything was read.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// What is left to read.
    pub fn rest(&self) -> &'a [u8] {
        self.data
    }

    /// One byte (0 past the end).
    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    /// Two bytes, little-endian.
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    /// Four bytes, little-endian.
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes(std::array::from_fn(|_| self.u8()))
    }

    /// Eight bytes, little-endian.
    pub fn u64(&mut self) -> u64 {
        u64::from_le_bytes(std::array::from_fn(|_| self.u8()))
    }

    /// An unsigned number of `bytes` bytes (at most 8), little-endian.
    ///
    /// # Panics
    ///
    /// If `bytes` is more than 8.
    pub fn uint(&mut self, bytes: usize) -> u64 {
        assert!(bytes <= 8, "{bytes} bytes do not fit a u64");
        (0..bytes).fold(0, |n, i| n | u64::from(self.u8()) << (8 * i))
    }

    /// The next `n` bytes, or what is left if that is fewer.
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (taken, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_little_endian_and_zero_past_the_end() {
        let mut i = Input::new(&[1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(i.u16(), 0x0201);
        assert_eq!(i.u32(), 0x0605_0403);
        assert_eq!(i.u64(), 7);
        assert!(i.is_empty());
        assert_eq!((i.u8(), i.bytes(3)), (0, &[][..]));
        let mut i = Input::new(&[1, 2, 3]);
        assert_eq!((i.uint(2), i.uint(0), i.uint(8)), (0x0201, 0, 3));
        let mut i = Input::new(b"abcdef");
        assert_eq!(i.bytes(4), b"abcd");
        assert_eq!(i.rest(), b"ef");
    }
}
