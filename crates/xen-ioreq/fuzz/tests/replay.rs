// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Replays every input kept in `regressions/` (named `<target>-<what>.bin`) through its
//! target's body, so a fixed crash stays fixed under a plain `cargo test`.

use std::path::Path;

#[test]
fn regressions_replay() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("regressions");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let data = std::fs::read(&path).unwrap();
        let target: fn(&[u8]) = match name.split_once('-').map(|(t, _)| t) {
            Some("decode_request") => xen_ioreq_fuzz::decode_request,
            Some("buffered_ring") => xen_ioreq_fuzz::buffered_ring,
            Some("buffered_ring_concurrent") => xen_ioreq_fuzz::buffered_ring_concurrent,
            Some("virtio_rng") => xen_ioreq_fuzz::virtio_rng,
            _ => panic!("{name}: no target of that name"),
        };
        eprintln!("replaying {name}");
        target(&data);
        n += 1;
    }
    assert!(n > 0, "regressions/ holds the inputs found so far");
}
