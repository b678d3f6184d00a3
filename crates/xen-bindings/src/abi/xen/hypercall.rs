// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Hypercall numbers (`xen.h`, `__HYPERVISOR_*`), the `op` of a privcmd hypercall.

/// `__HYPERVISOR_memory_op`.
pub const MEMORY_OP: u64 = 12;
/// `__HYPERVISOR_multicall`.
pub const MULTICALL: u64 = 13;
/// `__HYPERVISOR_xen_version`.
pub const XEN_VERSION: u64 = 17;
/// `__HYPERVISOR_console_io`.
pub const CONSOLE_IO: u64 = 18;
/// `__HYPERVISOR_grant_table_op`.
pub const GRANT_TABLE_OP: u64 = 20;
/// `__HYPERVISOR_vcpu_op`.
pub const VCPU_OP: u64 = 24;
/// `__HYPERVISOR_xsm_op`.
pub const XSM_OP: u64 = 27;
/// `__HYPERVISOR_sched_op`.
pub const SCHED_OP: u64 = 29;
/// `SCHEDOP_yield` (`public/sched.h`): `sched_op`'s command that gives the calling vCPU's
/// physical CPU to whatever else Xen has to run there, and comes back.
pub const SCHEDOP_YIELD: u64 = 0;
/// `__HYPERVISOR_event_channel_op`.
pub const EVENT_CHANNEL_OP: u64 = 32;
/// `__HYPERVISOR_physdev_op`.
pub const PHYSDEV_OP: u64 = 33;
/// `__HYPERVISOR_hvm_op`.
pub const HVM_OP: u64 = 34;
/// `__HYPERVISOR_sysctl`.
pub const SYSCTL: u64 = 35;
/// `__HYPERVISOR_domctl`.
pub const DOMCTL: u64 = 36;
/// `__HYPERVISOR_argo_op`.
pub const ARGO_OP: u64 = 39;
/// `__HYPERVISOR_dm_op`.
pub const DM_OP: u64 = 41;
/// `__HYPERVISOR_hypfs_op`.
pub const HYPFS_OP: u64 = 42;

#[cfg(test)]
mod tests {
    #[test]
    fn numbers() {
        assert_eq!(
            [
                super::MEMORY_OP,
                super::XEN_VERSION,
                super::GRANT_TABLE_OP,
                super::EVENT_CHANNEL_OP
            ],
            [12, 17, 20, 32]
        );
        assert_eq!(
            [super::HVM_OP, super::SYSCTL, super::DOMCTL, super::DM_OP],
            [34, 35, 36, 41]
        );
        assert_eq!([super::SCHED_OP, super::SCHEDOP_YIELD], [29, 0]);
    }
}
