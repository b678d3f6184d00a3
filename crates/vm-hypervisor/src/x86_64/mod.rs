// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! x86_64: neutral register types and the [`VcpuX86_64`], [`VmX86_64`]
//! and [`HypervisorX86_64`] extension traits.

pub mod regs;

pub use regs::{
    bits, CpuidEntry, DescriptorTable, FpuState, MsrEntry, Segment, SpecialRegisters,
    StandardRegisters,
};

use crate::error::Result;
use crate::hypervisor::Hypervisor;
use crate::vcpu::Vcpu;
use crate::vm::Vm;

/// x86_64 state of a vCPU.
pub trait VcpuX86_64: Vcpu {
    /// General-purpose registers, RIP and RFLAGS.
    fn get_regs(&self) -> Result<StandardRegisters>;
    /// Set general-purpose registers, RIP and RFLAGS.
    fn set_regs(&self, regs: &StandardRegisters) -> Result<()>;
    /// Segments, descriptor tables, control registers, EFER, APIC base.
    fn get_sregs(&self) -> Result<SpecialRegisters>;
    /// Set segments, descriptor tables, control registers, EFER, APIC base.
    fn set_sregs(&self, sregs: &SpecialRegisters) -> Result<()>;
    /// x87/SSE state.
    fn get_fpu(&self) -> Result<FpuState>;
    /// Set x87/SSE state.
    fn set_fpu(&self, fpu: &FpuState) -> Result<()>;
    /// Read the MSRs named by `msrs[i].index` into `msrs[i].data`; returns
    /// how many were read (reading stops at the first one that fails).
    fn get_msrs(&self, msrs: &mut [MsrEntry]) -> Result<usize>;
    /// Write `msrs`; returns how many were written (writing stops at the
    /// first one that fails).
    fn set_msrs(&self, msrs: &[MsrEntry]) -> Result<usize>;
    /// Set the CPUID the guest sees, replacing what was set before.
    ///
    /// The hypervisor may drop entries it does not support, add entries that
    /// follow from those given (the XSAVE leaves 0xd for leaf 1's XSAVE bit,
    /// say) and adjust bits it owns (APIC IDs, OSXSAVE and the like); what it
    /// does differs between hosts, so read [`VcpuX86_64::get_cpuid`] rather
    /// than assume `entries`.
    fn set_cpuid(&self, entries: &[CpuidEntry]) -> Result<()>;
    /// The CPUID the guest sees: the last [`VcpuX86_64::set_cpuid`], as the
    /// hypervisor kept it.
    fn get_cpuid(&self) -> Result<Vec<CpuidEntry>>;
}

/// x86_64 platform pieces of a VM.
pub trait VmX86_64: Vm<Vcpu: VcpuX86_64> {
    /// Create the in-hypervisor PIC, IOAPIC and LAPICs. Backends whose
    /// interrupt controller always exists (Xen HVM) return `Ok`.
    fn create_irqchip(&self) -> Result<()>;
    /// Create the in-hypervisor i8254 timer.
    fn create_pit(&self) -> Result<()>;
}

/// x86_64 facts about the hypervisor.
pub trait HypervisorX86_64: Hypervisor<Vm: VmX86_64> {
    /// The CPUID leaves and bits the hypervisor can show a guest.
    fn supported_cpuid(&self) -> Result<Vec<CpuidEntry>>;
}

impl<V: VcpuX86_64 + ?Sized> VcpuX86_64 for Box<V> {
    fn get_regs(&self) -> Result<StandardRegisters> {
        (**self).get_regs()
    }
    fn set_regs(&self, regs: &StandardRegisters) -> Result<()> {
        (**self).set_regs(regs)
    }
    fn get_sregs(&self) -> Result<SpecialRegisters> {
        (**self).get_sregs()
    }
    fn set_sregs(&self, sregs: &SpecialRegisters) -> Result<()> {
        (**self).set_sregs(sregs)
    }
    fn get_fpu(&self) -> Result<FpuState> {
        (**self).get_fpu()
    }
    fn set_fpu(&self, fpu: &FpuState) -> Result<()> {
        (**self).set_fpu(fpu)
    }
    fn get_msrs(&self, msrs: &mut [MsrEntry]) -> Result<usize> {
        (**self).get_msrs(msrs)
    }
    fn set_msrs(&self, msrs: &[MsrEntry]) -> Result<usize> {
        (**self).set_msrs(msrs)
    }
    fn set_cpuid(&self, entries: &[CpuidEntry]) -> Result<()> {
        (**self).set_cpuid(entries)
    }
    fn get_cpuid(&self) -> Result<Vec<CpuidEntry>> {
        (**self).get_cpuid()
    }
}
