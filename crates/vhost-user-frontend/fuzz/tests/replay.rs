// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Replays every input kept in `regressions/` (named `<target>-<what>.bin`) through its
//! target's body, so a fixed crash stays fixed under a plain `cargo test`.

#[test]
fn regressions_replay() {
    let n = fuzz_support::replay(
        "regressions",
        &[("mmio_registers", vhost_user_frontend_fuzz::mmio_registers)],
    );
    eprintln!("{n} regression inputs replayed");
}
