// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Errors of the domain builder and the console reader.

use xen_bindings::DomId;

/// Why building, running or destroying a domain failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration cannot describe a guest.
    #[error("invalid domain configuration: {what} = {value}: {reason}")]
    InvalidConfig {
        /// The setting.
        what: &'static str,
        /// Its value.
        value: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The kernel image is not one the builder can boot as PVH.
    #[error("kernel image {path}: {reason}")]
    BadKernel {
        /// Where the image came from.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Reading an input file failed.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The guest's memory cannot hold what must be loaded.
    #[error("{what} needs [{start:#x}, {end:#x}) but the guest has RAM up to {ram_end:#x}")]
    MemoryTooSmall {
        /// What did not fit.
        what: &'static str,
        /// Its first byte.
        start: u64,
        /// Its end.
        end: u64,
        /// The end of guest RAM.
        ram_end: u64,
    },
    /// Xen gave the domain fewer pages than asked.
    #[error("domain {domid}: Xen populated {done} of {wanted} extents of order {order} at {what}")]
    Populate {
        /// The domain.
        domid: DomId,
        /// What was populated.
        what: &'static str,
        /// Extents asked for.
        wanted: usize,
        /// Extents given.
        done: usize,
        /// Extent order.
        order: u32,
    },
    /// A hypercall or privcmd operation failed.
    #[error("{step}: {source}")]
    Xen {
        /// The build step.
        step: &'static str,
        /// The privcmd error.
        #[source]
        source: xen_bindings::privcmd::Error,
    },
    /// A xenstore request failed.
    #[error("{step}: {source}")]
    Xenstore {
        /// The build step.
        step: &'static str,
        /// The xenstore error.
        #[source]
        source: xen_bindings::xenstore::Error,
    },
    /// An event-channel operation failed.
    #[error("{step}: {source}")]
    Evtchn {
        /// The step.
        step: &'static str,
        /// The event-channel error.
        #[source]
        source: xen_bindings::evtchn::Error,
    },
    /// Loading into guest memory failed.
    #[error("loading {what}: {reason}")]
    Load {
        /// What was loaded.
        what: &'static str,
        /// Why it failed.
        reason: String,
    },
    /// Xen gave an Arm domain a GIC version the builder cannot describe to the guest.
    #[error(
        "domain {domid}: Xen picked GIC version {version}, which the builder does not describe"
    )]
    UnsupportedGic {
        /// The domain.
        domid: DomId,
        /// `XEN_DOMCTL_CONFIG_GIC_*` as written back.
        version: u8,
    },
    /// The domain's HVM context lacks a record the builder needs.
    #[error("domain {domid}: HVM context has no {record} record")]
    HvmContext {
        /// The domain.
        domid: DomId,
        /// The missing record.
        record: &'static str,
    },
    /// The console did not show what was awaited in time.
    #[error(
        "domain {domid}: {marker:?} not on the console within {after:?} (last output: {tail:?})"
    )]
    ConsoleTimeout {
        /// The domain.
        domid: DomId,
        /// The awaited text.
        marker: String,
        /// How long was waited.
        after: std::time::Duration,
        /// The end of what the guest printed.
        tail: String,
    },
    /// The domain crashed, shut down or went away before its console showed the marker.
    #[error("domain {domid} {state} before {marker:?} was on its console (last output: {tail:?})")]
    DomainStopped {
        /// The domain.
        domid: DomId,
        /// What became of it.
        state: crate::builder::DomainState,
        /// The awaited text.
        marker: String,
        /// The end of what the guest printed.
        tail: String,
    },
}

/// Result of the builder.
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_values() {
        let e = Error::MemoryTooSmall {
            what: "initrd",
            start: 0x100,
            end: 0x2000,
            ram_end: 0x1000,
        };
        assert_eq!(
            e.to_string(),
            "initrd needs [0x100, 0x2000) but the guest has RAM up to 0x1000"
        );
        let e = Error::InvalidConfig {
            what: "vcpus",
            value: "0".into(),
            reason: "a domain needs at least one vCPU",
        };
        assert!(e.to_string().contains("vcpus = 0"));
    }
}
