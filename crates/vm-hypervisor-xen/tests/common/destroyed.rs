// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The check that dropping a VM `Hypervisor::create_vm` made destroyed its domain, shared by
//! `create.rs` (x86_64) and `arm_create.rs` (aarch64) through `#[path]`.

use xen_bindings::privcmd::Privcmd;
use xen_bindings::DomId;

/// Domain `domid` is gone or dying, and no more live domains remain than the `before` there
/// were before it was made. (Xen destroys a domain asynchronously only in releasing its
/// memory; its id leaves the list once the last reference goes.)
pub fn assert_destroyed(privcmd: &Privcmd, domid: DomId, before: usize) {
    assert!(
        privcmd.domain_info(domid).map_or(true, |i| i.dying()),
        "domain {domid} destroyed with the VM"
    );
    let after = privcmd.domains().unwrap();
    assert!(
        after.iter().filter(|d| !d.dying()).count() <= before,
        "no domain left behind"
    );
}
