// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! [`XenGuestMemory`]: an attached domain's RAM as a vm-memory address space.

use std::sync::Arc;

use vm_memory::GuestAddressSpace;
use xen_foreignmem::{CacheConfig, LazyForeignMemory, LazyView, XenForeignMapper};

use super::xen_error;
use vm_hypervisor::Result;
use xen_bindings::layout::GuestLayout;
use xen_bindings::DomId;

/// The guest memory of a [`XenVm`](super::XenVm): the domain's frames mapped into this
/// process on first touch, in 2 MiB buckets, at most 512 MiB at once (`xen-foreignmem`'s
/// lazy cache). Clones share the cache. Each [`memory`](GuestAddressSpace::memory) is a view
/// that keeps what it mapped until it is dropped; take one per unit of work.
#[derive(Clone)]
pub struct XenGuestMemory(Arc<LazyForeignMemory<XenForeignMapper>>);

impl std::fmt::Debug for XenGuestMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("XenGuestMemory")
            .field(&self.0.stats())
            .finish()
    }
}

impl XenGuestMemory {
    /// Guest addresses `[0, span)` of `domid`.
    pub(crate) fn new(domid: DomId, span: u64) -> Result<Self> {
        let mapper =
            XenForeignMapper::open().map_err(|e| xen_error("open the foreign mapper", e))?;
        let cache = LazyForeignMemory::new(mapper, domid, span, CacheConfig::default())
            .map_err(|e| xen_error("set up the guest memory cache", e))?;
        Ok(Self(Arc::new(cache)))
    }

    /// The end of the guest-physical span it covers (`[0, span)`).
    #[cfg(target_arch = "aarch64")]
    pub(crate) fn span(&self) -> u64 {
        self.0.source().mem_size()
    }

    /// Drops every mapping not in use (Xen's `IOREQ_TYPE_INVALIDATE`: the guest's physical
    /// map changed).
    pub fn invalidate(&self) {
        self.0.invalidate();
    }
}

impl GuestAddressSpace for XenGuestMemory {
    type M = LazyView<XenForeignMapper>;
    type T = Arc<LazyView<XenForeignMapper>>;

    fn memory(&self) -> Self::T {
        self.0.memory()
    }
}

/// Guest-physical span the toolstack's memory layout gives a domain with `max_memory` bytes
/// of RAM, rounded up to whole pages: up to the end of its last RAM range
/// ([`GuestLayout::native`]: RAM that does not fit below the x86 MMIO hole or in the first
/// Arm bank continues higher up). Addresses in the span that hold no RAM fail when touched,
/// like any unmapped guest address.
pub(crate) fn guest_span(max_memory: u64) -> u64 {
    const PAGE: u64 = xen_bindings::XEN_PAGE_SIZE as u64;
    let ram = max_memory.div_ceil(PAGE).saturating_mul(PAGE).max(PAGE);
    GuestLayout::native()
        .ram_ranges(ram)
        .last()
        .map_or(PAGE, |r| r.end())
}

#[cfg(test)]
mod tests {
    use super::guest_span;

    #[test]
    fn span_covers_ram_above_the_hole_or_in_the_second_bank() {
        let mib = 1 << 20;
        if cfg!(target_arch = "aarch64") {
            assert_eq!(guest_span(128 * mib), 0x4000_0000 + 128 * mib);
            assert_eq!(guest_span(4 << 30), 0x2_0000_0000 + (1 << 30));
        } else {
            assert_eq!(guest_span(128 * mib), 128 * mib);
            assert_eq!(guest_span(4 << 30), 0x1_0000_0000 + 0x1000_0000);
        }
        // Partial pages round up; nothing is empty.
        assert_eq!(guest_span(1) % 4096, 0);
        assert!(guest_span(0) > 0);
    }
}
