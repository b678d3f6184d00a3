// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Why [`Vcpu::run`](crate::Vcpu::run) returned.

use std::fmt;

use vm_device_bus::IoSpace;

/// A guest PIO or MMIO access, as served on the device bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IoAccess {
    /// Address space.
    pub space: IoSpace,
    /// Port or guest-physical address.
    pub addr: u64,
    /// Width in bytes.
    pub size: u8,
    /// `true` for a guest write.
    pub write: bool,
}

impl fmt::Display for IoAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-byte {} {} at {:#x}",
            self.size,
            self.space,
            if self.write { "write" } else { "read" },
            self.addr
        )
    }
}

/// Kind of a system event the guest asked for (PSCI on arm, for example).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SystemEventKind {
    /// Power off.
    Shutdown,
    /// Reboot.
    Reset,
    /// The guest reported a crash.
    Crash,
    /// A kind this crate does not name, with the backend's number.
    Other(u32),
}

/// Why [`Vcpu::run`](crate::Vcpu::run) returned.
///
/// Guest PIO and MMIO are served on the device bus inside `run`, so
/// [`VcpuExit::Io`] only tells the caller that it happened; the caller does
/// not complete anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum VcpuExit {
    /// A PIO/MMIO access was served by the device bus.
    Io(IoAccess),
    /// The guest executed `hlt` (or `wfi`) and no in-hypervisor interrupt
    /// controller handles it.
    Hlt,
    /// The guest shut down (x86 triple fault).
    Shutdown,
    /// The run was interrupted (signal or immediate exit) before or while
    /// running the guest; run again to continue.
    Interrupted,
    /// The guest asked for a system event.
    SystemEvent(SystemEventKind),
    /// A debug event (single step, breakpoint).
    Debug,
    /// The hypervisor could not enter the guest; `reason` is the
    /// hardware's code.
    FailEntry {
        /// Hardware entry-failure reason.
        reason: u64,
    },
    /// The hypervisor hit an internal error (for example an instruction
    /// its emulator cannot handle).
    InternalError {
        /// Backend's sub-error code.
        code: u32,
    },
    /// An exit this crate does not name, with the backend's number.
    Unhandled {
        /// Backend exit reason.
        reason: u32,
    },
}
