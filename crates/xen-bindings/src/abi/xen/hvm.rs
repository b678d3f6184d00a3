// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! `hvm_op` hypercall (`hvm/hvm_op.h`) and HVM parameters (`hvm/params.h`).

use crate::abi::impl_pod;

/// `HVMOP_set_param`.
pub const HVMOP_SET_PARAM: u64 = 0;
/// `HVMOP_get_param`.
pub const HVMOP_GET_PARAM: u64 = 1;
/// `HVMOP_set_pci_intx_level`.
pub const HVMOP_SET_PCI_INTX_LEVEL: u64 = 2;
/// `HVMOP_set_isa_irq_level`.
pub const HVMOP_SET_ISA_IRQ_LEVEL: u64 = 3;
/// `HVMOP_set_pci_link_route`.
pub const HVMOP_SET_PCI_LINK_ROUTE: u64 = 4;

/// `struct xen_hvm_param`: argument of [`HVMOP_SET_PARAM`] / [`HVMOP_GET_PARAM`].
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct XenHvmParam {
    /// IN: the domain.
    pub domid: u16,
    /// Padding.
    pub pad: u16,
    /// IN: `HVM_PARAM_*`.
    pub index: u32,
    /// IN/OUT: the value.
    pub value: u64,
}

impl_pod!(XenHvmParam);

/// Event-channel callback of the guest.
pub const HVM_PARAM_CALLBACK_IRQ: u32 = 0;
/// [`HVM_PARAM_CALLBACK_IRQ`]: the bits that hold the callback's type.
pub const HVM_PARAM_CALLBACK_IRQ_TYPE_MASK: u64 = 0xff00_0000_0000_0000;
/// [`HVM_PARAM_CALLBACK_IRQ`] type (in the top byte): a PPI (Arm); the low byte is its
/// interrupt ID, bits 8 to 15 its flags.
pub const HVM_PARAM_CALLBACK_TYPE_PPI: u64 = 2;
/// Flags of a PPI callback: the mask.
pub const HVM_PARAM_CALLBACK_TYPE_PPI_FLAG_MASK: u64 = 0xff00;
/// Flags of a PPI callback: level-sensitive, active low.
pub const HVM_PARAM_CALLBACK_TYPE_PPI_FLAG_LOW_LEVEL: u64 = 2;
/// Guest frame of the xenstore ring.
pub const HVM_PARAM_STORE_PFN: u32 = 1;
/// Event channel of the xenstore ring.
pub const HVM_PARAM_STORE_EVTCHN: u32 = 2;
/// PAE enabled.
pub const HVM_PARAM_PAE_ENABLED: u32 = 4;
/// Guest frame of the default IOREQ server's synchronous page.
pub const HVM_PARAM_IOREQ_PFN: u32 = 5;
/// Guest frame of the default IOREQ server's buffered page.
pub const HVM_PARAM_BUFIOREQ_PFN: u32 = 6;
/// Viridian enlightenments.
pub const HVM_PARAM_VIRIDIAN: u32 = 9;
/// Timer mode.
pub const HVM_PARAM_TIMER_MODE: u32 = 10;
/// HPET enabled.
pub const HVM_PARAM_HPET_ENABLED: u32 = 11;
/// Identity-map page table.
pub const HVM_PARAM_IDENT_PT: u32 = 12;
/// The device-model domain.
pub const HVM_PARAM_DM_DOMAIN: u32 = 13;
/// ACPI S state.
pub const HVM_PARAM_ACPI_S_STATE: u32 = 14;
/// Guest frame of the PV console ring.
pub const HVM_PARAM_CONSOLE_PFN: u32 = 17;
/// Event channel of the PV console ring.
pub const HVM_PARAM_CONSOLE_EVTCHN: u32 = 18;
/// Location of the ACPI I/O ports.
pub const HVM_PARAM_ACPI_IOPORTS_LOCATION: u32 = 19;
/// Nested HVM.
pub const HVM_PARAM_NESTEDHVM: u32 = 24;
/// Guest frame of the paging ring.
pub const HVM_PARAM_PAGING_RING_PFN: u32 = 27;
/// Guest frame of the monitor (vm_event) ring.
pub const HVM_PARAM_MONITOR_RING_PFN: u32 = 28;
/// Guest frame of the memory-sharing ring.
pub const HVM_PARAM_SHARING_RING_PFN: u32 = 29;
/// Event channel of the default IOREQ server's buffered ring.
pub const HVM_PARAM_BUFIOREQ_EVTCHN: u32 = 26;
/// First guest frame of the IOREQ-server page pool.
pub const HVM_PARAM_IOREQ_SERVER_PFN: u32 = 32;
/// Number of pages in the IOREQ-server page pool.
pub const HVM_PARAM_NR_IOREQ_SERVER_PAGES: u32 = 33;
/// Alternate p2m mode.
pub const HVM_PARAM_ALTP2M: u32 = 35;
/// Number of HVM parameters (Xen 4.17 to 4.20).
pub const HVM_NR_PARAMS: u32 = 39;

/// `HVM_IOREQSRV_BUFIOREQ_OFF`: the IOREQ server has no buffered ring.
pub const HVM_IOREQSRV_BUFIOREQ_OFF: u8 = 0;
/// `HVM_IOREQSRV_BUFIOREQ_LEGACY`: buffered ring with the legacy (non-atomic) pointer update.
pub const HVM_IOREQSRV_BUFIOREQ_LEGACY: u8 = 1;
/// `HVM_IOREQSRV_BUFIOREQ_ATOMIC`: buffered ring whose pointer pair is read and rebased as one
/// atomic 64-bit word.
pub const HVM_IOREQSRV_BUFIOREQ_ATOMIC: u8 = 2;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts() {
        assert_layout!(
            XenHvmParam,
            size = 16,
            align = 8,
            domid = 0,
            pad = 2,
            index = 4,
            value = 8
        );
    }

    #[test]
    fn bufioreq_modes() {
        // hvm/hvm_op.h: OFF 0, LEGACY 1, ATOMIC 2.
        assert_eq!(HVM_IOREQSRV_BUFIOREQ_OFF, 0);
        assert_eq!(HVM_IOREQSRV_BUFIOREQ_LEGACY, 1);
        assert_eq!(HVM_IOREQSRV_BUFIOREQ_ATOMIC, 2);
    }
}
