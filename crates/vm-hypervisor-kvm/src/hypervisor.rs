// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! [`Kvm`]: the `/dev/kvm` system handle.

use std::path::Path;

use kvm_bindings::KVM_MAX_CPUID_ENTRIES;
use kvm_ioctls::Cap;
use vm_hypervisor::x86_64::{CpuidEntry, HypervisorX86_64};
use vm_hypervisor::{Capability, Error, Hypervisor, Result};

use crate::convert::cpuid_from_kvm;
use crate::vm::KvmVm;

/// Path of the KVM device.
pub const KVM_PATH: &str = "/dev/kvm";

/// The KVM hypervisor: an open `/dev/kvm`.
#[derive(Debug)]
pub struct Kvm {
    kvm: kvm_ioctls::Kvm,
}

impl Kvm {
    /// Open `/dev/kvm`.
    pub fn new() -> Result<Self> {
        let kvm = kvm_ioctls::Kvm::new().map_err(|e| Error::hypervisor("open /dev/kvm", e))?;
        Ok(Self { kvm })
    }

    /// Whether `/dev/kvm` exists (it may still be unusable, e.g. without
    /// permission; [`Kvm::new`] says so).
    pub fn is_present() -> bool {
        Path::new(KVM_PATH).exists()
    }

    /// The kvm-ioctls handle, for what the traits do not cover.
    pub fn as_kvm_ioctls(&self) -> &kvm_ioctls::Kvm {
        &self.kvm
    }
}

/// The KVM extension that answers `cap`, or `None` when KVM always has it.
pub(crate) fn kvm_cap(cap: Capability) -> Option<Cap> {
    Some(match cap {
        Capability::UserMemory => Cap::UserMemory,
        Capability::ReadonlyMemory => Cap::ReadonlyMem,
        Capability::Irqchip | Capability::IrqLine => Cap::Irqchip,
        Capability::Pit => Cap::Pit2,
        Capability::Irqfd => Cap::Irqfd,
        Capability::Ioeventfd => Cap::Ioeventfd,
        Capability::SignalMsi => Cap::SignalMsi,
        Capability::ImmediateExit => Cap::ImmediateExit,
        Capability::SetCpuid => Cap::ExtCpuid,
        // KVM_GET_DIRTY_LOG and several vCPUs predate capability checks.
        _ => return None,
    })
}

impl Hypervisor for Kvm {
    type Vm = KvmVm;

    fn create_vm(&self) -> Result<KvmVm> {
        let fd = self
            .kvm
            .create_vm()
            .map_err(|e| Error::hypervisor("KVM_CREATE_VM", e))?;
        KvmVm::new(&self.kvm, fd)
    }

    fn check_capability(&self, cap: Capability) -> bool {
        match cap {
            Capability::MultipleVcpus => self.kvm.get_max_vcpus() > 1,
            _ => kvm_cap(cap).is_none_or(|c| self.kvm.check_extension(c)),
        }
    }

    fn name(&self) -> &'static str {
        "kvm"
    }
}

impl HypervisorX86_64 for Kvm {
    fn supported_cpuid(&self) -> Result<Vec<CpuidEntry>> {
        let cpuid = self
            .kvm
            .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
            .map_err(|e| Error::hypervisor("KVM_GET_SUPPORTED_CPUID", e))?;
        Ok(cpuid.as_slice().iter().map(cpuid_from_kvm).collect())
    }
}
