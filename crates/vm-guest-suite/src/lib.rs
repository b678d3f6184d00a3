// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Backend-agnostic guest test suite for vm-hypervisor backends.
//!
//! Tiny purpose-built guests (hand-assembled, see [`code`]) in real mode,
//! flat 32-bit protected mode and 64-bit long mode do port I/O, MMIO,
//! ioeventfd writes, take interrupts through an irqfd and through an MSI,
//! and halt. Each case in [`cases`] is written once against the
//! vm-hypervisor traits, generic over the backend, and checks from the host
//! side what the devices saw and what the guest read back and reported.
//!
//! A backend's integration test runs the whole suite with one macro,
//! [`guest_suite_tests!`]; see the README below.
//!
#![doc = include_str!("../README.md")]

use std::fmt::Debug;
#[cfg(target_arch = "x86_64")]
use std::io::Write;

use thiserror::Error;
#[cfg(target_arch = "x86_64")]
use vm_hypervisor::x86_64::HypervisorX86_64;
use vm_hypervisor::{BusError, VcpuExit};

// The guests are x86 machine code: the cases and the machine that runs
// them are x86_64-only; the code, layout and devices are plain data that
// benchmarks and other crates share on every host.
#[cfg(target_arch = "x86_64")]
pub mod cases;
pub mod code;
pub mod devices;
pub mod layout;
#[cfg(target_arch = "x86_64")]
pub mod machine;

/// How a case ended when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// Every check held.
    Passed,
    /// The backend lacks a capability the case needs.
    Skipped(String),
}

/// Why a case failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SuiteError {
    /// A hypervisor operation failed.
    #[error("hypervisor operation failed")]
    Hypervisor(#[from] vm_hypervisor::Error),
    /// vm-vcpu-ref could not write the boot structures.
    #[error("boot structures")]
    Boot(#[from] vm_vcpu_ref::Error),
    /// Setting up the device bus failed.
    #[error("device bus setup failed")]
    Bus(#[from] BusError),
    /// Guest memory could not be made, read or written.
    #[error("guest memory: {0}")]
    Memory(String),
    /// A host resource (eventfd, ...) failed.
    #[error("host: {0}")]
    Host(String),
    /// A check did not hold.
    #[error("{what}: expected {expected}, got {actual}")]
    Mismatch {
        /// What was checked.
        what: &'static str,
        /// Expected value.
        expected: String,
        /// Observed value.
        actual: String,
    },
    /// The vCPU stopped for a reason the case does not expect.
    #[error("unexpected vCPU exit {0:?}")]
    UnexpectedExit(VcpuExit),
    /// The guest did not finish within the given number of exits.
    #[error("the guest did not finish within {0} exits")]
    TooManyExits(usize),
}

impl SuiteError {
    /// A [`SuiteError::Mismatch`] from debug-printable values.
    pub fn mismatch(what: &'static str, expected: impl Debug, actual: impl Debug) -> Self {
        Self::Mismatch {
            what,
            expected: format!("{expected:?}"),
            actual: format!("{actual:?}"),
        }
    }
}

/// Fail with [`SuiteError::Mismatch`] unless `actual == expected`.
pub fn check<T: PartialEq + Debug>(
    what: &'static str,
    expected: T,
    actual: T,
) -> Result<(), SuiteError> {
    if expected == actual {
        Ok(())
    } else {
        Err(SuiteError::mismatch(what, expected, actual))
    }
}

/// A suite case.
pub type Case<H> = fn(&H) -> Result<Outcome, SuiteError>;

/// Every case with its name, in the order they are best run.
#[cfg(target_arch = "x86_64")]
pub fn all_cases<H: HypervisorX86_64 + 'static>() -> Vec<(&'static str, Case<H>)> {
    vec![
        ("real_mode_pio_mmio", cases::real_mode_pio_mmio::<H>),
        ("string_io", cases::string_io::<H>),
        ("protected_mode_memory", cases::protected_mode_memory::<H>),
        ("long_mode_pio_mmio", cases::long_mode_pio_mmio::<H>),
        ("ioeventfd", cases::ioeventfd::<H>),
        ("irqfd_interrupt", cases::irqfd_interrupt::<H>),
        ("irq_line_interrupt", cases::irq_line_interrupt::<H>),
        ("msi_interrupt", cases::msi_interrupt::<H>),
        ("device_errors", cases::device_errors::<H>),
        ("bad_input", cases::bad_input::<H>),
        ("immediate_exit", cases::immediate_exit::<H>),
        ("registers_round_trip", cases::registers_round_trip::<H>),
    ]
}

/// Run one case as a test: skip loudly if `open` yields no backend or the
/// backend lacks a capability; panic with the error if it fails.
#[cfg(target_arch = "x86_64")]
pub fn run_case<H: HypervisorX86_64>(name: &str, open: impl FnOnce() -> Option<H>, case: Case<H>) {
    let Some(hv) = open() else {
        return;
    };
    match case(&hv) {
        Ok(Outcome::Passed) => {}
        // Straight to the process's stderr: libtest captures `eprintln!` of
        // passing tests, and a skip must be seen.
        Ok(Outcome::Skipped(why)) => {
            let _ = writeln!(std::io::stderr(), "SKIPPED: {name} on {}: {why}", hv.name());
        }
        Err(e) => {
            let mut msg = format!("{name} on {}: {e}", hv.name());
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg.push_str(&format!(": {s}"));
                src = s.source();
            }
            panic!("{msg}");
        }
    }
}

/// As [`run_case`], unless `not_run` names a reason the backend cannot run
/// this case yet: then it says so loudly (`NOT RUN:`) instead. For a known
/// fault of a backend that is being worked on, not for a missing capability
/// (cases skip those themselves).
#[cfg(target_arch = "x86_64")]
pub fn run_case_unless<H: HypervisorX86_64>(
    name: &str,
    open: impl FnOnce() -> Option<H>,
    not_run: fn(&str) -> Option<&'static str>,
    case: Case<H>,
) {
    if let Some(why) = not_run(name) {
        let _ = writeln!(std::io::stderr(), "NOT RUN: {name}: {why}");
        return;
    }
    run_case(name, open, case);
}

/// Define one `#[test]` per suite case, each opening its backend with
/// `$open` (a function returning `Option<H>`; `None` means "absent, already
/// reported as SKIPPED"). With a second argument, a
/// `fn(&str) -> Option<&'static str>`, the cases it names a reason for are
/// reported `NOT RUN:` with that reason (see [`run_case_unless`]).
#[cfg(target_arch = "x86_64")]
#[macro_export]
macro_rules! guest_suite_tests {
    ($open:path, $not_run:path) => {
        $crate::guest_suite_tests!(@unless $open, $not_run;
            real_mode_pio_mmio, string_io, protected_mode_memory, long_mode_pio_mmio, ioeventfd,
            irqfd_interrupt, irq_line_interrupt, msi_interrupt, device_errors, bad_input, immediate_exit,
            registers_round_trip);
    };
    (@unless $open:path, $not_run:path; $($case:ident),*) => {
        $(
            #[test]
            fn $case() {
                $crate::run_case_unless(stringify!($case), $open, $not_run, $crate::cases::$case);
            }
        )*
    };
    ($open:path) => {
        $crate::guest_suite_tests!(@cases $open;
            real_mode_pio_mmio, string_io, protected_mode_memory, long_mode_pio_mmio, ioeventfd,
            irqfd_interrupt, irq_line_interrupt, msi_interrupt, device_errors, bad_input, immediate_exit,
            registers_round_trip);
    };
    (@cases $open:path; $($case:ident),*) => {
        $(
            #[test]
            fn $case() {
                $crate::run_case(stringify!($case), $open, $crate::cases::$case);
            }
        )*
    };
}

/// On hosts other than x86_64 the suite's x86 guests cannot run: one test
/// that says so loudly.
#[cfg(not(target_arch = "x86_64"))]
#[macro_export]
macro_rules! guest_suite_tests {
    ($open:path, $not_run:path) => {
        $crate::guest_suite_tests!($open);
        // Named so the caller's list is not reported unused.
        const _: fn(&str) -> Option<&'static str> = $not_run;
    };
    ($open:path) => {
        #[test]
        fn guest_suite() {
            // Named so the caller's opener is not reported unused.
            let _opener = $open;
            eprintln!("SKIPPED: guest suite: its guests are x86 code and this host is not x86_64");
        }
    };
}
