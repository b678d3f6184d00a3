// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! PIO and MMIO exits per second through vm-hypervisor (`Vcpu::run` and an
//! `IoBus`) against a raw kvm-ioctls loop running the same guest in an
//! identically set up VM and calling the same device directly. Compare the
//! two lines of each group from one run: only their ratio means anything
//! on a shared machine.
//!
//! The two loops are interleaved: each timed exit of one is followed by an
//! untimed exit of the other, so both see the same background load (the
//! machines this runs on are shared and their load drifts within seconds).
//!
//! Because criterion's per-sample means are dominated by descheduling
//! spikes on a loaded host, the run ends with a paired summary per group:
//! 20 000 alternating exits of each loop, timed one by one, and the ratio
//! of their median exit rates.

// A crate root resolves modules next to itself; the x86 body lives in
// the directory named after this target so Cargo does not take it for one.
#[cfg(target_arch = "x86_64")]
#[path = "exits/x86_64.rs"]
mod x86_64;

fn main() {
    #[cfg(target_arch = "x86_64")]
    x86_64::main();
    #[cfg(not(target_arch = "x86_64"))]
    eprintln!("SKIPPED: exits benchmark: its guests are x86 code, this host is not x86_64");
}
