// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! In the Xen box: domain creation time, the pure-Rust builder against `xl create`, for the
//! same kernel, initrd, memory (128 MiB) and vCPUs (1); median of 10 each. Creation ends when
//! the domain runs (our `build` returns, `xl create` exits); destruction is not timed.

// The builder makes x86_64 PVH guests; on other hosts `arch.rs` says so.
#![cfg(target_arch = "x86_64")]

use std::io::Write;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vm_hypervisor_xen::builder::{self, PvhConfig, XenOps};

const RUNS: usize = 10;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[test]
#[ignore = "benchmark (20 domain creations, minutes): cargo xtask xen-box test --stack S -p vm-hypervisor-xen -- --ignored"]
fn creation_time_ours_against_xl_create() {
    let Some((kernel, ramdisk)) =
        xen_box_testing::domu_env_with_ramdisk("pvh_create_time::creation_time")
    else {
        return;
    };
    let ops = Arc::new(XenOps::open().expect("privcmd and xenstored"));
    let mut ours = Vec::new();
    for i in 0..RUNS {
        let mut config = PvhConfig::new(format!("rust-time-{i}"), &kernel);
        config.ramdisk = Some(ramdisk.clone());
        config.cmdline = "console=hvc0 xbdomu=sleep".into();
        let t = Instant::now();
        let domain = builder::build(ops.clone(), &config).expect("building");
        ours.push(t.elapsed());
        domain.destroy().expect("destroying");
    }
    let mut xl = Vec::new();
    for i in 0..RUNS {
        let name = format!("xl-time-{i}");
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
        xl.push(t.elapsed());
        xen_box_testing::run(Command::new("xl").arg("destroy").arg(&name));
    }
    let (o, x) = (median(ours.clone()), median(xl.clone()));
    let _ = writeln!(
        std::io::stderr(),
        "CREATE-TIME stack={} ours_median_ms={} xl_median_ms={} ratio={:.2} ours={ours:?} xl={xl:?}",
        std::env::var("XEN_BOX_STACK").unwrap_or_default(),
        o.as_millis(),
        x.as_millis(),
        o.as_secs_f64() / x.as_secs_f64()
    );
}
