// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The backend-agnostic guest suite on real `/dev/kvm`.

use vm_hypervisor_kvm::Kvm;

/// `/dev/kvm`, or `None` after saying loudly why the suite is skipped.
fn open_kvm() -> Option<Kvm> {
    if !Kvm::is_present() {
        eprintln!("SKIPPED: guest suite: /dev/kvm is absent");
        return None;
    }
    match Kvm::new() {
        Ok(kvm) => Some(kvm),
        Err(e) => {
            eprintln!("SKIPPED: guest suite: /dev/kvm cannot be opened: {e}");
            None
        }
    }
}

vm_guest_suite::guest_suite_tests!(open_kvm);
