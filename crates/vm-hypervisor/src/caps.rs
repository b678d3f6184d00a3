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
    /// Guest memory backed by VMM memory
    /// ([`Vm::set_memory_region`](crate::Vm::set_memory_region)).
    UserMemory,
    /// Read-only memory regions whose writes become MMIO.
    ReadonlyMemory,
    /// Dirty-page logging per memory region.
    DirtyLog,
    /// An in-hypervisor interrupt controller (x86: PIC, IOAPIC, LAPIC).
    Irqchip,
    /// An in-hypervisor i8254 timer (x86).
    Pit,
    /// Driving an interrupt line's level
    /// ([`Vm::set_irq_line`](crate::Vm::set_irq_line)).
    IrqLine,
    /// Injecting an interrupt by signalling an eventfd
    /// ([`Vm::register_irqfd`](crate::Vm::register_irqfd)).
    Irqfd,
    /// Signalling an eventfd on a guest write without a vCPU exit
    /// ([`Vm::register_ioevent`](crate::Vm::register_ioevent)).
    Ioeventfd,
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
}

impl Capability {
    /// Every capability, for listing what a backend offers.
    pub const ALL: &'static [Capability] = &[
        Capability::UserMemory,
        Capability::ReadonlyMemory,
        Capability::DirtyLog,
        Capability::Irqchip,
        Capability::Pit,
        Capability::IrqLine,
        Capability::Irqfd,
        Capability::Ioeventfd,
        Capability::SignalMsi,
        Capability::ImmediateExit,
        Capability::SetCpuid,
        Capability::MultipleVcpus,
    ];
}
