// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Arm vCPU state through the vCPU's context (`XEN_DOMCTL_getvcpucontext` /
//! `setvcpucontext`).
//!
//! Xen's Arm `vcpu_guest_context` holds the core registers, `SCTLR_EL1`, `TCR_EL1`, the two
//! translation table bases and whether the vCPU is online; that is what a device model can
//! read and write, so the system registers offered are those four. Two facts of Xen's Arm
//! code shape the rest (xen/arch/arm/domain.c, domctl.c):
//!
//! - a vCPU that never had a context loaded has none to read (`ENODATA`): the
//!   [`init`](VcpuAarch64::init) of the traits loads the reset state, as `KVM_ARM_VCPU_INIT`
//!   resets a KVM vCPU;
//! - loading a context brings the vCPU up when its `VGCF_online` flag is set and takes it
//!   down otherwise; Xen reports the flag back for a vCPU that is up, so a read, change and
//!   load keeps it as it was.
//!
//! The conversions are plain data, built and tested on every host; the trait is implemented
//! on aarch64 only.
#![cfg_attr(not(target_arch = "aarch64"), allow(dead_code))]

use vm_hypervisor::aarch64::{CoreRegisters, SystemRegister};
use vm_hypervisor::Error;
use xen_bindings::abi::xen::arch_arm::{VcpuGuestContext, SCTLR_GUEST_INIT, VGCF_ONLINE};

/// `SCTLR_EL1`.
const SCTLR_EL1: SystemRegister = SystemRegister::new(3, 0, 1, 0, 0);
/// `TTBR0_EL1`.
const TTBR0_EL1: SystemRegister = SystemRegister::new(3, 0, 2, 0, 0);
/// `TTBR1_EL1`.
const TTBR1_EL1: SystemRegister = SystemRegister::new(3, 0, 2, 0, 1);
/// `TCR_EL1` (`ttbcr` in Xen's context).
const TCR_EL1: SystemRegister = SystemRegister::new(3, 0, 2, 0, 2);

/// The state `init` gives a vCPU: what an arm64 CPU comes out of reset with at EL1 (EL1h,
/// D, A, I and F masked, MMU and caches off), online unless `power_off`.
fn reset_context(power_off: bool) -> VcpuGuestContext {
    let mut ctx = VcpuGuestContext {
        flags: if power_off { 0 } else { VGCF_ONLINE },
        sctlr: SCTLR_GUEST_INIT,
        ..Default::default()
    };
    ctx.user_regs.cpsr = CoreRegisters::PSTATE_EL1H_DAIF_MASKED;
    ctx
}

/// The core registers of `ctx`.
fn core_of(ctx: &VcpuGuestContext) -> CoreRegisters {
    let r = &ctx.user_regs;
    CoreRegisters {
        x: r.x,
        sp: r.sp_el0,
        pc: r.pc64,
        pstate: r.cpsr,
        sp_el1: r.sp_el1,
        elr_el1: r.elr_el1,
        // The traits' order (KVM's): SPSR_EL1, then the AArch32 abort, undefined, IRQ and
        // FIQ banks.
        spsr: [
            r.spsr_el1,
            r.spsr_abt.into(),
            r.spsr_und.into(),
            r.spsr_irq.into(),
            r.spsr_fiq.into(),
        ],
    }
}

/// `ctx` with `regs` as its core registers; `None` when an AArch32 SPSR does not fit Xen's
/// 32 bits.
fn with_core(mut ctx: VcpuGuestContext, regs: &CoreRegisters) -> Option<VcpuGuestContext> {
    let r = &mut ctx.user_regs;
    r.x = regs.x;
    r.sp_el0 = regs.sp;
    r.pc64 = regs.pc;
    r.cpsr = regs.pstate;
    r.sp_el1 = regs.sp_el1;
    r.elr_el1 = regs.elr_el1;
    r.spsr_el1 = regs.spsr[0];
    r.spsr_abt = regs.spsr[1].try_into().ok()?;
    r.spsr_und = regs.spsr[2].try_into().ok()?;
    r.spsr_irq = regs.spsr[3].try_into().ok()?;
    r.spsr_fiq = regs.spsr[4].try_into().ok()?;
    Some(ctx)
}

/// The field of `ctx` that holds `reg`, if Xen's context has one.
fn system_field(ctx: &mut VcpuGuestContext, reg: SystemRegister) -> Option<&mut u64> {
    match reg {
        SCTLR_EL1 => Some(&mut ctx.sctlr),
        TTBR0_EL1 => Some(&mut ctx.ttbr0),
        TTBR1_EL1 => Some(&mut ctx.ttbr1),
        TCR_EL1 => Some(&mut ctx.ttbcr),
        _ => None,
    }
}

fn no_such_register(op: &'static str, reg: SystemRegister) -> Error {
    Error::InvalidArgument {
        op,
        reason: format!(
            "{reg:?} is not in Xen's Arm vCPU context (SCTLR_EL1, TCR_EL1, TTBR0_EL1 and \
             TTBR1_EL1 are)"
        ),
    }
}

#[cfg(target_arch = "aarch64")]
mod vcpu {
    use vm_hypervisor::aarch64::{CoreRegisters, SystemRegister, VcpuAarch64, VcpuInit};
    use vm_hypervisor::{Error, Result};
    use xen_bindings::abi::xen::arch_arm::VcpuGuestContext;

    use super::super::vcpu::XenVcpu;
    use super::super::xen_error;
    use super::{core_of, no_such_register, reset_context, system_field, with_core};

    impl XenVcpu {
        /// This vCPU's context; `op` names the caller in the error for a vCPU never initialised.
        fn arm_context(&self, op: &'static str) -> Result<VcpuGuestContext> {
            let (privcmd, domid) = (&self.shared.privcmd, self.shared.domid);
            privcmd
                .vcpu_context(domid, self.id)
                .map_err(|e| match e.errno() {
                    Some(libc::ENODATA) => Error::InvalidArgument {
                        op,
                        reason: format!(
                            "vCPU {} of domain {domid} has no state yet: `init` it first",
                            self.id
                        ),
                    },
                    _ => xen_error("getvcpucontext", e),
                })
        }

        fn load_arm_context(&self, ctx: &VcpuGuestContext) -> Result<()> {
            let (privcmd, domid) = (&self.shared.privcmd, self.shared.domid);
            privcmd
                .set_vcpu_context(domid, self.id, ctx)
                .map_err(|e| xen_error("setvcpucontext", e))
        }
    }

    /// Register state through the vCPU context (see this module's documentation).
    impl VcpuAarch64 for XenVcpu {
        /// Loads the reset state: online, or down with `power_off` (for a secondary CPU that
        /// the guest starts through PSCI). A Xen Arm domain is AArch64 (the builder made it so)
        /// and has no vPMU: `el1_32bit` and `pmu_v3` are refused. PSCI is always there (Xen
        /// offers 1.1), with or without `psci_0_2`.
        fn init(&self, init: &VcpuInit) -> Result<()> {
            for (wanted, what) in [
                (init.el1_32bit, "an AArch32 EL1 (the domain is AArch64)"),
                (init.pmu_v3, "a PMUv3 (the domain has no vPMU)"),
            ] {
                if wanted {
                    return Err(Error::InvalidArgument {
                        op: "init",
                        reason: format!("Xen vCPU with {what}"),
                    });
                }
            }
            self.load_arm_context(&reset_context(init.power_off))
        }

        fn get_core_registers(&self) -> Result<CoreRegisters> {
            Ok(core_of(&self.arm_context("get_core_registers")?))
        }

        fn set_core_registers(&self, regs: &CoreRegisters) -> Result<()> {
            let ctx = self.arm_context("set_core_registers")?;
            let ctx = with_core(ctx, regs).ok_or_else(|| Error::InvalidArgument {
                op: "set_core_registers",
                reason: "an AArch32 SPSR wider than 32 bits".into(),
            })?;
            self.load_arm_context(&ctx)
        }

        fn get_system_register(&self, reg: SystemRegister) -> Result<u64> {
            let mut ctx = self.arm_context("get_system_register")?;
            system_field(&mut ctx, reg)
                .map(|v| *v)
                .ok_or_else(|| no_such_register("get_system_register", reg))
        }

        fn set_system_register(&self, reg: SystemRegister, value: u64) -> Result<()> {
            let mut ctx = self.arm_context("set_system_register")?;
            *system_field(&mut ctx, reg)
                .ok_or_else(|| no_such_register("set_system_register", reg))? = value;
            self.load_arm_context(&ctx)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_is_el1h_masked_with_the_mmu_off_and_online_unless_powered_off() {
        let c = reset_context(false);
        assert_eq!(c.flags, VGCF_ONLINE);
        assert_eq!(c.user_regs.cpsr, 0x3c5);
        assert_eq!(c.sctlr, SCTLR_GUEST_INIT);
        assert_eq!(c.user_regs.pc64, 0);
        assert_eq!(reset_context(true).flags, 0);
    }

    #[test]
    fn core_registers_round_trip_through_the_context_and_keep_the_rest() {
        let mut regs = CoreRegisters::default();
        for (i, x) in regs.x.iter_mut().enumerate() {
            *x = 0x1000 + i as u64;
        }
        regs.sp = 1;
        regs.pc = 2;
        regs.pstate = 3;
        regs.sp_el1 = 4;
        regs.elr_el1 = 5;
        regs.spsr = [6, 7, 8, 9, 10];
        let mut base = reset_context(false);
        base.ttbr1 = 0xabc;
        let ctx = with_core(base, &regs).unwrap();
        assert_eq!(core_of(&ctx), regs);
        assert_eq!(
            (ctx.flags, ctx.sctlr, ctx.ttbr1),
            (VGCF_ONLINE, SCTLR_GUEST_INIT, 0xabc)
        );
        assert_eq!(
            (ctx.user_regs.spsr_abt, ctx.user_regs.spsr_fiq),
            (7, 10),
            "the AArch32 banks in the traits' order"
        );
        regs.spsr[4] = 1 << 32;
        assert!(with_core(base, &regs).is_none());
    }

    #[test]
    fn the_four_system_registers_in_the_context_are_reachable_and_no_other() {
        let mut ctx = VcpuGuestContext::default();
        for (i, reg) in [SCTLR_EL1, TTBR0_EL1, TTBR1_EL1, TCR_EL1]
            .into_iter()
            .enumerate()
        {
            *system_field(&mut ctx, reg).unwrap() = i as u64 + 1;
        }
        assert_eq!((ctx.sctlr, ctx.ttbr0, ctx.ttbr1, ctx.ttbcr), (1, 2, 3, 4));
        assert!(system_field(&mut ctx, SystemRegister::MPIDR_EL1).is_none());
    }
}
