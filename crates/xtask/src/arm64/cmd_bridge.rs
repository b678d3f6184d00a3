// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! `xen-box demo --arch aarch64`: the bridge. In the Arm box's dom0, the unmodified
//! published vhost-device-rng (built with its `xen` feature) serves a Linux domU's
//! virtio-mmio entropy device through `xen-vhost-frontend`; the domU reads /dev/hwrng and the
//! demo shows the bytes next to the daemon's source file.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::arch::Arch;
use crate::bail;
use crate::cmd_run::ready;
use crate::config::BoxConfig;
use crate::payload::{boot_with, Payload};
use crate::report::{self, Verdict};
use crate::stack::Stack;
use crate::util::{say, workspace_root, Context, Result};

/// The dom0 script: daemon, frontend, domU; then the guest's reads and the source's bytes.
const SCRIPT: &str = r#"#!/bin/sh
cd /xen-box/files
fails=0
fail() { echo "BRIDGE-DEMO FAIL: $*"; fails=$((fails + 1)); }
head -c 1048576 /dev/urandom > /tmp/rng-source
echo "===== vhost-device-rng (published, unmodified, built with --features xen) ====="
RUST_LOG=info ./vhost-device-rng --socket-path /tmp/rng.sock -c 1 -f /tmp/rng-source >/tmp/rng.log 2>&1 &
echo "===== xen-vhost-frontend --device rng:/tmp/rng.sock0 ====="
./xen-vhost-frontend --device rng:/tmp/rng.sock0 >/tmp/frontend.log 2>&1 &
fe=$!
echo "===== xen-box-virtio-domu demo rng (xl create -p; the frontend answers the handshake) ====="
XEN_BOX_VIRTIO_STANDIN=0 xen-box-virtio-domu demo rng || fail "domU not created"
xl unpause demo
log=/var/log/xen/console/guest-demo.log
i=0
while ! grep -aq "XEN-BOX-DOMU: hwrng done" $log 2>/dev/null && [ $i -lt 600 ]; do sleep 1; i=$((i + 1)); done
echo "===== the domU's console ====="
tr -d '\r' < $log | grep -a "XEN-BOX-DOMU"
echo "===== the daemon's source file (first 320 bytes) ====="
od -A d -t x1 -v -N 320 /tmp/rng-source
first=$(tr -d '\r' < $log | sed -n 's/.*XEN-BOX-DOMU: hwrng 0 \([0-9a-f]*\).*/\1/p' | head -1)
all=$(head -c 65536 /tmp/rng-source | od -A n -t x1 -v | tr -d ' \n')
if [ -n "$first" ] && echo "$all" | grep -q "$first"; then
  echo "BRIDGE-DEMO: the guest's first /dev/hwrng read is bytes of the daemon's source file"
else
  fail "the guest's reads are not the daemon's bytes"
fi
echo "===== xenstore: the device's backend state (4 = Connected) ====="
xenstore-ls -f /local/domain/0/backend | grep -a "/state = " || true
xl destroy demo
kill $fe; wait $fe
echo "===== xen-vhost-frontend's log ====="
cat /tmp/frontend.log
[ $fails = 0 ] && echo "BRIDGE-DEMO ok"
exit $fails
"#;

/// The benchmark's dom0 script: for each frontend, the same daemon binary and the same guest
/// (foreign mappings): type virtio,device4 reading /dev/hwrng in the guest, then type
/// virtio,device13 (vsock, ID 0x13) timing 64-byte round trips from the guest to a dom0 echo
/// peer (`vsock-guest unix-echo` on the daemon's `<uds-path>_1234`).
const BENCH_SCRIPT: &str = r#"#!/bin/sh
cd /xen-box/files
head -c 8388608 /dev/urandom > /tmp/rng-source
bench() { # KIND NAME TYPE MODE CPIO FRONTEND-COMMAND...: one guest through one frontend
  kind=$1; name=$2; type=$3; mode=$4; cpio=$5; shift 5
  dom=$kind-$name
  "$@" >/tmp/fe-$dom.log 2>&1 &
  fe=$!
  XEN_BOX_VIRTIO_STANDIN=0 XEN_BOX_VIRTIO_TYPE=$type XEN_BOX_VIRTIO_EXTRA_CPIO=$cpio xen-box-virtio-domu $dom $mode ||
    echo "BRIDGE-BENCH FAIL: $dom: domU not created"
  xl unpause $dom
  log=/var/log/xen/console/guest-$dom.log
  i=0
  while ! grep -aq "$mode done" $log 2>/dev/null && [ $i -lt 300 ] && kill -0 $fe 2>/dev/null; do sleep 1; i=$((i + 1)); done
  kill -0 $fe 2>/dev/null || echo "BRIDGE-BENCH FAIL: $dom: the frontend exited"
  tr -d '\r' < $log > /tmp/console-$dom
  grep -aq "$mode done" /tmp/console-$dom || echo "BRIDGE-BENCH FAIL: $dom: no result"
  grep -a "XEN-BOX-" /tmp/console-$dom | sed "s/^/BRIDGE-BENCH $dom console: /"
  grep -av "^ *[0-9]*: \|^ *at " /tmp/fe-$dom.log | head -n 40 | sed "s/^/BRIDGE-BENCH $dom log: /"
  echo "BRIDGE-BENCH $kind frontend=$name rss_kib=$(sed -n 's/VmHWM:[^0-9]*\([0-9]*\).*/\1/p' /proc/$fe/status)"
  xl destroy $dom
  kill $fe; wait $fe 2>/dev/null
}
rng() { # NAME FRONTEND-COMMAND...
  name=$1; shift
  rm -f /tmp/rng.sock0
  ./vhost-device-rng --socket-path /tmp/rng.sock -c 1 -f /tmp/rng-source >/tmp/rng-$name.log 2>&1 &
  d=$!
  bench rng $name virtio,device4 rngbench "" "$@"
  sed -n "s/.*XEN-BOX-DOMU: rngbench \([0-9]\) /BRIDGE-BENCH frontend=$name run=\1 /p" /tmp/console-rng-$name
  kill $d; wait $d 2>/dev/null
}
vsock() { # NAME FRONTEND-COMMAND...: the guest times round trips to a dom0 echo peer
  name=$1; shift
  rm -f /tmp/vsock.sock0 /tmp/vm.vsock /tmp/vm.vsock_1234
  ./vhost-device-vsock --vm guest-cid=3,socket=/tmp/vsock.sock0,uds-path=/tmp/vm.vsock >/tmp/vsock-$name.log 2>&1 &
  d=$!
  ./vsock-guest unix-echo /tmp/vm.vsock_1234 >/tmp/echo-$name.log 2>&1 &
  e=$!
  bench vsock $name virtio,device13 vsockbench /xen-box/files/domu-vsock.cpio "$@"
  sed -n "s/.*XEN-BOX-VSOCK: rtt ok /BRIDGE-BENCH vsock frontend=$name /p" /tmp/console-vsock-$name
  cat /tmp/vsock-$name.log /tmp/echo-$name.log | head -n 20 | sed "s/^/BRIDGE-BENCH vsock-$name daemon: /"
  kill $d $e 2>/dev/null; wait $d $e 2>/dev/null
}
poc="./poc-xen-vhost-frontend --socket-path /tmp/ --foreign-mapping"
rng ours ./xen-vhost-frontend --device rng:/tmp/rng.sock0
[ -x ./poc-xen-vhost-frontend ] && rng poc $poc
vsock ours ./xen-vhost-frontend --device vsock:/tmp/vsock.sock0
[ -x ./poc-xen-vhost-frontend ] && vsock poc $poc
echo "BRIDGE-BENCH dom0 kernel $(uname -r), Xen $XEN_BOX_XEN_VERSION"
exit 0
"#;

/// Cross-builds the `xen-vhost-frontend` binary for aarch64.
fn build_frontend() -> Result<PathBuf> {
    let root = workspace_root();
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    // Release: the benchmark compares it with other builds' release binaries.
    cmd.current_dir(&root).args([
        "build",
        "--release",
        "-p",
        "xen-vhost-frontend",
        "--bin",
        "xen-vhost-frontend",
        "--message-format=json",
    ]);
    super::cross::configure(&mut cmd)?;
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .context(|| "cannot run cargo build -p xen-vhost-frontend".into())?;
    if !out.status.success() {
        bail!(
            "cargo build -p xen-vhost-frontend failed with {}",
            out.status
        );
    }
    if let Some(exe) = crate::cargo_json::executable_named(&out.stdout, "xen-vhost-frontend") {
        return Ok(exe);
    }
    bail!("cargo reported no xen-vhost-frontend executable")
}

/// Boots the Arm box once and measures guest-side /dev/hwrng throughput and vsock echo
/// round-trip latency through our frontend and, with `poc`, through the proof-of-concept
/// frontend binary at that path (the same daemons and guests for both).
pub fn bridge_bench(stack: Stack, cfg: &BoxConfig, poc: Option<PathBuf>) -> Result<i32> {
    let daemon = crate::vhost_device::daemon("rng")?;
    let rng = crate::vhost_device::build(daemon, Arch::Aarch64, &["xen".into()])?;
    let daemon = crate::vhost_device::daemon("vsock")?;
    let vsock = crate::vhost_device::build(daemon, Arch::Aarch64, &["xen".into()])?;
    let (guest, cpio) = super::cross::vsock_guest_cpio("domu-vsock.cpio")?;
    let frontend = build_frontend()?;
    let art = ready(cfg, stack)?;
    let mut files = vec![
        ("vhost-device-rng".into(), rng),
        ("vhost-device-vsock".into(), vsock),
        ("vsock-guest".into(), guest),
        ("domu-vsock.cpio".into(), cpio),
        ("xen-vhost-frontend".into(), frontend),
    ];
    if let Some(p) = poc {
        files.push(("poc-xen-vhost-frontend".into(), p));
    }
    let secs = 1800;
    let p = Payload::one_step(files, BENCH_SCRIPT.into(), secs);
    let out = boot_with(&art, &p, "bridge-bench")?;
    let v = report::verdict(&out);
    say(format!("{}-arm64: {}", stack.name(), report::timings(&out)));
    let lines: Vec<&str> = out
        .log
        .lines()
        .filter(|l| l.contains("BRIDGE-BENCH"))
        .collect();
    println!("\n===== bridge-bench summary =====");
    for l in &lines {
        println!("{}", l.trim());
    }
    let failed = lines.iter().any(|l| l.contains("FAIL"));
    Ok(if v == Verdict::Exited(0) && !failed {
        0
    } else {
        1
    })
}

/// Boots the Arm box once and runs the bridge demo.
pub fn bridge_demo(stack: Stack, cfg: &BoxConfig) -> Result<i32> {
    let daemon = crate::vhost_device::daemon("rng")?;
    let rng = crate::vhost_device::build(daemon, Arch::Aarch64, &["xen".into()])?;
    let frontend = build_frontend()?;
    let art = ready(cfg, stack)?;
    let secs = 900;
    let p = Payload::one_step(
        vec![
            ("vhost-device-rng".into(), rng),
            ("xen-vhost-frontend".into(), frontend),
        ],
        SCRIPT.into(),
        secs,
    );
    let out = boot_with(&art, &p, "bridge-demo")?;
    let v = report::verdict(&out);
    say(format!("{}-arm64: {}", stack.name(), report::timings(&out)));
    match v {
        Verdict::Exited(0) => Ok(0),
        _ => {
            report::print_failure(&out, &v);
            Ok(v.code().max(1))
        }
    }
}
