// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! What the box's dom0 promises the tests and a person at its shell (run by
//! `cargo xtask xen-box test`; outside a dom0 these print `SKIPPED` and pass).

use std::path::Path;

use xen_box_testing::in_dom0;

/// `xl console` takes a lock file in `/var/lock` and fails when the directory is missing.
#[test]
fn dom0_has_a_writable_var_lock_for_xl_console() {
    if !in_dom0("dom0_has_a_writable_var_lock_for_xl_console") {
        return;
    }
    let probe = Path::new("/var/lock").join(format!("xen-box-testing.{}", std::process::id()));
    std::fs::write(&probe, b"").unwrap_or_else(|e| {
        panic!(
            "creating {}: {e} (xl console needs /var/lock)",
            probe.display()
        )
    });
    std::fs::remove_file(&probe).unwrap();
}
