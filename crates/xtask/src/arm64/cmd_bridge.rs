// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! `xen-box demo --arch aarch64`: the bridge. In the Arm box's dom0, the unmodified
//! vhost-device-rng from crates.io (built with its `xen` feature) serves a Linux domU's
//! virtio-mmio entropy device through `xen-vhost-frontend`; the domU reads /dev/hwrng and the
//! demo shows the bytes next to the daemon's source file.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::arch::Arch;
use crate::bail;
use crate::cmd_run::ready;
use crate::json::{self, Value};
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
echo "===== vhost-device-rng (crates.io, unmodified, built with --features xen) ====="
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

/// Cross-builds the `xen-vhost-frontend` binary for aarch64.
fn build_frontend() -> Result<PathBuf> {
    let root = workspace_root();
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(&root).args([
        "build",
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
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(v) = json::parse(line) else { continue };
        let t = v.get("target");
        if t.and_then(|t| t.get("name")).and_then(Value::as_str) == Some("xen-vhost-frontend") {
            if let Some(exe) = v.get("executable").and_then(Value::as_str) {
                return Ok(PathBuf::from(exe));
            }
        }
    }
    bail!("cargo reported no xen-vhost-frontend executable")
}

/// Boots the Arm box once and runs the bridge demo.
pub fn bridge_demo(stack: Stack) -> Result<i32> {
    let daemon = crate::vhost_device::daemon("rng")?;
    let rng = crate::vhost_device::build(daemon, Arch::Aarch64, &["xen".into()])?;
    let frontend = build_frontend()?;
    let art = ready(stack)?;
    let secs = 900;
    let p = Payload {
        files: vec![
            ("vhost-device-rng".into(), rng),
            ("xen-vhost-frontend".into(), frontend),
        ],
        script: SCRIPT.into(),
        timeout: Duration::from_secs(secs),
        step: Duration::from_secs(secs),
        echo: true,
    };
    let out = boot_with(&art, &p, "bridge-demo")?;
    let v = report::verdict(&out);
    say(format!("{}-arm64: {}", stack.name(), report::timings(&out)));
    match v {
        Verdict::Exited(0) => Ok(0),
        _ => {
            eprint!("{}", report::failure(&out, &report::headline(&out, &v)));
            Ok(v.code().max(1))
        }
    }
}
