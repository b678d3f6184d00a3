// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! [`VcpuAarch64`] for [`KvmVcpu`]: `KVM_ARM_VCPU_INIT` and registers
//! through `KVM_GET_ONE_REG`/`KVM_SET_ONE_REG`.

use kvm_bindings::{
    KVM_ARM_VCPU_EL1_32BIT, KVM_ARM_VCPU_PMU_V3, KVM_ARM_VCPU_POWER_OFF, KVM_ARM_VCPU_PSCI_0_2,
};
use vm_hypervisor::aarch64::{CoreRegisters, SystemRegister, VcpuAarch64, VcpuInit};
use vm_hypervisor::{Error, Result};

use super::reg_id;
use crate::KvmVcpu;

/// Every core register of `r` with its id, in `struct kvm_regs` order.
fn core_fields(r: &mut CoreRegisters) -> Vec<(u64, &mut u64)> {
    let mut v = Vec::with_capacity(reg_id::NUM_X + 5 + reg_id::NUM_SPSR);
    for (n, x) in r.x.iter_mut().enumerate() {
        // n < 31 by the array's type, so the id exists.
        v.extend(reg_id::x(n).map(|id| (id, x)));
    }
    v.push((reg_id::SP, &mut r.sp));
    v.push((reg_id::PC, &mut r.pc));
    v.push((reg_id::PSTATE, &mut r.pstate));
    v.push((reg_id::SP_EL1, &mut r.sp_el1));
    v.push((reg_id::ELR_EL1, &mut r.elr_el1));
    for (n, s) in r.spsr.iter_mut().enumerate() {
        v.extend(reg_id::spsr(n).map(|id| (id, s)));
    }
    v
}

impl KvmVcpu {
    fn get_one(&self, id: u64) -> Result<u64> {
        let mut buf = [0u8; 8];
        self.as_vcpu_fd()
            .get_one_reg(id, &mut buf)
            .map_err(|e| Error::hypervisor("KVM_GET_ONE_REG", e))?;
        Ok(u64::from_ne_bytes(buf))
    }

    fn set_one(&self, id: u64, value: u64) -> Result<()> {
        self.as_vcpu_fd()
            .set_one_reg(id, &value.to_ne_bytes())
            .map_err(|e| Error::hypervisor("KVM_SET_ONE_REG", e))?;
        Ok(())
    }
}

fn sysreg_id(op: &'static str, reg: SystemRegister) -> Result<u64> {
    reg_id::sysreg(reg).ok_or_else(|| Error::InvalidArgument {
        op,
        reason: format!("system register encoding {reg:?} has a field wider than allowed"),
    })
}

impl VcpuAarch64 for KvmVcpu {
    fn init(&self, init: &VcpuInit) -> Result<()> {
        let mut kvi = self.preferred_target();
        for (wanted, bit) in [
            (init.power_off, KVM_ARM_VCPU_POWER_OFF),
            (init.el1_32bit, KVM_ARM_VCPU_EL1_32BIT),
            (init.psci_0_2, KVM_ARM_VCPU_PSCI_0_2),
            (init.pmu_v3, KVM_ARM_VCPU_PMU_V3),
        ] {
            if wanted {
                kvi.features[0] |= 1 << bit;
            }
        }
        self.as_vcpu_fd()
            .vcpu_init(&kvi)
            .map_err(|e| Error::hypervisor("KVM_ARM_VCPU_INIT", e))
    }

    fn get_core_registers(&self) -> Result<CoreRegisters> {
        let mut regs = CoreRegisters::default();
        for (id, value) in core_fields(&mut regs) {
            *value = self.get_one(id)?;
        }
        Ok(regs)
    }

    fn set_core_registers(&self, regs: &CoreRegisters) -> Result<()> {
        let mut copy = *regs;
        for (id, value) in core_fields(&mut copy) {
            self.set_one(id, *value)?;
        }
        Ok(())
    }

    fn get_system_register(&self, reg: SystemRegister) -> Result<u64> {
        self.get_one(sysreg_id("KVM_GET_ONE_REG", reg)?)
    }

    fn set_system_register(&self, reg: SystemRegister, value: u64) -> Result<()> {
        self.set_one(sysreg_id("KVM_SET_ONE_REG", reg)?, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_core_register_has_its_own_id() {
        let mut r = CoreRegisters::default();
        let fields = core_fields(&mut r);
        assert_eq!(fields.len(), 31 + 5 + 5);
        let mut ids: Vec<u64> = fields.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids[0], reg_id::x(0).unwrap());
        assert_eq!(ids[32], reg_id::PC);
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 41);
    }

    #[test]
    fn invalid_sysreg_is_a_typed_error() {
        assert!(matches!(
            sysreg_id("KVM_GET_ONE_REG", SystemRegister::new(4, 0, 0, 0, 0)),
            Err(Error::InvalidArgument {
                op: "KVM_GET_ONE_REG",
                ..
            })
        ));
    }
}
