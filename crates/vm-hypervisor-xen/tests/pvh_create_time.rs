// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! In the Xen box: domain creation time, the pure-Rust builder against `xl create`, for the
//! same kernel, initrd, memory (128 MiB) and vCPUs (1); median of 10 each. Ours is timed three
//! times: `build`, which reads and decodes the kernel each time as `xl create` does; `build`
//! of the bzImage left for the guest to decompress (`BzImageBoot::SelfDecompressing`); and
//! `build_with_kernel` from a kernel decoded once; then ours and `xl create` once more from the
//! decoded ELF `vmlinux` in a file, so that neither decodes anything. Creation ends when the domain runs (our
//! build returns, `xl create` exits); destruction is not timed. The builder's per-step times
//! (its debug log) and one `xl -vvv -T create` are printed as well. A second benchmark times
//! both for a guest of 2 GiB (RAM past the builder's MMIO hole at 0xf000_0000 would not fit
//! the box), from the decoded `vmlinux`. A third times, for the same 128 MiB guest, the way
//! to user space: from the call to the init's marker line.

// The builder makes x86_64 PVH guests here; on aarch64 `arm_boot.rs` boots Arm guests and
// `arch.rs` says what is skipped.
#![cfg(target_arch = "x86_64")]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vm_hypervisor_xen::builder::{self, BzImageBoot, Domain, Kernel, PvhConfig, XenOps};
use vm_hypervisor_xen::console::Console;

const RUNS: usize = 10;
/// Boots per way in the time-to-user-space benchmark.
const BOOTS: usize = 5;
/// What the box's domU init prints once user space runs.
const MARKER: &str = "XEN-BOX-DOMU: up";
/// Longest wait for one boot.
const BOOT_WITHIN: Duration = Duration::from_secs(100);

/// Prints the builder's debug records (its per-step times) to stderr.
struct StepLog;

impl log::Log for StepLog {
    fn enabled(&self, meta: &log::Metadata<'_>) -> bool {
        meta.level() <= log::Level::Debug && meta.target().starts_with("vm_hypervisor_xen")
    }
    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            let _ = writeln!(std::io::stderr(), "STEPS {}", record.args());
        }
    }
    fn flush(&self) {}
}

static STEP_LOG: StepLog = StepLog;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Writes `<name>.cfg` in the temp directory: an `xl` configuration of a one-vCPU PVH domain
/// `name` with `memory_mib` of RAM booting `kernel` and `ramdisk`, whose init idles.
fn xl_config(name: &str, kernel: &Path, ramdisk: &Path, memory_mib: u64) -> PathBuf {
    let cfg = std::env::temp_dir().join(format!("{name}.cfg"));
    std::fs::write(
        &cfg,
        format!(
            "name = \"{name}\"\ntype = \"pvh\"\nkernel = \"{}\"\nramdisk = \"{}\"\n\
             memory = {memory_mib}\nvcpus = 1\nextra = \"console=hvc0 xbdomu=sleep\"\n",
            kernel.display(),
            ramdisk.display()
        ),
    )
    .unwrap();
    cfg
}

/// `RUNS` times `xl create` of `kernel` and `ramdisk` with `memory_mib` of RAM (domains
/// `<prefix>-<i>`, destroyed after each), timed; the configuration files stay as
/// `<prefix>-<i>.cfg` in the temp directory.
fn xl_times(prefix: &str, kernel: &Path, ramdisk: &Path, memory_mib: u64) -> Vec<Duration> {
    let mut times = Vec::new();
    for i in 0..RUNS {
        let name = format!("{prefix}-{i}");
        let cfg = xl_config(&name, kernel, ramdisk, memory_mib);
        let t = Instant::now();
        xen_box_testing::xl_create(&cfg, &name, false);
        times.push(t.elapsed());
        xen_box_testing::run(Command::new("xl").arg("destroy").arg(&name));
    }
    times
}

/// `RUNS` builds, each of the configuration `config` gives for its index, by `build`: timed
/// from the call until `build` returns, and destroyed after (not timed).
fn our_times(
    config: impl Fn(usize) -> PvhConfig,
    build: impl Fn(&PvhConfig) -> vm_hypervisor_xen::Result<Domain<XenOps>>,
) -> Vec<Duration> {
    (0..RUNS)
        .map(|i| {
            let config = config(i);
            let t = Instant::now();
            let domain = build(&config).expect("building");
            let took = t.elapsed();
            domain.destroy().expect("destroying");
            took
        })
        .collect()
}

#[test]
#[ignore = "benchmark (60 domain creations, minutes): cargo xtask xen-box test --stack S -p vm-hypervisor-xen -- --ignored"]
fn creation_time_ours_against_xl_create() {
    let Some((kernel, ramdisk)) =
        xen_box_testing::domu_env_with_ramdisk("pvh_create_time::creation_time")
    else {
        return;
    };
    log::set_logger(&STEP_LOG).expect("no other logger in this test binary");
    log::set_max_level(log::LevelFilter::Debug);
    let ops = Arc::new(XenOps::open().expect("privcmd and xenstored"));
    let config = |name: String| {
        let mut config = PvhConfig::new(name, &kernel);
        config.ramdisk = Some(ramdisk.clone());
        config.cmdline = "console=hvc0 xbdomu=sleep".into();
        config.bzimage = BzImageBoot::Decoded;
        config
    };
    let build = |config: &PvhConfig| builder::build(ops.clone(), config);
    // Each build reads and decodes the kernel, as each `xl create` does.
    let ours = our_times(|i| config(format!("rust-time-{i}")), build);
    // The bzImage as it is: the guest decompresses it.
    let ours_self = our_times(
        |i| PvhConfig {
            bzimage: BzImageBoot::SelfDecompressing,
            ..config(format!("rust-self-{i}"))
        },
        build,
    );
    // The kernel decoded once, then the builds from it.
    let t = Instant::now();
    let image = std::fs::read(&kernel).expect("reading the kernel");
    let decoded = builder::kernel::vmlinux(&image, "bzImage").expect("decoding the kernel");
    let decode_once = t.elapsed();
    let vmlinux = std::env::temp_dir().join("pvh-create-time-vmlinux");
    std::fs::write(&vmlinux, &decoded).expect("writing the decoded kernel");
    let prepared = Kernel::from_image(decoded, "bzImage").expect("an ELF image");
    let reused = our_times(
        |i| config(format!("rust-prepared-{i}")),
        |config| builder::build_with_kernel(ops.clone(), config, &prepared),
    );
    drop(prepared);
    // Both from the decoded ELF image in a file: nothing to decode for either.
    let ours_elf = our_times(
        |i| PvhConfig {
            kernel: vmlinux.clone(),
            ..config(format!("rust-elf-{i}"))
        },
        build,
    );
    let xl = xl_times("xl-time", &kernel, &ramdisk, 128);
    let xl_elf = xl_times("xl-elf", &vmlinux, &ramdisk, 128);
    // One more, verbose and with timestamps, for where xl's time goes (not in the figures).
    let cfg = std::env::temp_dir().join("xl-time-0.cfg");
    let t = Instant::now();
    let out = Command::new("xl")
        .args(["-vvv", "-T", "create"])
        .arg(&cfg)
        .output()
        .expect("running xl -vvv -T create");
    let _ = writeln!(
        std::io::stderr(),
        "XL-VERBOSE took {:?}, {}:\n{}",
        t.elapsed(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // Absent if the verbose create failed; that is printed above.
    let _ = Command::new("xl").arg("destroy").arg("xl-time-0").output();
    let _ = std::fs::remove_file(&vmlinux);
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    let (o, r, x) = (
        median(ours.clone()),
        median(reused.clone()),
        median(xl.clone()),
    );
    let (oe, xe) = (median(ours_elf.clone()), median(xl_elf.clone()));
    let os = median(ours_self.clone());
    let _ = writeln!(
        std::io::stderr(),
        "CREATE-TIME stack={} bzimage: ours_median_ms={} xl_median_ms={} ratio={:.2}; \
         self-decompressing: ours_median_ms={} ratio={:.2}; decoded once: decode_ms={} prepared_median_ms={} prepared_ratio={:.2}; \
         vmlinux: ours_median_ms={} xl_median_ms={} ratio={:.2}; \
         ours={ours:?} self={ours_self:?} prepared={reused:?} xl={xl:?} ours_elf={ours_elf:?} xl_elf={xl_elf:?}",
        std::env::var("XEN_BOX_STACK").unwrap_or_default(),
        o.as_millis(),
        x.as_millis(),
        ratio(o, x),
        os.as_millis(),
        ratio(os, x),
        decode_once.as_millis(),
        r.as_millis(),
        ratio(r, x),
        oe.as_millis(),
        xe.as_millis(),
        ratio(oe, xe),
    );
}

#[test]
#[ignore = "benchmark (20 creations of 2 GiB domains, minutes): cargo xtask xen-box test --stack S -p vm-hypervisor-xen -- --ignored"]
fn creation_time_of_a_2g_guest_ours_against_xl_create() {
    const MIB: u64 = 2048;
    let Some((kernel, ramdisk)) =
        xen_box_testing::domu_env_with_ramdisk("pvh_create_time::creation_time_of_a_2g_guest")
    else {
        return;
    };
    // From the decoded kernel in a file, for both: the time is the domain's, not the decoder's.
    let image = std::fs::read(&kernel).expect("reading the kernel");
    let decoded = builder::kernel::vmlinux(&image, "bzImage").expect("decoding the kernel");
    let vmlinux = std::env::temp_dir().join("pvh-create-time-2g-vmlinux");
    std::fs::write(&vmlinux, &decoded).expect("writing the decoded kernel");
    let ops = Arc::new(XenOps::open().expect("privcmd and xenstored"));
    let ours = our_times(
        |i| PvhConfig {
            ramdisk: Some(ramdisk.clone()),
            cmdline: "console=hvc0 xbdomu=sleep".into(),
            memory_mib: MIB,
            ..PvhConfig::new(format!("rust-2g-{i}"), &vmlinux)
        },
        |config| builder::build(ops.clone(), config),
    );
    let xl = xl_times("xl-2g", &vmlinux, &ramdisk, MIB);
    let _ = std::fs::remove_file(&vmlinux);
    let (o, x) = (median(ours.clone()), median(xl.clone()));
    let _ = writeln!(
        std::io::stderr(),
        "CREATE-TIME-2G stack={} vmlinux, {MIB} MiB: ours_median_ms={} xl_median_ms={} \
         ratio={:.2}; ours={ours:?} xl={xl:?}",
        std::env::var("XEN_BOX_STACK").unwrap_or_default(),
        o.as_millis(),
        x.as_millis(),
        o.as_secs_f64() / x.as_secs_f64(),
    );
}

/// Time from the call that creates a domain to its init's marker line (user space up), for
/// the box's bzImage, initrd, 128 MiB and one vCPU; median of [`BOOTS`] each, in one run. Three
/// ways: the builder decoding the bzImage (`BzImageBoot::Decoded`), the builder leaving it for
/// the guest to decompress (`BzImageBoot::SelfDecompressing`), and `xl create` (which decodes
/// it in libxc). Ours read the marker from the console ring; `xl`'s is read from xenconsoled's
/// log of the guest's console, looked at every 10 ms. The creation times above leave out
/// where the decompression went; this does not.
#[test]
#[ignore = "benchmark (15 boots, minutes): cargo xtask xen-box test --stack S -p vm-hypervisor-xen -- --ignored"]
fn time_to_user_space_ours_both_ways_against_xl_create() {
    let Some((kernel, ramdisk)) =
        xen_box_testing::domu_env_with_ramdisk("pvh_create_time::time_to_user_space")
    else {
        return;
    };
    let ops = Arc::new(XenOps::open().expect("privcmd and xenstored"));
    let pid = std::process::id();
    let ours = |bzimage: BzImageBoot, tag: &str| -> Vec<Duration> {
        (0..BOOTS)
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
    let xl: Vec<Duration> = (0..BOOTS)
        .map(|i| {
            let name = format!("xl-boot-{pid}-{i}");
            let cfg = xl_config(&name, &kernel, &ramdisk, 128);
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
