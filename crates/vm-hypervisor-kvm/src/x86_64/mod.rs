// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! x86_64: the vm-hypervisor x86 extension traits on KVM's x86-only ioctls
//! (register sets, MSRs, CPUID, PIC/IOAPIC, PIT, TSS).

mod convert;

use kvm_bindings::{kvm_pit_config, CpuId, Msrs, KVM_MAX_CPUID_ENTRIES};
use vm_hypervisor::x86_64::{
    CpuidEntry, FpuState, HypervisorX86_64, MsrEntry, SpecialRegisters, StandardRegisters,
    VcpuX86_64, VmX86_64,
};
use vm_hypervisor::{Error, Result};

use crate::{Kvm, KvmVcpu, KvmVm};
use convert::{
    cpuid_from_kvm, cpuid_to_kvm, fpu_from_kvm, fpu_to_kvm, msr_to_kvm, regs_from_kvm, regs_to_kvm,
    sregs_from_kvm, sregs_into_kvm,
};

impl HypervisorX86_64 for Kvm {
    fn supported_cpuid(&self) -> Result<Vec<CpuidEntry>> {
        let cpuid = self
            .as_kvm_ioctls()
            .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
            .map_err(|e| Error::hypervisor("KVM_GET_SUPPORTED_CPUID", e))?;
        Ok(cpuid.as_slice().iter().map(cpuid_from_kvm).collect())
    }
}

impl VcpuX86_64 for KvmVcpu {
    fn get_regs(&self) -> Result<StandardRegisters> {
        self.as_vcpu_fd()
            .get_regs()
            .map(|r| regs_from_kvm(&r))
            .map_err(|e| Error::hypervisor("KVM_GET_REGS", e))
    }

    fn set_regs(&self, regs: &StandardRegisters) -> Result<()> {
        self.as_vcpu_fd()
            .set_regs(&regs_to_kvm(regs))
            .map_err(|e| Error::hypervisor("KVM_SET_REGS", e))
    }

    fn get_sregs(&self) -> Result<SpecialRegisters> {
        self.as_vcpu_fd()
            .get_sregs()
            .map(|s| sregs_from_kvm(&s))
            .map_err(|e| Error::hypervisor("KVM_GET_SREGS", e))
    }

    fn set_sregs(&self, sregs: &SpecialRegisters) -> Result<()> {
        // Start from KVM's view so the pending-interrupt bitmap, which the
        // neutral type does not carry, is written back unchanged.
        let mut k = self
            .as_vcpu_fd()
            .get_sregs()
            .map_err(|e| Error::hypervisor("KVM_GET_SREGS", e))?;
        sregs_into_kvm(sregs, &mut k);
        self.as_vcpu_fd()
            .set_sregs(&k)
            .map_err(|e| Error::hypervisor("KVM_SET_SREGS", e))
    }

    fn get_fpu(&self) -> Result<FpuState> {
        self.as_vcpu_fd()
            .get_fpu()
            .map(|f| fpu_from_kvm(&f))
            .map_err(|e| Error::hypervisor("KVM_GET_FPU", e))
    }

    fn set_fpu(&self, fpu: &FpuState) -> Result<()> {
        self.as_vcpu_fd()
            .set_fpu(&fpu_to_kvm(fpu))
            .map_err(|e| Error::hypervisor("KVM_SET_FPU", e))
    }

    fn get_msrs(&self, msrs: &mut [MsrEntry]) -> Result<usize> {
        let entries: Vec<_> = msrs.iter().map(msr_to_kvm).collect();
        let mut kmsrs = Msrs::from_entries(&entries).map_err(|e| Error::InvalidArgument {
            op: "KVM_GET_MSRS",
            reason: format!("{} entries: {e:?}", msrs.len()),
        })?;
        let n = self
            .as_vcpu_fd()
            .get_msrs(&mut kmsrs)
            .map_err(|e| Error::hypervisor("KVM_GET_MSRS", e))?;
        for (out, k) in msrs.iter_mut().zip(kmsrs.as_slice()).take(n) {
            out.data = k.data;
        }
        Ok(n)
    }

    fn set_msrs(&self, msrs: &[MsrEntry]) -> Result<usize> {
        let entries: Vec<_> = msrs.iter().map(msr_to_kvm).collect();
        let kmsrs = Msrs::from_entries(&entries).map_err(|e| Error::InvalidArgument {
            op: "KVM_SET_MSRS",
            reason: format!("{} entries: {e:?}", msrs.len()),
        })?;
        self.as_vcpu_fd()
            .set_msrs(&kmsrs)
            .map_err(|e| Error::hypervisor("KVM_SET_MSRS", e))
    }

    fn set_cpuid(&self, entries: &[CpuidEntry]) -> Result<()> {
        let k: Vec<_> = entries.iter().map(cpuid_to_kvm).collect();
        let cpuid = CpuId::from_entries(&k).map_err(|e| Error::InvalidArgument {
            op: "KVM_SET_CPUID2",
            reason: format!("{} entries: {e:?}", entries.len()),
        })?;
        self.as_vcpu_fd()
            .set_cpuid2(&cpuid)
            .map_err(|e| Error::hypervisor("KVM_SET_CPUID2", e))
    }

    fn get_cpuid(&self) -> Result<Vec<CpuidEntry>> {
        let cpuid = self
            .as_vcpu_fd()
            .get_cpuid2(KVM_MAX_CPUID_ENTRIES)
            .map_err(|e| Error::hypervisor("KVM_GET_CPUID2", e))?;
        Ok(cpuid.as_slice().iter().map(cpuid_from_kvm).collect())
    }
}

impl VmX86_64 for KvmVm {
    fn create_irqchip(&self) -> Result<()> {
        self.as_vm_fd()
            .create_irq_chip()
            .map_err(|e| Error::hypervisor("KVM_CREATE_IRQCHIP", e))
    }

    fn create_pit(&self) -> Result<()> {
        self.as_vm_fd()
            .create_pit2(kvm_pit_config::default())
            .map_err(|e| Error::hypervisor("KVM_CREATE_PIT2", e))
    }
}
