// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! `xen-box domu-check`: dom0 starts and stops test domUs (PV and PVH that
//! power off by themselves, and a PV one that idles until `xl destroy`), using
//! the same kernel and ramdisk tests get through `XEN_BOX_DOMU_*`.

use crate::cmd_run::ready;
use crate::config::BoxConfig;
use crate::payload::boot_script;
use crate::report::{self, Verdict};
use crate::stack::Stack;
use crate::util::{say, Result};

const DOMU_SCRIPT: &str = r#"
up() { cut -d' ' -f1 /proc/uptime; }
fails=0
# domu NAME TYPE MODE: create, wait for the marker, stop, check it is gone.
domu() {
  n=$1; ty=$2; mode=$3
  {
    echo "name = \"$n\""
    echo "type = \"$ty\""
    echo "kernel = \"$XEN_BOX_DOMU_KERNEL\""
    echo "ramdisk = \"$XEN_BOX_DOMU_RAMDISK\""
    echo "extra = \"console=hvc0 xbdomu=$mode\""
    echo "memory = 256"
    echo "vcpus = 1"
    echo "on_poweroff = \"destroy\""
    echo "on_crash = \"destroy\""
  } > /etc/xen/$n.cfg
  log=/var/log/xen/console/guest-$n.log
  t0=$(up)
  echo "== $n: xl create at $t0"
  if ! xl create /etc/xen/$n.cfg; then
    echo "XEN-BOX-DOMU-CHECK $n FAIL (xl create failed)"; fails=$((fails + 1)); return
  fi
  xl list
  i=0
  if [ $mode = sleep ]; then
    while ! grep -q "XEN-BOX-DOMU: idling" $log 2>/dev/null && [ $i -lt 300 ]; do sleep 1; i=$((i + 1)); done
    grep -q "XEN-BOX-DOMU: idling" $log && echo "$n idles at $(up): xl destroy" && xl destroy $n
  fi
  while xl domid $n >/dev/null 2>&1 && [ $i -lt 300 ]; do sleep 1; i=$((i + 1)); done
  if xl domid $n >/dev/null 2>&1; then
    xl destroy $n; echo "XEN-BOX-DOMU-CHECK $n FAIL (still running after 300 s)"; fails=$((fails + 1))
  elif grep -q "XEN-BOX-DOMU: up guest_type=" $log; then
    echo "XEN-BOX-DOMU-CHECK $n ok: $(grep -a 'XEN-BOX-DOMU: up' $log | tr -d '\r') created at $t0, gone at $(up)"
  else
    echo "XEN-BOX-DOMU-CHECK $n FAIL (no marker on its console)"; tail -30 $log; fails=$((fails + 1))
  fi
}
domu pv-poweroff pv poweroff
domu pvh-poweroff pvh poweroff
domu pv-sleep pv sleep
exit $fails
"#;

/// Boots once and runs the three domUs.
pub fn domu_check(stack: Stack, cfg: &BoxConfig) -> Result<i32> {
    let art = ready(cfg, stack)?;
    let out = boot_script(&art, "domu.sh", DOMU_SCRIPT, 900, "domu-check")?;
    let v = report::verdict(&out);
    say(format!("{}: {}", stack.name(), report::timings(&out)));
    if v == Verdict::Exited(0) {
        say(format!(
            "domu-check {}: PV and PVH domUs started and stopped",
            stack.name()
        ));
        Ok(0)
    } else {
        report::print_failure(&out, &v);
        Ok(1)
    }
}
