// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! `xen-box selftest`: proves that the harness detects failures. Each case
//! boots the box with a payload whose misbehaviour is known and checks that
//! the harness classifies it correctly (and never as a pass).

use crate::cmd_run::ready;
use crate::config::BoxConfig;
use crate::payload::{boot_with, timed, Payload};
use crate::report::{self, Verdict};
use crate::stack::Stack;
use crate::util::{say, Result, Stopwatch};

/// Payload time limit of the hang case: short, so the case ends soon.
const HANG_LIMIT: u64 = 60;

struct Case {
    name: &'static str,
    body: &'static str,
    expect: Verdict,
}

const CASES: &[Case] = &[
    Case {
        name: "exit-3",
        body: "echo 'selftest: exiting with 3'; exit 3",
        expect: Verdict::Exited(3),
    },
    Case {
        name: "hang",
        body: "echo 'selftest: hanging'; while :; do sleep 1000; done",
        expect: Verdict::PayloadTimedOut,
    },
    Case {
        name: "dom0-crash",
        body: "echo 'selftest: crashing dom0'; echo c > /proc/sysrq-trigger; sleep 600",
        expect: Verdict::NoExitMarker,
    },
    Case {
        name: "exit-0",
        body: "echo 'selftest: exiting with 0'; exit 0",
        expect: Verdict::Exited(0),
    },
];

/// Runs the four cases; 0 only if each behaved as expected.
pub fn selftest(stack: Stack, cfg: &BoxConfig) -> Result<i32> {
    let total = Stopwatch::start();
    let art = ready(cfg, stack)?;
    let mut lines = Vec::new();
    let mut all = true;
    for c in CASES {
        say(format!("selftest case `{}` on {}", c.name, stack.name()));
        let script = format!(
            "#!/bin/sh\ncat > /tmp/case.sh <<'XEN_BOX_EOF'\n{}\nXEN_BOX_EOF\nchmod +x /tmp/case.sh\n{}exit $rc\n",
            c.body,
            timed("sh /tmp/case.sh", HANG_LIMIT, "payload")
        );
        let p = Payload::one_step(Vec::new(), script, HANG_LIMIT);
        let out = boot_with(&art, &p, c.name)?;
        let v = report::verdict(&out);
        // What the harness reports, exactly as `run` would.
        let reported_pass = v == Verdict::Exited(0);
        if !reported_pass {
            report::print_failure(&out, &v);
        } else {
            say("harness reports: PASS (payload exited 0)");
        }
        // Every case must have reached its payload: a box that never booted (QEMU failing to
        // start, say) also shows no exit marker, and must not pass as a detected dom0 crash.
        let booted = out.payload_at.is_some();
        if !booted {
            say("the payload never started: the box did not boot, so this case proves nothing");
        }
        let ok = booted && v == c.expect;
        all &= ok;
        lines.push(format!(
            "  {:<12} expected {:<40} got {:<40} {} ({:.1} s wall)",
            c.name,
            format!("{:?}", c.expect),
            format!("{v:?}"),
            if ok { "ok" } else { "WRONG" },
            out.wall
        ));
    }
    println!(
        "\n===== xen-box selftest ({}) =====\n{}\n{} in {:.1} s",
        stack.name(),
        lines.join("\n"),
        if all {
            "selftest PASSED: every failure was detected"
        } else {
            "selftest FAILED"
        },
        total.secs()
    );
    Ok(if all { 0 } else { 1 })
}
