// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Turns a boot's [`Outcome`] into a verdict and human-readable reports.
//! A missing exit marker, a QEMU timeout, a Xen panic or a dom0 crash is
//! always a failure, reported with the tail of the serial log.

use crate::qemu::Outcome;
use crate::util::tail;

/// Lines of serial log shown with failures.
const TAIL: usize = 40;

/// What the box says about the payload.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The payload exited with this status and the box behaved.
    Exited(i32),
    /// The payload hit its time limit inside dom0 (and was killed).
    PayloadTimedOut,
    /// The whole boot exceeded its limit and QEMU was killed.
    BoxTimedOut,
    /// QEMU exited without the exit marker: dom0 or Xen crashed.
    NoExitMarker,
    /// The payload's status arrived but the machine did not power off.
    NoPoweroff(i32),
}

impl Verdict {
    /// Exit status for the `run` command (124/125 for box failures).
    pub fn code(&self) -> i32 {
        match self {
            Verdict::Exited(c) => *c,
            Verdict::PayloadTimedOut | Verdict::BoxTimedOut => 124,
            Verdict::NoExitMarker => 125,
            Verdict::NoPoweroff(_) => 126,
        }
    }
}

/// Classifies an outcome.
pub fn verdict(o: &Outcome) -> Verdict {
    if o.timed_out && o.exit_status.is_none() {
        return Verdict::BoxTimedOut;
    }
    match o.exit_status {
        None => Verdict::NoExitMarker,
        Some(_) if o.log.contains("XEN-BOX-TIMEOUT ") => Verdict::PayloadTimedOut,
        Some(c) if o.no_poweroff => Verdict::NoPoweroff(c),
        Some(c) => Verdict::Exited(c),
    }
}

fn fmt_t(t: Option<f64>) -> String {
    t.map_or_else(|| "never".to_string(), |t| format!("{t:.1} s"))
}

/// One line of boot timings.
pub fn timings(o: &Outcome) -> String {
    let payload = match (o.payload_at, o.exit_at) {
        (Some(a), Some(b)) => format!("{:.1} s", b - a),
        _ => "n/a".into(),
    };
    format!(
        "dom0 init reached at {}, toolstack up at {}, payload ran {}, total wall {:.1} s",
        fmt_t(o.init_at),
        fmt_t(o.toolstack_at),
        payload,
        o.wall
    )
}

/// A failure explanation with the serial log tail.
pub fn failure(o: &Outcome, headline: &str) -> String {
    let mut s = format!("FAILED: {headline}\n");
    if !o.disasters.is_empty() {
        s.push_str("hypervisor/kernel failure lines:\n");
        for d in &o.disasters {
            s.push_str(&format!("  {d}\n"));
        }
    }
    // After a hang, Xen's answer to the NMI (registers and a stack trace) ends the log.
    let lines = if o.hang_report.is_empty() {
        TAIL
    } else {
        3 * TAIL
    };
    s.push_str(&format!(
        "--- serial log tail ({} last lines of {}) ---\n{}\n--- end of serial log tail ---\n",
        lines,
        o.log_path.display(),
        tail(&o.log, lines)
    ));
    if !o.hang_report.is_empty() {
        s.push_str(&format!(
            "--- what the box was doing (QMP, before it was killed) ---\n{}",
            o.hang_report
        ));
    }
    let q = o.qemu_output.trim();
    if !q.is_empty() {
        s.push_str(&format!("--- qemu output ---\n{}\n", tail(q, 20)));
    }
    s
}

/// Prints [`failure`] with the verdict's [`headline`] on stderr.
pub fn print_failure(o: &Outcome, v: &Verdict) {
    eprint!("{}", failure(o, &headline(o, v)));
}

/// Headline for a verdict.
pub fn headline(o: &Outcome, v: &Verdict) -> String {
    match v {
        Verdict::Exited(c) => format!("payload exited with status {c}"),
        Verdict::PayloadTimedOut => "payload timed out (killed in dom0)".into(),
        Verdict::BoxTimedOut => format!(
            "timed out: {}; QEMU was killed (no exit marker)",
            o.timeout_reason
        ),
        Verdict::NoExitMarker => {
            "dom0 crashed / no exit marker: QEMU exited before the payload reported".into()
        }
        Verdict::NoPoweroff(c) => {
            format!("payload exited with status {c}, but the box did not power off")
        }
    }
}
