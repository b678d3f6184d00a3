// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The messages both ends of the bridge's vsock test exchange (the `vsock-guest` binary in the
//! domU, the test in dom0): sizes from 1 byte to past a page, contents that depend on the
//! message and the position, so a lost, repeated or reordered byte shows.

/// Length of message `i`: 1 to 6000 bytes.
pub fn message_len(i: u32) -> usize {
    1 + (i as usize * 997) % 6000
}

/// Message `i`.
pub fn message(i: u32) -> Vec<u8> {
    (0..message_len(i))
        .map(|k| (i as usize * 31 + k * 7 + (k >> 8)) as u8)
        .collect()
}

/// The nearest-rank `percent` percentile of `sorted` (ascending, not empty): the smallest
/// value that at least `percent` % of the values do not exceed.
pub fn percentile(sorted: &[u64], percent: u32) -> u64 {
    let n = sorted.len();
    let rank = (n * percent as usize).div_ceil(100).clamp(1, n);
    sorted[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<u64> = (1..=1000).collect();
        assert_eq!(percentile(&v, 50), 500);
        assert_eq!(percentile(&v, 99), 990);
        assert_eq!(percentile(&v, 100), 1000);
        assert_eq!(percentile(&[7], 50), 7);
        assert_eq!(percentile(&[1, 2, 3], 99), 3);
        assert_eq!(percentile(&[1, 2, 3], 0), 1);
    }

    #[test]
    fn messages_differ_and_span_sizes() {
        assert_eq!(message(0).len(), 1);
        assert!((0..64).map(message_len).any(|l| l > 4096));
        assert_ne!(message(1), message(2));
        assert_ne!(message(3)[..1], message(4)[..1]);
    }
}
