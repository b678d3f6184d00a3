// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The whole x86 build against a fake Xen: what it asks for, and that a failure at any step
//! leaves no domain (and no xenstore entry) behind.

use std::io::Write;
use std::sync::Arc;

use super::fake::FakeXen;
use super::*;

/// An ELF kernel with a 16-byte segment at 1 MiB (`memsz` in memory) and a note of type
/// `note_type` named "Xen" whose descriptor is 1 MiB (a PVH entry when the type is
/// XEN_ELFNOTE_PHYS32_ENTRY, 18).
fn kernel_elf(memsz: u64, note_type: u32) -> Vec<u8> {
    let note = super::elf::tests::note(b"Xen\0", note_type, &0x10_0000u32.to_le_bytes());
    super::elf::tests::image(0x10_0000, &[0x90; 16], memsz, &note)
}

/// [`kernel_elf`] with 4 KiB in memory and the PVH entry note.
fn pvh_elf() -> Vec<u8> {
    kernel_elf(0x1000, 18)
}

struct Files {
    _dir: std::path::PathBuf,
    kernel: std::path::PathBuf,
    initrd: std::path::PathBuf,
}

fn files(test: &str, kernel: &[u8]) -> Files {
    let dir = std::env::temp_dir().join(format!("vm-hypervisor-xen-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let k = dir.join("vmlinux");
    std::fs::File::create(&k)
        .unwrap()
        .write_all(kernel)
        .unwrap();
    let i = dir.join("initrd");
    std::fs::write(&i, vec![7u8; 8192]).unwrap();
    Files {
        _dir: dir,
        kernel: k,
        initrd: i,
    }
}

fn config(f: &Files) -> PvhConfig {
    let mut c = PvhConfig::new("unit", &f.kernel);
    c.memory_mib = 16;
    c.ramdisk = Some(f.initrd.clone());
    c
}

fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

/// The memory map of the start info in `info` (its page, at guest page 6), as
/// `(address, size, type)`.
fn start_info_memory_map(info: &[u8]) -> Vec<(u64, u64, u32)> {
    let memmap = (u64_at(info, 40) - 0x6000) as usize;
    (0..u32_at(info, 48) as usize)
        .map(|i| {
            let e = &info[memmap + 24 * i..];
            (u64_at(e, 0), u64_at(e, 8), u32_at(e, 16))
        })
        .collect()
}

#[test]
fn a_build_creates_populates_loads_publishes_and_unpauses_in_that_order() {
    let f = files("order", &pvh_elf());
    let xen = Arc::new(FakeXen::default());
    let dom = build(xen.clone(), &config(&f)).unwrap();
    assert_eq!(dom.domid(), DomId::new(5));
    let calls = xen.calls();
    let pos = |n: &str| calls.iter().position(|c| c == n).unwrap();
    assert_eq!(pos("create_domain"), 0);
    assert!(
        pos("set_max_vcpus") < pos("hvm_context"),
        "Xen 4.17 crashes otherwise"
    );
    assert!(pos("set_max_mem") < pos("populate_physmap"));
    assert!(pos("populate_physmap") < pos("map_guest"));
    assert!(pos("set_hvm_context") < pos("xs_introduce"));
    assert_eq!(calls.last().unwrap(), "unpause");
    assert!(xen.xs_entries() > 0);
    drop(dom);
    assert_eq!(xen.live(), 0, "dropping the domain destroys it");
    assert_eq!(xen.xs_entries(), 0, "and removes its xenstore entries");
}

#[test]
fn destroy_releases_the_domain_from_xenstored_and_xen() {
    let f = files("destroy", &pvh_elf());
    let xen = Arc::new(FakeXen::default());
    build(xen.clone(), &config(&f)).unwrap().destroy().unwrap();
    let calls = xen.calls();
    let n = calls.len();
    assert_eq!(&calls[n - 3..], ["xs_rm", "xs_release", "destroy_domain"]);
    assert!(xen.state.lock().unwrap().introduced.is_empty());
}

#[test]
fn a_failure_at_any_step_after_createdomain_leaves_no_domain_and_no_entries() {
    for step in [
        "set_max_vcpus",
        "set_max_mem",
        "set_paging_mempool_size",
        "populate_physmap",
        "map_guest",
        "set_hvm_param",
        "evtchn_alloc_unbound",
        "seed_grant_table",
        "hvm_context",
        "set_hvm_context",
        "xs_write",
        "xs_set_perms",
        "xs_introduce",
        "unpause",
    ] {
        let f = files(step, &pvh_elf());
        let xen = Arc::new(FakeXen::failing_at(step));
        let err = build(xen.clone(), &config(&f)).unwrap_err();
        assert!(matches!(err, Error::Xen { .. }), "{step}: {err}");
        assert_eq!(xen.live(), 0, "{step}: domain left behind");
        assert_eq!(xen.xs_entries(), 0, "{step}: xenstore entries left behind");
        assert!(
            xen.calls().contains(&"destroy_domain".to_string()),
            "{step}"
        );
    }
}

#[test]
fn xen_running_out_of_memory_is_a_populate_error_and_no_domain_stays() {
    let f = files("short", &pvh_elf());
    let xen = Arc::new(FakeXen {
        populate_short: true,
        ..Default::default()
    });
    let err = build(xen.clone(), &config(&f)).unwrap_err();
    assert!(
        matches!(err, Error::Populate { domid, .. } if domid == DomId::new(5)),
        "{err}"
    );
    assert_eq!(xen.live(), 0);
}

#[test]
fn an_invalid_vcpu_count_is_refused_before_any_domain_exists() {
    let f = files("vcpus", &pvh_elf());
    for vcpus in [0, MAX_VCPUS + 1] {
        let xen = Arc::new(FakeXen::default());
        let mut c = config(&f);
        c.vcpus = vcpus;
        let err = build(xen.clone(), &c).unwrap_err();
        assert!(
            matches!(err, Error::InvalidConfig { what: "vcpus", .. }),
            "{err}"
        );
        assert!(xen.calls().is_empty());
    }
}

#[test]
fn a_bad_kernel_image_is_refused_before_any_domain_exists() {
    let f = files("badkernel", b"MZ this is not a kernel");
    let xen = Arc::new(FakeXen::default());
    let err = build(xen.clone(), &config(&f)).unwrap_err();
    assert!(matches!(err, Error::BadKernel { .. }), "{err}");
    assert!(xen.calls().is_empty());
}

#[test]
fn a_kernel_without_pvh_note_fails_after_creation_and_the_domain_goes() {
    let elf = kernel_elf(0x1000, 17); // not XEN_ELFNOTE_PHYS32_ENTRY
    let f = files("nonote", &elf);
    let xen = Arc::new(FakeXen::default());
    let err = build(xen.clone(), &config(&f)).unwrap_err();
    assert!(err.to_string().contains("no PVH entry point"), "{err}");
    assert_eq!(xen.live(), 0);
}

#[test]
fn too_little_memory_for_the_kernel_or_config_is_a_typed_error() {
    let f = files("small", &pvh_elf());
    let xen = Arc::new(FakeXen::default());
    let mut c = config(&f);
    c.memory_mib = 8;
    let err = build(xen.clone(), &c).unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidConfig {
                what: "memory_mib",
                ..
            }
        ),
        "{err}"
    );
    // A kernel that reaches past RAM.
    let big = kernel_elf(64 << 20, 18);
    let f = files("bigkernel", &big);
    let prepared = Kernel::from_image(big, "big").unwrap();
    // From the file, and decoded beforehand.
    let errors = [
        build(xen.clone(), &config(&f)).unwrap_err(),
        build_with_kernel(xen.clone(), &config(&f), &prepared).unwrap_err(),
    ];
    let kernel_too_big = |e: &Error| matches!(e, Error::MemoryTooSmall { what: "kernel", .. });
    assert!(errors.iter().all(kernel_too_big), "{errors:?}");
    assert!(xen.calls().is_empty());
}

#[test]
fn only_the_pages_the_loader_writes_are_mapped_not_all_of_ram() {
    let f = files("mapped", &pvh_elf());
    let xen = Arc::new(FakeXen::default());
    let c = config(&f);
    let _dom = build(xen.clone(), &c).unwrap();
    let mapped = xen.state.lock().unwrap().mapped.clone();
    let special = memory::special_gfns();
    let ram_pages = (c.ram() / memory::PAGE) as usize;
    // The special pages, the ACPI tables and RSDP (0xfc001, 0xfc002), the start info (page
    // 6), the command line (page 0x20), the kernel's segment at 1 MiB (4 KiB in memory) and
    // the 8 KiB initrd at the top of RAM: 15 frames, none of them twice.
    let mut expected: Vec<u64> = special.clone();
    expected.extend([0xfc001, 0xfc002]);
    expected.extend([0x6, 0x20, 0x100, ram_pages as u64 - 2, ram_pages as u64 - 1]);
    let mut got = mapped.clone();
    got.sort_unstable();
    expected.sort_unstable();
    assert_eq!(got, expected, "of {ram_pages} RAM pages");
}

#[test]
fn the_special_pages_start_zeroed_whatever_xen_hands_out() {
    // The console and xenstore rings' indexes live in these pages: stale bytes there are a
    // ring full of garbage to the guest and to the console reader.
    let f = files("special-zeroed", &pvh_elf());
    let xen = Arc::new(FakeXen::default());
    let _dom = build(xen.clone(), &config(&f)).unwrap();
    let contents = xen.state.lock().unwrap().contents.clone();
    let contents = contents.lock().unwrap();
    for gfn in memory::special_gfns() {
        let page = contents.get(&gfn).expect("special page written");
        if gfn == memory::SpecialPage::IdentPt.gfn() {
            // The identity page table: entry 1 maps 4 MiB.
            assert_eq!(&page[4..8], &(0x40_0000u32 | 0xe7).to_le_bytes());
            continue;
        }
        assert!(
            page.iter().all(|b| *b == 0),
            "special page {gfn:#x} not zeroed"
        );
    }
}

#[test]
fn a_kernel_decoded_once_builds_several_domains() {
    let f = files("reuse", &pvh_elf());
    let kernel = Kernel::open(&f.kernel).unwrap();
    assert_eq!(kernel.extent(), (0x10_0000, 0x10_1000));
    let xen = Arc::new(FakeXen::default());
    let mut c = config(&f);
    // Not read again: the prepared kernel is what is loaded.
    c.kernel = f._dir.join("absent");
    for _ in 0..2 {
        let dom = build_with_kernel(xen.clone(), &c, &kernel).unwrap();
        assert_eq!(xen.live(), 1);
        dom.destroy().unwrap();
    }
    let calls = xen.calls();
    assert_eq!(calls.iter().filter(|c| *c == "unpause").count(), 2);
}

#[test]
fn an_elf_file_cut_short_in_its_headers_is_a_bad_kernel_before_any_domain_exists() {
    let elf = pvh_elf();
    let f = files("short-elf", &elf[..0x50]);
    let xen = Arc::new(FakeXen::default());
    let err = build(xen.clone(), &config(&f)).unwrap_err();
    assert!(
        matches!(err, Error::BadKernel { ref reason, .. } if reason.contains("truncated")),
        "{err}"
    );
    assert!(xen.calls().is_empty());
}

#[test]
fn an_empty_domain_is_created_populated_and_left_paused_and_goes_on_any_failure() {
    let xen = Arc::new(FakeXen::default());
    let dom = create_empty(xen.clone(), "empty", 0x1_0000, 1).unwrap();
    let calls = xen.calls();
    assert_eq!(calls[0], "create_domain");
    assert!(calls.contains(&"populate_physmap".to_string()));
    assert_eq!(calls.last().unwrap(), "set_hvm_context", "MTRRs set last");
    assert!(!calls.contains(&"unpause".to_string()), "left paused");
    assert!(!calls.contains(&"map_guest".to_string()), "nothing written");
    assert_eq!(xen.live(), 1);
    drop(dom);
    assert_eq!(xen.live(), 0, "dropping the domain destroys it");
    for step in ["set_max_vcpus", "populate_physmap", "hvm_context"] {
        let xen = Arc::new(FakeXen::failing_at(step));
        assert!(create_empty(xen.clone(), "empty", 0x1_0000, 1).is_err());
        assert_eq!(xen.live(), 0, "failing at {step} leaves no domain");
    }
    for (ram, vcpus) in [
        (0, 1),
        (0x1001, 1),
        (memory::MAX_RAM + 0x1000, 1),
        (0x1000, 0),
        (0x1000, MAX_VCPUS + 1),
    ] {
        let xen = Arc::new(FakeXen::default());
        assert!(matches!(
            create_empty(xen.clone(), "bad", ram, vcpus),
            Err(Error::InvalidConfig { .. })
        ));
        assert!(xen.calls().is_empty(), "refused before Xen is asked");
    }
}

#[test]
fn the_guest_gets_acpi_tables_listing_every_vcpu_and_finds_them_from_its_start_info() {
    let f = files("acpi", &pvh_elf());
    let xen = Arc::new(FakeXen::default());
    let mut c = config(&f);
    c.vcpus = 3;
    let _dom = build(xen.clone(), &c).unwrap();
    let contents = xen.state.lock().unwrap().contents.clone();
    let contents = contents.lock().unwrap();
    let sum = |b: &[u8]| b.iter().fold(0u8, |a, x| a.wrapping_add(*x));

    // The start info (page 6) names the RSDP, and its memory map keeps the guest off the
    // tables: RAM, ACPI NVS over the two ACPI pages, the special pages reserved.
    let info = &contents[&6];
    assert_eq!(u64_at(info, 32), 0xfc00_2000, "rsdp_paddr");
    assert_eq!(
        start_info_memory_map(info),
        [
            (0, 16 << 20, 1),
            (0xfc00_1000, 0x2000, 4),
            (0xfeff_8000, 0x8000, 2)
        ]
    );

    // RSDP -> XSDT -> MADT, checksums valid, one enabled local APIC per vCPU with ID 2 x i.
    let rsdp = &contents[&0xfc002][..36];
    assert_eq!(&rsdp[..8], b"RSD PTR ");
    assert_eq!((sum(&rsdp[..20]), sum(rsdp)), (0, 0));
    assert!(
        contents[&0xfc002][36..].iter().all(|b| *b == 0),
        "rest zeroed"
    );
    let tables = &contents[&0xfc001];
    let table = |addr: u64| {
        let t = &tables[(addr - 0xfc00_1000) as usize..];
        &t[..u32_at(t, 4) as usize]
    };
    let xsdt = table(u64_at(rsdp, 24));
    assert_eq!((&xsdt[..4], sum(xsdt)), (&b"XSDT"[..], 0));
    let fadt = table(u64_at(xsdt, 36));
    assert_eq!((&fadt[..4], sum(fadt)), (&b"FACP"[..], 0));
    assert_ne!(u32_at(fadt, 112) & (1 << 20), 0, "hardware-reduced");
    let dsdt = table(u64_at(fadt, 140));
    assert_eq!((&dsdt[..4], sum(dsdt)), (&b"DSDT"[..], 0));
    let madt = table(u64_at(xsdt, 44));
    assert_eq!((&madt[..4], sum(madt)), (&b"APIC"[..], 0));
    let cpus: Vec<&[u8]> = madt[44..].chunks(8).collect();
    assert_eq!(cpus.len(), 3);
    for (i, e) in cpus.iter().enumerate() {
        assert_eq!(e[..4], [0, 8, i as u8, 2 * i as u8]);
        assert_eq!(u32_at(e, 4), 1, "enabled");
    }
}

#[test]
fn ram_past_the_mmio_hole_goes_above_4g_and_the_guest_is_told() {
    use xen_bindings::layout::GuestLayout;
    let f = files("high", &pvh_elf());
    let xen = Arc::new(FakeXen::default());
    let mut c = config(&f);
    // 48 MiB with the hole moved down to 32 MiB: 16 MiB above 4 GiB.
    c.memory_mib = 48;
    c.layout = GuestLayout::X86 {
        below_4g_ram_end: 32 << 20,
    };
    let _dom = build(xen.clone(), &c).unwrap();
    let state = xen.state.lock().unwrap();
    // RAM: 16 extents below 32 MiB, 8 from 4 GiB (frame 0x100000).
    let ram: Vec<(u32, u64, usize)> = state
        .populated
        .iter()
        .filter(|p| p.0 == 9)
        .map(|&(o, g, n, _)| (o, g, n))
        .collect();
    assert_eq!(ram, [(9, 0, 16), (9, 0x10_0000, 8)]);
    // Nothing is loaded above the hole: the initrd ends at 32 MiB.
    let top = state.mapped.iter().filter(|&&g| g < 0xfc000).max().copied();
    assert_eq!(top, Some((32 << 20) / memory::PAGE - 1));
    // The start info's memory map lists both RAM ranges.
    let contents = state.contents.lock().unwrap();
    assert_eq!(
        start_info_memory_map(&contents[&6]),
        [
            (0, 32 << 20, 1),
            (0xfc00_1000, 0x2000, 4),
            (0xfeff_8000, 0x8000, 2),
            (1 << 32, 16 << 20, 1)
        ]
    );
}

#[test]
fn a_kernel_reaching_past_low_ram_is_too_big_even_with_ram_above_4g() {
    use xen_bindings::layout::GuestLayout;
    let f = files("high-kernel", &kernel_elf(40 << 20, 18));
    let xen = Arc::new(FakeXen::default());
    let mut c = config(&f);
    c.memory_mib = 256;
    c.layout = GuestLayout::X86 {
        below_4g_ram_end: 32 << 20,
    };
    let err = build(xen.clone(), &c).unwrap_err();
    assert!(
        matches!(err, Error::MemoryTooSmall { what: "kernel", ram_end, .. } if ram_end == 32 << 20),
        "{err}"
    );
    assert!(xen.calls().is_empty());
}

#[test]
fn a_layout_an_x86_guest_cannot_have_is_refused_before_any_domain_exists() {
    use xen_bindings::layout::GuestLayout;
    let f = files("layout", &pvh_elf());
    let xen = Arc::new(FakeXen::default());
    let mut c = config(&f);
    for layout in [
        GuestLayout::Arm,
        GuestLayout::X86 {
            below_4g_ram_end: 0xfc00_1000,
        },
        GuestLayout::X86 {
            below_4g_ram_end: (16 << 20) - 4096,
        },
        GuestLayout::X86 {
            below_4g_ram_end: 0x2000_0800,
        },
    ] {
        c.layout = layout;
        let err = build(xen.clone(), &c).unwrap_err();
        assert!(
            matches!(err, Error::InvalidConfig { what: "layout", .. }),
            "{layout:?}: {err}"
        );
    }
    // RAM may end where the ACPI range starts, and beyond 4 GiB RAM is bounded by 1 TiB.
    c.layout = GuestLayout::X86 {
        below_4g_ram_end: 0xfc00_0000,
    };
    c.memory_mib = 64 << 10;
    assert!(build_x86::check(&c).is_ok());
    c.memory_mib = (1 << 20) + 1;
    let err = build(xen.clone(), &c).unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidConfig {
                what: "memory_mib",
                ..
            }
        ),
        "{err}"
    );
    assert!(xen.calls().is_empty());
}

#[test]
fn a_vuart_is_refused_for_an_x86_guest_before_any_domain_exists() {
    let f = files("vuart", &pvh_elf());
    let xen = Arc::new(FakeXen::default());
    let mut c = config(&f);
    c.vuart = true;
    let err = build(xen.clone(), &c).unwrap_err();
    assert!(
        matches!(err, Error::InvalidConfig { what: "vuart", .. }),
        "{err}"
    );
    assert!(xen.calls().is_empty());
}

#[test]
fn an_empty_domain_larger_than_the_low_ram_continues_at_4g() {
    let xen = Arc::new(FakeXen::default());
    let _dom = create_empty(xen.clone(), "big", 0xf000_0000 + (4 << 20), 1).unwrap();
    let state = xen.state.lock().unwrap();
    let firsts: Vec<(u32, u64)> = state.populated.iter().map(|&(o, g, _, _)| (o, g)).collect();
    assert_eq!(firsts.last(), Some(&(9, 0x10_0000)), "{firsts:?}");
    let above: usize = state
        .populated
        .iter()
        .filter(|p| p.1 >= 0x10_0000)
        .map(|p| p.2)
        .sum();
    assert_eq!(above, 2, "4 MiB above 4 GiB");
}

/// A bzImage of boot protocol 2.15 whose 8 KiB protected-mode part needs 4 MiB from 16 MiB
/// to decompress into.
fn self_decompressing_bzimage() -> Vec<u8> {
    let pm: Vec<u8> = (0..8192u32).map(|i| i as u8).collect();
    super::bzimage::tests::image(0x020f, &pm, 0x40_0000)
}

#[test]
fn a_bzimage_left_to_decompress_itself_is_entered_through_the_32_bit_boot_protocol() {
    use xen_bindings::abi::xen::hvm_save::*;
    use xen_bindings::abi::Pod;

    let image = self_decompressing_bzimage();
    let f = files("bzimage", &image);
    let xen = Arc::new(FakeXen::default());
    let mut c = config(&f);
    c.memory_mib = 32;
    c.bzimage = BzImageBoot::SelfDecompressing;
    c.cmdline = "console=hvc0 quiet".into();
    let _dom = build(xen.clone(), &c).unwrap();
    let state = xen.state.lock().unwrap();
    let contents = state.contents.lock().unwrap();
    let ram_pages = 32 << 8;

    // The protected-mode part as it is at 1 MiB; nothing mapped for the decompressed kernel.
    assert_eq!(contents[&0x100][..], image[1024..1024 + 4096]);
    assert_eq!(contents[&0x101][..], image[1024 + 4096..]);
    let mut mapped = state.mapped.clone();
    mapped.sort_unstable();
    let mut expected = memory::special_gfns();
    expected.extend([0xfc001, 0xfc002, 0x6, 0x7, 0x20, 0x100, 0x101]);
    expected.extend([ram_pages - 2, ram_pages - 1]);
    expected.sort_unstable();
    assert_eq!(
        mapped, expected,
        "GDT, zero page, command line, kernel, initrd"
    );

    // The zero page: the image's setup header with the 32-bit entry at 1 MiB, the command
    // line, the initrd at the top of RAM, the ACPI RSDP and the memory map.
    let zp = &contents[&0x7];
    assert_eq!(&zp[0x202..0x206], b"HdrS");
    assert_eq!(u32_at(zp, 0x214), 0x10_0000, "code32_start");
    assert_eq!(u32_at(zp, 0x228), 0x2_0000, "cmd_line_ptr");
    assert_eq!(&contents[&0x20][..19], b"console=hvc0 quiet\0");
    assert_eq!(u32_at(zp, 0x218), (32 << 20) - 8192, "ramdisk_image");
    assert_eq!(u32_at(zp, 0x21c), 8192, "ramdisk_size");
    assert_eq!(u64_at(zp, 0x70), 0xfc00_2000, "acpi_rsdp_addr");
    assert_eq!(u32_at(zp, 0x260), 0x40_0000, "init_size kept");
    let e820: Vec<(u64, u64, u32)> = (0..zp[0x1e8] as usize)
        .map(|i| {
            let e = &zp[0x2d0 + 20 * i..];
            (u64_at(e, 0), u64_at(e, 8), u32_at(e, 16))
        })
        .collect();
    assert_eq!(
        e820,
        [
            (0, 32 << 20, 1),
            (0xfc00_1000, 0x2000, 4),
            (0xfeff_8000, 0x8000, 2)
        ]
    );
    // The boot GDT: flat code at 0x10, flat data at 0x18.
    let gdt = &contents[&0x6];
    assert_eq!(u64_at(gdt, 0x10), 0x00cf_9b00_0000_ffff);
    assert_eq!(u64_at(gdt, 0x18), 0x00cf_9300_0000_ffff);

    // vCPU 0 enters at 1 MiB with ESI at the zero page and the GDT loaded.
    let last = state.hvm_contexts.last().unwrap();
    let cpu = super::vcpu::find_record(last, HVM_SAVE_CODE_CPU, 0)
        .and_then(HvmHwCpu::from_bytes)
        .unwrap();
    assert_eq!(cpu.rip, 0x10_0000);
    assert_eq!(cpu.gprs[HVM_GPR_RSI], 0x7000);
    assert_eq!(cpu.gprs[HVM_GPR_RBX], 0);
    assert_eq!((cpu.sel[0], cpu.sel[1]), (0x10, 0x18));
    assert_eq!((cpu.base[9], cpu.limit[9]), (0x6000, 31));
}

#[test]
fn a_self_decompressing_bzimage_needs_ram_for_its_decompression_buffer() {
    // 16 MiB + 4 MiB of buffer does not fit 16 MiB of RAM: refused before any domain.
    let f = files("bzimage-small", &self_decompressing_bzimage());
    let xen = Arc::new(FakeXen::default());
    let mut c = config(&f);
    c.bzimage = BzImageBoot::SelfDecompressing;
    let err = build(xen.clone(), &c).unwrap_err();
    assert!(
        matches!(
            err,
            Error::MemoryTooSmall {
                what: "kernel",
                end: 0x140_0000,
                ..
            }
        ),
        "{err}"
    );
    assert!(xen.calls().is_empty(), "{:?}", xen.calls());
    // And an old kernel is named as one.
    let f = files(
        "bzimage-old",
        &super::bzimage::tests::image(0x020c, &[0x90], 0x1000),
    );
    c.kernel = f.kernel.clone();
    let err = build(xen.clone(), &c).unwrap_err();
    assert!(err.to_string().contains("2.15"), "{err}");
    assert!(xen.calls().is_empty());
}

#[test]
fn the_initrd_of_a_self_decompressing_bzimage_stays_below_initrd_addr_max() {
    let mut image = self_decompressing_bzimage();
    // initrd_addr_max 0x1ffffff: the initrd must end at 32 MiB though RAM ends at 64.
    image[0x22c..0x230].copy_from_slice(&0x1ff_ffffu32.to_le_bytes());
    let f = files("bzimage-initrd-max", &image);
    let xen = Arc::new(FakeXen::default());
    let mut c = config(&f);
    c.memory_mib = 64;
    c.bzimage = BzImageBoot::SelfDecompressing;
    let _dom = build(xen.clone(), &c).unwrap();
    let state = xen.state.lock().unwrap();
    let zp = &state.contents.lock().unwrap()[&0x7];
    assert_eq!(u32_at(zp, 0x218), (32 << 20) - 8192, "ramdisk_image");
}

#[test]
fn a_file_too_large_for_a_bzimage_is_refused_before_it_is_read() {
    // A sparse file of 300 MiB that starts like a bzImage.
    let f = files("bzimage-huge", &self_decompressing_bzimage());
    std::fs::OpenOptions::new()
        .write(true)
        .open(&f.kernel)
        .unwrap()
        .set_len(300 << 20)
        .unwrap();
    let xen = Arc::new(FakeXen::default());
    let err = build(xen.clone(), &config(&f)).unwrap_err();
    assert!(err.to_string().contains("too large for a bzImage"), "{err}");
    assert!(xen.calls().is_empty());
}
