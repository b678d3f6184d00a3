// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! [`KvmVm`]: one KVM virtual machine.

use std::collections::BTreeSet;
use std::sync::{Mutex, MutexGuard};

use kvm_bindings::{
    kvm_msi, kvm_userspace_memory_region, KVM_MEM_LOG_DIRTY_PAGES, KVM_MEM_READONLY,
    KVM_MSI_VALID_DEVID,
};
use kvm_ioctls::{IoEventAddress as KvmIoEventAddress, NoDatamatch, VmFd};
use vm_hypervisor::{
    Capability, DataMatch, Error, EventFd, IoEventAddress, MemoryRegion, MemoryRegionTable,
    MsiMessage, Result, Vm,
};

use crate::hypervisor::has_cap;
use crate::vcpu::KvmVcpu;

/// A KVM VM.
#[derive(Debug)]
pub struct KvmVm {
    fd: VmFd,
    max_vcpu_id: u32,
    max_vcpus: u32,
    vcpus: Mutex<BTreeSet<u32>>,
    regions: Mutex<MemoryRegionTable>,
}

fn clamp_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn kvm_ioevent_addr(addr: IoEventAddress) -> Result<KvmIoEventAddress> {
    match addr {
        IoEventAddress::Pio(p) => Ok(KvmIoEventAddress::Pio(u64::from(p))),
        IoEventAddress::Mmio(a) => Ok(KvmIoEventAddress::Mmio(a)),
        other => Err(Error::InvalidArgument {
            op: "KVM_IOEVENTFD",
            reason: format!("address kind {other:?} is not known to KVM"),
        }),
    }
}

impl KvmVm {
    pub(crate) fn new(kvm: &kvm_ioctls::Kvm, fd: VmFd) -> Result<Self> {
        Ok(Self {
            fd,
            max_vcpu_id: clamp_u32(kvm.get_max_vcpu_id()),
            max_vcpus: clamp_u32(kvm.get_max_vcpus()),
            vcpus: Mutex::new(BTreeSet::new()),
            regions: Mutex::new(MemoryRegionTable::new(clamp_u32(kvm.get_nr_memslots()))),
        })
    }

    /// The kvm-ioctls VM handle, for what the traits do not cover.
    pub fn as_vm_fd(&self) -> &VmFd {
        &self.fd
    }

    fn regions(&self) -> MutexGuard<'_, MemoryRegionTable> {
        // The table is only changed after its checks passed, so a panic
        // elsewhere cannot have left it half-updated.
        self.regions.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn vcpu_ids(&self) -> MutexGuard<'_, BTreeSet<u32>> {
        self.vcpus.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn ioevent(
        &self,
        fd: &EventFd,
        addr: IoEventAddress,
        datamatch: DataMatch,
        register: bool,
    ) -> Result<()> {
        let addr = kvm_ioevent_addr(addr)?;
        let vm = &self.fd;
        let r = match (datamatch, register) {
            (DataMatch::Any, true) => vm.register_ioevent(fd, &addr, NoDatamatch),
            (DataMatch::Any, false) => vm.unregister_ioevent(fd, &addr, NoDatamatch),
            (DataMatch::U8(v), true) => vm.register_ioevent(fd, &addr, v),
            (DataMatch::U8(v), false) => vm.unregister_ioevent(fd, &addr, v),
            (DataMatch::U16(v), true) => vm.register_ioevent(fd, &addr, v),
            (DataMatch::U16(v), false) => vm.unregister_ioevent(fd, &addr, v),
            (DataMatch::U32(v), true) => vm.register_ioevent(fd, &addr, v),
            (DataMatch::U32(v), false) => vm.unregister_ioevent(fd, &addr, v),
            (DataMatch::U64(v), true) => vm.register_ioevent(fd, &addr, v),
            (DataMatch::U64(v), false) => vm.unregister_ioevent(fd, &addr, v),
            (other, _) => {
                return Err(Error::InvalidArgument {
                    op: "KVM_IOEVENTFD",
                    reason: format!("datamatch {other:?} is not known to KVM"),
                })
            }
        };
        r.map_err(|e| Error::hypervisor("KVM_IOEVENTFD", e))
    }
}

impl Vm for KvmVm {
    type Vcpu = KvmVcpu;

    fn check_capability(&self, cap: Capability) -> bool {
        match cap {
            Capability::MultipleVcpus => self.max_vcpus > 1,
            _ => has_cap(cap, |c| self.fd.check_extension(c)),
        }
    }

    fn max_vcpu_id(&self) -> u32 {
        self.max_vcpu_id
    }

    fn create_vcpu(&self, id: u32) -> Result<KvmVcpu> {
        if id >= self.max_vcpu_id {
            return Err(Error::VcpuIdOutOfRange {
                id,
                max_id: self.max_vcpu_id,
            });
        }
        let mut ids = self.vcpu_ids();
        if ids.contains(&id) {
            return Err(Error::VcpuIdInUse { id });
        }
        if clamp_u32(ids.len()) >= self.max_vcpus {
            return Err(Error::TooManyVcpus {
                id,
                max_vcpus: self.max_vcpus,
            });
        }
        // Asked before the vCPU exists: KVM cannot destroy a vCPU again, so
        // nothing may fail between its creation and recording its id.
        #[cfg(target_arch = "aarch64")]
        let preferred_target = {
            let mut kvi = kvm_bindings::kvm_vcpu_init::default();
            self.fd
                .get_preferred_target(&mut kvi)
                .map_err(|e| Error::hypervisor("KVM_ARM_PREFERRED_TARGET", e))?;
            kvi
        };
        let fd = self
            .fd
            .create_vcpu(u64::from(id))
            .map_err(|e| Error::hypervisor("KVM_CREATE_VCPU", e))?;
        ids.insert(id);
        Ok(KvmVcpu::new(
            fd,
            id,
            self.fd.run_size(),
            #[cfg(target_arch = "aarch64")]
            preferred_target,
        ))
    }

    unsafe fn set_memory_region(&self, region: MemoryRegion) -> Result<()> {
        let mut table = self.regions();
        table.check_insert(&region)?;
        if region.flags.readonly && !self.check_capability(Capability::ReadonlyMemory) {
            return Err(Error::Unsupported {
                capability: Capability::ReadonlyMemory,
            });
        }
        let mut flags = 0;
        if region.flags.readonly {
            flags |= KVM_MEM_READONLY;
        }
        if region.flags.log_dirty {
            flags |= KVM_MEM_LOG_DIRTY_PAGES;
        }
        let kregion = kvm_userspace_memory_region {
            slot: region.slot,
            flags,
            guest_phys_addr: region.guest_phys_addr,
            memory_size: region.size,
            userspace_addr: region.host_addr,
        };
        // SAFETY: the caller guarantees, per this method's contract, that the
        // host range is mapped and stays mapped while the slot exists; the
        // table check above rules out overlap with other slots.
        unsafe { self.fd.set_user_memory_region(kregion) }
            .map_err(|e| Error::hypervisor("KVM_SET_USER_MEMORY_REGION", e))?;
        table.insert(region)
    }

    fn remove_memory_region(&self, slot: u32) -> Result<MemoryRegion> {
        let mut table = self.regions();
        let region = *table.get(slot)?;
        let kregion = kvm_userspace_memory_region {
            slot,
            flags: 0,
            guest_phys_addr: region.guest_phys_addr,
            memory_size: 0,
            userspace_addr: region.host_addr,
        };
        // SAFETY: a zero-sized region deletes the slot; KVM stops using the
        // host memory, so no memory safety condition remains.
        unsafe { self.fd.set_user_memory_region(kregion) }
            .map_err(|e| Error::hypervisor("KVM_SET_USER_MEMORY_REGION", e))?;
        table.remove(slot)
    }

    fn memory_regions(&self) -> Vec<MemoryRegion> {
        self.regions().iter().copied().collect()
    }

    fn get_dirty_log(&self, slot: u32) -> Result<Vec<u64>> {
        let region = *self.regions().get(slot)?;
        if !region.flags.log_dirty {
            return Err(Error::DirtyLogNotEnabled { slot });
        }
        let size = usize::try_from(region.size).map_err(|_| Error::InvalidArgument {
            op: "KVM_GET_DIRTY_LOG",
            reason: format!("region size {:#x} does not fit usize", region.size),
        })?;
        self.fd
            .get_dirty_log(slot, size)
            .map_err(|e| Error::hypervisor("KVM_GET_DIRTY_LOG", e))
    }

    fn set_irq_line(&self, irq: u32, level: bool) -> Result<()> {
        self.fd
            .set_irq_line(irq, level)
            .map_err(|e| Error::hypervisor("KVM_IRQ_LINE", e))
    }

    fn register_irqfd(&self, fd: &EventFd, gsi: u32) -> Result<()> {
        self.fd
            .register_irqfd(fd, gsi)
            .map_err(|e| Error::hypervisor("KVM_IRQFD", e))
    }

    fn unregister_irqfd(&self, fd: &EventFd, gsi: u32) -> Result<()> {
        self.fd
            .unregister_irqfd(fd, gsi)
            .map_err(|e| Error::hypervisor("KVM_IRQFD (deassign)", e))
    }

    fn register_ioevent(
        &self,
        fd: &EventFd,
        addr: IoEventAddress,
        datamatch: DataMatch,
    ) -> Result<()> {
        self.ioevent(fd, addr, datamatch, true)
    }

    fn unregister_ioevent(
        &self,
        fd: &EventFd,
        addr: IoEventAddress,
        datamatch: DataMatch,
    ) -> Result<()> {
        self.ioevent(fd, addr, datamatch, false)
    }

    fn signal_msi(&self, msi: MsiMessage) -> Result<bool> {
        let mut k = kvm_msi {
            // Split of the 64-bit address into the ABI's two halves.
            address_lo: msi.address as u32,
            address_hi: (msi.address >> 32) as u32,
            data: msi.data,
            ..Default::default()
        };
        if let Some(devid) = msi.devid {
            k.flags = KVM_MSI_VALID_DEVID;
            k.devid = devid;
        }
        let delivered = self
            .fd
            .signal_msi(k)
            .map_err(|e| Error::hypervisor("KVM_SIGNAL_MSI", e))?;
        Ok(delivered > 0)
    }
}
