// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The [`Hypervisor`] trait: the entry point of a backend.

use crate::caps::Capability;
use crate::error::Result;
use crate::vm::Vm;

/// The id of a VM that exists outside this process: a Xen domain id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VmId(pub u32);

impl std::fmt::Display for VmId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A hypervisor able to create VMs or to serve VMs made elsewhere:
/// `/dev/kvm`, Xen's privcmd, ...
///
/// A VMM gets its [`Vm`] one of two ways, and [`Capability::CreateVm`] and
/// [`Capability::AttachVm`] say which a backend offers:
///
/// - [`create_vm`](Hypervisor::create_vm) makes an empty VM that the VMM
///   fills: memory, vCPUs, registers (KVM);
/// - [`attach_vm`](Hypervisor::attach_vm) serves a VM that something else
///   made and that already has its memory and vCPUs: the VMM is its device
///   model (a Xen domain built by the toolstack).
///
/// Either way the [`Vm`] and [`Vcpu`](crate::Vcpu) traits are the same, so a
/// VMM's device and vCPU code does not change with the mode.
///
/// The VM type is an associated type so code generic over `H: Hypervisor`
/// is statically dispatched all the way down to the vCPU run loop.
pub trait Hypervisor: Send + Sync {
    /// The VM this hypervisor creates or attaches to.
    type Vm: Vm;

    /// Create an empty VM: no memory, no vCPUs.
    ///
    /// [`Error::Unsupported`](crate::Error::Unsupported) with
    /// [`Capability::CreateVm`] where the backend only attaches.
    fn create_vm(&self) -> Result<Self::Vm>;

    /// Serve the existing VM `id` as its device model.
    ///
    /// The VM's memory and vCPUs exist already: [`Vm::guest_memory`]
    /// reaches the memory, [`Vm::create_vcpu`] returns a handle on an
    /// existing vCPU whose [`run`](crate::Vcpu::run) serves that vCPU's
    /// guest I/O. [`Error::Unsupported`](crate::Error::Unsupported) with
    /// [`Capability::AttachVm`] where the backend only creates.
    fn attach_vm(&self, id: VmId) -> Result<Self::Vm>;

    /// Whether VMs of this hypervisor offer `cap`. A VM may narrow this
    /// further; [`Vm::check_capability`] is the precise answer.
    fn check_capability(&self, cap: Capability) -> bool;

    /// A short name of the backend, for logs and test output.
    fn name(&self) -> &'static str;
}
