// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! In the Xen box: the pure-Rust builder boots the box's Debian kernel and initramfs as a PVH
//! domU, reads the init's marker from the console ring, sees the domain in `xl list`, sees the
//! console wait end when the guest powers off, destroys it and finds everything released; and
//! the same with two vCPUs, both of which must be online (the kernel found them in the
//! builder's ACPI MADT), with a guest that idles. The one-vCPU boot decodes the bzImage and
//! enters the PVH entry point; the others leave the bzImage to decompress itself (the
//! default), and the guest must still find itself a PVH guest.

// The builder makes x86_64 PVH guests here; on aarch64 `arm_boot.rs` boots Arm guests and
// `arch.rs` says what is skipped.
#![cfg(target_arch = "x86_64")]

mod common;

use std::sync::Arc;
use std::time::Duration;

use vm_hypervisor_xen::builder::{self, BzImageBoot, PvhConfig, XenOps};
use xen_bindings::layout::GuestLayout;

/// What the box's domU init prints once user space runs, ending in `cpus=N`.
const MARKER: &str = "XEN-BOX-DOMU: up";
/// What it prints after that line with `xbdomu=sleep`: the marker line is complete.
const IDLING: &str = "XEN-BOX-DOMU: idling";
/// What it prints after that line with `xbdomu=poweroff`, before it powers off.
const POWERING_OFF: &str = "XEN-BOX-DOMU: powering off";

/// The number of online CPUs the init reported on its marker line.
fn cpus_online(console: &str) -> Option<u32> {
    let line = console.lines().find(|l| l.contains(MARKER))?;
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("cpus="))?
        .parse()
        .ok()
}

/// The console lines worth showing: the init's, and the kernel's about CPUs and ACPI.
fn summary(console: &str) -> String {
    console
        .lines()
        .filter(|l| l.contains("XEN-BOX-DOMU") || l.contains("smp:") || l.contains("ACPI: MADT"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Boots the box's kernel as a PVH guest with `vcpus` vCPUs, started as `bzimage` says, sees
/// all of them online, and checks that destroying the domain releases everything
/// (`common::Boot`); the guest idles or powers off after its marker, as `then` says.
fn boot_pvh(test: &str, vcpus: u32, bzimage: BzImageBoot, then: common::Then) {
    common::Boot {
        name: format!("rust-pvh-{vcpus}vcpu-{}", std::process::id()),
        memory_mib: 128,
        layout: GuestLayout::native(),
        vuart: false,
        vcpus,
        bzimage,
        then,
        until: match then {
            common::Then::Sleep => IDLING,
            common::Then::PowerOff => POWERING_OFF,
        },
        boot_within: Duration::from_secs(300),
        gone_within: Duration::from_secs(30),
    }
    .run(test, |out| {
        eprintln!("{}", summary(out));
        assert!(out.contains("guest_type=PVH"), "not a PVH guest:\n{out}");
        assert_eq!(cpus_online(out), Some(vcpus), "{out}");
    });
}

/// The one-vCPU guest powers off after its marker, so this also shows that a wait on the
/// console of a guest that stopped ends at once (`Error::DomainStopped`).
#[test]
fn the_builder_boots_the_box_kernel_as_pvh_and_destroy_releases_everything() {
    boot_pvh(
        "pvh_boot::the_builder_boots_the_box_kernel",
        1,
        BzImageBoot::Decoded,
        common::Then::PowerOff,
    );
}

/// Started the default way: the box's bzImage (Debian's) loaded as it is, decompressing
/// itself in the guest; Linux then finds from the ACPI tables that it is a PVH guest and
/// brings up both vCPUs. (The one-vCPU boot above takes the decoded way.)
#[test]
fn a_pvh_guest_built_with_two_vcpus_has_both_online() {
    boot_pvh(
        "pvh_boot::a_pvh_guest_built_with_two_vcpus",
        2,
        BzImageBoot::SelfDecompressing,
        common::Then::Sleep,
    );
}

/// With the MMIO hole moved down to 192 MiB, 320 MiB of RAM is 192 MiB from 0 and 128 MiB from
/// 4 GiB: the guest's kernel finds both (the System RAM ranges of its /proc/iomem), and the
/// domain goes like any other.
/// Started the default way (the bzImage decompressing itself), so that the memory map the
/// guest reads is the zero page's; the decoded way's start info lists the same ranges (unit
/// tests).
#[test]
fn ram_past_the_mmio_hole_continues_at_4g_and_the_guest_finds_it() {
    common::Boot {
        name: format!("rust-pvh-high-{}", std::process::id()),
        memory_mib: 320,
        layout: GuestLayout::X86 {
            below_4g_ram_end: 192 << 20,
        },
        vuart: false,
        vcpus: 1,
        bzimage: BzImageBoot::SelfDecompressing,
        then: common::Then::PowerOff,
        until: POWERING_OFF,
        boot_within: Duration::from_secs(300),
        gone_within: Duration::from_secs(30),
    }
    .run("pvh_boot::ram_past_the_mmio_hole_continues_at_4g", |out| {
        let ram = common::guest_ram(out);
        eprintln!("System RAM the guest found: {ram:x?}");
        let low_end = ram.iter().map(|r| r.1).filter(|&e| e < 1 << 32).max();
        assert_eq!(
            low_end,
            Some((192 << 20) - 1),
            "low RAM ends at the hole:\n{out}"
        );
        assert!(
            ram.contains(&(1 << 32, (1 << 32) + (128 << 20) - 1)),
            "128 MiB from 4 GiB:\n{out}"
        );
        assert_eq!(ram.iter().filter(|r| r.0 >= 1 << 32).count(), 1, "{out}");
    });
}

#[test]
fn the_console_lines_give_the_guests_ram() {
    let out = "XEN-BOX-DOMU: ram 00001000-0009ffff\r\n\
               XEN-BOX-DOMU: ram 00100000-0bffffff\r\n\
               XEN-BOX-DOMU: ram 100000000-103ffffff\r\n\
               XEN-BOX-DOMU: ram 104000000-107ffffff\r\n\
               XEN-BOX-DOMU: up guest_type=PVH cpus=1\r\n";
    assert_eq!(
        common::guest_ram(out),
        [
            (0x1000, 0x9_ffff),
            (0x10_0000, 0xbff_ffff),
            (0x1_0000_0000, 0x1_07ff_ffff)
        ]
    );
}

#[test]
fn the_marker_line_gives_the_online_cpu_count() {
    let out = "[    1.0] smp: Brought up 1 node, 2 CPUs\r\n\
               XEN-BOX-DOMU: up guest_type=PVH kernel=6.1.0 mode=sleep uptime=3.1 cpus=2\r\n\
               XEN-BOX-DOMU: idling\r\n";
    assert_eq!(cpus_online(out), Some(2));
    assert_eq!(cpus_online("XEN-BOX-DOMU: up guest_type=PVH"), None);
    assert_eq!(cpus_online("XEN-BOX-DOMU: up cpus=x"), None);
}

#[test]
fn a_kernel_that_is_no_kernel_leaves_no_domain_behind() {
    if !xen_box_testing::in_dom0("pvh_boot::a_kernel_that_is_no_kernel") {
        return;
    }
    let bogus = std::env::temp_dir().join("not-a-kernel");
    std::fs::write(&bogus, b"definitely not a kernel").unwrap();
    let ops = Arc::new(XenOps::open().expect("privcmd and xenstored"));
    let before = ops.privcmd().domains().unwrap().len();
    let err = builder::build(ops.clone(), &PvhConfig::new("rust-pvh-bogus", &bogus)).unwrap_err();
    assert!(
        matches!(err, vm_hypervisor_xen::Error::BadKernel { .. }),
        "{err}"
    );
    assert_eq!(ops.privcmd().domains().unwrap().len(), before);
}
