// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! A hello-world VMM: one 64-bit guest, one UART, nothing else, on KVM or on Xen, chosen at
//! run time; the VMM code is the same for both (generic over the vm-hypervisor traits).
//!
//! ```text
//! cargo run --example hello-vmm -p vm-hypervisor-xen -- --hypervisor kvm
//! cargo run --example hello-vmm -p vm-hypervisor-xen -- --hypervisor xen   # as root in dom0
//! ```
//!
//! vm-vcpu-ref writes the GDT and identity page tables and computes the long-mode registers;
//! the guest writes a greeting byte by byte to an 8250 UART's transmit register (port
//! 0x3f8), which a tiny device on the vm-hypervisor device bus prints; the VMM exits when the
//! guest halts. On KVM the VMM hands the VM its memory and each UART write is a vCPU exit; on
//! Xen the hypervisor owns the memory (the VMM writes the guest through
//! `Vm::guest_memory`) and the UART writes arrive through an IOREQ server inside
//! `Vcpu::run`.

// A crate root resolves modules next to itself; the x86 body lives in
// the directory named after this target so Cargo does not take it for one.
#[cfg(target_arch = "x86_64")]
#[path = "hello-vmm/x86_64.rs"]
mod x86_64;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    #[cfg(target_arch = "x86_64")]
    return x86_64::main();
    #[cfg(not(target_arch = "x86_64"))]
    Err("hello-vmm runs an x86_64 guest: it needs an x86_64 host".into())
}
