// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The [`Vm`] trait: memory, vCPUs, guest I/O routing and interrupts of one
//! guest.

use vm_device_bus::IoSpace;
use vm_memory::GuestAddressSpace;
use vmm_sys_util::eventfd::EventFd;

use crate::caps::Capability;
use crate::error::Result;
use crate::interrupt::{DataMatch, IoEventAddress, IrqLine, MsiMessage};
use crate::memory::MemoryRegion;
use crate::vcpu::Vcpu;

/// One virtual machine, created by the VMM or attached to (see
/// [`Hypervisor`](crate::Hypervisor)).
///
/// All methods take `&self` and a VM is `Send + Sync`, so one VM is shared
/// between the threads that run its vCPUs and the threads that serve its
/// devices. Every method but the associated-type-returning ones
/// ([`create_vcpu`](Vm::create_vcpu), [`guest_memory`](Vm::guest_memory)) is
/// usable through `dyn Vm<Vcpu = V, Memory = M>`.
pub trait Vm: Send + Sync {
    /// The vCPU type of this VM.
    type Vcpu: Vcpu;

    /// How devices reach guest memory: a vm-memory address space, so that
    /// `virtio-queue` and other vm-memory code work on every backend.
    type Memory: GuestAddressSpace + Send + Sync;

    /// Whether this VM offers `cap`.
    fn check_capability(&self, cap: Capability) -> bool;

    /// Exclusive upper bound of vCPU ids [`create_vcpu`](Vm::create_vcpu)
    /// accepts.
    fn max_vcpu_id(&self) -> u32;

    /// Create vCPU `id` (on an attached VM: take the existing vCPU `id`).
    ///
    /// Fails with [`Error::VcpuIdOutOfRange`](crate::Error::VcpuIdOutOfRange)
    /// if `id >= max_vcpu_id()` and with
    /// [`Error::VcpuIdInUse`](crate::Error::VcpuIdInUse) if it exists.
    fn create_vcpu(&self, id: u32) -> Result<Self::Vcpu>;

    /// The guest's memory as devices see it: what
    /// [`set_memory_region`](Vm::set_memory_region) added (KVM) or the
    /// guest's RAM mapped into this process (Xen). Regions added or removed
    /// later show in the address space's next `memory()`.
    fn guest_memory(&self) -> Self::Memory;

    /// Back the guest range of `region` with this process's memory
    /// ([`Capability::UserMemory`]).
    ///
    /// Fails with a typed error, before asking the hypervisor, if the
    /// region is malformed, overlaps another or is one too many.
    ///
    /// # Safety
    ///
    /// `[region.host_addr, region.host_addr + region.size)` must be memory
    /// mapped in this process, readable and writable (also for a read-only
    /// region: the guest cannot write it, but devices reach it through
    /// [`guest_memory`](Vm::guest_memory)), and must stay mapped until the region is removed or the VM dropped,
    /// and until every value that [`guest_memory`](Vm::guest_memory)'s
    /// address space handed out while the region was in it is dropped:
    /// the guest and the devices read and write it behind the compiler's
    /// back.
    unsafe fn set_memory_region(&self, region: MemoryRegion) -> Result<()>;

    /// Remove the region that starts at `guest_phys_addr`, returning it.
    fn remove_memory_region(&self, guest_phys_addr: u64) -> Result<MemoryRegion>;

    /// The regions added by [`set_memory_region`](Vm::set_memory_region),
    /// by guest address.
    fn memory_regions(&self) -> Vec<MemoryRegion>;

    /// The pages of the region that starts at `guest_phys_addr` written
    /// since the last call: bit `n` of the returned words (word `n / 64`,
    /// bit `n % 64`) is page `n` of the region. Reading clears the log.
    fn get_dirty_log(&self, guest_phys_addr: u64) -> Result<Vec<u64>>;

    /// Send guest accesses to `[base, base + len)` of `space` to the device
    /// bus of [`Vcpu::run`].
    ///
    /// KVM sends every access it does not handle itself to the VMM, so
    /// this checks the range and does nothing more; Xen sends a device
    /// model only the ranges it claimed (its IOREQ server's ranges), so a
    /// VMM calls this for each device it puts on the bus.
    fn claim_io_range(&self, space: IoSpace, base: u64, len: u64) -> Result<()>;

    /// Undo [`claim_io_range`](Vm::claim_io_range) with the same arguments.
    fn release_io_range(&self, space: IoSpace, base: u64, len: u64) -> Result<()>;

    /// Drive interrupt line `line` to `level`. Kinds of line the backend
    /// does not drive fail with
    /// [`Error::Unsupported`](crate::Error::Unsupported) naming
    /// [`IrqLine::capability`].
    fn set_irq_line(&self, line: IrqLine, level: bool) -> Result<()>;

    /// Assert `line` whenever `fd` is signalled, without this process in
    /// the path where the backend can (KVM irqfd, privcmd irqfd): an edge
    /// for each signal ([`Capability::Irqfd`]).
    fn register_irqfd(&self, fd: &EventFd, line: IrqLine) -> Result<()>;

    /// Undo [`register_irqfd`](Vm::register_irqfd).
    fn unregister_irqfd(&self, fd: &EventFd, line: IrqLine) -> Result<()>;

    /// Signal `fd` on guest writes to `addr` that match `datamatch`, in the
    /// hypervisor or kernel, without a vCPU exit or a device-bus call.
    ///
    /// [`Capability::Ioeventfd`] covers 4-byte MMIO writes of a value (a
    /// virtio-mmio doorbell, the one shape Xen's privcmd matches);
    /// [`Capability::IoeventfdAny`] everything else. Other shapes fail with
    /// [`Error::Unsupported`](crate::Error::Unsupported).
    fn register_ioevent(
        &self,
        fd: &EventFd,
        addr: IoEventAddress,
        datamatch: DataMatch,
    ) -> Result<()>;

    /// Undo [`register_ioevent`](Vm::register_ioevent) with the same
    /// arguments.
    fn unregister_ioevent(
        &self,
        fd: &EventFd,
        addr: IoEventAddress,
        datamatch: DataMatch,
    ) -> Result<()>;

    /// Inject a message-signalled interrupt. Returns `false` if the
    /// hypervisor says the guest blocked it (for example a masked or
    /// disabled LAPIC); backends that cannot tell return `true`.
    fn signal_msi(&self, msi: MsiMessage) -> Result<bool>;
}

/// The shape of ioevent [`Capability::Ioeventfd`] covers: a 4-byte MMIO
/// write of a given value.
pub fn is_doorbell_ioevent(addr: IoEventAddress, datamatch: DataMatch) -> bool {
    matches!(
        (addr, datamatch),
        (IoEventAddress::Mmio(_), DataMatch::U32(_))
    )
}
