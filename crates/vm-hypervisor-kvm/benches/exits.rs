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

/// Counts heap allocations, so that the instruction-count mode can report how many the exits
/// made (the goal is none in steady state).
struct CountingAlloc;

static ALLOCATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the counter is a side
// effect that allocates nothing.
unsafe impl std::alloc::GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: the caller's contract for `dealloc` is passed on as is.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // SAFETY: the caller's contract for `realloc` is passed on as is.
        unsafe { std::alloc::System.realloc(ptr, layout, new) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// Heap allocations so far (allocations and reallocations).
#[allow(dead_code)]
fn allocations() -> u64 {
    ALLOCATIONS.load(std::sync::atomic::Ordering::Relaxed)
}

fn main() {
    #[cfg(target_arch = "x86_64")]
    x86_64::main();
    #[cfg(not(target_arch = "x86_64"))]
    eprintln!("SKIPPED: exits benchmark: its guests are x86 code, this host is not x86_64");
}
