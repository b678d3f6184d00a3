// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! `xen-box virtio-domu --arch aarch64`: checks the dom0 helper
//! `xen-box-virtio-domu`, which creates a paused domU with a virtio-mmio
//! device for IOREQ-server tests: the domU is created paused, its virtio
//! backend entries are in xenstore, and once unpaused the guest sees the
//! virtio-mmio device-tree node and powers off (it does not probe the device:
//! nobody serves its registers here).

use crate::bail;
use crate::cmd_run::ready;
use crate::config::BoxConfig;
use crate::payload::boot_script;
use crate::report::{self, Verdict};
use crate::stack::Stack;
use crate::util::{say, Result};

const SCRIPT: &str = r#"
fails=0
fail() { echo "XEN-BOX-VIRTIO-CHECK FAIL: $*"; fails=$((fails + 1)); }
out=$(xen-box-virtio-domu vcheck poweroff) || fail "helper failed: $out"
echo "$out"
D=$(echo "$out" | sed -n 's/.*domid=\([0-9]*\).*/\1/p')
[ -n "$D" ] || { fail "no domid"; exit 1; }
xl list
xl list | awk '$1 == "vcheck" { print $5 }' | grep -q p || fail "vcheck is not paused"
if [ "$XEN_BOX_XEN_VERSION" = 4.17 ]; then be=/local/domain/0/backend/virtio_disk/$D; else be=/local/domain/0/backend/virtio/$D; fi
xenstore-ls -f $be || fail "no backend entries under $be"
xenstore-ls -f $be | grep -q "base = \"\(33554432\|0x2000000\)\"" || fail "backend base is not 0x2000000"
xl unpause vcheck
log=/var/log/xen/console/guest-vcheck.log
i=0
while xl domid vcheck >/dev/null 2>&1 && [ $i -lt 300 ]; do sleep 1; i=$((i + 1)); done
xl domid vcheck >/dev/null 2>&1 && { xl destroy vcheck; fail "vcheck still running after 300 s"; }
cat $log | tr -d '\r' | grep -a "XEN-BOX-DOMU" 
grep -aq "XEN-BOX-DOMU: up" $log || fail "no domU marker on its console"
grep -aq "XEN-BOX-DOMU: dt-node virtio@2000000 compatible=virtio,mmio" $log || fail "no virtio,mmio node at 0x2000000 in the domU device tree"
[ $fails = 0 ] && echo "XEN-BOX-VIRTIO-CHECK ok: paused domU $D with virtio-mmio at 0x2000000, node seen by the guest, domU gone after $i s"
exit $fails
"#;

/// Boots the aarch64 box once and checks the virtio domU helper.
pub fn virtio_domu(stack: Stack, cfg: &BoxConfig) -> Result<i32> {
    if !cfg.is_aarch64() {
        bail!("virtio-domu needs --arch aarch64 (on x86, xl's virtio= creates no device)");
    }
    let art = ready(cfg, stack)?;
    let out = boot_script(&art, "virtio.sh", SCRIPT, 600, "virtio-domu")?;
    let v = report::verdict(&out);
    say(format!("{}-arm64: {}", stack.name(), report::timings(&out)));
    if v == Verdict::Exited(0) {
        say(format!("virtio-domu {}-arm64: PASS", stack.name()));
        Ok(0)
    } else {
        report::print_failure(&out, &v);
        Ok(1)
    }
}
