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
    is_doorbell_ioevent, Capability, DataMatch, Error, EventFd, IoEventAddress, IoSpace, IrqLine,
    MemoryRegion, MemoryRegionTable, MsiMessage, Result, Vm,
};
use vm_memory::{
    GuestAddress, GuestAddressSpace, GuestMemoryAtomic, GuestMemoryMmap, GuestRegionMmap,
    MmapRegion,
};

use crate::hypervisor::has_cap;
use crate::vcpu::KvmVcpu;

/// Guest-physical address of the three pages KVM on Intel VT without
/// unrestricted guest uses for a real-mode TSS, set when a [`KvmVm`] is made
/// (`KVM_SET_TSS_ADDR`, which KVM takes once per VM). Guest memory and
/// devices must leave `[KVM_TSS_ADDRESS, KVM_TSS_ADDRESS + 0x3000)` free;
/// it lies just below the 4 GiB boundary's firmware area, where PC memory
/// maps have a hole.
#[cfg(target_arch = "x86_64")]
pub const KVM_TSS_ADDRESS: u64 = 0xfffb_d000;

/// The guest memory devices of a [`KvmVm`] see: the regions given to
/// [`Vm::set_memory_region`], updated as regions come and go.
pub type KvmGuestMemory = GuestMemoryAtomic<GuestMemoryMmap>;

/// A KVM VM.
#[derive(Debug)]
pub struct KvmVm {
    fd: VmFd,
    max_vcpu_id: u32,
    max_vcpus: u32,
    vcpus: Mutex<BTreeSet<u32>>,
    /// The regions, numbered by the table with their KVM memory slot.
    regions: Mutex<MemoryRegionTable>,
    /// The same regions as vm-memory guest memory, changed only with
    /// `regions` locked.
    memory: KvmGuestMemory,
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

/// The `KVM_IRQ_LINE` number of `line`, the irqfd GSI being the same number
/// except for Arm SPIs, whose irqfd GSI is the SPI's index (interrupt id
/// minus 32) while `KVM_IRQ_LINE` takes the interrupt id with its type.
fn kvm_irq(line: IrqLine, for_irqfd: bool) -> Result<u32> {
    let unsupported = Err(Error::Unsupported {
        capability: line.capability(),
    });
    match line {
        #[cfg(target_arch = "x86_64")]
        IrqLine::Gsi(gsi) => Ok(gsi),
        // KVM's default routing makes ISA IRQ n GSI n, on the PIC and the IOAPIC.
        #[cfg(target_arch = "x86_64")]
        IrqLine::Isa(irq) if irq < 16 => Ok(u32::from(irq)),
        #[cfg(target_arch = "x86_64")]
        IrqLine::Isa(irq) => Err(Error::InvalidArgument {
            op: "KVM_IRQ_LINE",
            reason: format!("ISA IRQ {irq} is above 15"),
        }),
        #[cfg(target_arch = "aarch64")]
        IrqLine::Spi(id) if (32..1020).contains(&id) => Ok(if for_irqfd {
            id - 32
        } else {
            (kvm_bindings::KVM_ARM_IRQ_TYPE_SPI << kvm_bindings::KVM_ARM_IRQ_TYPE_SHIFT) | id
        }),
        #[cfg(target_arch = "aarch64")]
        IrqLine::Spi(id) => Err(Error::InvalidArgument {
            op: "KVM_IRQ_LINE",
            reason: format!("interrupt id {id} is not an SPI (32..1020)"),
        }),
        // PCI INTx routing belongs to the VMM's PCI host bridge on KVM: it drives the GSI
        // the pin is routed to.
        _ => {
            let _ = for_irqfd;
            unsupported
        }
    }
}

impl KvmVm {
    pub(crate) fn new(kvm: &kvm_ioctls::Kvm, fd: VmFd) -> Result<Self> {
        // A KVM-only need (Intel VT without unrestricted guest) that the neutral traits do not
        // carry: done here, before any vCPU can run.
        #[cfg(target_arch = "x86_64")]
        fd.set_tss_address(KVM_TSS_ADDRESS as usize)
            .map_err(|e| Error::hypervisor("KVM_SET_TSS_ADDR", e))?;
        Ok(Self {
            fd,
            max_vcpu_id: clamp_u32(kvm.get_max_vcpu_id()),
            max_vcpus: clamp_u32(kvm.get_max_vcpus()),
            vcpus: Mutex::new(BTreeSet::new()),
            regions: Mutex::new(MemoryRegionTable::new(clamp_u32(kvm.get_nr_memslots()))),
            memory: GuestMemoryAtomic::new(GuestMemoryMmap::default()),
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
        if !is_doorbell_ioevent(addr, datamatch) && !self.check_capability(Capability::IoeventfdAny)
        {
            return Err(Error::Unsupported {
                capability: Capability::IoeventfdAny,
            });
        }
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

/// Refuse an empty range, a range that wraps, and ports above 0xffff.
fn check_io_range(op: &'static str, space: IoSpace, base: u64, len: u64) -> Result<()> {
    let end = base.checked_add(len);
    let limit = match space {
        IoSpace::Pio => Some(0x1_0000),
        _ => None,
    };
    match (len, end, limit) {
        (0, _, _) | (_, None, _) => {}
        (_, Some(end), Some(limit)) if end > limit => {}
        _ => return Ok(()),
    }
    Err(Error::InvalidArgument {
        op,
        reason: format!("{space} range {base:#x}+{len:#x} is empty or out of the address space"),
    })
}

impl Vm for KvmVm {
    type Vcpu = KvmVcpu;
    type Memory = KvmGuestMemory;

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

    fn guest_memory(&self) -> KvmGuestMemory {
        self.memory.clone()
    }

    unsafe fn set_memory_region(&self, region: MemoryRegion) -> Result<()> {
        let mut table = self.regions();
        let slot = table.check_insert(&region)?;
        if region.flags.readonly && !self.check_capability(Capability::ReadonlyMemory) {
            return Err(Error::Unsupported {
                capability: Capability::ReadonlyMemory,
            });
        }
        let invalid = |reason: &'static str| Error::InvalidMemoryRegion {
            guest_phys_addr: region.guest_phys_addr,
            size: region.size,
            reason,
        };
        let size = usize::try_from(region.size).map_err(|_| invalid("size does not fit usize"))?;
        // SAFETY: the caller guarantees, per this method's contract, that the host range is
        // mapped, readable and writable, and stays so for as long as this region of the
        // guest memory (or a value taken from it) lives; a raw region never unmaps it. The
        // protection and flags only describe the mapping to vm-memory, which does not act
        // on them for a raw region.
        let mapping = unsafe {
            MmapRegion::build_raw(
                region.host_addr as *mut u8,
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
            )
        }
        .map_err(|_| invalid("host range refused by vm-memory"))?;
        let guest_region = GuestRegionMmap::new(mapping, GuestAddress(region.guest_phys_addr))
            .ok_or_else(|| invalid("range wraps around the address space"))?;
        // Changed only with the region table locked, so the map read here is the latest.
        let new_memory = self
            .memory
            .memory()
            .insert_region(std::sync::Arc::new(guest_region))
            .map_err(|_| invalid("refused by the guest memory map"))?;
        let mut flags = 0;
        if region.flags.readonly {
            flags |= KVM_MEM_READONLY;
        }
        if region.flags.log_dirty {
            flags |= KVM_MEM_LOG_DIRTY_PAGES;
        }
        let kregion = kvm_userspace_memory_region {
            slot,
            flags,
            guest_phys_addr: region.guest_phys_addr,
            memory_size: region.size,
            userspace_addr: region.host_addr,
        };
        // SAFETY: the caller guarantees, per this method's contract, that the
        // host range is mapped and stays mapped while the region exists; the
        // table check above rules out overlap with other slots and gave a
        // free slot.
        unsafe { self.fd.set_user_memory_region(kregion) }
            .map_err(|e| Error::hypervisor("KVM_SET_USER_MEMORY_REGION", e))?;
        self.memory
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .replace(new_memory);
        table.insert(region).map(drop)
    }

    fn remove_memory_region(&self, guest_phys_addr: u64) -> Result<MemoryRegion> {
        let mut table = self.regions();
        let (slot, region) = table.get(guest_phys_addr)?;
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
        // The region went in with `set_memory_region`, at this address and size, so it is
        // in the map; if not, the map is left as it is rather than failing a removal KVM
        // has done.
        if let Ok((new_memory, _)) = self
            .memory
            .memory()
            .remove_region(GuestAddress(region.guest_phys_addr), region.size)
        {
            self.memory
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .replace(new_memory);
        }
        table.remove(guest_phys_addr).map(|(_, r)| r)
    }

    fn memory_regions(&self) -> Vec<MemoryRegion> {
        self.regions().iter().copied().collect()
    }

    fn get_dirty_log(&self, guest_phys_addr: u64) -> Result<Vec<u64>> {
        let (slot, region) = self.regions().get(guest_phys_addr)?;
        if !region.flags.log_dirty {
            return Err(Error::DirtyLogNotEnabled { guest_phys_addr });
        }
        let size = usize::try_from(region.size).map_err(|_| Error::InvalidArgument {
            op: "KVM_GET_DIRTY_LOG",
            reason: format!("region size {:#x} does not fit usize", region.size),
        })?;
        self.fd
            .get_dirty_log(slot, size)
            .map_err(|e| Error::hypervisor("KVM_GET_DIRTY_LOG", e))
    }

    fn claim_io_range(&self, space: IoSpace, base: u64, len: u64) -> Result<()> {
        // KVM exits to the VMM on every access it does not handle itself: nothing to claim.
        check_io_range("claim_io_range", space, base, len)
    }

    fn release_io_range(&self, space: IoSpace, base: u64, len: u64) -> Result<()> {
        check_io_range("release_io_range", space, base, len)
    }

    fn set_irq_line(&self, line: IrqLine, level: bool) -> Result<()> {
        self.fd
            .set_irq_line(kvm_irq(line, false)?, level)
            .map_err(|e| Error::hypervisor("KVM_IRQ_LINE", e))
    }

    fn register_irqfd(&self, fd: &EventFd, line: IrqLine) -> Result<()> {
        self.fd
            .register_irqfd(fd, kvm_irq(line, true)?)
            .map_err(|e| Error::hypervisor("KVM_IRQFD", e))
    }

    fn unregister_irqfd(&self, fd: &EventFd, line: IrqLine) -> Result<()> {
        self.fd
            .unregister_irqfd(fd, kvm_irq(line, true)?)
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
