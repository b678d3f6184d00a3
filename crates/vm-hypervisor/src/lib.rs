// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Hypervisor-agnostic [`Hypervisor`], [`Vm`] and [`Vcpu`] traits with a
//! device bus for guest I/O.
//!
//! A VMM written against these traits runs on any backend
//! (`vm-hypervisor-kvm` today, a Xen backend next) without knowing which:
//!
//! - [`Hypervisor`] creates [`Vm`]s or attaches to one made elsewhere (a
//!   Xen domain, by [`VmId`]) and answers [`Capability`] queries.
//! - [`Vm`] gives devices the guest's memory ([`Vm::guest_memory`], a
//!   vm-memory address space), maps VMM memory into the guest where the
//!   backend takes it ([`MemoryRegion`]s, checked for overlap with typed
//!   errors), creates vCPUs (id range checked), claims guest I/O ranges for
//!   the device bus, and injects interrupts: [`IrqLine`]s of each
//!   platform's kind, irqfd, ioeventfd, MSI. It also hands out dirty-page
//!   logs. `Vm` is `Send + Sync`; [`Vcpu`] is `Send`.
//! - [`Vcpu::run`] runs the guest and serves its PIO/MMIO on a
//!   [`DeviceBus`]; [`IoBus`] is a ready-made bus of [`IoHandler`] devices.
//! - Per-architecture extension traits hold register state in neutral
//!   types owned by this crate: [`x86_64::VcpuX86_64`] (with
//!   [`x86_64::StandardRegisters`], [`x86_64::SpecialRegisters`], ...) and
//!   [`aarch64::VcpuAarch64`].
//!
//! ```
//! use std::sync::Arc;
//! use vm_hypervisor::{DeviceError, Hypervisor, IoBus, IoHandler, IoSpace, Vcpu, VcpuExit, Vm};
//!
//! struct Port80;
//! impl IoHandler for Port80 {
//!     fn read(&self, _: u64, data: &mut [u8]) -> Result<(), DeviceError> { data.fill(0); Ok(()) }
//!     fn write(&self, _: u64, data: &[u8]) -> Result<(), DeviceError> {
//!         println!("POST code {:#x}", data[0]);
//!         Ok(())
//!     }
//! }
//!
//! /// Runs vCPU 0 of a fresh VM until the guest halts, on any backend.
//! fn run_until_halt<H: Hypervisor>(hv: &H) -> vm_hypervisor::Result<()> {
//!     let mut bus = IoBus::new();
//!     bus.insert(IoSpace::Pio, 0x80, 1, Arc::new(Port80)).expect("free range");
//!     let vm = hv.create_vm()?;
//!     let mut vcpu = vm.create_vcpu(0)?;
//!     // ... map memory and set registers through the arch traits ...
//!     loop {
//!         if let VcpuExit::Hlt = vcpu.run(&bus)? {
//!             return Ok(());
//!         }
//!     }
//! }
//! ```
//!
//! # Design
//!
//! **Generic first, object safe per call.** `Hypervisor::Vm` and
//! `Vm::Vcpu` are associated types, so a VMM generic over `H: Hypervisor`
//! is statically dispatched down to the run loop. Every method that is
//! called per operation takes `&self`/`&mut self` and plain arguments, so
//! `Box<dyn Vcpu>`, `&dyn VcpuX86_64` and `&dyn DeviceBus` all work; the
//! traits carry no associated consts or generic methods for that reason
//! (an associated const is what kept a comparable trait from being made
//! into an object elsewhere). Limits that differ per VM are methods
//! ([`Vm::max_vcpu_id`]).
//!
//! **Guest I/O goes to a bus, not back to the caller.** [`Vcpu::run`] takes
//! the [`DeviceBus`] and serves PIO/MMIO itself, including completing a
//! read on the next entry, then returns [`VcpuExit::Io`] so the caller keeps
//! control after every exit. The bus is a call argument rather than state
//! stored in the vCPU at creation: nothing on the exit path is looked up
//! behind a lock or reference count (shared, dynamically locked state on
//! the exit path was measured elsewhere to cost a double-digit share of
//! boot CPU time). The only indirection is one `dyn` call, priced by the
//! `vm-hypervisor-kvm` benchmark against a raw ioctl loop.
//!
//! **Backends without a vCPU loop call the same devices.** A Xen IOREQ
//! server learns of guest I/O from an event channel, not from a vCPU exit;
//! it turns each ioreq into an [`IoRequest`] and calls
//! [`DeviceBus::handle_request`] on the same bus. A device implements
//! [`IoHandler::read`]/[`IoHandler::write`] once and serves both. The bus
//! checks access sizes (1, 2, 4 or 8 bytes) and range bounds before a
//! device sees an access, since on Xen those fields come from a page the
//! guest can write.
//!
//! **Neutral register types.** Register state is this crate's own plain
//! data ([`x86_64::Segment`], [`x86_64::SpecialRegisters`],
//! [`aarch64::CoreRegisters`], ...). Letting one backend's structs into the
//! common API forces every other backend to fake them and later to wrap
//! them in enums; conversions instead live in each backend crate.
//!
//! **One trait per architecture.** x86_64 and aarch64 state live in
//! extension traits (`VcpuX86_64: Vcpu`, `VcpuAarch64: Vcpu`) rather than
//! cfg'd methods on one trait, so generic code states what it needs
//! (`V: VcpuX86_64`). Both modules are plain Rust that compiles on every
//! host, so the aarch64 types are built and tested on x86_64 too.
//!
//! **Create or attach; the VMM's code is the same.** KVM makes an empty VM
//! that the VMM fills; a Xen device model serves a domain the toolstack
//! made. [`Hypervisor::create_vm`] and [`Hypervisor::attach_vm`] return the
//! same [`Vm`] type, and [`Capability::CreateVm`]/[`Capability::AttachVm`]
//! say which works. Memory runs both ways: VMM memory handed to the guest
//! ([`Vm::set_memory_region`], KVM) or the guest's memory mapped into the
//! VMM (Xen); devices use [`Vm::guest_memory`] either way, an address
//! space of the `vm-memory` crate that `virtio-queue` takes as it is.
//! Guest I/O reaches the bus inside [`Vcpu::run`] on both: KVM from its
//! exits, Xen from the vCPU's IOREQ slot; [`Vm::claim_io_range`] tells a
//! backend that must be told (Xen) which ranges are the bus's.
//!
//! **No backend's encoding in the API.** Interrupt lines are named as the
//! guest platform names them ([`IrqLine`]: GSI, ISA IRQ, PCI INTx, Arm SPI)
//! so KVM maps them to `KVM_IRQ_LINE`/irqfd GSIs and Xen to one
//! device-model operation per kind; memory regions are named by guest
//! address, not by KVM memory slot; a CPUID entry says whether its subleaf
//! matters rather than carrying KVM's flag word; a real-mode TSS, which
//! only KVM on Intel needs, is the KVM backend's business, not a trait
//! method.
//!
//! **Ask, don't fail.** [`Capability`] and `check_capability` say what a
//! backend offers; a missing feature is [`Error::Unsupported`], never an
//! `unimplemented!()` default method.
//!
//! **One test, every backend.** The `vm-guest-suite` crate runs the same
//! tiny guests, generic over `H: Hypervisor`, on each backend and checks
//! what the devices saw from the host side.
//!
//! These choices follow what two existing Rust hypervisor abstractions
//! learned:
//!
//! - cloud-hypervisor's `hypervisor` crate hands PIO/MMIO to the VMM through
//!   a callback trait (`VmOps`) given to `create_vcpu`, instead of returning
//!   each access from `run`. Fetching that callback object through a
//!   dynamically swappable shared pointer on every exit cost 13.75 % of
//!   boot CPU until it became a plain reference-counted pointer fixed at
//!   vCPU creation (its PR #1981); a locked bus lookup on the PIO path
//!   showed up at about 6 % in profiles (PR #3137). Hence: the bus is a
//!   plain `&dyn` argument and [`IoBus`] dispatch takes no lock. Its
//!   common traits could not take an associated const without losing
//!   object safety (PR #7517), and KVM structures that had leaked into the
//!   common API had to be wrapped afterwards (PRs #6361, #6629).
//! - crosvm's `hypervisor` crate has one vCPU trait per architecture on top
//!   of a common one, its own neutral `Regs`/`Sregs`, and one generic test
//!   setup that runs the same guest on every backend.
//!
//! No code is taken from either.

pub mod aarch64;
mod caps;
mod error;
mod exit;
mod hypervisor;
mod interrupt;
mod memory;
mod vcpu;
mod vm;
pub mod x86_64;

pub use caps::Capability;
pub use error::{Error, Result};
pub use exit::{IoAccess, SystemEventKind, VcpuExit};
pub use hypervisor::{Hypervisor, VmId};
pub use interrupt::{DataMatch, IoEventAddress, IrqLine, MsiMessage};
pub use memory::{MemoryRegion, MemoryRegionFlags, MemoryRegionTable, PAGE_SIZE};
pub use vcpu::Vcpu;
pub use vm::{is_doorbell_ioevent, Vm};
pub use vm_device_bus::{BusError, DeviceBus, DeviceError, IoBus, IoHandler, IoRequest, IoSpace};
pub use vm_memory;
pub use vmm_sys_util::eventfd::EventFd;

/// The README's example, compiled as a doctest.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

#[cfg(test)]
mod object_safety {
    use super::*;

    // Compiles only if the per-call traits can be used as trait objects.
    #[allow(dead_code)]
    fn vcpu_objects(_: &dyn Vcpu, _: &dyn x86_64::VcpuX86_64, _: &dyn aarch64::VcpuAarch64) {}

    #[allow(dead_code)]
    fn bus_objects(_: &dyn DeviceBus, _: &dyn IoHandler) {}

    type Mem = std::sync::Arc<vm_memory::GuestMemoryMmap>;

    #[allow(dead_code)]
    fn boxed_objects(
        _: Box<dyn Vcpu>,
        _: &dyn Vm<Vcpu = Box<dyn Vcpu>, Memory = Mem>,
        _: &dyn x86_64::VmX86_64<Vcpu = Box<dyn x86_64::VcpuX86_64>, Memory = Mem>,
    ) {
    }

    // Compiles only if the traits carry the thread-safety bounds VMMs rely on.
    #[allow(dead_code)]
    fn thread_safe<H: Hypervisor>(hv: H, vm: H::Vm, vcpu: <H::Vm as Vm>::Vcpu) {
        fn send_sync<T: Send + Sync>(_: T) {}
        fn send<T: Send>(_: T) {}
        send_sync(hv);
        send_sync(vm);
        send(vcpu);
    }

    #[test]
    fn capability_list_is_complete_and_unique() {
        let mut all = Capability::ALL.to_vec();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), Capability::ALL.len());
    }
}
