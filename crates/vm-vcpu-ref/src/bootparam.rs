// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The x86 Linux zero page: `struct boot_params`, its `struct setup_header` and E820 entries,
//! laid out as Linux's `arch/x86/include/uapi/asm/bootparam.h` lays them out (the kernel's
//! `Documentation/arch/x86/zero-page.rst` and `boot.rst` describe them).
//!
//! The names are Linux's, and linux-loader's `bootparam` module's, so code written against
//! either reads the same. The parts of the zero page a VMM that boots through the 64-bit
//! protocol never fills (screen, APM, IST, EDID, EFI and EDD information) are byte arrays of
//! their size here. All three types are [`ByteValued`]: a setup header read from a bzImage
//! (offset 0x1f1, `size_of::<setup_header>()` bytes) becomes one with
//! `*setup_header::from_slice(bytes).unwrap()`, whoever read it.
//!
//! ```
//! use vm_memory::ByteValued;
//! use vm_vcpu_ref::bootparam::{boot_params, setup_header};
//!
//! let mut image = vec![0u8; 0x400];
//! image[0x206..0x208].copy_from_slice(&0x020fu16.to_le_bytes()); // protocol version
//! let at = std::mem::offset_of!(boot_params, hdr);
//! let hdr = *setup_header::from_slice(&image[at..at + size_of::<setup_header>()]).unwrap();
//! assert_eq!({ hdr.version }, 0x020f);
//! ```

#![allow(non_camel_case_types)]

use vm_memory::ByteValued;

/// `loadflags`: the protected-mode kernel is loaded at 0x100000.
pub const LOADED_HIGH: u8 = 1 << 0;
/// `loadflags`: KASLR was applied (set by the kernel).
pub const KASLR_FLAG: u8 = 1 << 1;
/// `loadflags`: the kernel should print nothing early.
pub const QUIET_FLAG: u8 = 1 << 5;
/// `loadflags`: `heap_end_ptr` is valid.
pub const CAN_USE_HEAP: u8 = 1 << 7;
/// Entries of `e820_table` in the zero page.
pub const E820_MAX_ENTRIES_ZEROPAGE: usize = 128;
/// Entries of `edd_mbr_sig_buffer`.
pub const EDD_MBR_SIG_MAX: usize = 16;

/// One E820 memory map entry of the zero page (20 bytes).
#[repr(C, packed)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct boot_e820_entry {
    /// Start of the range.
    pub addr: u64,
    /// Length of the range in bytes.
    pub size: u64,
    /// `E820_TYPE_*` (1 RAM, 2 reserved, 3 ACPI, 4 NVS, 5 unusable, 7 PMEM).
    pub r#type: u32,
}

/// The real-mode kernel header (`struct setup_header`), at 0x1f1 of a bzImage and of the zero
/// page. The offsets in the field docs are those in the zero page.
#[repr(C, packed)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct setup_header {
    /// 0x1f1: size of the setup code in 512-byte sectors.
    pub setup_sects: u8,
    /// 0x1f2: mount root read-only (obsolete).
    pub root_flags: u16,
    /// 0x1f4: size of the 32-bit code in 16-byte paragraphs.
    pub syssize: u32,
    /// 0x1f8: obsolete.
    pub ram_size: u16,
    /// 0x1fa: video mode.
    pub vid_mode: u16,
    /// 0x1fc: default root device.
    pub root_dev: u16,
    /// 0x1fe: 0xaa55.
    pub boot_flag: u16,
    /// 0x200: jump instruction.
    pub jump: u16,
    /// 0x202: "HdrS".
    pub header: u32,
    /// 0x206: boot protocol version.
    pub version: u16,
    /// 0x208: boot loader hook.
    pub realmode_swtch: u32,
    /// 0x20c: obsolete.
    pub start_sys_seg: u16,
    /// 0x20e: offset of the kernel version string.
    pub kernel_version: u16,
    /// 0x210: boot loader identifier.
    pub type_of_loader: u8,
    /// 0x211: boot protocol option flags (`LOADED_HIGH`, `CAN_USE_HEAP`, ...).
    pub loadflags: u8,
    /// 0x212: move to high memory size.
    pub setup_move_size: u16,
    /// 0x214: 32-bit entry point.
    pub code32_start: u32,
    /// 0x218: initrd load address (low 32 bits).
    pub ramdisk_image: u32,
    /// 0x21c: initrd size (low 32 bits).
    pub ramdisk_size: u32,
    /// 0x220: obsolete.
    pub bootsect_kludge: u32,
    /// 0x224: end of the setup heap, relative to the setup code.
    pub heap_end_ptr: u16,
    /// 0x226: extended boot loader version.
    pub ext_loader_ver: u8,
    /// 0x227: extended boot loader identifier.
    pub ext_loader_type: u8,
    /// 0x228: command line address (low 32 bits).
    pub cmd_line_ptr: u32,
    /// 0x22c: highest initrd address.
    pub initrd_addr_max: u32,
    /// 0x230: physical alignment the kernel needs.
    pub kernel_alignment: u32,
    /// 0x234: whether the kernel is relocatable.
    pub relocatable_kernel: u8,
    /// 0x235: minimum alignment, as a power of two.
    pub min_alignment: u8,
    /// 0x236: boot protocol option flags (`XLF_*`).
    pub xloadflags: u16,
    /// 0x238: longest command line, without the terminating NUL.
    pub cmdline_size: u32,
    /// 0x23c: hardware subarchitecture.
    pub hardware_subarch: u32,
    /// 0x240: subarchitecture-specific data.
    pub hardware_subarch_data: u64,
    /// 0x248: offset of the compressed payload.
    pub payload_offset: u32,
    /// 0x24c: length of the compressed payload.
    pub payload_length: u32,
    /// 0x250: physical address of the first `setup_data` (a linked list).
    pub setup_data: u64,
    /// 0x258: preferred load address.
    pub pref_address: u64,
    /// 0x260: linear memory the kernel needs before it initialises.
    pub init_size: u32,
    /// 0x264: offset of the EFI handover entry point.
    pub handover_offset: u32,
    /// 0x268: offset of the `kernel_info` structure.
    pub kernel_info_offset: u32,
}

/// The zero page (`struct boot_params`, 4096 bytes). The offsets in the field docs are from
/// its start.
#[repr(C, packed)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct boot_params {
    /// 0x000: `struct screen_info` (not interpreted here).
    pub screen_info: [u8; 0x40],
    /// 0x040: `struct apm_bios_info` (not interpreted here).
    pub apm_bios_info: [u8; 0x14],
    /// 0x054: padding.
    pub _pad2: [u8; 4],
    /// 0x058: physical address of the tboot shared page.
    pub tboot_addr: u64,
    /// 0x060: `struct ist_info` (not interpreted here).
    pub ist_info: [u8; 0x10],
    /// 0x070: physical address of the ACPI RSDP.
    pub acpi_rsdp_addr: u64,
    /// 0x078: padding.
    pub _pad3: [u8; 8],
    /// 0x080: obsolete hd0 disk parameters.
    pub hd0_info: [u8; 16],
    /// 0x090: obsolete hd1 disk parameters.
    pub hd1_info: [u8; 16],
    /// 0x0a0: `struct sys_desc_table` (not interpreted here).
    pub sys_desc_table: [u8; 0x10],
    /// 0x0b0: `struct olpc_ofw_header` (not interpreted here).
    pub olpc_ofw_header: [u8; 0x10],
    /// 0x0c0: initrd load address (high 32 bits).
    pub ext_ramdisk_image: u32,
    /// 0x0c4: initrd size (high 32 bits).
    pub ext_ramdisk_size: u32,
    /// 0x0c8: command line address (high 32 bits).
    pub ext_cmd_line_ptr: u32,
    /// 0x0cc: padding.
    pub _pad4: [u8; 112],
    /// 0x13c: physical address of the confidential computing blob.
    pub cc_blob_address: u32,
    /// 0x140: `struct edid_info` (not interpreted here).
    pub edid_info: [u8; 0x80],
    /// 0x1c0: `struct efi_info` (not interpreted here).
    pub efi_info: [u8; 0x20],
    /// 0x1e0: alternative memory size in KiB.
    pub alt_mem_k: u32,
    /// 0x1e4: scratch field for the kernel setup code.
    pub scratch: u32,
    /// 0x1e8: entries used in `e820_table`.
    pub e820_entries: u8,
    /// 0x1e9: entries used in `eddbuf`.
    pub eddbuf_entries: u8,
    /// 0x1ea: entries used in `edd_mbr_sig_buffer`.
    pub edd_mbr_sig_buf_entries: u8,
    /// 0x1eb: keyboard status.
    pub kbd_status: u8,
    /// 0x1ec: secure boot state.
    pub secure_boot: u8,
    /// 0x1ed: padding.
    pub _pad5: [u8; 2],
    /// 0x1ef: nonzero when a boot loader did not clear the zero page.
    pub sentinel: u8,
    /// 0x1f0: padding.
    pub _pad6: [u8; 1],
    /// 0x1f1: the setup header.
    pub hdr: setup_header,
    /// 0x26c: padding.
    pub _pad7: [u8; 36],
    /// 0x290: MBR signatures of the EDD disks.
    pub edd_mbr_sig_buffer: [u32; EDD_MBR_SIG_MAX],
    /// 0x2d0: the E820 memory map.
    pub e820_table: [boot_e820_entry; E820_MAX_ENTRIES_ZEROPAGE],
    /// 0xcd0: padding.
    pub _pad8: [u8; 48],
    /// 0xd00: six `struct edd_info` (not interpreted here).
    pub eddbuf: [u8; 6 * 82],
    /// 0xeec: padding.
    pub _pad9: [u8; 276],
}

impl Default for boot_params {
    /// All zero.
    fn default() -> Self {
        Self {
            screen_info: [0; 0x40],
            apm_bios_info: [0; 0x14],
            _pad2: [0; 4],
            tboot_addr: 0,
            ist_info: [0; 0x10],
            acpi_rsdp_addr: 0,
            _pad3: [0; 8],
            hd0_info: [0; 16],
            hd1_info: [0; 16],
            sys_desc_table: [0; 0x10],
            olpc_ofw_header: [0; 0x10],
            ext_ramdisk_image: 0,
            ext_ramdisk_size: 0,
            ext_cmd_line_ptr: 0,
            _pad4: [0; 112],
            cc_blob_address: 0,
            edid_info: [0; 0x80],
            efi_info: [0; 0x20],
            alt_mem_k: 0,
            scratch: 0,
            e820_entries: 0,
            eddbuf_entries: 0,
            edd_mbr_sig_buf_entries: 0,
            kbd_status: 0,
            secure_boot: 0,
            _pad5: [0; 2],
            sentinel: 0,
            _pad6: [0; 1],
            hdr: setup_header::default(),
            _pad7: [0; 36],
            edd_mbr_sig_buffer: [0; EDD_MBR_SIG_MAX],
            e820_table: [boot_e820_entry::default(); E820_MAX_ENTRIES_ZEROPAGE],
            _pad8: [0; 48],
            eddbuf: [0; 6 * 82],
            _pad9: [0; 276],
        }
    }
}

// The layout is the kernel's ABI: any mistake in the declarations above fails the build.
const _: () = {
    assert!(size_of::<boot_e820_entry>() == 20);
    assert!(size_of::<setup_header>() == 0x26c - 0x1f1);
    assert!(size_of::<boot_params>() == 4096);
    assert!(std::mem::offset_of!(boot_params, hdr) == 0x1f1);
    assert!(std::mem::offset_of!(boot_params, e820_table) == 0x2d0);
    assert!(std::mem::offset_of!(boot_params, eddbuf) == 0xd00);
};

// SAFETY: `repr(C, packed)` with only integer fields: no padding, and every bit pattern is a
// valid value.
unsafe impl ByteValued for boot_e820_entry {}
// SAFETY: `repr(C, packed)` with only integer fields: no padding, and every bit pattern is a
// valid value.
unsafe impl ByteValued for setup_header {}
// SAFETY: `repr(C, packed)` with only integers, integer arrays and the two types above as
// fields: no padding, and every bit pattern is a valid value.
unsafe impl ByteValued for boot_params {}
