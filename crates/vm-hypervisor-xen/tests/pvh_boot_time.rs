// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! In the Xen box: time from the call that creates a domain to its init's marker line (user
//! space up), for the box's bzImage, initrd, 128 MiB and one vCPU; median of 5 each, in one
//! run. Three ways: the builder decoding the bzImage (`BzImageBoot::Decoded`), the builder
//! leaving it for the guest to decompress (`BzImageBoot::SelfDecompressing`), and `xl create`
//! (which decodes it in libxc). Ours read the marker from the console ring; `xl`'s is read
//! from xenconsoled's log of the guest's console, looked at every 10 ms. Creation time alone
//! is `pvh_create_time.rs`'s; this shows where the decompression went.

// The builder makes x86_64 PVH guests here.
#![cfg(target_arch = "x86_64")]

use std::io::Write;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vm_hypervisor_xen::builder::{self, BzImageBoot, PvhConfig, XenOps};
use vm_hypervisor_xen::console::Console;

const RUNS: usize = 5;
/// What the box's domU init prints once user space runs.
const MARKER: &str = "XEN-BOX-DOMU: up";
/// Longest wait for one boot.
const BOOT_WITHIN: Duration = Duration::from_secs(100);

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[test]
#[ignore = "benchmark (15 boots, minutes): cargo xtask xen-box test --stack S -p vm-hypervisor-xen -- --ignored"]
fn time_to_user_space_ours_both_ways_against_xl_create() {
    let Some((kernel, ramdisk)) =
        xen_box_testing::domu_env_with_ramdisk("pvh_boot_time::time_to_user_space")
    else {
        return;
    };
    let ops = Arc::new(XenOps::open().expect("privcmd and xenstored"));
    let pid = std::process::id();
    let ours = |bzimage: BzImageBoot, tag: &str| -> Vec<Duration> {
        (0..RUNS)
            .map(|i| {
                let mut config = PvhConfig::new(format!("rust-boot-{tag}-{pid}-{i}"), &kernel);
                config.ramdisk = Some(ramdisk.clone());
                config.cmdline = "console=hvc0 xbdomu=sleep".into();
                config.bzimage = bzimage;
                let t = Instant::now();
                let domain = builder::build(ops.clone(), &config).expect("building");
                let mut console = Console::attach(&domain).expect("attaching to the console");
                console
                    .wait_for(MARKER, BOOT_WITHIN)
                    .unwrap_or_else(|e| panic!("{tag} boot {i}: {e}"));
                let took = t.elapsed();
                domain.destroy().expect("destroying");
                took
            })
            .collect()
    };
    let decoded = ours(BzImageBoot::Decoded, "decoded");
    let self_decompressing = ours(BzImageBoot::SelfDecompressing, "self");
    let xl: Vec<Duration> = (0..RUNS)
        .map(|i| {
            let name = format!("xl-boot-{pid}-{i}");
            let cfg = std::env::temp_dir().join(format!("{name}.cfg"));
            std::fs::write(
                &cfg,
                format!(
                    "name = \"{name}\"\ntype = \"pvh\"\nkernel = \"{}\"\nramdisk = \"{}\"\n\
                     memory = 128\nvcpus = 1\nextra = \"console=hvc0 xbdomu=sleep\"\n",
                    kernel.display(),
                    ramdisk.display()
                ),
            )
            .unwrap();
            let t = Instant::now();
            xen_box_testing::xl_create(&cfg, &name, false);
            while !xen_box_testing::console_log(&name).contains(MARKER) {
                assert!(t.elapsed() < BOOT_WITHIN, "xl boot {i}: no marker");
                std::thread::sleep(Duration::from_millis(10));
            }
            let took = t.elapsed();
            xen_box_testing::run(Command::new("xl").arg("destroy").arg(&name));
            took
        })
        .collect();
    let (d, s, x) = (
        median(decoded.clone()),
        median(self_decompressing.clone()),
        median(xl.clone()),
    );
    let ratio = |a: Duration| a.as_secs_f64() / x.as_secs_f64();
    let _ = writeln!(
        std::io::stderr(),
        "BOOT-TIME stack={} to the init's marker: decoded_median_ms={} ({:.2} of xl) \
         self_decompressing_median_ms={} ({:.2} of xl) xl_median_ms={}; \
         decoded={decoded:?} self={self_decompressing:?} xl={xl:?}",
        std::env::var("XEN_BOX_STACK").unwrap_or_default(),
        d.as_millis(),
        ratio(d),
        s.as_millis(),
        ratio(s),
        x.as_millis(),
    );
}
