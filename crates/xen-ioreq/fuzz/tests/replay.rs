// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Replays every input kept in `regressions/` (named `<target>-<what>.bin`) through its
//! target's body, so a fixed crash stays fixed under a plain `cargo test`.

#[test]
fn regressions_replay() {
    let n = fuzz_support::replay(
        "regressions",
        &[
            ("decode_request", xen_ioreq_fuzz::decode_request),
            ("buffered_ring", xen_ioreq_fuzz::buffered_ring),
            (
                "buffered_ring_concurrent",
                xen_ioreq_fuzz::buffered_ring_concurrent,
            ),
            ("virtio_rng", xen_ioreq_fuzz::virtio_rng),
        ],
    );
    assert!(n > 0, "regressions/ holds the inputs found so far");
}
