// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Device-model mode: the vm-hypervisor traits over a domain the toolstack made.
//!
//! [`Xen`] is a [`Hypervisor`] that attaches ([`Hypervisor::attach_vm`] with the domain's
//! id); the [`XenVm`] it returns serves that domain as its device model:
//!
//! - guest memory ([`Vm::guest_memory`](vm_hypervisor::Vm::guest_memory)) is the domain's
//!   RAM mapped into this process on first touch through `xen-foreignmem` (privcmd foreign
//!   mappings, a bounded cache), a vm-memory address space;
//! - guest I/O comes from one `xen-ioreq` IOREQ server of the domain, created and enabled at
//!   attach time; [`Vm::claim_io_range`](vm_hypervisor::Vm::claim_io_range) maps a range to
//!   it, and each [`XenVcpu::run`](vm_hypervisor::Vcpu::run) serves requests on the bus it is
//!   given until something needs the caller;
//! - interrupts go through dm_op (ISA IRQ and PCI INTx levels and MSIs on x86, SPI levels on
//!   Arm); irqfds and virtio-mmio doorbell ioeventfds through privcmd where the dom0 kernel
//!   has them, else through the vCPU loops of this process (`xen-ioreq` picks the path).
//!
//! The domain's memory belongs to Xen: there is no
//! [`set_memory_region`](vm_hypervisor::Vm::set_memory_region) and no dirty log here
//! ([`Capability`] says so); x86 registers go through the domain's HVM context. Dropping an
//! attached [`XenVm`] destroys the IOREQ server, not the domain.
//!
//! [`Hypervisor::create_vm`] makes the domain itself: empty and paused, of the [`VmSize`]
//! given to [`Xen::with_vm_size`] (a PVH domain on x86_64, an Arm guest's domain on aarch64),
//! served the same way, unpaused by the first [`run`](vm_hypervisor::Vcpu::run) and destroyed
//! with the VM. Arm registers go through the vCPU's context
//! ([`VcpuAarch64`](vm_hypervisor::aarch64::VcpuAarch64)), x86 ones through the domain's HVM
//! context.
//!
//! ```no_run
//! use std::sync::Arc;
//! use vm_hypervisor::{DeviceError, Hypervisor, IoBus, IoHandler, IoSpace, Vcpu, VcpuExit, Vm, VmId};
//! use vm_hypervisor_xen::attach::Xen;
//!
//! struct Port;
//! impl IoHandler for Port {
//!     fn read(&self, _: u64, data: &mut [u8]) -> Result<(), DeviceError> { data.fill(0); Ok(()) }
//!     fn write(&self, _: u64, data: &[u8]) -> Result<(), DeviceError> { println!("{data:?}"); Ok(()) }
//! }
//!
//! let vm = Xen::open()?.attach_vm(VmId(7))?; // domain 7, made by `xl create -p`
//! let mut bus = IoBus::new();
//! bus.insert(IoSpace::Pio, 0x5e0, 8, Arc::new(Port)).expect("free ports");
//! vm.claim_io_range(IoSpace::Pio, 0x5e0, 8)?;
//! let mut vcpu = vm.create_vcpu(0)?;
//! // Unpause the domain, then serve it until it shuts down.
//! while !matches!(vcpu.run(&bus)?, VcpuExit::SystemEvent(_) | VcpuExit::Shutdown) {}
//! # Ok::<(), vm_hypervisor::Error>(())
//! ```

mod arm;
mod memory;
#[cfg(target_arch = "x86_64")]
mod regs;
mod vcpu;
mod vm;

pub use memory::XenGuestMemory;
pub use vcpu::{VcpuStopper, XenVcpu};
#[cfg(target_arch = "x86_64")]
impl vm_hypervisor::x86_64::HypervisorX86_64 for Xen {
    /// Xen sets a domain's CPUID through its CPU policy (`XEN_DOMCTL_set_cpu_policy`), which
    /// this backend does not drive: [`Capability::SetCpuid`] is not offered.
    fn supported_cpuid(&self) -> Result<Vec<vm_hypervisor::x86_64::CpuidEntry>> {
        Err(Error::Unsupported {
            capability: Capability::SetCpuid,
        })
    }
}

pub use vm::XenVm;

use std::sync::Arc;

use vm_hypervisor::{Capability, Error, Hypervisor, Result, VmId};
use xen_bindings::privcmd::Privcmd;

/// An [`Error::Hypervisor`] for `op` from any error of the Xen crates.
pub(crate) fn xen_error(
    op: &'static str,
    e: impl std::error::Error + Send + Sync + 'static,
) -> Error {
    Error::hypervisor(op, std::io::Error::other(e))
}

/// The RAM and vCPUs of the domains [`Hypervisor::create_vm`] makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmSize {
    /// Bytes of RAM, whole pages, laid out as Xen's toolstack lays it out
    /// ([`GuestLayout::native`](xen_bindings::layout::GuestLayout::native)): on x86 from
    /// guest-physical 0 up to 0xf000_0000, the rest from 4 GiB (at most 1 TiB in all); on Arm
    /// from `GUEST_RAM0_BASE` (1 GiB) in bank 0 (3 GiB), the rest in bank 1 from 8 GiB.
    /// Addresses that are neither RAM nor the hypervisor's own devices reach the IOREQ server
    /// (the VMM's MMIO).
    pub ram: u64,
    /// vCPUs.
    pub vcpus: u32,
}

impl Default for VmSize {
    /// 128 MiB and one vCPU.
    fn default() -> Self {
        Self {
            ram: 128 << 20,
            vcpus: 1,
        }
    }
}

/// Xen through privcmd: attaches to domains the toolstack made, and creates empty domains
/// of the [`VmSize`] it is given, PVH on x86_64 and Arm guests' on aarch64 (with the
/// [`builder`](crate::builder), which also makes whole Linux guests).
#[derive(Debug)]
pub struct Xen {
    privcmd: Arc<Privcmd>,
    size: VmSize,
}

impl Xen {
    /// Open privcmd; [`create_vm`](Hypervisor::create_vm) makes domains of
    /// [`VmSize::default`].
    pub fn open() -> Result<Self> {
        let privcmd = Privcmd::open().map_err(|e| xen_error("open privcmd", e))?;
        Ok(Self {
            privcmd: Arc::new(privcmd),
            size: VmSize::default(),
        })
    }

    /// [`create_vm`](Hypervisor::create_vm) makes domains of `size` from now on.
    pub fn with_vm_size(mut self, size: VmSize) -> Self {
        self.size = size;
        self
    }
}

impl Hypervisor for Xen {
    type Vm = XenVm;

    /// An empty, paused domain of this handle's [`VmSize`] (on x86_64 a PVH domain, an HVM
    /// container whose only emulated device is the local APIC; on aarch64 an AArch64 guest's
    /// domain with Xen's GIC and timer, every vCPU down until
    /// [`init`](vm_hypervisor::aarch64::VcpuAarch64::init)), served as
    /// [`Hypervisor::attach_vm`] serves one: RAM through
    /// [`Vm::guest_memory`](vm_hypervisor::Vm::guest_memory) (there is no
    /// [`set_memory_region`](vm_hypervisor::Vm::set_memory_region): Xen owns the memory),
    /// I/O through the IOREQ server. The first [`run`](vm_hypervisor::Vcpu::run) unpauses it;
    /// dropping the VM destroys it.
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    fn create_vm(&self) -> Result<XenVm> {
        XenVm::create(self.privcmd.clone(), self.size)
    }

    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    fn create_vm(&self) -> Result<XenVm> {
        let _ = self.size;
        Err(Error::Unsupported {
            capability: Capability::CreateVm,
        })
    }

    fn attach_vm(&self, id: VmId) -> Result<XenVm> {
        XenVm::attach(self.privcmd.clone(), id)
    }

    fn check_capability(&self, cap: Capability) -> bool {
        vm::offers(cap)
    }

    fn name(&self) -> &'static str {
        "xen"
    }
}
