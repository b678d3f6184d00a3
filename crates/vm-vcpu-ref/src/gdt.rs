// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Typed x86 segment descriptors and global descriptor tables.
//!
//! A descriptor is built from named parts (kind, privilege level, present,
//! flags) instead of a hand-assembled flag word such as `0xa09b`; the
//! [`SegmentDescriptor::flags_word`] and [`SegmentDescriptor::encode`]
//! methods still produce those exact values, and tests pin them.
//!
//! ```
//! use vm_vcpu_ref::gdt::{PrivilegeLevel, SegmentDescriptor};
//!
//! let code = SegmentDescriptor::builder()
//!     .code64()
//!     .dpl(PrivilegeLevel::Ring0)
//!     .build()
//!     .unwrap();
//! assert_eq!(code.flags_word(), 0xa09b);
//! assert_eq!(code.encode(), 0x00af_9b00_0000_ffff);
//! ```

use vm_hypervisor::x86_64::{DescriptorTable, Segment};
use vm_memory::{GuestAddress, GuestMemory};

use crate::error::{Error, Result};
use crate::guest;

/// Largest raw (unscaled) segment limit: 20 bits.
pub const MAX_RAW_LIMIT: u32 = 0xf_ffff;
/// Largest number of entries a GDT can hold (the limit register is 16 bits).
pub const MAX_GDT_ENTRIES: usize = 8192;

/// Descriptor privilege level (DPL) or requested privilege level (RPL).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PrivilegeLevel {
    /// Most privileged: kernel.
    #[default]
    Ring0 = 0,
    /// Ring 1.
    Ring1 = 1,
    /// Ring 2.
    Ring2 = 2,
    /// Least privileged: user.
    Ring3 = 3,
}

impl PrivilegeLevel {
    /// The two-bit value.
    pub const fn bits(self) -> u8 {
        self as u8
    }

    /// The level whose two-bit value is `bits & 3`.
    pub const fn from_bits(bits: u8) -> Self {
        match bits & 3 {
            0 => Self::Ring0,
            1 => Self::Ring1,
            2 => Self::Ring2,
            _ => Self::Ring3,
        }
    }
}

/// System descriptor types (descriptors with the S bit clear).
///
/// The TSS and gate types describe 32-bit structures in protected mode and
/// 64-bit ones in long mode; the encoding is the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SystemType {
    /// 16-bit TSS, available.
    Tss16Available = 0x1,
    /// Local descriptor table.
    Ldt = 0x2,
    /// 16-bit TSS, busy.
    Tss16Busy = 0x3,
    /// 16-bit call gate.
    CallGate16 = 0x4,
    /// Task gate.
    TaskGate = 0x5,
    /// 16-bit interrupt gate.
    InterruptGate16 = 0x6,
    /// 16-bit trap gate.
    TrapGate16 = 0x7,
    /// 32/64-bit TSS, available.
    TssAvailable = 0x9,
    /// 32/64-bit TSS, busy (the type the task register must hold on entry).
    TssBusy = 0xb,
    /// 32/64-bit call gate.
    CallGate = 0xc,
    /// 32/64-bit interrupt gate.
    InterruptGate = 0xe,
    /// 32/64-bit trap gate.
    TrapGate = 0xf,
}

impl SystemType {
    fn from_type(ty: u8) -> Option<Self> {
        Some(match ty & 0xf {
            0x1 => Self::Tss16Available,
            0x2 => Self::Ldt,
            0x3 => Self::Tss16Busy,
            0x4 => Self::CallGate16,
            0x5 => Self::TaskGate,
            0x6 => Self::InterruptGate16,
            0x7 => Self::TrapGate16,
            0x9 => Self::TssAvailable,
            0xb => Self::TssBusy,
            0xc => Self::CallGate,
            0xe => Self::InterruptGate,
            0xf => Self::TrapGate,
            _ => return None,
        })
    }
}

/// What a descriptor describes: the S bit and the four type bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SegmentKind {
    /// A code segment (S = 1, type bit 3 = 1).
    Code {
        /// Type bit 1: the segment may be read as well as executed.
        readable: bool,
        /// Type bit 2: conforming (callable from less privileged code).
        conforming: bool,
        /// Type bit 0: accessed. Set it up front so the CPU never has to
        /// write the descriptor (the GDT may live in read-only memory).
        accessed: bool,
    },
    /// A data segment (S = 1, type bit 3 = 0).
    Data {
        /// Type bit 1: the segment may be written.
        writable: bool,
        /// Type bit 2: expand-down (stack-style limit check).
        expand_down: bool,
        /// Type bit 0: accessed.
        accessed: bool,
    },
    /// A system segment or gate (S = 0).
    System(SystemType),
}

impl SegmentKind {
    /// Execute/read code, accessed (type 11).
    pub const CODE_EXECUTE_READ: Self = Self::Code {
        readable: true,
        conforming: false,
        accessed: true,
    };
    /// Read/write data, accessed (type 3).
    pub const DATA_READ_WRITE: Self = Self::Data {
        writable: true,
        expand_down: false,
        accessed: true,
    };

    /// The S (descriptor type) bit: set for code and data.
    pub const fn s(self) -> bool {
        !matches!(self, Self::System(_))
    }

    /// The four type bits.
    pub const fn type_bits(self) -> u8 {
        match self {
            Self::Code {
                readable,
                conforming,
                accessed,
            } => 0x8 | (conforming as u8) << 2 | (readable as u8) << 1 | accessed as u8,
            Self::Data {
                writable,
                expand_down,
                accessed,
            } => (expand_down as u8) << 2 | (writable as u8) << 1 | accessed as u8,
            Self::System(t) => t as u8,
        }
    }

    /// Decodes the S bit and type bits; reserved system types are rejected.
    pub fn from_bits(s: bool, type_bits: u8) -> Result<Self> {
        let t = type_bits & 0xf;
        if s {
            let accessed = t & 1 != 0;
            let b1 = t & 2 != 0;
            let b2 = t & 4 != 0;
            Ok(if t & 8 != 0 {
                Self::Code {
                    readable: b1,
                    conforming: b2,
                    accessed,
                }
            } else {
                Self::Data {
                    writable: b1,
                    expand_down: b2,
                    accessed,
                }
            })
        } else {
            SystemType::from_type(t)
                .map(Self::System)
                .ok_or(Error::InvalidDescriptor {
                    raw: u64::from(t),
                    reason: "reserved system descriptor type",
                })
        }
    }
}

/// The high flag nibble of a descriptor.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DescriptorFlags {
    /// G: the limit counts 4 KiB pages instead of bytes.
    pub granularity: bool,
    /// D/B: 32-bit default operand size (code) or 32-bit stack/upper bound
    /// (data). Must be clear for 64-bit code.
    pub default_big: bool,
    /// L: 64-bit code segment.
    pub long: bool,
    /// AVL: available to software.
    pub available: bool,
}

impl DescriptorFlags {
    /// The nibble as it sits in bits 52..56 of a descriptor
    /// (bit 3 = G, 2 = D/B, 1 = L, 0 = AVL).
    pub const fn nibble(self) -> u8 {
        (self.granularity as u8) << 3
            | (self.default_big as u8) << 2
            | (self.long as u8) << 1
            | self.available as u8
    }

    /// Decodes the low four bits of `nibble`.
    pub const fn from_nibble(nibble: u8) -> Self {
        Self {
            granularity: nibble & 8 != 0,
            default_big: nibble & 4 != 0,
            long: nibble & 2 != 0,
            available: nibble & 1 != 0,
        }
    }
}

/// A segment selector: table index, table indicator and RPL.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Selector(pub u16);

impl Selector {
    /// The null selector.
    pub const NULL: Self = Self(0);

    /// A GDT selector for entry `index` with requested privilege `rpl`.
    /// `index` is taken modulo 8192.
    pub const fn gdt(index: u16, rpl: PrivilegeLevel) -> Self {
        Self((index & 0x1fff) << 3 | rpl.bits() as u16)
    }

    /// The table index.
    pub const fn index(self) -> u16 {
        self.0 >> 3
    }

    /// Whether the selector refers to the LDT.
    pub const fn is_ldt(self) -> bool {
        self.0 & 4 != 0
    }

    /// The requested privilege level.
    pub const fn rpl(self) -> PrivilegeLevel {
        PrivilegeLevel::from_bits(self.0 as u8)
    }
}

/// An 8-byte segment descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SegmentDescriptor {
    /// Segment base (32 bits in a legacy descriptor).
    pub base: u32,
    /// Raw 20-bit limit (in pages when `flags.granularity` is set).
    pub limit: u32,
    /// What the descriptor describes.
    pub kind: SegmentKind,
    /// Descriptor privilege level.
    pub dpl: PrivilegeLevel,
    /// P: the segment is present.
    pub present: bool,
    /// G, D/B, L, AVL.
    pub flags: DescriptorFlags,
}

impl SegmentDescriptor {
    /// The all-zero null descriptor (GDT entry 0).
    pub const NULL: u64 = 0;

    /// A builder preset to a present, flat (base 0, limit 4 GiB), ring-0
    /// read/write data segment.
    pub fn builder() -> SegmentDescriptorBuilder {
        SegmentDescriptorBuilder::default()
    }

    /// Flat 64-bit code segment: flag word `0xa09b`.
    pub const fn code64() -> Self {
        Self::flat(SegmentKind::CODE_EXECUTE_READ, true, false)
    }

    /// Flat 32-bit code segment: flag word `0xc09b`.
    pub const fn code32() -> Self {
        Self::flat(SegmentKind::CODE_EXECUTE_READ, false, true)
    }

    /// Flat read/write data segment: flag word `0xc093`.
    pub const fn data() -> Self {
        Self::flat(SegmentKind::DATA_READ_WRITE, false, true)
    }

    /// Busy TSS with base 0 and the given byte-granular limit (use `0x67`
    /// for a minimal 32-bit TSS).
    pub const fn tss_busy(limit: u32) -> Self {
        Self {
            base: 0,
            limit: limit & MAX_RAW_LIMIT,
            kind: SegmentKind::System(SystemType::TssBusy),
            dpl: PrivilegeLevel::Ring0,
            present: true,
            flags: DescriptorFlags {
                granularity: false,
                default_big: false,
                long: false,
                available: false,
            },
        }
    }

    /// Busy TSS spanning 4 GiB in pages: flag word `0x808b`.
    pub const fn tss_busy_flat() -> Self {
        let mut d = Self::tss_busy(MAX_RAW_LIMIT);
        d.flags.granularity = true;
        d
    }

    const fn flat(kind: SegmentKind, long: bool, default_big: bool) -> Self {
        Self {
            base: 0,
            limit: MAX_RAW_LIMIT,
            kind,
            dpl: PrivilegeLevel::Ring0,
            present: true,
            flags: DescriptorFlags {
                granularity: true,
                default_big,
                long,
                available: false,
            },
        }
    }

    /// The access byte: P, DPL, S and type (bits 40..48 of the descriptor).
    pub const fn access_byte(&self) -> u8 {
        (self.present as u8) << 7
            | self.dpl.bits() << 5
            | (self.kind.s() as u8) << 4
            | self.kind.type_bits()
    }

    /// The 16-bit "flags" word VMMs traditionally write: access byte in the
    /// low byte and the flag nibble in bits 12..16 (bits 8..12, where the
    /// descriptor keeps limit bits 16..20, are zero).
    pub const fn flags_word(&self) -> u16 {
        (self.flags.nibble() as u16) << 12 | self.access_byte() as u16
    }

    /// Builds a descriptor from a traditional flags word, base and limit.
    pub fn from_flags_word(word: u16, base: u32, limit: u32) -> Result<Self> {
        if word & 0x0f00 != 0 {
            return Err(Error::InvalidDescriptor {
                raw: u64::from(word),
                reason: "bits 8..12 of a flags word hold limit bits and must be zero",
            });
        }
        let raw = u64::from(word & 0xff) << 40 | u64::from(word >> 12) << 52;
        let mut d = Self::decode(raw)?;
        d.base = base;
        d.limit = check_limit(limit)?;
        Ok(d)
    }

    /// Encodes the 8-byte descriptor.
    pub const fn encode(&self) -> u64 {
        let base = self.base as u64;
        let limit = (self.limit & MAX_RAW_LIMIT) as u64;
        (limit & 0xffff)
            | (base & 0xff_ffff) << 16
            | (self.access_byte() as u64) << 40
            | (limit >> 16) << 48
            | (self.flags.nibble() as u64) << 52
            | (base >> 24) << 56
    }

    /// Decodes an 8-byte descriptor. Reserved system types are rejected.
    pub fn decode(raw: u64) -> Result<Self> {
        let access = (raw >> 40) as u8;
        let kind = SegmentKind::from_bits(access & 0x10 != 0, access & 0xf).map_err(|_| {
            Error::InvalidDescriptor {
                raw,
                reason: "reserved system descriptor type",
            }
        })?;
        Ok(Self {
            base: ((raw >> 16) & 0xff_ffff | (raw >> 56) << 24) as u32,
            limit: (raw & 0xffff | ((raw >> 48) & 0xf) << 16) as u32,
            kind,
            dpl: PrivilegeLevel::from_bits(access >> 5),
            present: access & 0x80 != 0,
            flags: DescriptorFlags::from_nibble((raw >> 52) as u8),
        })
    }

    /// The limit in bytes as the CPU applies it (scaled when G is set).
    pub const fn byte_limit(&self) -> u32 {
        let limit = self.limit & MAX_RAW_LIMIT;
        if self.flags.granularity {
            limit << 12 | 0xfff
        } else {
            limit
        }
    }

    /// The segment-register state the CPU caches when `selector` (which
    /// refers to this descriptor) is loaded.
    pub const fn to_segment(&self, selector: Selector) -> Segment {
        Segment {
            base: self.base as u64,
            limit: self.byte_limit(),
            selector: selector.0,
            type_: self.kind.type_bits(),
            present: self.present,
            dpl: self.dpl.bits(),
            db: self.flags.default_big,
            s: self.kind.s(),
            l: self.flags.long,
            g: self.flags.granularity,
            avl: self.flags.available,
            unusable: !self.present,
        }
    }

    /// The descriptor that yields `segment` when loaded, and its selector.
    ///
    /// Fails when the segment cannot come from an 8-byte descriptor: a base
    /// above 4 GiB, a page-granular limit whose low 12 bits are not all
    /// ones, a byte-granular limit above 20 bits, or a reserved type.
    pub fn from_segment(segment: &Segment) -> Result<(Self, Selector)> {
        let base = u32::try_from(segment.base).map_err(|_| Error::InvalidDescriptor {
            raw: segment.base,
            reason: "segment base above 4 GiB does not fit an 8-byte descriptor",
        })?;
        let limit = if segment.g {
            if segment.limit & 0xfff != 0xfff {
                return Err(Error::InvalidDescriptor {
                    raw: u64::from(segment.limit),
                    reason: "page-granular limit must end in 0xfff",
                });
            }
            segment.limit >> 12
        } else {
            check_limit(segment.limit)?
        };
        let kind = SegmentKind::from_bits(segment.s, segment.type_)?;
        Ok((
            Self {
                base,
                limit,
                kind,
                dpl: PrivilegeLevel::from_bits(segment.dpl),
                present: segment.present && !segment.unusable,
                flags: DescriptorFlags {
                    granularity: segment.g,
                    default_big: segment.db,
                    long: segment.l,
                    available: segment.avl,
                },
            },
            Selector(segment.selector),
        ))
    }
}

fn check_limit(limit: u32) -> Result<u32> {
    if limit > MAX_RAW_LIMIT {
        return Err(Error::InvalidDescriptor {
            raw: u64::from(limit),
            reason: "raw limit exceeds 20 bits",
        });
    }
    Ok(limit)
}

/// Builds a [`SegmentDescriptor`] from named parts and validates it.
#[derive(Debug, Clone, Copy)]
pub struct SegmentDescriptorBuilder {
    desc: SegmentDescriptor,
}

impl Default for SegmentDescriptorBuilder {
    fn default() -> Self {
        Self {
            desc: SegmentDescriptor::data(),
        }
    }
}

impl SegmentDescriptorBuilder {
    /// Flat 64-bit execute/read code (L = 1, D/B = 0, G = 1).
    pub fn code64(mut self) -> Self {
        self.desc = SegmentDescriptor {
            dpl: self.desc.dpl,
            ..SegmentDescriptor::code64()
        };
        self
    }

    /// Flat 32-bit execute/read code (L = 0, D/B = 1, G = 1).
    pub fn code32(mut self) -> Self {
        self.desc = SegmentDescriptor {
            dpl: self.desc.dpl,
            ..SegmentDescriptor::code32()
        };
        self
    }

    /// Flat read/write data (D/B = 1, G = 1).
    pub fn data(mut self) -> Self {
        self.desc = SegmentDescriptor {
            dpl: self.desc.dpl,
            ..SegmentDescriptor::data()
        };
        self
    }

    /// Busy TSS over 4 GiB (G = 1).
    pub fn tss_busy(mut self) -> Self {
        self.desc = SegmentDescriptor {
            dpl: self.desc.dpl,
            ..SegmentDescriptor::tss_busy_flat()
        };
        self
    }

    /// Sets the kind (S bit and type).
    pub fn kind(mut self, kind: SegmentKind) -> Self {
        self.desc.kind = kind;
        self
    }

    /// Sets the base.
    pub fn base(mut self, base: u32) -> Self {
        self.desc.base = base;
        self
    }

    /// Sets the raw 20-bit limit; [`build`](Self::build) rejects wider values.
    pub fn limit(mut self, limit: u32) -> Self {
        self.desc.limit = limit;
        self
    }

    /// Sets the descriptor privilege level.
    pub fn dpl(mut self, dpl: PrivilegeLevel) -> Self {
        self.desc.dpl = dpl;
        self
    }

    /// Sets the present bit.
    pub fn present(mut self, present: bool) -> Self {
        self.desc.present = present;
        self
    }

    /// Sets all four flag bits.
    pub fn flags(mut self, flags: DescriptorFlags) -> Self {
        self.desc.flags = flags;
        self
    }

    /// Sets G (4 KiB limit granularity).
    pub fn granularity(mut self, on: bool) -> Self {
        self.desc.flags.granularity = on;
        self
    }

    /// Sets D/B (32-bit default size).
    pub fn default_big(mut self, on: bool) -> Self {
        self.desc.flags.default_big = on;
        self
    }

    /// Sets L (64-bit code).
    pub fn long(mut self, on: bool) -> Self {
        self.desc.flags.long = on;
        self
    }

    /// Sets AVL.
    pub fn available(mut self, on: bool) -> Self {
        self.desc.flags.available = on;
        self
    }

    /// Validates and returns the descriptor.
    ///
    /// Rejects a limit wider than 20 bits, L on anything but code, and code
    /// with both L and D/B set (a reserved combination).
    pub fn build(self) -> Result<SegmentDescriptor> {
        let d = self.desc;
        check_limit(d.limit)?;
        if d.flags.long {
            match d.kind {
                SegmentKind::Code { .. } if d.flags.default_big => {
                    return Err(Error::InvalidDescriptor {
                        raw: d.encode(),
                        reason: "L and D/B both set is reserved",
                    })
                }
                SegmentKind::Code { .. } => {}
                _ => {
                    return Err(Error::InvalidDescriptor {
                        raw: d.encode(),
                        reason: "L is only meaningful for code segments",
                    })
                }
            }
        }
        Ok(d)
    }
}

/// A global descriptor table being assembled.
///
/// Entry 0 is always the null descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gdt {
    entries: Vec<u64>,
}

impl Default for Gdt {
    fn default() -> Self {
        Self::new()
    }
}

impl Gdt {
    /// A table holding only the null descriptor.
    pub fn new() -> Self {
        Self {
            entries: vec![SegmentDescriptor::NULL],
        }
    }

    /// The raw 8-byte entries, null descriptor first.
    pub fn entries(&self) -> &[u64] {
        &self.entries
    }

    /// Number of 8-byte slots in use.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Always false: the null descriptor is always present.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Size of the table in bytes.
    pub fn size(&self) -> usize {
        self.entries.len() * 8
    }

    fn room(&self, slots: usize) -> Result<()> {
        if self.entries.len() + slots > MAX_GDT_ENTRIES {
            return Err(Error::InvalidSize {
                what: "GDT",
                value: (self.entries.len() + slots) as u64,
                reason: "a GDT holds at most 8192 entries",
            });
        }
        Ok(())
    }

    /// Appends a descriptor and returns its ring-0 selector.
    pub fn push(&mut self, desc: SegmentDescriptor) -> Result<Selector> {
        self.room(1)?;
        let sel = Selector::gdt(self.entries.len() as u16, PrivilegeLevel::Ring0);
        self.entries.push(desc.encode());
        Ok(sel)
    }

    /// Appends an empty (null) slot, for example to put later entries at
    /// selectors a protocol prescribes.
    pub fn push_null(&mut self) -> Result<Selector> {
        self.room(1)?;
        let sel = Selector::gdt(self.entries.len() as u16, PrivilegeLevel::Ring0);
        self.entries.push(SegmentDescriptor::NULL);
        Ok(sel)
    }

    /// Appends a 16-byte long-mode system descriptor (TSS or LDT) whose
    /// base is `base`; the low half is `desc` with its base replaced.
    pub fn push_system64(&mut self, desc: SegmentDescriptor, base: u64) -> Result<Selector> {
        if desc.kind.s() {
            return Err(Error::InvalidDescriptor {
                raw: desc.encode(),
                reason: "a 16-byte descriptor must be a system descriptor",
            });
        }
        self.room(2)?;
        let sel = Selector::gdt(self.entries.len() as u16, PrivilegeLevel::Ring0);
        let low = SegmentDescriptor {
            base: base as u32,
            ..desc
        };
        self.entries.push(low.encode());
        self.entries.push(base >> 32);
        Ok(sel)
    }

    /// The decoded descriptor at `selector`'s index.
    pub fn get(&self, selector: Selector) -> Result<SegmentDescriptor> {
        let raw = self
            .entries
            .get(usize::from(selector.index()))
            .copied()
            .ok_or(Error::InvalidDescriptor {
                raw: u64::from(selector.0),
                reason: "selector index beyond the end of the GDT",
            })?;
        SegmentDescriptor::decode(raw)
    }

    /// The descriptor-table register value for this table at `addr`.
    pub fn table_register(&self, addr: GuestAddress) -> DescriptorTable {
        DescriptorTable {
            base: addr.0,
            limit: (self.size() - 1) as u16,
        }
    }

    /// Writes the table at `addr` (little-endian entries) and returns the
    /// GDTR value describing it.
    pub fn write_to<M: GuestMemory + ?Sized>(
        &self,
        mem: &M,
        addr: GuestAddress,
    ) -> Result<DescriptorTable> {
        let bytes: Vec<u8> = self.entries.iter().flat_map(|e| e.to_le_bytes()).collect();
        guest::write(mem, addr, &bytes, "GDT")?;
        Ok(self.table_register(addr))
    }

    /// Reads back the table a GDTR value describes.
    pub fn read_from<M: GuestMemory + ?Sized>(mem: &M, gdtr: DescriptorTable) -> Result<Self> {
        let size = usize::from(gdtr.limit) + 1;
        if size % 8 != 0 {
            return Err(Error::InvalidSize {
                what: "GDT",
                value: size as u64,
                reason: "limit + 1 must be a multiple of 8",
            });
        }
        let mut bytes = vec![0u8; size];
        guest::read(mem, GuestAddress(gdtr.base), &mut bytes, "GDT")?;
        let entries = bytes
            .chunks_exact(8)
            .map(|c| {
                let mut b = [0u8; 8];
                b.copy_from_slice(c);
                u64::from_le_bytes(b)
            })
            .collect();
        Ok(Self { entries })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guest::test_util;

    /// The formula VMMs use to pack a flags word, base and limit (written
    /// from the descriptor layout in the Intel SDM vol. 3, 3.4.5).
    fn gdt_entry(flags: u16, base: u32, limit: u32) -> u64 {
        ((u64::from(base) & 0xff00_0000) << 32)
            | ((u64::from(flags) & 0xf0ff) << 40)
            | ((u64::from(limit) & 0xf_0000) << 32)
            | ((u64::from(base) & 0xff_ffff) << 16)
            | (u64::from(limit) & 0xffff)
    }

    #[test]
    fn builder_reproduces_classic_flag_words() {
        let b = SegmentDescriptor::builder;
        assert_eq!(b().code64().build().unwrap().flags_word(), 0xa09b);
        assert_eq!(b().data().build().unwrap().flags_word(), 0xc093);
        assert_eq!(b().tss_busy().build().unwrap().flags_word(), 0x808b);
        assert_eq!(b().code32().build().unwrap().flags_word(), 0xc09b);
        // The same from individual parts.
        let code64 = b()
            .kind(SegmentKind::Code {
                readable: true,
                conforming: false,
                accessed: true,
            })
            .granularity(true)
            .long(true)
            .default_big(false)
            .build()
            .unwrap();
        assert_eq!(code64.flags_word(), 0xa09b);
        assert_eq!(code64.access_byte(), 0x9b);
    }

    #[test]
    fn builder_reproduces_full_descriptors() {
        let cases = [
            (SegmentDescriptor::code64(), 0xa09b, 0x00af_9b00_0000_ffff),
            (SegmentDescriptor::data(), 0xc093, 0x00cf_9300_0000_ffff),
            (
                SegmentDescriptor::tss_busy_flat(),
                0x808b,
                0x008f_8b00_0000_ffff,
            ),
            (SegmentDescriptor::code32(), 0xc09b, 0x00cf_9b00_0000_ffff),
        ];
        for (desc, word, raw) in cases {
            assert_eq!(desc.encode(), gdt_entry(word, 0, 0xfffff), "{word:#x}");
            assert_eq!(desc.encode(), raw, "{word:#x}");
            assert_eq!(SegmentDescriptor::decode(raw).unwrap(), desc);
            assert_eq!(
                SegmentDescriptor::from_flags_word(word, 0, 0xfffff).unwrap(),
                desc
            );
        }
    }

    #[test]
    fn base_and_limit_are_split_as_the_layout_says() {
        let d = SegmentDescriptor::builder()
            .data()
            .base(0x1234_5678)
            .limit(0xabcde)
            .dpl(PrivilegeLevel::Ring3)
            .build()
            .unwrap();
        assert_eq!(d.encode(), gdt_entry(0xc0f3, 0x1234_5678, 0xabcde));
        assert_eq!(d.access_byte(), 0xf3);
        assert_eq!(SegmentDescriptor::decode(d.encode()).unwrap(), d);
        let tss = SegmentDescriptor::tss_busy(0x67);
        assert_eq!(tss.encode(), gdt_entry(0x008b, 0, 0x67));
        assert_eq!(tss.byte_limit(), 0x67);
    }

    #[test]
    fn builder_rejects_bad_input() {
        let b = SegmentDescriptor::builder;
        assert!(matches!(
            b().limit(0x10_0000).build(),
            Err(Error::InvalidDescriptor { .. })
        ));
        assert!(b().code64().default_big(true).build().is_err());
        assert!(b().data().long(true).build().is_err());
        assert!(SegmentDescriptor::from_flags_word(0xa19b, 0, 0).is_err());
        // Reserved system type 0 (S clear, type 0).
        assert!(SegmentDescriptor::decode(0x0000_8000_0000_0000).is_err());
    }

    #[test]
    fn segment_conversion_matches_long_mode_settings() {
        let cs = SegmentDescriptor::code64().to_segment(Selector::gdt(2, PrivilegeLevel::Ring0));
        assert_eq!(cs.selector, 0x10);
        assert_eq!(cs.type_, 11);
        assert!(cs.s && cs.l && cs.g && cs.present && !cs.db && !cs.unusable);
        assert_eq!(cs.limit, 0xffff_ffff);
        assert_eq!(cs.base, 0);
        let ds = SegmentDescriptor::data().to_segment(Selector(0x18));
        assert_eq!(ds.type_, 3);
        assert!(ds.db && ds.s && !ds.l);
        let tr = SegmentDescriptor::tss_busy_flat().to_segment(Selector(0x20));
        assert_eq!(tr.type_, 11);
        assert!(!tr.s);

        for d in [
            SegmentDescriptor::code64(),
            SegmentDescriptor::code32(),
            SegmentDescriptor::data(),
            SegmentDescriptor::tss_busy_flat(),
            SegmentDescriptor::tss_busy(0x67),
        ] {
            let seg = d.to_segment(Selector(0x28));
            assert_eq!(
                SegmentDescriptor::from_segment(&seg).unwrap(),
                (d, Selector(0x28))
            );
        }
    }

    #[test]
    fn from_segment_rejects_unrepresentable_state() {
        let mut seg = SegmentDescriptor::data().to_segment(Selector(0x18));
        seg.limit = 0xffff_f000;
        assert!(SegmentDescriptor::from_segment(&seg).is_err());
        seg = SegmentDescriptor::data().to_segment(Selector(0x18));
        seg.base = 1 << 32;
        assert!(SegmentDescriptor::from_segment(&seg).is_err());
        seg = SegmentDescriptor::tss_busy(0x67).to_segment(Selector(0x20));
        seg.limit = 0x10_0000;
        assert!(SegmentDescriptor::from_segment(&seg).is_err());
    }

    #[test]
    fn every_decodable_descriptor_encodes_back_to_itself() {
        // A deterministic spread of raw values (64-bit LCG) covering all
        // access bytes and flag nibbles.
        let mut x: u64 = 0x0123_4567_89ab_cdef;
        let mut decoded = 0;
        for _ in 0..20_000 {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            match SegmentDescriptor::decode(x) {
                Ok(d) => {
                    decoded += 1;
                    assert_eq!(d.encode(), x, "{x:#018x}");
                }
                Err(Error::InvalidDescriptor { .. }) => {
                    let ty = (x >> 40) & 0x1f;
                    assert!(matches!(ty, 0x0 | 0x8 | 0xa | 0xd), "{x:#018x}");
                }
                Err(e) => panic!("unexpected {e}"),
            }
        }
        // 7 of 8 type encodings are valid.
        assert!(decoded > 16_000, "{decoded}");
    }

    #[test]
    fn selectors() {
        let s = Selector::gdt(3, PrivilegeLevel::Ring3);
        assert_eq!(s.0, 0x1b);
        assert_eq!(s.index(), 3);
        assert_eq!(s.rpl(), PrivilegeLevel::Ring3);
        assert!(!s.is_ldt());
    }

    #[test]
    fn gdt_round_trips_through_guest_memory() {
        let mem = test_util::mem(0x10000);
        let mut gdt = Gdt::new();
        let cs = gdt.push(SegmentDescriptor::code64()).unwrap();
        let ds = gdt.push(SegmentDescriptor::data()).unwrap();
        let tr = gdt
            .push_system64(SegmentDescriptor::tss_busy(0x67), 0x1_2345_6000)
            .unwrap();
        assert_eq!((cs.0, ds.0, tr.0), (0x8, 0x10, 0x18));
        let gdtr = gdt.write_to(&mem, GuestAddress(0x500)).unwrap();
        assert_eq!(gdtr.base, 0x500);
        assert_eq!(gdtr.limit, 5 * 8 - 1);

        let mut raw = [0u8; 8];
        guest::read(&mem, GuestAddress(0x508), &mut raw, "t").unwrap();
        assert_eq!(u64::from_le_bytes(raw), 0x00af_9b00_0000_ffff);

        let back = Gdt::read_from(&mem, gdtr).unwrap();
        assert_eq!(back, gdt);
        assert_eq!(back.get(cs).unwrap(), SegmentDescriptor::code64());
        assert_eq!(back.get(ds).unwrap(), SegmentDescriptor::data());
        assert_eq!(back.entries()[4], 0x1);
        assert_eq!(back.get(tr).unwrap().base, 0x2345_6000);
        assert!(back.get(Selector::gdt(9, PrivilegeLevel::Ring0)).is_err());
    }

    #[test]
    fn gdt_outside_memory_is_an_error() {
        let mem = test_util::mem(0x1000);
        let mut gdt = Gdt::new();
        gdt.push(SegmentDescriptor::code64()).unwrap();
        assert!(matches!(
            gdt.write_to(&mem, GuestAddress(0xff8)),
            Err(Error::OutsideGuestMemory { what: "GDT", .. })
        ));
    }
}
