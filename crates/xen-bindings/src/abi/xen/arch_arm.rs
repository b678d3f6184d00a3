// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The Arm part of the public interface (`arch-arm.h`): a vCPU's initial register state as
//! `XEN_DOMCTL_setvcpucontext` takes it on an arm64 hypervisor, and the guest platform Xen
//! emulates (where the toolstack must put the GIC, grant-table space and magic pages in its
//! device tree, and which interrupts Xen uses).
//!
//! Plain data, defined on every host so that code laying out an Arm guest can be tested on
//! any; the layouts are those of an aarch64 tools domain (checked against the 4.17 and 4.20
//! headers, which agree).

use crate::abi::impl_pod;

/// `struct vcpu_guest_core_regs` (aarch64 names): the general registers, the return address
/// and mode, and the EL1 banked registers.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct VcpuGuestCoreRegs {
    /// x0 to x30.
    pub x: [u64; 31],
    /// The PC (`ELR_EL2` when entering the guest).
    pub pc64: u64,
    /// PSTATE (`SPSR_EL2` when entering the guest): [`PSR_MODE_EL1H`] with masks.
    pub cpsr: u64,
    /// `SPSR_EL1`.
    pub spsr_el1: u64,
    /// AArch32 only: SPSR of FIQ mode.
    pub spsr_fiq: u32,
    /// AArch32 only: SPSR of IRQ mode.
    pub spsr_irq: u32,
    /// AArch32 only: SPSR of undefined mode.
    pub spsr_und: u32,
    /// AArch32 only: SPSR of abort mode.
    pub spsr_abt: u32,
    /// `SP_EL0`.
    pub sp_el0: u64,
    /// `SP_EL1`.
    pub sp_el1: u64,
    /// `ELR_EL1`.
    pub elr_el1: u64,
}

/// `struct vcpu_guest_context` of Arm: what `XEN_DOMCTL_setvcpucontext` loads into a vCPU.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct VcpuGuestContext {
    /// `VGCF_*`: [`VGCF_ONLINE`] brings the vCPU up.
    pub flags: u32,
    /// Padding (implicit in C: the registers are 8-byte aligned).
    pub _pad: u32,
    /// The core registers.
    pub user_regs: VcpuGuestCoreRegs,
    /// `SCTLR_EL1`.
    pub sctlr: u64,
    /// `TCR_EL1`.
    pub ttbcr: u64,
    /// `TTBR0_EL1`.
    pub ttbr0: u64,
    /// `TTBR1_EL1`.
    pub ttbr1: u64,
}

impl_pod!(VcpuGuestCoreRegs, VcpuGuestContext);

/// `VGCF_online`: the vCPU runs once the domain is unpaused.
pub const VGCF_ONLINE: u32 = 1 << 0;
/// `PSR_MODE_EL1h`: EL1 with its own stack pointer.
pub const PSR_MODE_EL1H: u64 = 0x05;
/// `PSR_FIQ_MASK`.
pub const PSR_FIQ_MASK: u64 = 1 << 6;
/// `PSR_IRQ_MASK`.
pub const PSR_IRQ_MASK: u64 = 1 << 7;
/// `PSR_ABT_MASK` (SError).
pub const PSR_ABT_MASK: u64 = 1 << 8;
/// `PSR_DBG_MASK` (arm64: debug exceptions).
pub const PSR_DBG_MASK: u64 = 1 << 9;
/// `SCTLR_GUEST_INIT`: the `SCTLR_EL1` Xen and its toolstack give a new vCPU (MMU and caches
/// off, the RES1 bits set).
pub const SCTLR_GUEST_INIT: u64 = 0x00c5_0078;

/// `XEN_DOMCTL_CONFIG_GIC_NATIVE`: createdomain lets Xen pick the host's GIC version and
/// writes the one picked back.
pub const XEN_DOMCTL_CONFIG_GIC_NATIVE: u8 = 0;
/// `XEN_DOMCTL_CONFIG_GIC_V2`.
pub const XEN_DOMCTL_CONFIG_GIC_V2: u8 = 1;
/// `XEN_DOMCTL_CONFIG_GIC_V3`.
pub const XEN_DOMCTL_CONFIG_GIC_V3: u8 = 2;
/// `XEN_DOMCTL_CONFIG_TEE_NONE`.
pub const XEN_DOMCTL_CONFIG_TEE_NONE: u16 = 0;

/// `GUEST_GICD_BASE`: the GICv2 distributor.
pub const GUEST_GICD_BASE: u64 = 0x0300_1000;
/// `GUEST_GICD_SIZE`.
pub const GUEST_GICD_SIZE: u64 = 0x0000_1000;
/// `GUEST_GICC_BASE`: the GICv2 CPU interface.
pub const GUEST_GICC_BASE: u64 = 0x0300_2000;
/// `GUEST_GICC_SIZE`.
pub const GUEST_GICC_SIZE: u64 = 0x0000_2000;
/// `GUEST_GICV3_GICD_BASE`: the GICv3 distributor.
pub const GUEST_GICV3_GICD_BASE: u64 = 0x0300_1000;
/// `GUEST_GICV3_GICD_SIZE`.
pub const GUEST_GICV3_GICD_SIZE: u64 = 0x0001_0000;
/// `GUEST_GICV3_GICR0_BASE`: the redistributors of vCPUs 0 to 127.
pub const GUEST_GICV3_GICR0_BASE: u64 = 0x0302_0000;
/// `GUEST_GICV3_GICR0_SIZE`.
pub const GUEST_GICV3_GICR0_SIZE: u64 = 0x0100_0000;
/// `GUEST_GNTTAB_BASE`: where the guest maps its grant table (16 MiB reserved).
pub const GUEST_GNTTAB_BASE: u64 = 0x3800_0000;
/// `GUEST_GNTTAB_SIZE`.
pub const GUEST_GNTTAB_SIZE: u64 = 0x0100_0000;
/// `GUEST_MAGIC_BASE`: the toolstack's pages (console and xenstore rings...).
pub const GUEST_MAGIC_BASE: u64 = 0x3900_0000;
/// `GUEST_MAGIC_SIZE`.
pub const GUEST_MAGIC_SIZE: u64 = 0x0100_0000;
/// `GUEST_RAM0_BASE`: the first RAM bank (3 GiB at 1 GiB).
pub const GUEST_RAM0_BASE: u64 = 0x4000_0000;
/// `GUEST_RAM0_SIZE`.
pub const GUEST_RAM0_SIZE: u64 = 0xc000_0000;
/// `GUEST_MAX_VCPUS`.
pub const GUEST_MAX_VCPUS: u32 = 128;
/// `GUEST_TIMER_VIRT_PPI` (interrupt ID).
pub const GUEST_TIMER_VIRT_PPI: u32 = 27;
/// `GUEST_TIMER_PHYS_S_PPI` (interrupt ID).
pub const GUEST_TIMER_PHYS_S_PPI: u32 = 29;
/// `GUEST_TIMER_PHYS_NS_PPI` (interrupt ID).
pub const GUEST_TIMER_PHYS_NS_PPI: u32 = 30;
/// `GUEST_EVTCHN_PPI`: the event-channel upcall (interrupt ID).
pub const GUEST_EVTCHN_PPI: u32 = 31;
/// `GUEST_PL011_BASE`: the virtual SBSA UART (vPL011) Xen emulates when asked
/// (`XEN_DOMCTL_vuart_op`).
pub const GUEST_PL011_BASE: u64 = 0x2200_0000;
/// `GUEST_PL011_SIZE`.
pub const GUEST_PL011_SIZE: u64 = 0x0000_1000;
/// `GUEST_VPL011_SPI`: its interrupt (interrupt ID).
pub const GUEST_VPL011_SPI: u32 = 32;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts() {
        assert_layout!(
            VcpuGuestCoreRegs,
            size = 312,
            align = 8,
            x = 0,
            pc64 = 248,
            cpsr = 256,
            spsr_el1 = 264,
            spsr_fiq = 272,
            spsr_irq = 276,
            spsr_und = 280,
            spsr_abt = 284,
            sp_el0 = 288,
            sp_el1 = 296,
            elr_el1 = 304
        );
        assert_layout!(
            VcpuGuestContext,
            size = 352,
            align = 8,
            flags = 0,
            user_regs = 8,
            sctlr = 320,
            ttbcr = 328,
            ttbr0 = 336,
            ttbr1 = 344
        );
    }

    #[test]
    fn the_guest64_entry_mode_is_el1h_with_interrupts_masked() {
        // PSR_GUEST64_INIT of the header.
        assert_eq!(
            PSR_ABT_MASK | PSR_FIQ_MASK | PSR_IRQ_MASK | PSR_MODE_EL1H,
            0x1c5
        );
        assert_eq!(PSR_DBG_MASK, 0x200);
    }

    #[test]
    fn the_vpl011_sits_where_the_public_header_puts_it() {
        assert_eq!(
            (GUEST_PL011_BASE, GUEST_PL011_SIZE, GUEST_VPL011_SPI),
            (0x2200_0000, 0x1000, 32)
        );
    }
}
