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
/// backends at run time. A vCPU is `Send`, so each can be moved to the
/// thread that runs it.
///
/// The per-vCPU loop of a VMM is the same on every backend: call
/// [`run`](Vcpu::run) with the device bus until an exit needs the VMM.
/// What happens inside `run` differs:
///
/// - KVM enters the guest (`KVM_RUN`); the guest's PIO/MMIO exits are
///   served on the bus and returned as [`VcpuExit::Io`], every other exit
///   is returned as it is.
/// - Xen (attached to a domain) runs the vCPU in the hypervisor all the
///   time; `run` waits for this vCPU's I/O requests from the domain's
///   IOREQ server, serves each on the bus and completes it, and returns
///   only for what the VMM must see: the domain shutting down, an
///   immediate exit. It does not return per access.
pub trait Vcpu: Send {
    /// The id given at creation.
    fn id(&self) -> u32;

    /// Run the guest until it exits.
    ///
    /// Guest PIO and MMIO that the hypervisor does not handle itself are
    /// served on `bus` before this returns (with [`VcpuExit::Io`] where the
    /// backend returns per access); a read's value is handed back to the
    /// guest on the next `run` or, where the backend completes requests
    /// itself, before it waits for the next one. If the bus fails,
    /// this returns [`Error::Io`](crate::Error::Io) and a read gives the
    /// guest all ones; running again continues the guest.
    fn run(&mut self, bus: &dyn DeviceBus) -> Result<VcpuExit>;

    /// [`run`](Vcpu::run) with a bus whose type is known: the same contract, but a backend
    /// may serve the exit with the bus's own code compiled into its exit path (no call
    /// through `dyn DeviceBus`). VMMs with one concrete bus (an `IoBus`, say) call this in
    /// their vCPU loops. The default calls [`run`](Vcpu::run).
    fn run_on<B: DeviceBus>(&mut self, bus: &B) -> Result<VcpuExit>
    where
        Self: Sized,
    {
        self.run(bus)
    }

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::VcpuExit;
    use vm_device_bus::{IoBus, IoSpace};

    /// Exits with a port write of one byte on every run, served on the bus it is given.
    struct OneWrite(u32);

    impl Vcpu for OneWrite {
        fn id(&self) -> u32 {
            0
        }
        fn run(&mut self, bus: &dyn DeviceBus) -> Result<VcpuExit> {
            self.0 += 1;
            let _ = bus.write(IoSpace::Pio, 0x80, &[1]);
            Ok(VcpuExit::Hlt)
        }
        fn set_immediate_exit(&mut self, _: bool) {}
    }

    #[test]
    fn run_on_defaults_to_run() {
        let mut v = OneWrite(0);
        let bus = IoBus::new();
        assert!(matches!(v.run_on(&bus), Ok(VcpuExit::Hlt)));
        let mut boxed: Box<OneWrite> = Box::new(OneWrite(0));
        assert!(matches!(boxed.run_on(&bus), Ok(VcpuExit::Hlt)));
        assert_eq!((v.0, boxed.0), (1, 1));
    }
}
