// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! A bzImage started as it is ([`BzImageBoot::SelfDecompressing`](super::BzImageBoot)): its
//! protected-mode part (compressed kernel and decompressor) at 1 MiB, entered through Linux's
//! 32-bit boot protocol (the kernel's `Documentation/arch/x86/boot.rst`).
//!
//! The protocol's 32-bit entry wants what a PVH vCPU starts with anyway (protected mode,
//! paging off, flat segments), plus a GDT with `__BOOT_CS` (0x10) and `__BOOT_DS` (0x18),
//! CS and the data segments loaded from them, ESI at the zero page and EBP, EDI and EBX
//! zero. The zero page is vm-vcpu-ref's [`LinuxBoot`]: the setup header copied from the image,
//! the memory map, command line, initrd and ACPI RSDP.
//!
//! The decompressor decodes the kernel to its preferred address (16 MiB for distribution
//! kernels) or, with KASLR, to a random place in RAM away from the initrd, command line and
//! zero page; it needs `init_size` bytes there. So the kernel's extent, for the builder's
//! checks and the initrd's place, runs from 1 MiB to the end of that range.

use vm_memory::{ByteValued, GuestAddress, GuestMemory};
use vm_vcpu_ref::bootparam::{setup_header, LOADED_HIGH};
use vm_vcpu_ref::gdt::{Gdt, SegmentDescriptor};
use vm_vcpu_ref::linux_boot::{LinuxBoot, BOOT_FLAG_MAGIC, HDRS_MAGIC, ZERO_PAGE_SIZE};

use crate::error::{Error, Result};

/// Where the protected-mode kernel goes (the protocol's address for `LOADED_HIGH` kernels).
pub const LOAD_ADDR: u64 = 0x10_0000;
/// Where the boot GDT goes: the page below the zero page (0x7000).
pub const GDT_ADDR: u64 = 0x6000;
/// The earliest boot protocol taken: 2.15 (Linux 5.5), whose kernels read the ACPI RSDP
/// from the zero page (a PVH domain has no BIOS area to search for it).
pub const MIN_PROTOCOL: u16 = 0x020f;
/// Where the setup header starts in the image (and in the zero page).
const HEADER_AT: usize = 0x1f1;

/// A bzImage, checked and kept as it is.
#[derive(Debug)]
pub struct BzImage {
    image: Vec<u8>,
    header: setup_header,
    /// Where the protected-mode part starts in `image`.
    protected_mode: usize,
    /// The guest-physical range the kernel needs: from [`LOAD_ADDR`] to the end of its
    /// decompression buffer.
    extent: (u64, u64),
}

impl BzImage {
    /// Checks `image` (`path` names it in errors): a bzImage of boot protocol
    /// [`MIN_PROTOCOL`] or later, loaded high, with a power-of-two alignment and a
    /// decompression size.
    pub fn parse(image: Vec<u8>, path: &str) -> Result<Self> {
        let bad = |reason: String| Error::BadKernel {
            path: path.to_string(),
            reason,
        };
        let at = HEADER_AT..HEADER_AT + std::mem::size_of::<setup_header>();
        let header = *image
            .get(at)
            .and_then(setup_header::from_slice)
            .ok_or_else(|| bad("too short for a bzImage setup header".into()))?;
        if { header.boot_flag } != BOOT_FLAG_MAGIC || { header.header } != HDRS_MAGIC {
            return Err(bad("no bzImage setup header (0xaa55, \"HdrS\")".into()));
        }
        let version = header.version;
        if version < MIN_PROTOCOL {
            return Err(bad(format!(
                "boot protocol {}.{:02}: starting it as it is needs 2.15 (Linux 5.5) or later",
                version >> 8,
                version & 0xff
            )));
        }
        if header.loadflags & LOADED_HIGH == 0 {
            return Err(bad("a zImage (loaded low), not a bzImage".into()));
        }
        let align = u64::from(header.kernel_alignment);
        if !align.is_power_of_two() {
            return Err(bad(format!("kernel_alignment {align:#x}")));
        }
        if header.init_size == 0 {
            return Err(bad("init_size 0".into()));
        }
        let setup_sects = match header.setup_sects {
            0 => 4,
            n => usize::from(n),
        };
        let protected_mode = (setup_sects + 1) * 512;
        if protected_mode >= image.len() {
            return Err(bad(format!(
                "{setup_sects} setup sectors and nothing after them"
            )));
        }
        let loaded_end = LOAD_ADDR + (image.len() - protected_mode) as u64;
        // Where the decompressor puts the kernel: a relocatable kernel at its load address
        // rounded up to its alignment, but not below its preferred address; any other at
        // the preferred address.
        let pref = header.pref_address;
        let out = if header.relocatable_kernel != 0 {
            LOAD_ADDR.next_multiple_of(align).max(pref)
        } else {
            pref
        };
        let out_end = out
            .checked_add(u64::from(header.init_size))
            .ok_or_else(|| bad(format!("pref_address {pref:#x} wraps around")))?;
        Ok(Self {
            image,
            header,
            protected_mode,
            extent: (LOAD_ADDR, loaded_end.max(out_end)),
        })
    }

    /// The guest-physical range `[start, end)` the kernel needs until it runs.
    pub fn extent(&self) -> (u64, u64) {
        self.extent
    }

    /// The highest address an initrd may end at (`initrd_addr_max`, inclusive, plus one).
    pub fn initrd_end_max(&self) -> u64 {
        u64::from(self.header.initrd_addr_max) + 1
    }

    /// The range `[LOAD_ADDR, end)` the protected-mode part is written to.
    pub fn loaded(&self) -> (u64, u64) {
        (
            LOAD_ADDR,
            LOAD_ADDR + (self.image.len() - self.protected_mode) as u64,
        )
    }

    /// The setup header as the zero page takes it: the image's, with the 32-bit entry at
    /// [`LOAD_ADDR`].
    pub fn header(&self) -> setup_header {
        setup_header {
            code32_start: LOAD_ADDR as u32,
            ..self.header
        }
    }

    /// Writes the protected-mode part to [`LOAD_ADDR`] and `gdt` ([`boot_gdt`]) to
    /// [`GDT_ADDR`] in `mem`, then the zero page and command line `boot` describes.
    pub fn write<M: GuestMemory + ?Sized>(
        &self,
        mem: &M,
        boot: &LinuxBoot<'_>,
        gdt: &Gdt,
    ) -> Result<()> {
        let load = |what, reason: String| Error::Load { what, reason };
        vm_memory::Bytes::write_slice(
            mem,
            &self.image[self.protected_mode..],
            GuestAddress(LOAD_ADDR),
        )
        .map_err(|e| load("kernel", e.to_string()))?;
        gdt.write_to(mem, GuestAddress(GDT_ADDR))
            .map_err(|e| load("boot GDT", e.to_string()))?;
        boot.write(mem)
            .map_err(|e| load("zero page", e.to_string()))?;
        Ok(())
    }
}

/// The GDT the 32-bit boot protocol asks for: two null entries, then the flat 32-bit code
/// segment `__BOOT_CS` (0x10) and the flat data segment `__BOOT_DS` (0x18).
pub fn boot_gdt() -> Gdt {
    let mut gdt = Gdt::new();
    let fits = "four entries fit a GDT";
    // `new` holds the null descriptor; one more null entry puts code at index 2.
    gdt.push_null().expect(fits);
    gdt.push(SegmentDescriptor::code32()).expect(fits);
    gdt.push(SegmentDescriptor::data()).expect(fits);
    gdt
}

/// The bytes the zero page and command line `boot` describes and `gdt` at [`GDT_ADDR`] take,
/// for mapping.
pub fn boot_ranges(boot: &LinuxBoot<'_>, gdt: &Gdt) -> [(u64, u64); 3] {
    [
        (boot.zero_page.0, boot.zero_page.0 + ZERO_PAGE_SIZE as u64),
        (
            boot.cmdline_addr.0,
            boot.cmdline_addr.0 + boot.cmdline.len() as u64 + 1,
        ),
        (GDT_ADDR, GDT_ADDR + gdt.size() as u64),
    ]
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A bzImage of protocol `version`: one setup sector, `pm` bytes of protected-mode part,
    /// relocatable, 2 MiB aligned, preferring 16 MiB, needing `init_size` there.
    pub(crate) fn image(version: u16, pm: &[u8], init_size: u32) -> Vec<u8> {
        let mut img = vec![0u8; 1024];
        let mut h = setup_header {
            setup_sects: 1,
            boot_flag: BOOT_FLAG_MAGIC,
            header: HDRS_MAGIC,
            version,
            loadflags: LOADED_HIGH,
            code32_start: 0x10_0000,
            initrd_addr_max: 0x7fff_ffff,
            kernel_alignment: 0x20_0000,
            relocatable_kernel: 1,
            cmdline_size: 2047,
            pref_address: 0x100_0000,
            init_size,
            ..Default::default()
        };
        h.xloadflags = 1;
        img[HEADER_AT..HEADER_AT + std::mem::size_of::<setup_header>()]
            .copy_from_slice(h.as_slice());
        img.extend_from_slice(pm);
        img
    }

    #[test]
    fn the_extent_runs_to_the_end_of_the_decompression_buffer() {
        let bz = BzImage::parse(image(0x020f, &[0x90; 4096], 0x300_0000), "k").unwrap();
        assert_eq!(bz.loaded(), (0x10_0000, 0x10_1000));
        assert_eq!(bz.extent(), (0x10_0000, 0x400_0000), "16 MiB + 48 MiB");
        assert_eq!(bz.initrd_end_max(), 0x8000_0000);
        assert_eq!({ bz.header().code32_start }, 0x10_0000);
        // A protected-mode part longer than the buffer's end bounds the extent itself.
        let big = BzImage::parse(image(0x020f, &vec![0; 0x100_0000], 0x1000), "k").unwrap();
        assert_eq!(big.extent(), (0x10_0000, 0x110_0000));
    }

    #[test]
    fn what_is_no_bzimage_of_a_recent_protocol_is_a_bad_kernel() {
        let reason = |img: Vec<u8>| match BzImage::parse(img, "k").unwrap_err() {
            Error::BadKernel { reason, .. } => reason,
            e => panic!("{e}"),
        };
        assert!(reason(vec![0; 100]).contains("too short"));
        assert!(reason(vec![0; 2048]).contains("no bzImage setup header"));
        assert!(reason(image(0x020c, &[0x90], 0x1000)).contains("2.15"));
        assert!(reason(image(0x020f, &[], 0x1000)).contains("nothing after"));
        assert!(reason(image(0x020f, &[0x90], 0)).contains("init_size"));
        let mut low = image(0x020f, &[0x90], 0x1000);
        low[0x211] = 0;
        assert!(reason(low).contains("zImage"));
        let mut odd = image(0x020f, &[0x90], 0x1000);
        odd[0x230..0x234].copy_from_slice(&0x30_0000u32.to_le_bytes());
        assert!(reason(odd).contains("kernel_alignment"));
        let mut wraps = image(0x020f, &[0x90], 0x1000);
        wraps[0x258..0x260].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(reason(wraps).contains("wraps"));
    }

    #[test]
    fn the_boot_gdt_has_flat_code_at_0x10_and_flat_data_at_0x18() {
        let gdt = boot_gdt();
        assert_eq!(gdt.size(), 32);
        assert_eq!(gdt.entries()[2], 0x00cf_9b00_0000_ffff);
        assert_eq!(gdt.entries()[3], 0x00cf_9300_0000_ffff);
    }
}
