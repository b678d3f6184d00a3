// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! `xen-box test`: builds the Xen crates' integration tests on the host and
//! runs every test binary as root in dom0, one boot per stack.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::cmd_run::ready;
use crate::config::BoxConfig;
use crate::payload::{boot_with, timed, Payload};
use crate::report::{self, Verdict};
use crate::util::{say, workspace_root, Context, Result, Stopwatch};
use crate::{bail, Opts};

/// Crates whose integration tests need a Xen dom0.
const XEN_CRATES: &[&str] = &[
    "xen-bindings",
    "xen-foreignmem",
    "xen-ioreq",
    "xen-vhost-frontend",
    "vm-hypervisor-xen",
    "xen-box-testing",
];
/// Crates whose unit tests (their lib test binary, `cargo test --lib`) `test --arch aarch64`
/// also runs in dom0, beside the integration tests. vm-hypervisor-xen's unit tests of the Arm
/// builder (against a fake Xen) compile only for aarch64, and the host cannot run them: under
/// qemu-user 7.2 (`xen-box cross-unit`) that crate's test harness hangs. The other crates whose
/// unit tests differ on aarch64 (xen-bindings' ABI layouts) run them under qemu-user in CI, so
/// they do not take the box's time and dom0's RAM.
const AARCH64_LIB_TEST_CRATES: &[&str] = &["vm-hypervisor-xen"];
/// Crates whose tests serve guests from unmodified vhost-device daemons: on aarch64 the
/// harness builds the daemons (with their `xen` feature) and puts them in dom0, naming each in
/// `XEN_BOX_VHOST_DEVICE_<NAME>` (for example `XEN_BOX_VHOST_DEVICE_RNG`).
const DAEMON_CRATES: &[&str] = &["xen-vhost-frontend"];
/// The daemons those tests use.
const TEST_DAEMONS: &[&str] = &["rng", "vsock"];
/// File name in dom0 of the cpio archive a domU appends to its initramfs for the vsock test:
/// `xen-box-test/vsock-guest`, the AF_VSOCK end (`XEN_BOX_DOMU_VSOCK_CPIO`).
const VSOCK_CPIO: &str = "domu-vsock.cpio";
/// File name in dom0 of the domU kernel with Xen grant DMA.
const GRANT_KERNEL: &str = "domu-grant-kernel";
/// Default per-binary limit.
const DEFAULT_TIMEOUT: u64 = 600;

/// One integration-test executable.
struct TestBin {
    /// `<crate>.<test target>`, also its file name in dom0.
    name: String,
    path: PathBuf,
}

/// Copies of `bins` with their debug sections compressed, for the box.
///
/// Every test binary travels in dom0's initramfs, which lives in dom0's RAM beside the files
/// the tests write there (domU kernels, ramdisks): uncompressed, the debug sections are two
/// thirds of a test binary and the set outgrew dom0's root filesystem ("No space left on
/// device" in the tests that write a ramdisk). Compressed (zlib, which Rust's backtraces read)
/// the binaries keep full backtraces at a third of the size. aarch64 binaries are cross-built
/// with line tables only (see `arm64::cross`), but the prebuilt standard library they link
/// carries full debug information, two thirds of each binary again: they go through the cross
/// binutils' `aarch64-linux-gnu-objcopy` (installed with the cross linker), since the host's
/// `objcopy` reads only x86 ELF. Without the tool the binaries go as they are, and this says so.
fn compress_debuginfo(cfg: &BoxConfig, bins: Vec<TestBin>) -> Result<Vec<TestBin>> {
    let objcopy = if cfg.is_aarch64() {
        "aarch64-linux-gnu-objcopy"
    } else {
        "objcopy"
    };
    let Some(dir) = bins
        .first()
        .and_then(|b| b.path.parent()?.parent())
        .map(|d| d.join("xen-box-staged"))
    else {
        return Ok(bins);
    };
    crate::util::mkdirs(&dir)?;
    let mut out = Vec::with_capacity(bins.len());
    for b in bins {
        let staged = dir.join(&b.name);
        if is_newer(&staged, &b.path) {
            // Staged from this very build already (a rerun of unchanged tests).
            out.push(TestBin {
                name: b.name,
                path: staged,
            });
            continue;
        }
        let done = Command::new(objcopy)
            .arg("--compress-debug-sections=zlib")
            .arg(&b.path)
            .arg(&staged)
            .stdin(Stdio::null())
            .status();
        match done {
            Ok(st) if st.success() => out.push(TestBin {
                name: b.name,
                path: staged,
            }),
            other => {
                // A copy cut short must not pass for a staged one next time.
                let _ = std::fs::remove_file(&staged);
                say(format!(
                    "WARNING: `{objcopy} --compress-debug-sections=zlib {}` failed ({other:?}): \
                     the binary goes to dom0 uncompressed and dom0's RAM may run short",
                    b.path.display()
                ));
                out.push(b);
            }
        }
    }
    Ok(out)
}

/// Whether `a` exists and was modified after `b`.
fn is_newer(a: &Path, b: &Path) -> bool {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    matches!((modified(a), modified(b)), (Some(a), Some(b)) if a > b)
}

/// Result of one test binary in dom0.
struct BinResult {
    name: String,
    status: String,
    secs: Option<f64>,
    ok: bool,
}

fn has_integration_tests(dir: &Path) -> bool {
    std::fs::read_dir(dir.join("tests"))
        .map(|rd| {
            rd.flatten().any(|e| {
                let p = e.path();
                p.extension().is_some_and(|x| x == "rs") || p.join("main.rs").is_file()
            })
        })
        .unwrap_or(false)
}

/// Builds the integration tests of `crates` (and, with `--arch aarch64`, the unit tests of those
/// in [`AARCH64_LIB_TEST_CRATES`]) and returns their executables.
fn build_tests(cfg: &BoxConfig, root: &Path, crates: &[String]) -> Result<Vec<TestBin>> {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    // `--tests` builds the lib test binaries too (a lib target has `test = true`): which of
    // them run is `test_bins`'s choice.
    cmd.current_dir(root)
        .args(["test", "--no-run", "--tests", "--message-format=json"]);
    if cfg.is_aarch64() {
        crate::arm64::cross::configure(&mut cmd)?;
    }
    for c in crates {
        cmd.args(["-p", c]);
    }
    say(format!("building integration tests: {}", crates.join(", ")));
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .context(|| "cannot run cargo test --no-run".into())?;
    if !out.status.success() {
        bail!("cargo test --no-run failed with {}", out.status);
    }
    let lib_crates = if cfg.is_aarch64() {
        AARCH64_LIB_TEST_CRATES
    } else {
        &[]
    };
    Ok(test_bins(
        crate::cargo_json::executables(&out.stdout),
        root,
        crates,
        lib_crates,
    ))
}

/// The test binaries to run among the executables cargo built: every `tests/*.rs` target of
/// `crates`, named `<crate>.<target>`, and the lib test binary of those of `crates` that are
/// in `lib_crates`, named `<crate>.lib`.
fn test_bins(
    exes: Vec<crate::cargo_json::Executable>,
    root: &Path,
    crates: &[String],
    lib_crates: &[&str],
) -> Vec<TestBin> {
    let mut bins = Vec::new();
    for exe in exes {
        let Some(krate) = crates
            .iter()
            .find(|c| exe.src_path.starts_with(root.join("crates").join(c)))
        else {
            continue;
        };
        let dir = root.join("crates").join(krate);
        let is = |kind: &str| exe.kinds.iter().any(|k| k == kind);
        let name = if is("test") && exe.src_path.starts_with(dir.join("tests")) {
            format!("{krate}.{}", exe.name)
        } else if is("lib") && lib_crates.contains(&krate.as_str()) {
            format!("{krate}.lib")
        } else {
            continue;
        };
        bins.push(TestBin {
            name,
            path: exe.path,
        });
    }
    bins
}

/// The dom0 script: each binary in its own scratch dir, under a time limit,
/// between markers carrying the run's nonce. A binary's scratch dir goes when
/// it is done: dom0's files live in its RAM, and the domU kernels and ramdisks
/// tests leave there would otherwise add up (an aarch64 dom0 ran out of space).
fn script(bins: &[TestBin], daemons: &[(String, PathBuf)], secs: u64, args: &[String]) -> String {
    let mut s =
        String::from("#!/bin/sh\nN=$(cat /xen-box/nonce)\nfails=0\nexport RUST_BACKTRACE=1\n");
    for (name, _) in daemons {
        if name == GRANT_KERNEL {
            s.push_str(&format!(
                "export XEN_BOX_DOMU_GRANT_KERNEL=/xen-box/files/{name}\n"
            ));
            continue;
        }
        if name == VSOCK_CPIO {
            s.push_str(&format!(
                "export XEN_BOX_DOMU_VSOCK_CPIO=/xen-box/files/{name}\n"
            ));
            continue;
        }
        let var = name
            .trim_start_matches("vhost-device-")
            .to_ascii_uppercase()
            .replace('-', "_");
        s.push_str(&format!(
            "export XEN_BOX_VHOST_DEVICE_{var}=/xen-box/files/{name}\n"
        ));
    }
    for b in bins {
        s.push_str(&format!(
            "echo; echo \"XEN-BOX-TEST-BEGIN $N {n}\"\n\
             mkdir -p /tmp/xen-box-test/{n} && cd /tmp/xen-box-test/{n} || exit 253\n\
             s0=$(cut -d' ' -f1 /proc/uptime)\n\
             {run}\
             echo; echo \"XEN-BOX-TEST-END $N {n} status=$rc start=$s0 end=$(cut -d' ' -f1 /proc/uptime)\"\n\
             [ $rc = 0 ] || fails=$((fails + 1))\n\
             cd / && rm -rf /tmp/xen-box-test/{n}\n",
            n = b.name,
            run = timed(
                &format!(
                    "/xen-box/files/{} --test-threads=1{}",
                    b.name,
                    args.iter().map(|a| format!(" '{a}'")).collect::<String>()
                ),
                secs,
                &b.name
            ),
        ));
    }
    s.push_str("exit $((fails > 0))\n");
    s
}

/// The vhost-device daemons the selected crates' tests need, built for the box (aarch64
/// only: xl places virtio-mmio devices only on Arm, so on x86 those tests skip, loudly).
fn test_daemons(cfg: &BoxConfig, crates: &[String]) -> Result<Vec<(String, PathBuf)>> {
    if !cfg.is_aarch64() || !crates.iter().any(|c| DAEMON_CRATES.contains(&c.as_str())) {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for name in TEST_DAEMONS {
        let d = crate::vhost_device::daemon(name)?;
        let bin = crate::vhost_device::build(d, crate::arch::Arch::Aarch64, &["xen".into()])?;
        out.push((d.name.to_string(), bin));
    }
    let (_, cpio) = crate::arm64::cross::vsock_guest_cpio(VSOCK_CPIO)?;
    out.push((VSOCK_CPIO.to_string(), cpio));
    if cfg.dom0_kernel == crate::kernel::Dom0Kernel::Eventfd {
        // The eventfd kernel has Xen grant DMA, which Debian's lack: the grant-mode test
        // boots its domU with it (`XEN_BOX_DOMU_GRANT_KERNEL`).
        let k = crate::kernel::build::ensure(crate::arch::Arch::Aarch64)?;
        out.push((GRANT_KERNEL.to_string(), k.image));
    }
    Ok(out)
}

/// Per-binary results from the serial log.
fn results(log: &str, bins: &[TestBin]) -> Vec<BinResult> {
    bins.iter()
        .map(|b| {
            let end = log
                .lines()
                .filter_map(|l| {
                    let i = l.find("XEN-BOX-TEST-END ")?;
                    let mut w = l[i..].split_whitespace().skip(2);
                    (w.next() == Some(b.name.as_str())).then(|| w.collect::<Vec<_>>())
                })
                .next_back();
            let timed_out = log.contains(&format!("XEN-BOX-TIMEOUT {} after", b.name));
            match end {
                Some(fields) => {
                    let get = |k: &str| {
                        fields
                            .iter()
                            .find_map(|f| f.strip_prefix(k))
                            .and_then(|v| v.parse::<f64>().ok())
                    };
                    let rc = get("status=").map(|v| v as i32);
                    let secs = match (get("start="), get("end=")) {
                        (Some(a), Some(b)) => Some(b - a),
                        _ => None,
                    };
                    let ok = rc == Some(0);
                    let status = if timed_out {
                        "TIMED OUT".to_string()
                    } else if ok {
                        "pass".to_string()
                    } else {
                        format!("FAIL (exit {})", rc.map_or("?".into(), |c| c.to_string()))
                    };
                    BinResult {
                        name: b.name.clone(),
                        status,
                        secs,
                        ok,
                    }
                }
                None => BinResult {
                    name: b.name.clone(),
                    status: "NOT COMPLETED (box failed)".into(),
                    secs: None,
                    ok: false,
                },
            }
        })
        .collect()
}

/// Runs the tests on every requested stack.
pub fn test(o: &Opts) -> Result<i32> {
    let total = Stopwatch::start();
    let root = workspace_root();
    let requested: Vec<String> = if o.packages.is_empty() {
        XEN_CRATES.iter().map(|s| s.to_string()).collect()
    } else {
        o.packages.clone()
    };
    let mut crates = Vec::new();
    for c in &requested {
        if has_integration_tests(&root.join("crates").join(c)) {
            crates.push(c.clone());
        } else {
            say(format!("{c}: no integration tests (crates/{c}/tests/*.rs)"));
        }
    }
    if crates.is_empty() {
        say(format!(
            "FAILED: none of {} has integration tests yet: nothing to run in dom0 (not a pass)",
            requested.join(", ")
        ));
        return Ok(1);
    }
    let build = Stopwatch::start();
    let cfg = &o.config;
    let bins = compress_debuginfo(cfg, build_tests(cfg, &root, &crates)?)?;
    let build_secs = build.secs();
    if bins.is_empty() {
        say("FAILED: cargo built no integration-test executables (not a pass)");
        return Ok(1);
    }
    for b in &bins {
        say(format!("test binary {} = {}", b.name, b.path.display()));
    }
    let daemons = test_daemons(cfg, &crates)?;
    let secs = o.timeout.unwrap_or(DEFAULT_TIMEOUT);
    let mut all_ok = true;
    let mut summary = String::new();
    for stack in &o.stacks {
        let sw = Stopwatch::start();
        let art = ready(cfg, *stack)?;
        let p = Payload {
            files: bins
                .iter()
                .map(|b| (b.name.clone(), b.path.clone()))
                .chain(daemons.iter().cloned())
                .collect(),
            script: script(&bins, &daemons, secs, &o.rest),
            timeout: Duration::from_secs(secs * bins.len() as u64),
            step: Duration::from_secs(secs),
            echo: true,
        };
        let out = boot_with(&art, &p, "test")?;
        let v = report::verdict(&out);
        let res = results(&out.log, &bins);
        let box_ok = matches!(v, Verdict::Exited(_));
        if !box_ok {
            report::print_failure(&out, &v);
        }
        let stack_ok = box_ok && res.iter().all(|r| r.ok);
        all_ok &= stack_ok;
        summary.push_str(&format!(
            "== {} (Xen {}): {} ==\n",
            stack.name(),
            stack.xen_version(),
            if stack_ok { "PASS" } else { "FAIL" }
        ));
        for r in &res {
            summary.push_str(&format!(
                "  {:<50} {:<28} {}\n",
                r.name,
                r.status,
                r.secs.map_or("-".into(), |s| format!("{s:.1} s"))
            ));
        }
        if !box_ok {
            summary.push_str(&format!("  box: {}\n", report::headline(&out, &v)));
        }
        summary.push_str(&format!(
            "  {}; stack cycle {:.1} s\n",
            report::timings(&out),
            sw.secs()
        ));
    }
    println!(
        "\n===== xen-box test summary =====\n{summary}host build of the tests {build_secs:.1} s, total wall {:.1} s",
        total.secs()
    );
    Ok(if all_ok { 0 } else { 1 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cargo_json::Executable;

    fn exe(name: &str, kind: &str, src: &str) -> Executable {
        Executable {
            name: name.into(),
            kinds: vec![kind.into()],
            src_path: Path::new("/w").join(src),
            path: Path::new("/t/deps").join(name),
        }
    }

    fn names(lib_crates: &[&str]) -> Vec<String> {
        let exes = vec![
            exe(
                "xen_privcmd",
                "test",
                "crates/xen-bindings/tests/xen_privcmd.rs",
            ),
            exe("xen_bindings", "lib", "crates/xen-bindings/src/lib.rs"),
            exe(
                "pvh_boot",
                "test",
                "crates/vm-hypervisor-xen/tests/pvh_boot.rs",
            ),
            exe(
                "vm_hypervisor_xen",
                "lib",
                "crates/vm-hypervisor-xen/src/lib.rs",
            ),
            exe(
                "vsock-guest",
                "bin",
                "crates/xen-box-testing/src/bin/vsock-guest.rs",
            ),
            exe("other", "test", "crates/vm-hypervisor/tests/other.rs"),
        ];
        let crates = ["xen-bindings", "vm-hypervisor-xen", "xen-box-testing"].map(String::from);
        test_bins(exes, Path::new("/w"), &crates, lib_crates)
            .into_iter()
            .map(|b| b.name)
            .collect()
    }

    #[test]
    fn the_requested_crates_integration_tests_run() {
        assert_eq!(
            names(&[]),
            ["xen-bindings.xen_privcmd", "vm-hypervisor-xen.pvh_boot"]
        );
    }

    #[test]
    fn a_lib_test_binary_runs_only_for_the_crates_named() {
        assert_eq!(
            names(AARCH64_LIB_TEST_CRATES),
            [
                "xen-bindings.xen_privcmd",
                "vm-hypervisor-xen.pvh_boot",
                "vm-hypervisor-xen.lib"
            ]
        );
    }
}
