// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The error type every backend returns.

use thiserror::Error;

use crate::caps::Capability;
use crate::exit::IoAccess;
use vm_device_bus::BusError;

/// Result with this crate's [`enum@Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// An error's message followed by those of its sources, `: `-separated.
struct Reasons<'a>(&'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Reasons<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut next = self.0.source();
        while let Some(e) = next {
            write!(f, ": {e}")?;
            next = e.source();
        }
        Ok(())
    }
}

/// What went wrong in a hypervisor operation.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// The backend does not offer the capability the operation needs; see
    /// [`Vm::check_capability`](crate::Vm::check_capability).
    #[error("{capability:?} is not supported by this hypervisor")]
    Unsupported {
        /// What was asked for.
        capability: Capability,
    },
    /// A vCPU id outside the range the VM accepts.
    #[error("vCPU id {id} is out of range: this VM accepts ids below {max_id}")]
    VcpuIdOutOfRange {
        /// Requested id.
        id: u32,
        /// Exclusive upper bound of ids.
        max_id: u32,
    },
    /// A vCPU with this id exists already.
    #[error("vCPU id {id} is already in use")]
    VcpuIdInUse {
        /// Requested id.
        id: u32,
    },
    /// The VM has as many vCPUs as it can take.
    #[error("cannot create vCPU {id}: the VM already has the maximum of {max_vcpus} vCPUs")]
    TooManyVcpus {
        /// Requested id.
        id: u32,
        /// Limit.
        max_vcpus: u32,
    },
    /// A memory region overlaps one the VM has already.
    #[error(
        "memory region at {guest_phys_addr:#x}+{size:#x} overlaps the region \
         at {other_guest_phys_addr:#x}+{other_size:#x}"
    )]
    MemoryRegionOverlap {
        /// Start of the new region.
        guest_phys_addr: u64,
        /// Size of the new region.
        size: u64,
        /// Start of the existing region.
        other_guest_phys_addr: u64,
        /// Size of the existing region.
        other_size: u64,
    },
    /// A memory region that cannot be mapped as given.
    #[error("memory region at {guest_phys_addr:#x}+{size:#x} is invalid: {reason}")]
    InvalidMemoryRegion {
        /// Start of the region.
        guest_phys_addr: u64,
        /// Size of the region.
        size: u64,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The VM has as many memory regions as the hypervisor takes.
    #[error(
        "cannot add the memory region at {guest_phys_addr:#x}: the VM already has the \
         maximum of {max_regions} regions"
    )]
    TooManyMemoryRegions {
        /// Start of the new region.
        guest_phys_addr: u64,
        /// Limit.
        max_regions: u32,
    },
    /// No region starts at this guest address.
    #[error("no memory region starts at {guest_phys_addr:#x}")]
    NoMemoryRegion {
        /// Guest-physical address asked for.
        guest_phys_addr: u64,
    },
    /// Dirty pages were asked for a region mapped without dirty logging.
    #[error("the memory region at {guest_phys_addr:#x} was not mapped with dirty logging")]
    DirtyLogNotEnabled {
        /// Start of the region.
        guest_phys_addr: u64,
    },
    /// An argument outside what the operation accepts.
    #[error("{op}: invalid argument: {reason}")]
    InvalidArgument {
        /// Operation.
        op: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A guest PIO/MMIO access that the device bus could not serve. For a
    /// read, the guest sees all ones; the vCPU may be run again.
    ///
    /// The message carries the bus's reason and the device's own (a VMM that
    /// logs only this error still learns why); `source()` gives the
    /// [`BusError`] to match on.
    #[error("guest {access} failed: {}", Reasons(source))]
    Io {
        /// The access.
        access: IoAccess,
        /// Why the bus refused it.
        #[source]
        source: BusError,
    },
    /// The hypervisor refused an operation.
    #[error("{op} failed")]
    Hypervisor {
        /// Operation (ioctl or hypercall name).
        op: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// An [`Error::Hypervisor`] for `op` from an OS error.
    pub fn hypervisor(op: &'static str, source: impl Into<std::io::Error>) -> Self {
        Self::Hypervisor {
            op,
            source: source.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_operation_and_values() {
        let e = Error::VcpuIdOutOfRange { id: 7, max_id: 4 };
        assert_eq!(
            e.to_string(),
            "vCPU id 7 is out of range: this VM accepts ids below 4"
        );
        let e = Error::hypervisor("KVM_RUN", std::io::Error::from_raw_os_error(libc_eintr()));
        assert_eq!(e.to_string(), "KVM_RUN failed");
        assert!(std::error::Error::source(&e).is_some());
    }

    #[test]
    fn a_failed_guest_access_says_what_the_device_said() {
        let access = IoAccess {
            space: vm_device_bus::IoSpace::Pio,
            addr: 0x61,
            size: 1,
            write: false,
        };
        let e = Error::Io {
            access,
            source: BusError::Device {
                space: vm_device_bus::IoSpace::Pio,
                base: 0x60,
                offset: 1,
                op: "read",
                source: "the keyboard controller has no data".into(),
            },
        };
        assert_eq!(
            e.to_string(),
            "guest 1-byte port read at 0x61 failed: device at port 0x60 failed a read at \
             offset 0x1: the keyboard controller has no data"
        );
        assert!(matches!(
            std::error::Error::source(&e).and_then(|s| s.downcast_ref::<BusError>()),
            Some(BusError::Device { op: "read", .. })
        ));
        let e = Error::Io {
            access,
            source: BusError::NoDevice {
                space: vm_device_bus::IoSpace::Pio,
                addr: 0x61,
            },
        };
        assert_eq!(
            e.to_string(),
            "guest 1-byte port read at 0x61 failed: no device at port address 0x61"
        );
    }

    fn libc_eintr() -> i32 {
        4
    }
}
