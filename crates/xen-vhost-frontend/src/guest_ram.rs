// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Where a domU's RAM is, for the memory table a backend daemon maps.
//!
//! The daemon maps guest RAM itself (foreign mappings through a privcmd handle), so the
//! frontend names the guest-physical ranges. On Arm the toolstack lays RAM out in two fixed
//! banks (Xen's public `arch-arm.h`: `GUEST_RAM0` then `GUEST_RAM1`), filled in order up to the
//! guest's static maximum, which the toolstack records in xenstore. The size is not taken from
//! the guest's own pages: it is the toolstack's figure, bounded by the limit Xen enforces.

use xen_bindings::layout::GuestLayout;
use xen_bindings::DomId;

use crate::store::Store;

/// The guest-physical RAM ranges `(start, len)` of an Arm domU with `bytes` of RAM.
pub fn arm_ram_ranges(bytes: u64) -> Vec<(u64, u64)> {
    GuestLayout::Arm
        .ram_ranges(bytes)
        .into_iter()
        .map(|r| (r.start, r.len))
        .collect()
}

/// The guest's RAM size: `memory/static-max` (KiB, written by the toolstack), at most
/// `max_memory` (the domain's limit in Xen, bytes); `max_memory` when the key is missing or
/// not a number.
pub fn ram_bytes(store: &mut dyn Store, domid: DomId, max_memory: u64) -> u64 {
    let path = format!("/local/domain/{domid}/memory/static-max");
    let static_max = store
        .read(&path)
        .filter(|v| v.len() <= 20)
        .and_then(|v| v.trim().parse::<u64>().ok())
        .and_then(|kib| kib.checked_mul(1024));
    match static_max {
        Some(b) => b.min(max_memory),
        None => {
            log::warn!("{path}: missing or not a number; using the domain's limit");
            max_memory
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    struct Map(BTreeMap<String, String>);
    impl Store for Map {
        fn read(&mut self, path: &str) -> Option<String> {
            self.0.get(path).cloned()
        }
        fn directory(&mut self, _: &str) -> Vec<String> {
            Vec::new()
        }
        fn write(&mut self, path: &str, value: &str) -> Result<(), String> {
            self.0.insert(path.into(), value.into());
            Ok(())
        }
    }

    #[test]
    fn ranges_are_the_arm_layouts() {
        assert_eq!(
            arm_ram_ranges(4 << 30),
            [(0x4000_0000, 3 << 30), (0x2_0000_0000, 1 << 30)]
        );
    }

    #[test]
    fn size_is_the_toolstacks_bounded_by_xens_limit() {
        let mut m = Map(BTreeMap::new());
        assert_eq!(
            ram_bytes(&mut m, DomId::new(3), 200 << 20),
            200 << 20,
            "no key"
        );
        m.0.insert("/local/domain/3/memory/static-max".into(), "131072".into());
        assert_eq!(ram_bytes(&mut m, DomId::new(3), 200 << 20), 128 << 20);
        assert_eq!(
            ram_bytes(&mut m, DomId::new(3), 64 << 20),
            64 << 20,
            "bounded"
        );
        m.0.insert(
            "/local/domain/3/memory/static-max".into(),
            "99999999999999999999".into(),
        );
        assert_eq!(
            ram_bytes(&mut m, DomId::new(3), 64 << 20),
            64 << 20,
            "overflow"
        );
        m.0.insert("/local/domain/3/memory/static-max".into(), "lots".into());
        assert_eq!(ram_bytes(&mut m, DomId::new(3), 64 << 20), 64 << 20);
    }
}
