// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The buffered ring with a producer thread and two consumer threads.

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use xen_bindings::abi::xen::ioreq::{IOREQ_TYPE_COPY, IOREQ_WRITE};
use xen_ioreq::bufring::{BufferedRing, RingWriter};
use xen_ioreq::page::LocalPage;

/// The most entries one input publishes.
const MAX_ENTRIES: usize = 2048;

/// A producer thread publishes the input's entries (any size, any data; each carries its
/// sequence number in its address) from a fuzzed starting point of the 32-bit pointers (so
/// they wrap), waiting when the ring is full; two consumer threads pop concurrently, each
/// pausing as the input says. Every entry must be delivered exactly once, intact, and each
/// consumer must see its entries in publication order.
pub fn buffered_ring_concurrent(data: &[u8]) {
    if data.len() < 6 {
        return;
    }
    let (head, body) = data.split_at(6);
    // Slot `index % 511` is not continuous where the 32-bit pointers wrap (2^32 is not a
    // multiple of 511): entries in flight across the wrap alias each other's slots. Xen never
    // gets there (it rebases both pointers below 511 in atomic mode); `RingWriter` does not
    // rebase, so the run stays below the wrap, however close to it it starts.
    let base = u32::from_le_bytes([head[0], head[1], head[2], head[3]]).min(u32::MAX - 8192);
    let pauses = [head[4], head[5]];
    // Each entry: size_log2 and the data byte pattern.
    let entries: Vec<(u8, u64)> = body
        .chunks(2)
        .take(MAX_ENTRIES)
        .map(|c| {
            let log2 = c[0] & 3;
            let seed = u64::from(c[0] >> 2) | u64::from(*c.get(1).unwrap_or(&0)) << 6;
            (log2, seed.wrapping_mul(0x9e37_79b9_7f4a_7c15))
        })
        .collect();
    let ring = BufferedRing::new(LocalPage::new());
    RingWriter::new(&ring).set_pointers(base, base);
    let done = AtomicBool::new(false);
    let got: Vec<Vec<(u32, u8, u64)>> = thread::scope(|s| {
        let ring = &ring;
        let done = &done;
        let entries = &entries;
        s.spawn(move || {
            let w = RingWriter::new(ring);
            for (seq, &(log2, data)) in entries.iter().enumerate() {
                while !w.push(IOREQ_TYPE_COPY, IOREQ_WRITE, log2, seq as u32, data) {
                    thread::yield_now();
                }
            }
            done.store(true, Ordering::Release);
        });
        let consumers: Vec<_> = pauses
            .into_iter()
            .map(|pause| {
                s.spawn(move || {
                    let mut seen = Vec::new();
                    let mut n = 0u32;
                    loop {
                        // Read `done` before popping: an empty ring after the producer finished
                        // means everything was taken.
                        let finished = done.load(Ordering::Acquire);
                        match ring.pop() {
                            Ok(Some(e)) => {
                                seen.push((e.addr, e.size, e.data));
                                n += 1;
                                if pause != 0 && n % u32::from(pause) == 0 {
                                    thread::yield_now();
                                }
                            }
                            Ok(None) if finished => return seen,
                            Ok(None) => thread::yield_now(),
                            Err(e) => panic!("consumer: {e:?} at {:?}", ring.pointers_now()),
                        }
                    }
                })
            })
            .collect();
        consumers.into_iter().map(|c| c.join().unwrap()).collect()
    });
    let mut delivered = vec![false; entries.len()];
    for seen in &got {
        let mut last = None;
        for &(seq, size, data) in seen {
            let i = seq as usize;
            assert!(i < entries.len(), "entry {seq} never published");
            assert!(!delivered[i], "entry {seq} delivered twice");
            delivered[i] = true;
            assert!(
                last < Some(seq),
                "entry {seq} after {last:?} in one consumer"
            );
            last = Some(seq);
            let (log2, want) = entries[i];
            assert_eq!(size, 1 << log2, "entry {seq} size");
            let want = if log2 == 3 { want } else { want & 0xffff_ffff };
            assert_eq!(data, want, "entry {seq} data");
        }
    }
    assert!(delivered.iter().all(|&d| d), "an entry was lost");
    let slots: u32 = entries.iter().map(|e| if e.0 == 3 { 2 } else { 1 }).sum();
    assert_eq!(
        ring.pointers_now(),
        (base.wrapping_add(slots), base.wrapping_add(slots))
    );
}
