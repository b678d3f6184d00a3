// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Where a build's time goes: each step's wall time, logged at debug level when the build ends
//! (`vm_hypervisor_xen::builder` target), so that a slow build can be taken apart without a
//! profiler in dom0.

use std::fmt;
use std::time::{Duration, Instant};

/// Wall time per step, in the order the steps ran.
#[derive(Debug)]
pub(crate) struct Steps {
    last: Instant,
    laps: Vec<(&'static str, Duration)>,
}

impl Steps {
    /// Starts the clock.
    pub(crate) fn start() -> Self {
        Self {
            last: Instant::now(),
            laps: Vec::new(),
        }
    }

    /// Ends step `name`: the time since the previous step ended (or the clock started).
    pub(crate) fn lap(&mut self, name: &'static str) {
        let now = Instant::now();
        self.laps.push((name, now - self.last));
        self.last = now;
    }
}

impl fmt::Display for Steps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (name, took)) in self.laps.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{name} {} ms", took.as_millis())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_listed_in_order_with_their_times() {
        let mut s = Steps::start();
        s.lap("first");
        s.lap("second");
        let text = s.to_string();
        assert!(text.starts_with("first "), "{text}");
        assert!(text.contains(" ms, second "), "{text}");
        assert!(text.ends_with(" ms"), "{text}");
    }
}
