// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! What a backend can do, asked instead of calling and failing.

/// A feature a backend may or may not offer. Ask with
/// [`Hypervisor::check_capability`](crate::Hypervisor::check_capability) or
/// [`Vm::check_capability`](crate::Vm::check_capability); a method whose
/// capability is missing returns [`Error::Unsupported`](crate::Error::Unsupported).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Capability {
    /// Making a new, empty VM ([`Hypervisor::create_vm`](crate::Hypervisor::create_vm)):
    /// KVM.
    CreateVm,
    /// Serving a VM that something else made, by its id
    /// ([`Hypervisor::attach_vm`](crate::Hypervisor::attach_vm)): a Xen domain the toolstack
    /// built.
    AttachVm,
    /// Guest memory backed by VMM memory
    /// ([`Vm::set_memory_region`](crate::Vm::set_memory_region)). Without it the guest's
    /// memory belongs to the hypervisor and the VMM reaches it through
    /// [`Vm::guest_memory`](crate::Vm::guest_memory) only.
    UserMemory,
    /// Read-only memory regions whose writes become MMIO.
    ReadonlyMemory,
    /// Dirty-page logging per memory region.
    DirtyLog,
    /// An in-hypervisor interrupt controller (x86: PIC, IOAPIC, LAPIC).
    Irqchip,
    /// An in-hypervisor i8254 timer (x86).
    Pit,
    /// Driving [`IrqLine::Gsi`](crate::IrqLine::Gsi) lines.
    IrqLineGsi,
    /// Driving [`IrqLine::Isa`](crate::IrqLine::Isa) lines (x86).
    IrqLineIsa,
    /// Driving [`IrqLine::PciIntx`](crate::IrqLine::PciIntx) lines (x86).
    IrqLinePciIntx,
    /// Driving [`IrqLine::Spi`](crate::IrqLine::Spi) lines (Arm).
    IrqLineSpi,
    /// Asserting, by signalling an eventfd, any line
    /// [`Vm::set_irq_line`](crate::Vm::set_irq_line) accepts
    /// ([`Vm::register_irqfd`](crate::Vm::register_irqfd)).
    Irqfd,
    /// Signalling an eventfd on 4-byte MMIO writes of a given value, the shape of a
    /// virtio-mmio `QueueNotify` doorbell
    /// ([`Vm::register_ioevent`](crate::Vm::register_ioevent) with
    /// [`IoEventAddress::Mmio`](crate::IoEventAddress::Mmio) and
    /// [`DataMatch::U32`](crate::DataMatch::U32)).
    Ioeventfd,
    /// Every other ioevent as well: port I/O, other widths, [`DataMatch::Any`](crate::DataMatch::Any).
    IoeventfdAny,
    /// Injecting a message-signalled interrupt
    /// ([`Vm::signal_msi`](crate::Vm::signal_msi)).
    SignalMsi,
    /// Asking a vCPU to return from `run` before entering the guest
    /// ([`Vcpu::set_immediate_exit`](crate::Vcpu::set_immediate_exit)).
    ImmediateExit,
    /// Setting the guest's CPUID (x86).
    SetCpuid,
    /// More than one vCPU per VM.
    MultipleVcpus,
    /// [`Vcpu::run`](crate::Vcpu::run) returns after each guest PIO or MMIO access it served
    /// ([`VcpuExit::Io`](crate::VcpuExit::Io)), and a device's failure comes back as
    /// [`Error::Io`](crate::Error::Io) (KVM). Without it `run` serves accesses inside and
    /// returns only for what the VMM must act on; a failing device is logged and a failed read
    /// gives the guest all ones (Xen, whose vCPUs run in the hypervisor).
    IoExits,
}

impl Capability {
    /// Every capability, for listing what a backend offers.
    pub const ALL: &'static [Capability] = &[
        Capability::CreateVm,
        Capability::AttachVm,
        Capability::UserMemory,
        Capability::ReadonlyMemory,
        Capability::DirtyLog,
        Capability::Irqchip,
        Capability::Pit,
        Capability::IrqLineGsi,
        Capability::IrqLineIsa,
        Capability::IrqLinePciIntx,
        Capability::IrqLineSpi,
        Capability::Irqfd,
        Capability::Ioeventfd,
        Capability::IoeventfdAny,
        Capability::SignalMsi,
        Capability::ImmediateExit,
        Capability::SetCpuid,
        Capability::MultipleVcpus,
        Capability::IoExits,
    ];
}
