// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! What the Xen crates' integration tests share when they run in the project's Xen box
//! (`cargo xtask xen-box test`, as root in a real dom0): whether they can run here, the `xl`
//! toolstack, and domUs that are destroyed whatever the test does.
//!
//! ```
//! if let Some(env) = xen_box_testing::domu_env("my_test") {
//!     // In a dom0 of the box: `env.kernel` boots a domU.
//!     let _ = env.kernel;
//! } // Elsewhere `domu_env` has printed "SKIPPED: my_test: ..." on stderr.
//! ```

pub mod cpio;
pub mod guest_image;
pub mod vsock;

use std::sync::{Mutex, MutexGuard, OnceLock};

use std::path::{Path, PathBuf};
use std::process::Command;

/// Prints a line on standard error past the test harness's output capture (which takes what
/// `eprintln!` prints), so that the box's report shows it whether the test passes or not: loud
/// skips, and the figures a test measured.
#[macro_export]
macro_rules! report {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let _ = ::std::writeln!(::std::io::stderr().lock(), $($arg)*);
    }};
}

/// Prints `SKIPPED: <test>: <reason>` (with [`report!`]).
pub fn skip(test: &str, reason: impl std::fmt::Display) {
    report!("SKIPPED: {test}: {reason}");
}

/// Whether the Xen box promised a dom0 (`XEN_BOX=1`): then a missing device is a failure.
pub fn in_box() -> bool {
    std::env::var_os("XEN_BOX").is_some_and(|v| v == "1")
}

/// Whether this process runs in a Xen dom0 (it has `/dev/xen/privcmd`). When not, prints
/// `SKIPPED: <test>: not running in a Xen dom0` and returns false; panics instead when the
/// Xen box promised one.
pub fn in_dom0(test: &str) -> bool {
    if Path::new("/dev/xen/privcmd").exists() {
        return true;
    }
    assert!(
        !in_box(),
        "{test}: XEN_BOX=1 but /dev/xen/privcmd is missing"
    );
    skip(test, "not running in a Xen dom0");
    false
}

/// [`in_dom0`] for a test that runs only on `arch` (`std::env::consts::ARCH`, for example
/// `"aarch64"` for a test whose guest is arm64 code): elsewhere it prints
/// `SKIPPED: <test>: <why> (this is <ARCH>)` and returns false.
pub fn in_dom0_on(test: &str, arch: &str, why: &str) -> bool {
    if !in_dom0(test) {
        return false;
    }
    if std::env::consts::ARCH != arch {
        skip(
            test,
            format_args!("{why} (this is {})", std::env::consts::ARCH),
        );
        return false;
    }
    true
}

/// What the box gives a test for its domUs.
#[derive(Clone, Debug)]
pub struct DomuEnv {
    /// A Linux kernel for PVH (x86) or Arm domUs (`XEN_BOX_DOMU_KERNEL`).
    pub kernel: PathBuf,
    /// The box's busybox initramfs for domUs (`XEN_BOX_DOMU_RAMDISK`), if set.
    pub ramdisk: Option<PathBuf>,
}

/// The box's domU kernel and ramdisk when running in a Xen dom0 ([`in_dom0`]); `None` after a
/// loud skip when this is no dom0 or the kernel is not given (a failure inside the box).
pub fn domu_env(test: &str) -> Option<DomuEnv> {
    if !in_dom0(test) {
        return None;
    }
    let var = |name: &str| std::env::var_os(name).map(PathBuf::from);
    match var("XEN_BOX_DOMU_KERNEL") {
        Some(kernel) => Some(DomuEnv {
            kernel,
            ramdisk: var("XEN_BOX_DOMU_RAMDISK"),
        }),
        None => {
            assert!(
                !in_box(),
                "{test}: XEN_BOX=1 but XEN_BOX_DOMU_KERNEL is unset"
            );
            skip(test, "XEN_BOX_DOMU_KERNEL not set");
            None
        }
    }
}

/// [`domu_env`] for tests that also boot the box's ramdisk: the kernel and the ramdisk, or
/// `None` after a loud skip (a failure inside the box when either is not given).
pub fn domu_env_with_ramdisk(test: &str) -> Option<(PathBuf, PathBuf)> {
    let env = domu_env(test)?;
    match env.ramdisk {
        Some(ramdisk) => Some((env.kernel, ramdisk)),
        None => {
            assert!(
                !in_box(),
                "{test}: XEN_BOX=1 but XEN_BOX_DOMU_RAMDISK is unset"
            );
            skip(test, "XEN_BOX_DOMU_RAMDISK not set");
            None
        }
    }
}

/// The `xl` configuration line that makes a domU PVH (so that its frame numbers are
/// guest-physical), or nothing on Arm, where `xl` knows no guest types and every guest is
/// auto-translated.
pub fn pvh_type_line() -> &'static str {
    if cfg!(target_arch = "aarch64") {
        ""
    } else {
        "type = \"pvh\"\n"
    }
}

/// The process's log (`log` crate, Info and above), kept for a test to count lines in and
/// printed as it comes, past the test harness's capture, so the box's report shows it.
#[derive(Debug)]
pub struct LogRecorder(Mutex<Vec<String>>);

impl LogRecorder {
    /// Every line logged so far, in order.
    pub fn lines(&self) -> MutexGuard<'_, Vec<String>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl log::Log for LogRecorder {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::Level::Info
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            let line = format!("{} {}: {}", r.level(), r.target(), r.args());
            let _ = std::io::Write::write_fmt(
                &mut std::io::stderr().lock(),
                format_args!("log: {line}\n"),
            );
            self.lines().push(line);
        }
    }
    fn flush(&self) {}
}

/// The process's [`LogRecorder`], installed as the logger on first use.
pub fn log_recorder() -> &'static LogRecorder {
    static R: OnceLock<&'static LogRecorder> = OnceLock::new();
    R.get_or_init(|| {
        let r: &'static LogRecorder = Box::leak(Box::new(LogRecorder(Mutex::new(Vec::new()))));
        if log::set_logger(r).is_ok() {
            log::set_max_level(log::LevelFilter::Info);
        }
        r
    })
}

/// What this process holds that a leak would grow: descriptors, privcmd mappings, and (from
/// /proc/interrupts) event channels bound through /dev/xen/evtchn and privcmd ioeventfd
/// handlers. Compare a [`held`] before and after a test's work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    /// Open file descriptors.
    pub fds: usize,
    /// Mappings of /dev/xen/privcmd.
    pub privcmd_maps: usize,
    /// Event channels bound through /dev/xen/evtchn (system-wide).
    pub evtchn_irqs: usize,
    /// privcmd ioeventfd handlers (system-wide).
    pub ioeventfd_irqs: usize,
}

/// What this process holds now (see [`Held`]).
pub fn held() -> Held {
    let count = |path: &str, what: &str| {
        std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("reading {path}: {e}"))
            .lines()
            .filter(|l| l.contains(what))
            .count()
    };
    Held {
        fds: std::fs::read_dir("/proc/self/fd")
            .expect("reading /proc/self/fd")
            .count(),
        privcmd_maps: count("/proc/self/maps", "privcmd"),
        evtchn_irqs: count("/proc/interrupts", "evtchn:"),
        ioeventfd_irqs: count("/proc/interrupts", "ioeventfd"),
    }
}

/// Runs `cmd` and returns its standard output; panics with its status and standard error
/// when it cannot be run or fails.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `xl create [-p] cfg` for domain `name`; panics when `xl` fails.
///
/// `xl` used to die of heap corruption in the box now and then ("corrupted double-linked list",
/// about one create in 16); the cause was the box's Xen switching FPU state lazily, which the
/// emulated machine gets wrong (see the `cpu_state` test). The box now boots Xen with eager
/// switching, so a crash here is a failure again rather than something to retry.
pub fn xl_create(cfg: &Path, name: &str, paused: bool) {
    let mut cmd = Command::new("xl");
    cmd.arg("create");
    if paused {
        cmd.arg("-p");
    }
    let out = cmd.arg(cfg).output().expect("running xl create");
    assert!(
        out.status.success(),
        "xl create {} (domain {name}) failed: {}\n{}",
        cfg.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What domU `name` has written to its console so far: xenconsoled's log of it, which the box
/// keeps in `/var/log/xen/console/guest-<name>.log`. Empty before the domU wrote anything.
pub fn console_log(name: &str) -> String {
    std::fs::read(format!("/var/log/xen/console/guest-{name}.log"))
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// The `/dev/hwrng` reads that the box's Arm domU init printed on `console` (lines
/// `XEN-BOX-DOMU: hwrng <i> <hex>`), in order; lines that do not parse are passed over.
pub fn hwrng_reads(console: &str) -> Vec<Vec<u8>> {
    console
        .lines()
        .filter_map(|l| l.trim().strip_prefix("XEN-BOX-DOMU: hwrng "))
        .filter_map(|rest| {
            let mut f = rest.split_whitespace();
            f.next()?.parse::<u32>().ok()?;
            let hex = f.next().unwrap_or("");
            (0..hex.len() / 2)
                .map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
                .collect::<Option<Vec<u8>>>()
        })
        .collect()
}

/// A domU made by `xl`, destroyed on drop (also when the test panics).
#[derive(Debug)]
pub struct XlDomain {
    /// Its `xl` name.
    pub name: String,
    /// Its domain id.
    pub domid: u16,
}

impl XlDomain {
    /// Creates domU `name` from the `xl` configuration `cfg` (without its `name` line), written
    /// to `<name>.cfg` in the current directory; paused if `paused`.
    pub fn create(name: String, cfg: &str, paused: bool) -> XlDomain {
        let path = std::env::current_dir()
            .expect("the current directory")
            .join(format!("{name}.cfg"));
        std::fs::write(&path, format!("name = \"{name}\"\n{cfg}"))
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        xl_create(&path, &name, paused);
        // From here on the domain exists: the guard destroys it whatever happens next.
        let mut domain = XlDomain { name, domid: 0 };
        let id = run(Command::new("xl").arg("domid").arg(&domain.name));
        domain.domid = id.trim().parse().expect("xl domid prints a number");
        domain
    }

    /// Adopts domain `name` with id `domid`, made some other way, to destroy it on drop.
    pub fn adopt(name: String, domid: u16) -> XlDomain {
        XlDomain { name, domid }
    }

    /// What it has written to its console so far (see [`console_log`]).
    pub fn console_log(&self) -> String {
        console_log(&self.name)
    }

    /// Unpauses it.
    pub fn unpause(&self) {
        run(Command::new("xl").arg("unpause").arg(&self.name));
    }
}

impl Drop for XlDomain {
    fn drop(&mut self) {
        let ok = Command::new("xl")
            .arg("destroy")
            .arg(&self.name)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("warning: xl destroy {} failed", self.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_returns_stdout() {
        assert_eq!(run(Command::new("echo").arg("box")), "box\n");
    }

    #[test]
    #[should_panic(expected = "failed")]
    fn run_panics_on_failure() {
        run(&mut Command::new("false"));
    }

    #[test]
    #[should_panic(expected = "running")]
    fn run_panics_when_the_program_is_missing() {
        run(&mut Command::new("/nonexistent/xen-box-testing"));
    }

    #[test]
    fn hwrng_reads_are_taken_from_the_domu_init_lines() {
        let console = "boot noise\n\
                       XEN-BOX-DOMU: hwrng 0 00ff10\r\n\
                       XEN-BOX-DOMU: hwrng x 00\n\
                       XEN-BOX-DOMU: hwrng 1 zz\n\
                       XEN-BOX-DOMU: hwrng 2 \n\
                       XEN-BOX-DOMU: hwrng done\n";
        assert_eq!(
            hwrng_reads(console),
            [vec![0x00, 0xff, 0x10], vec![]],
            "a bad index or bad hex is passed over; an empty read is kept"
        );
    }

    #[test]
    fn a_domu_that_wrote_nothing_has_an_empty_console() {
        assert_eq!(console_log("xen-box-testing-no-such-domu"), "");
    }

    #[test]
    fn outside_a_dom0_tests_skip_loudly() {
        if Path::new("/dev/xen/privcmd").exists() || in_box() {
            eprintln!("SKIPPED: outside_a_dom0_tests_skip_loudly: this is a dom0");
            return;
        }
        assert!(!in_dom0("outside_a_dom0_tests_skip_loudly"));
        assert!(domu_env("outside_a_dom0_tests_skip_loudly").is_none());
        assert!(domu_env_with_ramdisk("outside_a_dom0_tests_skip_loudly").is_none());
        assert!(!in_dom0_on(
            "outside_a_dom0_tests_skip_loudly",
            std::env::consts::ARCH,
            ""
        ));
    }

    #[test]
    fn a_test_for_another_architecture_skips_even_in_a_dom0() {
        if !Path::new("/dev/xen/privcmd").exists() {
            skip(
                "a_test_for_another_architecture_skips_even_in_a_dom0",
                "not running in a Xen dom0",
            );
            return;
        }
        assert!(!in_dom0_on(
            "another_architecture",
            "none",
            "its guest is no code"
        ));
        assert!(in_dom0_on("this_architecture", std::env::consts::ARCH, ""));
    }
}
