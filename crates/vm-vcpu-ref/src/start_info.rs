// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The PVH start info: `struct hvm_start_info`, its module list and memory map entries, laid
//! out as Xen's public `arch-x86/hvm/start_info.h` lays them out (version 1).
//!
//! The names are Xen's, and linux-loader's `start_info` module's. All three types are
//! [`ByteValued`].

#![allow(non_camel_case_types)]

use vm_memory::ByteValued;

/// `hvm_start_info.magic`: "xEn3" with the top bit of each byte set.
pub const XEN_HVM_START_MAGIC_VALUE: u32 = 0x336e_c578;

/// The start info a PVH kernel finds at EBX (56 bytes).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct hvm_start_info {
    /// [`XEN_HVM_START_MAGIC_VALUE`].
    pub magic: u32,
    /// Version of this structure (1: the memory map fields are present).
    pub version: u32,
    /// `SIF_*` flags.
    pub flags: u32,
    /// Entries of the module list.
    pub nr_modules: u32,
    /// Physical address of the module list (`hvm_modlist_entry`s).
    pub modlist_paddr: u64,
    /// Physical address of the NUL-terminated command line.
    pub cmdline_paddr: u64,
    /// Physical address of the ACPI RSDP, or 0.
    pub rsdp_paddr: u64,
    /// Physical address of the memory map (`hvm_memmap_table_entry`s).
    pub memmap_paddr: u64,
    /// Entries of the memory map.
    pub memmap_entries: u32,
    /// Must be zero.
    pub reserved: u32,
}

/// One module (an initrd, say) of the start info's module list (32 bytes).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct hvm_modlist_entry {
    /// Physical address of the module.
    pub paddr: u64,
    /// Size of the module in bytes.
    pub size: u64,
    /// Physical address of the module's NUL-terminated command line, or 0.
    pub cmdline_paddr: u64,
    /// Must be zero.
    pub reserved: u64,
}

/// One entry of the start info's memory map (24 bytes).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct hvm_memmap_table_entry {
    /// Start of the range.
    pub addr: u64,
    /// Length of the range in bytes.
    pub size: u64,
    /// `XEN_HVM_MEMMAP_TYPE_*`, the E820 type codes.
    pub type_: u32,
    /// Must be zero.
    pub reserved: u32,
}

// The layout is Xen's ABI: any mistake in the declarations above fails the build.
const _: () = {
    assert!(size_of::<hvm_start_info>() == 56);
    assert!(size_of::<hvm_modlist_entry>() == 32);
    assert!(size_of::<hvm_memmap_table_entry>() == 24);
};

// SAFETY: `repr(C)` with only integer fields, each at its natural alignment and the size a
// multiple of 8 (checked above): no padding, and every bit pattern is a valid value.
unsafe impl ByteValued for hvm_start_info {}
// SAFETY: `repr(C)` with only `u64` fields: no padding, and every bit pattern is a valid value.
unsafe impl ByteValued for hvm_modlist_entry {}
// SAFETY: `repr(C)` with two `u64` and two `u32` fields, 24 bytes (checked above): no padding,
// and every bit pattern is a valid value.
unsafe impl ByteValued for hvm_memmap_table_entry {}
