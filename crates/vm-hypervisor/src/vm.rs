// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The [`Vm`] trait: memory, vCPUs and interrupts of one guest.

use vmm_sys_util::eventfd::EventFd;

use crate::caps::Capability;
use crate::error::Result;
use crate::interrupt::{DataMatch, IoEventAddress, MsiMessage};
use crate::memory::MemoryRegion;
use crate::vcpu::Vcpu;

/// One virtual machine.
///
/// All methods take `&self` so a VM can be shared between the threads that
/// run its vCPUs and the threads that serve its devices. Every method but
/// the associated-type-returning [`create_vcpu`](Vm::create_vcpu) is usable
/// through `dyn Vm<Vcpu = V>`.
pub trait Vm {
    /// The vCPU type of this VM.
    type Vcpu: Vcpu;

    /// Whether this VM offers `cap`.
    fn check_capability(&self, cap: Capability) -> bool;

    /// Exclusive upper bound of vCPU ids [`create_vcpu`](Vm::create_vcpu)
    /// accepts.
    fn max_vcpu_id(&self) -> u32;

    /// Create vCPU `id`.
    ///
    /// Fails with [`Error::VcpuIdOutOfRange`](crate::Error::VcpuIdOutOfRange)
    /// if `id >= max_vcpu_id()` and with
    /// [`Error::VcpuIdInUse`](crate::Error::VcpuIdInUse) if it exists.
    fn create_vcpu(&self, id: u32) -> Result<Self::Vcpu>;

    /// Map `region` into the guest.
    ///
    /// Fails with a typed error, before asking the hypervisor, if the
    /// region is malformed, its slot is taken or it overlaps another.
    ///
    /// # Safety
    ///
    /// `[region.host_addr, region.host_addr + region.size)` must be memory
    /// mapped in this process, readable and (unless read-only) writable,
    /// and must stay mapped until the region is removed or the VM dropped:
    /// the guest reads and writes it behind the compiler's back.
    unsafe fn set_memory_region(&self, region: MemoryRegion) -> Result<()>;

    /// Unmap the region in `slot`, returning it.
    fn remove_memory_region(&self, slot: u32) -> Result<MemoryRegion>;

    /// The regions mapped now, by slot.
    fn memory_regions(&self) -> Vec<MemoryRegion>;

    /// The pages of `slot` written since the last call: bit `n` of the
    /// returned words (word `n / 64`, bit `n % 64`) is page `n` of the
    /// region. Reading clears the log.
    fn get_dirty_log(&self, slot: u32) -> Result<Vec<u64>>;

    /// Drive interrupt line `irq` of the interrupt controller to `level`.
    fn set_irq_line(&self, irq: u32, level: bool) -> Result<()>;

    /// Inject interrupt `gsi` whenever `fd` is signalled.
    fn register_irqfd(&self, fd: &EventFd, gsi: u32) -> Result<()>;

    /// Undo [`register_irqfd`](Vm::register_irqfd).
    fn unregister_irqfd(&self, fd: &EventFd, gsi: u32) -> Result<()>;

    /// Signal `fd` on guest writes to `addr` that match `datamatch`, in the
    /// hypervisor, without a vCPU exit or a device-bus call.
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

    /// Inject a message-signalled interrupt. Returns `false` if the guest
    /// blocked it (for example a masked or disabled LAPIC).
    fn signal_msi(&self, msi: MsiMessage) -> Result<bool>;
}
