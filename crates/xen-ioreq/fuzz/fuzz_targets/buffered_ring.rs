// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Fuzzes the buffered ring reader: any page contents (pointers and slots) must give entries
//! or a typed error, never a panic, and never more slots than were published.

#![no_main]

use libfuzzer_sys::fuzz_target;
use xen_ioreq::bufring::BufferedRing;
use xen_ioreq::page::LocalPage;

fuzz_target!(|data: &[u8]| {
    let page = LocalPage::new();
    page.write_bytes(0, &data[..data.len().min(4096)]);
    let ring = BufferedRing::new(page);
    let mut consumed = 0u32;
    let start = ring.pointers_now();
    // A ring holds at most 511 slots: more pops than that means the reader went wrong.
    for _ in 0..600 {
        match ring.pop() {
            Ok(Some(entry)) => {
                consumed += if entry.size == 8 { 2 } else { 1 };
                assert!(matches!(entry.size, 1 | 2 | 4 | 8));
                assert!(entry.addr < 1 << 20);
                let _ = entry.decode();
            }
            Ok(None) => break,
            Err(_) => {
                ring.resync();
                assert_eq!(ring.pop(), Ok(None));
                return;
            }
        }
    }
    let avail = start.1.wrapping_sub(start.0);
    assert_eq!(consumed, avail, "consumed exactly what was published");
    assert_eq!(ring.pointers_now().0, start.1);
});
