// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! [`Kvm`]: the `/dev/kvm` system handle.

use std::path::Path;

use kvm_ioctls::Cap;
use vm_hypervisor::{Capability, Error, Hypervisor, Result, VmId};

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

/// How KVM tells whether it offers a capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KvmCap {
    /// KVM always has it (it predates capability checks).
    Always,
    /// KVM never has it (attaching to a VM, PCI INTx routing) or not on
    /// this architecture (x86-only or Arm-only hardware).
    Never,
    /// Ask `KVM_CHECK_EXTENSION` for this extension.
    Ask(Cap),
}

/// How to find out whether KVM offers `cap`.
pub(crate) fn kvm_cap(cap: Capability) -> KvmCap {
    KvmCap::Ask(match cap {
        // KVM's VMs live as long as their descriptor: there is nothing to attach to.
        Capability::AttachVm => return KvmCap::Never,
        // The VMM's PCI host bridge routes INTx to a GSI on KVM.
        Capability::IrqLinePciIntx => return KvmCap::Never,
        Capability::UserMemory => Cap::UserMemory,
        Capability::ReadonlyMemory => Cap::ReadonlyMem,
        Capability::Irqchip => Cap::Irqchip,
        #[cfg(target_arch = "x86_64")]
        Capability::IrqLineGsi | Capability::IrqLineIsa => Cap::Irqchip,
        #[cfg(target_arch = "x86_64")]
        Capability::IrqLineSpi => return KvmCap::Never,
        #[cfg(target_arch = "aarch64")]
        Capability::IrqLineSpi => Cap::Irqchip,
        #[cfg(not(target_arch = "x86_64"))]
        Capability::IrqLineGsi | Capability::IrqLineIsa => return KvmCap::Never,
        #[cfg(target_arch = "x86_64")]
        Capability::Pit => Cap::Pit2,
        #[cfg(target_arch = "x86_64")]
        Capability::SetCpuid => Cap::ExtCpuid,
        // The i8254 and CPUID are x86 things.
        #[cfg(not(target_arch = "x86_64"))]
        Capability::Pit | Capability::SetCpuid => return KvmCap::Never,
        Capability::Irqfd => Cap::Irqfd,
        // KVM's ioeventfd matches any address, width and value alike.
        Capability::Ioeventfd | Capability::IoeventfdAny => Cap::Ioeventfd,
        Capability::SignalMsi => Cap::SignalMsi,
        Capability::ImmediateExit => Cap::ImmediateExit,
        // Creating VMs, KVM_GET_DIRTY_LOG and several vCPUs predate capability checks.
        _ => return KvmCap::Always,
    })
}

/// Answer `kvm_cap(cap)` with `check` as the `KVM_CHECK_EXTENSION` call.
pub(crate) fn has_cap(cap: Capability, check: impl FnOnce(Cap) -> bool) -> bool {
    match kvm_cap(cap) {
        KvmCap::Always => true,
        KvmCap::Never => false,
        KvmCap::Ask(c) => check(c),
    }
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

    fn attach_vm(&self, _id: VmId) -> Result<KvmVm> {
        Err(Error::Unsupported {
            capability: Capability::AttachVm,
        })
    }

    fn check_capability(&self, cap: Capability) -> bool {
        match cap {
            Capability::MultipleVcpus => self.kvm.get_max_vcpus() > 1,
            _ => has_cap(cap, |c| self.kvm.check_extension(c)),
        }
    }

    fn name(&self) -> &'static str {
        "kvm"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_map_to_the_right_extension() {
        assert_eq!(kvm_cap(Capability::Irqfd), KvmCap::Ask(Cap::Irqfd));
        #[cfg(target_arch = "x86_64")]
        assert_eq!(kvm_cap(Capability::IrqLineIsa), KvmCap::Ask(Cap::Irqchip));
        assert_eq!(kvm_cap(Capability::DirtyLog), KvmCap::Always);
        assert_eq!(kvm_cap(Capability::CreateVm), KvmCap::Always);
        assert_eq!(kvm_cap(Capability::AttachVm), KvmCap::Never);
        assert_eq!(kvm_cap(Capability::IrqLinePciIntx), KvmCap::Never);
        #[cfg(target_arch = "x86_64")]
        assert_eq!(kvm_cap(Capability::Pit), KvmCap::Ask(Cap::Pit2));
        #[cfg(not(target_arch = "x86_64"))]
        assert_eq!(kvm_cap(Capability::Pit), KvmCap::Never);
        #[cfg(not(target_arch = "x86_64"))]
        assert_eq!(kvm_cap(Capability::SetCpuid), KvmCap::Never);
    }

    #[test]
    fn has_cap_asks_only_when_kvm_can_answer() {
        assert!(has_cap(Capability::DirtyLog, |_| panic!("not asked")));
        assert!(has_cap(Capability::Irqfd, |c| c == Cap::Irqfd));
        assert!(!has_cap(Capability::Ioeventfd, |_| false));
    }
}
