// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The [`Hypervisor`] trait: the entry point of a backend.

use crate::caps::Capability;
use crate::error::Result;
use crate::vm::Vm;

/// A hypervisor able to create VMs: `/dev/kvm`, Xen's privcmd, ...
///
/// The VM type is an associated type so code generic over `H: Hypervisor`
/// is statically dispatched all the way down to the vCPU run loop.
pub trait Hypervisor {
    /// The VM this hypervisor creates.
    type Vm: Vm;

    /// Create an empty VM: no memory, no vCPUs.
    fn create_vm(&self) -> Result<Self::Vm>;

    /// Whether VMs of this hypervisor offer `cap`. A VM may narrow this
    /// further; [`Vm::check_capability`] is the precise answer.
    fn check_capability(&self, cap: Capability) -> bool;

    /// A short name of the backend, for logs and test output.
    fn name(&self) -> &'static str;
}
