// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! [`KvmGicV3`]: KVM's in-kernel GICv3 (`KVM_DEV_TYPE_ARM_VGIC_V3`).

use kvm_bindings::{
    kvm_create_device, kvm_device_attr, kvm_device_type_KVM_DEV_TYPE_ARM_VGIC_V3,
    KVM_DEV_ARM_VGIC_CTRL_INIT, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_DEV_ARM_VGIC_GRP_CTRL,
    KVM_VGIC_V3_ADDR_TYPE_DIST, KVM_VGIC_V3_ADDR_TYPE_REDIST,
};
use kvm_ioctls::DeviceFd;
use vm_hypervisor::{Error, Result};

use crate::KvmVm;

/// An in-kernel GICv3 of a [`KvmVm`].
#[derive(Debug)]
pub struct KvmGicV3 {
    fd: DeviceFd,
}

/// Alignment KVM requires of both GICv3 frames (64 KiB).
const FRAME_ALIGN: u64 = 0x1_0000;

impl KvmVm {
    /// Create the VM's GICv3 with its distributor at `dist_addr` and the
    /// redistributors (128 KiB per vCPU, contiguous) at `redist_addr`;
    /// call [`KvmGicV3::finalize`] once every vCPU exists, before running.
    pub fn create_gic_v3(&self, dist_addr: u64, redist_addr: u64) -> Result<KvmGicV3> {
        for (what, addr) in [("distributor", dist_addr), ("redistributor", redist_addr)] {
            if addr % FRAME_ALIGN != 0 {
                return Err(Error::InvalidArgument {
                    op: "KVM_DEV_ARM_VGIC_GRP_ADDR",
                    reason: format!("{what} address {addr:#x} is not 64 KiB aligned"),
                });
            }
        }
        let mut dev = kvm_create_device {
            type_: kvm_device_type_KVM_DEV_TYPE_ARM_VGIC_V3,
            fd: 0,
            flags: 0,
        };
        let fd = self
            .as_vm_fd()
            .create_device(&mut dev)
            .map_err(|e| Error::hypervisor("KVM_CREATE_DEVICE (GICv3)", e))?;
        let gic = KvmGicV3 { fd };
        gic.set_addr(KVM_VGIC_V3_ADDR_TYPE_DIST, dist_addr)?;
        gic.set_addr(KVM_VGIC_V3_ADDR_TYPE_REDIST, redist_addr)?;
        Ok(gic)
    }
}

impl KvmGicV3 {
    fn set_addr(&self, kind: u32, addr: u64) -> Result<()> {
        // KVM reads the address through this pointer during the call.
        let value = addr;
        let attr = kvm_device_attr {
            flags: 0,
            group: KVM_DEV_ARM_VGIC_GRP_ADDR,
            attr: u64::from(kind),
            addr: std::ptr::addr_of!(value) as u64,
        };
        self.fd
            .set_device_attr(&attr)
            .map_err(|e| Error::hypervisor("KVM_DEV_ARM_VGIC_GRP_ADDR", e))
    }

    /// Initialise the GIC (`KVM_DEV_ARM_VGIC_CTRL_INIT`): after every vCPU
    /// has been created, before the first one runs.
    pub fn finalize(&self) -> Result<()> {
        let attr = kvm_device_attr {
            flags: 0,
            group: KVM_DEV_ARM_VGIC_GRP_CTRL,
            attr: u64::from(KVM_DEV_ARM_VGIC_CTRL_INIT),
            addr: 0,
        };
        self.fd
            .set_device_attr(&attr)
            .map_err(|e| Error::hypervisor("KVM_DEV_ARM_VGIC_CTRL_INIT", e))
    }

    /// The kvm-ioctls device handle, for what this type does not cover.
    pub fn as_device_fd(&self) -> &DeviceFd {
        &self.fd
    }
}
