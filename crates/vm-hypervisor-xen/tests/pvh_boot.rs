// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! In the Xen box: the pure-Rust builder boots the box's Debian kernel and initramfs as a PVH
//! domU, reads the init's marker from the console ring, sees the domain in `xl list`, destroys
//! it and finds everything released; and a domU built with two vCPUs has both online (the
//! kernel found them in the builder's ACPI MADT).

// The builder makes x86_64 PVH guests here; on aarch64 `arm_boot.rs` boots Arm guests and
// `arch.rs` says what is skipped.
#![cfg(target_arch = "x86_64")]

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vm_hypervisor_xen::builder::{self, PvhConfig, XenOps};
use vm_hypervisor_xen::console::Console;

/// What the box's domU init prints once user space runs, ending in `cpus=N`.
const MARKER: &str = "XEN-BOX-DOMU: up";
/// What it prints after that line with `xbdomu=sleep`: the marker line is complete.
const IDLING: &str = "XEN-BOX-DOMU: idling";

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

fn xl_list() -> String {
    xen_box_testing::run(Command::new("xl").arg("list"))
}

#[test]
fn the_builder_boots_the_box_kernel_as_pvh_and_destroy_releases_everything() {
    let Some((kernel, ramdisk)) =
        xen_box_testing::domu_env_with_ramdisk("pvh_boot::the_builder_boots_the_box_kernel")
    else {
        return;
    };
    let before = xen_box_testing::held();
    let name = format!("rust-pvh-{}", std::process::id());
    let mut config = PvhConfig::new(&name, &kernel);
    config.ramdisk = Some(ramdisk);
    config.memory_mib = 128;
    config.vcpus = 1;
    config.cmdline = "console=hvc0 xbdomu=sleep".into();
    {
        let ops = Arc::new(XenOps::open().expect("privcmd and xenstored"));
        let started = Instant::now();
        let domain = builder::build(ops, &config).expect("building the PVH domain");
        let built = started.elapsed();
        let domid = domain.domid();
        eprintln!("built domain {domid} in {built:?}");
        let mut console = Console::attach(&domain).expect("attaching to the console ring");
        let out = console
            .wait_for(IDLING, Duration::from_secs(300))
            .unwrap_or_else(|e| panic!("{e}"));
        eprintln!("console after {:?}:\n{}", started.elapsed(), summary(&out));
        assert!(out.contains("guest_type=PVH"), "not a PVH guest:\n{out}");
        assert_eq!(cpus_online(&out), Some(1), "{out}");
        let list = xl_list();
        assert!(
            list.lines()
                .any(|l| l.split_whitespace().next() == Some(name.as_str())),
            "xl list does not show {name}:\n{list}"
        );
        drop(console);
        domain.destroy().expect("destroying the domain");
        // The domain is gone from Xen (it may linger as dying for a moment: wait on
        // getdomaininfo, bounded).
        let privcmd = xen_bindings::privcmd::Privcmd::open().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while privcmd.domain_info(domid).is_ok() {
            assert!(Instant::now() < deadline, "domain {domid} still exists");
            std::thread::yield_now();
        }
    }
    let list = xl_list();
    assert!(!list.contains(&name), "xl list still shows {name}:\n{list}");
    let after = xen_box_testing::held();
    assert_eq!(
        before, after,
        "fds, privcmd mappings or event channels leaked"
    );
}

#[test]
fn a_pvh_guest_built_with_two_vcpus_has_both_online() {
    let Some((kernel, ramdisk)) =
        xen_box_testing::domu_env_with_ramdisk("pvh_boot::a_pvh_guest_built_with_two_vcpus")
    else {
        return;
    };
    let mut config = PvhConfig::new(format!("rust-pvh-smp-{}", std::process::id()), &kernel);
    config.ramdisk = Some(ramdisk);
    config.memory_mib = 128;
    config.vcpus = 2;
    config.cmdline = "console=hvc0 xbdomu=sleep".into();
    let ops = Arc::new(XenOps::open().expect("privcmd and xenstored"));
    let started = Instant::now();
    let domain = builder::build(ops, &config).expect("building the PVH domain");
    let mut console = Console::attach(&domain).expect("attaching to the console ring");
    let out = console
        .wait_for(IDLING, Duration::from_secs(300))
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("console after {:?}:\n{}", started.elapsed(), summary(&out));
    assert!(out.contains("guest_type=PVH"), "not a PVH guest:\n{out}");
    assert_eq!(cpus_online(&out), Some(2), "{out}");
    drop(console);
    domain.destroy().expect("destroying the domain");
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
