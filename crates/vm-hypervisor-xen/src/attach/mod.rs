// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Device-model mode: the vm-hypervisor traits over a domain the toolstack made.
//!
//! [`Xen`] is a [`Hypervisor`] that only attaches ([`Hypervisor::attach_vm`] with the
//! domain's id); the [`XenVm`] it returns serves that domain as its device model:
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
//! The domain's memory and vCPUs belong to the toolstack: there is no
//! [`set_memory_region`](vm_hypervisor::Vm::set_memory_region), no register access and no
//! dirty log here ([`Capability`] says so), and dropping the [`XenVm`] destroys the IOREQ
//! server, not the domain.
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

mod memory;
mod vcpu;
mod vm;

pub use memory::XenGuestMemory;
pub use vcpu::{VcpuStopper, XenVcpu};
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

/// Xen through privcmd, as a device model: attaches to domains, does not create them (the
/// [`builder`](crate::builder) module is the toolstack mode).
#[derive(Debug)]
pub struct Xen {
    privcmd: Arc<Privcmd>,
}

impl Xen {
    /// Open privcmd.
    pub fn open() -> Result<Self> {
        let privcmd = Privcmd::open().map_err(|e| xen_error("open privcmd", e))?;
        Ok(Self {
            privcmd: Arc::new(privcmd),
        })
    }
}

impl Hypervisor for Xen {
    type Vm = XenVm;

    fn create_vm(&self) -> Result<XenVm> {
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
