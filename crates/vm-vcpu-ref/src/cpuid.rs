// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Per-vCPU normalisation of a CPUID table.
//!
//! A hypervisor reports what it can virtualise once per VM; each vCPU
//! then needs its own view: its APIC ID, a topology that matches the vCPU
//! count, the hypervisor-present bit, and no leaves the VMM does not want
//! to expose. The topology presented is one package with one thread per
//! core and one core per vCPU.
//!
//! ```
//! use vm_hypervisor::x86_64::CpuidEntry;
//! use vm_vcpu_ref::cpuid::{normalize, VcpuTopology};
//!
//! let mut table = vec![
//!     CpuidEntry { function: 0, eax: 1, ..Default::default() },
//!     CpuidEntry { function: 1, ..Default::default() },
//! ];
//! normalize(&mut table, &VcpuTopology::new(1, 4)).unwrap();
//! assert_eq!(table[1].ebx >> 24, 1); // APIC ID of vCPU 1
//! assert_ne!(table[1].ecx & (1 << 31), 0); // hypervisor present
//! ```

use vm_hypervisor::x86_64::CpuidEntry;

use crate::error::{Error, Result};

/// Most vCPUs described: xAPIC IDs are 8 bits and 0xff is the broadcast ID.
pub const MAX_VCPUS: u32 = 255;
/// Leaf 1 ECX bit 31: running under a hypervisor.
pub const LEAF1_ECX_HYPERVISOR: u32 = 1 << 31;
/// Leaf 1 EDX bit 28: the logical processor count in EBX is valid.
pub const LEAF1_EDX_HTT: u32 = 1 << 28;
/// First extended leaf.
pub const EXTENDED_BASE: u32 = 0x8000_0000;
/// First hypervisor leaf.
pub const HYPERVISOR_BASE: u32 = 0x4000_0000;
/// Extended topology level type: SMT.
pub const LEVEL_TYPE_SMT: u32 = 1;
/// Extended topology level type: core.
pub const LEVEL_TYPE_CORE: u32 = 2;

/// Who this vCPU is within the VM, and what to hide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VcpuTopology {
    /// Index of this vCPU, also its APIC ID.
    pub vcpu_id: u32,
    /// Number of vCPUs in the VM.
    pub vcpu_count: u32,
    /// Set the hypervisor-present bit (leaf 1 ECX bit 31).
    pub hypervisor_bit: bool,
    /// Leaves to remove entirely (all subleaves).
    pub removed_leaves: Vec<u32>,
}

impl VcpuTopology {
    /// vCPU `vcpu_id` of `vcpu_count`, hypervisor bit set, nothing removed.
    pub fn new(vcpu_id: u32, vcpu_count: u32) -> Self {
        Self {
            vcpu_id,
            vcpu_count,
            hypervisor_bit: true,
            removed_leaves: Vec::new(),
        }
    }

    fn validate(&self) -> Result<()> {
        if self.vcpu_count == 0 {
            return Err(Error::NoVcpus { what: "CPUID" });
        }
        if self.vcpu_count > MAX_VCPUS {
            return Err(Error::TooManyVcpus {
                what: "CPUID topology",
                count: self.vcpu_count as usize,
                max: MAX_VCPUS as usize,
            });
        }
        if self.vcpu_id >= self.vcpu_count {
            return Err(Error::TooManyVcpus {
                what: "CPUID topology (vCPU index beyond the count)",
                count: self.vcpu_id as usize + 1,
                max: self.vcpu_count as usize,
            });
        }
        Ok(())
    }
}

/// Bits needed to number `n` items (the x2APIC ID shift of a level).
fn id_bits(n: u32) -> u32 {
    if n <= 1 {
        0
    } else {
        32 - (n - 1).leading_zeros()
    }
}

/// Rewrites `entries` for the vCPU `topo` describes.
///
/// - Drops leaves above the maximum basic (leaf 0 EAX) and extended
///   (leaf 0x8000_0000 EAX) leaf when those leaves are present, and the
///   leaves in `removed_leaves`.
/// - Leaf 1: initial APIC ID, logical processor count, HTT, hypervisor bit.
/// - Leaf 4: cores per package; threads sharing L1/L2 = 1, L3 = all.
/// - Leaves 0xb and 0x1f: x2APIC ID and the SMT/core levels.
pub fn normalize(entries: &mut Vec<CpuidEntry>, topo: &VcpuTopology) -> Result<()> {
    topo.validate()?;
    let max_basic = entries.iter().find(|e| e.function == 0).map(|e| e.eax);
    let max_ext = entries
        .iter()
        .find(|e| e.function == EXTENDED_BASE)
        .map(|e| e.eax);
    entries.retain(|e| {
        let f = e.function;
        if topo.removed_leaves.contains(&f) {
            return false;
        }
        if f < HYPERVISOR_BASE {
            max_basic.is_none_or(|m| f <= m)
        } else if f >= EXTENDED_BASE {
            max_ext.is_none_or(|m| f <= m)
        } else {
            true
        }
    });

    let id = topo.vcpu_id;
    let count = topo.vcpu_count;
    for e in entries.iter_mut() {
        match e.function {
            1 => {
                e.ebx = (e.ebx & 0x0000_ffff) | (id << 24) | (count << 16);
                if count > 1 {
                    e.edx |= LEAF1_EDX_HTT;
                } else {
                    e.edx &= !LEAF1_EDX_HTT;
                }
                if topo.hypervisor_bit {
                    e.ecx |= LEAF1_ECX_HYPERVISOR;
                } else {
                    e.ecx &= !LEAF1_ECX_HYPERVISOR;
                }
            }
            4 => {
                let cache_type = e.eax & 0x1f;
                if cache_type != 0 {
                    let level = (e.eax >> 5) & 0x7;
                    let sharing = if level >= 3 { count - 1 } else { 0 };
                    let cores = (count - 1).min(0x3f);
                    e.eax = (e.eax & 0x3fff) | (sharing.min(0xfff) << 14) | (cores << 26);
                }
            }
            0xb | 0x1f => {
                e.edx = id;
                match e.index {
                    0 => {
                        e.eax = 0;
                        e.ebx = 1;
                        e.ecx = (LEVEL_TYPE_SMT << 8) | e.index;
                    }
                    1 => {
                        e.eax = id_bits(count);
                        e.ebx = count;
                        e.ecx = (LEVEL_TYPE_CORE << 8) | e.index;
                    }
                    _ => {
                        e.eax = 0;
                        e.ebx = 0;
                        e.ecx = e.index;
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(function: u32, index: u32) -> CpuidEntry {
        CpuidEntry {
            function,
            index,
            significant_index: matches!(function, 4 | 0xb | 0x1f),
            ..Default::default()
        }
    }

    fn table() -> Vec<CpuidEntry> {
        let mut t = vec![
            CpuidEntry {
                eax: 0xb,
                ..leaf(0, 0)
            },
            CpuidEntry {
                ebx: 0x00ff_0800,
                edx: 0,
                ..leaf(1, 0)
            },
            // L1d, L2, L3 descriptors (type 1/3/3, levels 1/2/3), then the
            // null terminator.
            CpuidEntry {
                eax: 0x21 | 0xffff_c000,
                ..leaf(4, 0)
            },
            CpuidEntry {
                eax: 0x43,
                ..leaf(4, 1)
            },
            CpuidEntry {
                eax: 0x63,
                ..leaf(4, 2)
            },
            leaf(4, 3),
            leaf(6, 0),
            leaf(0xb, 0),
            leaf(0xb, 1),
            leaf(0xb, 2),
            leaf(0xd, 0),
            leaf(0x1f, 0),
            CpuidEntry {
                eax: 0x4000_0001,
                ..leaf(HYPERVISOR_BASE, 0)
            },
            CpuidEntry {
                eax: 0x8000_0008,
                ..leaf(EXTENDED_BASE, 0)
            },
            leaf(0x8000_0008, 0),
            leaf(0x8000_001e, 0),
        ];
        t.sort_by_key(|e| (e.function, e.index));
        t
    }

    fn find(t: &[CpuidEntry], f: u32, i: u32) -> Option<CpuidEntry> {
        t.iter().copied().find(|e| e.function == f && e.index == i)
    }

    #[test]
    fn leaf1_carries_apic_id_count_and_flags() {
        let mut t = table();
        normalize(&mut t, &VcpuTopology::new(3, 4)).unwrap();
        let l1 = find(&t, 1, 0).unwrap();
        assert_eq!(l1.ebx >> 24, 3);
        assert_eq!((l1.ebx >> 16) & 0xff, 4);
        assert_eq!(l1.ebx & 0xffff, 0x0800, "other EBX bits kept");
        assert_ne!(l1.edx & LEAF1_EDX_HTT, 0);
        assert_ne!(l1.ecx & LEAF1_ECX_HYPERVISOR, 0);

        let mut t = table();
        let mut topo = VcpuTopology::new(0, 1);
        topo.hypervisor_bit = false;
        normalize(&mut t, &topo).unwrap();
        let l1 = find(&t, 1, 0).unwrap();
        assert_eq!(l1.edx & LEAF1_EDX_HTT, 0);
        assert_eq!(l1.ecx & LEAF1_ECX_HYPERVISOR, 0);
    }

    #[test]
    fn leaf4_reports_cores_and_cache_sharing() {
        let mut t = table();
        normalize(&mut t, &VcpuTopology::new(0, 6)).unwrap();
        let l1d = find(&t, 4, 0).unwrap();
        assert_eq!(l1d.eax >> 26, 5);
        assert_eq!((l1d.eax >> 14) & 0xfff, 0);
        assert_eq!(l1d.eax & 0x3fff, 0x21, "type and level kept");
        let l3 = find(&t, 4, 2).unwrap();
        assert_eq!(l3.eax >> 26, 5);
        assert_eq!((l3.eax >> 14) & 0xfff, 5);
        assert_eq!(find(&t, 4, 3).unwrap().eax, 0, "terminator untouched");
    }

    #[test]
    fn extended_topology_levels() {
        let mut t = table();
        normalize(&mut t, &VcpuTopology::new(5, 6)).unwrap();
        let smt = find(&t, 0xb, 0).unwrap();
        assert_eq!((smt.eax, smt.ebx, smt.ecx, smt.edx), (0, 1, 0x100, 5));
        let core = find(&t, 0xb, 1).unwrap();
        assert_eq!((core.eax, core.ebx, core.ecx, core.edx), (3, 6, 0x201, 5));
        let end = find(&t, 0xb, 2).unwrap();
        assert_eq!((end.eax, end.ebx, end.ecx, end.edx), (0, 0, 2, 5));
        assert_eq!(id_bits(1), 0);
        assert_eq!(id_bits(2), 1);
        assert_eq!(id_bits(4), 2);
        assert_eq!(id_bits(5), 3);
    }

    #[test]
    fn leaves_beyond_maxima_and_removed_ones_go() {
        let mut t = table();
        let mut topo = VcpuTopology::new(0, 2);
        topo.removed_leaves.push(6);
        normalize(&mut t, &topo).unwrap();
        assert!(find(&t, 6, 0).is_none(), "explicitly removed");
        assert!(find(&t, 0x1f, 0).is_none(), "above max basic leaf 0xb");
        assert!(
            find(&t, 0x8000_001e, 0).is_none(),
            "above max extended leaf"
        );
        assert!(find(&t, 0x8000_0008, 0).is_some());
        assert!(find(&t, 0xd, 0).is_none(), "0xd above 0xb");
        assert!(find(&t, HYPERVISOR_BASE, 0).is_some());
    }

    #[test]
    fn bad_topologies_are_typed_errors() {
        let mut t = table();
        assert!(matches!(
            normalize(&mut t, &VcpuTopology::new(0, 0)),
            Err(Error::NoVcpus { .. })
        ));
        assert!(matches!(
            normalize(&mut t, &VcpuTopology::new(4, 4)),
            Err(Error::TooManyVcpus {
                count: 5,
                max: 4,
                ..
            })
        ));
        assert!(matches!(
            normalize(&mut t, &VcpuTopology::new(0, 256)),
            Err(Error::TooManyVcpus { max: 255, .. })
        ));
        assert_eq!(t, table(), "table untouched on error");
    }
}
