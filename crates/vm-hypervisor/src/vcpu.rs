// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The [`Vcpu`] trait: run a virtual CPU until something needs the VMM.

use crate::error::Result;
use crate::exit::VcpuExit;
use vm_device_bus::DeviceBus;

/// One virtual CPU. Architecture state lives in the extension traits
/// ([`VcpuX86_64`](crate::x86_64::VcpuX86_64),
/// [`VcpuAarch64`](crate::aarch64::VcpuAarch64)).
///
/// The trait is object safe: `Box<dyn Vcpu>` works for VMMs that mix
/// backends at run time.
pub trait Vcpu {
    /// The id given at creation.
    fn id(&self) -> u32;

    /// Run the guest until it exits.
    ///
    /// Guest PIO and MMIO that the hypervisor does not handle itself are
    /// served on `bus` before this returns [`VcpuExit::Io`]; a read's value
    /// is handed back to the guest on the next `run`. If the bus fails,
    /// this returns [`Error::Io`](crate::Error::Io) and a read gives the
    /// guest all ones; running again continues the guest.
    fn run(&mut self, bus: &dyn DeviceBus) -> Result<VcpuExit>;

    /// Make the next [`run`](Vcpu::run) return
    /// [`VcpuExit::Interrupted`] without entering the guest (or let it
    /// enter again with `false`).
    fn set_immediate_exit(&mut self, exit: bool);
}

impl<V: Vcpu + ?Sized> Vcpu for Box<V> {
    fn id(&self) -> u32 {
        (**self).id()
    }
    fn run(&mut self, bus: &dyn DeviceBus) -> Result<VcpuExit> {
        (**self).run(bus)
    }
    fn set_immediate_exit(&mut self, exit: bool) {
        (**self).set_immediate_exit(exit)
    }
}
