// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! vCPU 0's entry state for an Arm guest: the arm64 boot protocol's registers
//! (vm-vcpu-ref's [`boot_registers`]: PC at the kernel, x0 the device tree, EL1h with DAIF
//! masked) as the `vcpu_guest_context` `XEN_DOMCTL_setvcpucontext` takes, with `SCTLR_EL1` as
//! Xen's toolstack sets it (MMU and caches off) and the vCPU online. The other vCPUs stay down
//! until the kernel starts them through PSCI.

use vm_vcpu_ref::arm64_boot::boot_registers;
use xen_bindings::abi::xen::arch_arm::{VcpuGuestContext, SCTLR_GUEST_INIT, VGCF_ONLINE};

/// The context of the boot vCPU entering the kernel at `entry` with the device tree at `dtb`.
pub fn boot_context(entry: u64, dtb: u64) -> VcpuGuestContext {
    let regs = boot_registers(entry, dtb);
    let mut ctx = VcpuGuestContext {
        flags: VGCF_ONLINE,
        sctlr: SCTLR_GUEST_INIT,
        ..Default::default()
    };
    ctx.user_regs.x = regs.x;
    ctx.user_regs.pc64 = regs.pc;
    ctx.user_regs.cpsr = regs.pstate;
    ctx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_boot_vcpu_enters_the_kernel_at_el1h_masked_with_the_tree_in_x0() {
        let c = boot_context(0x4000_0000, 0x4830_0000);
        assert_eq!(c.user_regs.pc64, 0x4000_0000);
        assert_eq!(c.user_regs.x[0], 0x4830_0000);
        assert_eq!(&c.user_regs.x[1..4], &[0, 0, 0]);
        assert_eq!(c.user_regs.cpsr, 0x3c5, "EL1h, D, A, I and F masked");
        assert_eq!(c.sctlr, 0x00c5_0078);
        assert_eq!(c.flags, 1, "online");
        assert_eq!((c.ttbr0, c.ttbr1, c.ttbcr), (0, 0, 0));
    }
}
