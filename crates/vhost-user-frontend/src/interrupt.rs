// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! How the transport raises the guest's interrupt.
//!
//! virtio-mmio has one interrupt per device; InterruptStatus says why it
//! fired. The transport sets the reason bit and then asks the caller's
//! [`Interrupt`] to inject: a KVM VMM writes an irqfd or sets an irq line,
//! a Xen device model sets the line's level through its IOREQ server.

/// Injects the device's interrupt into the guest.
pub trait Interrupt: Send + Sync {
    /// Raise the interrupt (edge, or assert a level the guest's
    /// InterruptACK write is expected to lower).
    fn trigger(&self) -> std::io::Result<()>;
}

impl Interrupt for vmm_sys_util::eventfd::EventFd {
    /// An irqfd: one write injects the interrupt.
    fn trigger(&self) -> std::io::Result<()> {
        self.write(1)
    }
}
