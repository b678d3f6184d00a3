// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The typed resources of a domain that privcmd maps (`XENMEM_acquire_resource`).
//!
//! Xen names a resource by a type and an id whose meaning depends on the type (an IOREQ
//! server id, a grant-table frame kind, a vCPU). [`Resource`] carries both, so a caller cannot
//! pair an id with the wrong type.

use std::fmt;

use crate::abi::xen::dm_op::IoservId;
use crate::abi::xen::memory::{
    XENMEM_RESOURCE_GRANT_TABLE, XENMEM_RESOURCE_GRANT_TABLE_ID_SHARED,
    XENMEM_RESOURCE_GRANT_TABLE_ID_STATUS, XENMEM_RESOURCE_IOREQ_SERVER,
    XENMEM_RESOURCE_VMTRACE_BUF,
};

/// A resource of a domain, as [`Privcmd::map_resource`](super::Privcmd::map_resource) and
/// [`Privcmd::resource_size`](super::Privcmd::resource_size) take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Resource {
    /// The pages of an IOREQ server: frame 0 is the buffered-ioreq page, frame `1 + n` the
    /// `n`th synchronous-ioreq page.
    IoreqServer(IoservId),
    /// The shared frames of the domain's grant table.
    GrantTableShared,
    /// The status frames of the domain's grant table (grant table v2 only).
    GrantTableStatus,
    /// The trace buffer of a vCPU.
    VmtraceBuf {
        /// The vCPU.
        vcpu: u32,
    },
}

impl Resource {
    /// The `(type, id)` pair of `XENMEM_acquire_resource` (and privcmd's `MMAP_RESOURCE`).
    pub fn raw(self) -> (u32, u32) {
        match self {
            Resource::IoreqServer(id) => (XENMEM_RESOURCE_IOREQ_SERVER.into(), id.into()),
            Resource::GrantTableShared => (
                XENMEM_RESOURCE_GRANT_TABLE.into(),
                XENMEM_RESOURCE_GRANT_TABLE_ID_SHARED,
            ),
            Resource::GrantTableStatus => (
                XENMEM_RESOURCE_GRANT_TABLE.into(),
                XENMEM_RESOURCE_GRANT_TABLE_ID_STATUS,
            ),
            Resource::VmtraceBuf { vcpu } => (XENMEM_RESOURCE_VMTRACE_BUF.into(), vcpu),
        }
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Resource::IoreqServer(id) => write!(f, "IOREQ server {id}"),
            Resource::GrantTableShared => f.write_str("grant table (shared frames)"),
            Resource::GrantTableStatus => f.write_str("grant table (status frames)"),
            Resource::VmtraceBuf { vcpu } => write!(f, "trace buffer of vCPU {vcpu}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_resource_has_the_type_and_id_of_the_xen_header() {
        // public/memory.h: XENMEM_resource_ioreq_server 0, _grant_table 1 (id shared 0,
        // status 1), _vmtrace_buf 2 (id: the vCPU).
        assert_eq!(Resource::IoreqServer(7).raw(), (0, 7));
        assert_eq!(Resource::GrantTableShared.raw(), (1, 0));
        assert_eq!(Resource::GrantTableStatus.raw(), (1, 1));
        assert_eq!(Resource::VmtraceBuf { vcpu: 3 }.raw(), (2, 3));
    }

    #[test]
    fn a_resource_reads_as_what_it_is() {
        assert_eq!(Resource::IoreqServer(2).to_string(), "IOREQ server 2");
        assert_eq!(
            Resource::GrantTableShared.to_string(),
            "grant table (shared frames)"
        );
        assert_eq!(
            Resource::VmtraceBuf { vcpu: 1 }.to_string(),
            "trace buffer of vCPU 1"
        );
    }
}
