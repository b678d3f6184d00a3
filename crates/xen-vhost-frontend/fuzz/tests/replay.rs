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
        if name.starts_with("xenstore_devices-") {
            xen_vhost_frontend_fuzz::xenstore_devices(&data);
            n += 1;
        }
    }
    eprintln!("{n} regression inputs replayed");
}
