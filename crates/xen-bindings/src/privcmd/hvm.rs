// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! HVM parameters and grant-table size of a domain, through `hvm_op` and `grant_table_op`.

use super::{Error, Privcmd, Result};
use crate::abi::xen::grant_table::{GnttabQuerySize, GNTST_OKAY, GNTTABOP_QUERY_SIZE};
use crate::abi::xen::hvm::{XenHvmParam, HVMOP_GET_PARAM, HVMOP_SET_PARAM, HVM_NR_PARAMS};
use crate::abi::xen::hypercall;
use crate::sys::Sys;
use crate::DomId;

/// Size of a domain's grant table, in frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrantTableSize {
    /// Frames in use.
    pub nr_frames: u32,
    /// Frames the table may grow to.
    pub max_nr_frames: u32,
}

impl<S: Sys> Privcmd<S> {
    fn check_param(index: u32) -> Result<()> {
        if index >= HVM_NR_PARAMS {
            return Err(Error::InvalidArgument {
                op: "hvm_op param",
                what: format!("parameter {index} (Xen knows {HVM_NR_PARAMS})"),
            });
        }
        Ok(())
    }

    /// Reads HVM parameter `index` (`HVM_PARAM_*`) of an HVM or PVH domain.
    pub fn hvm_param(&self, domid: DomId, index: u32) -> Result<u64> {
        Self::check_param(index)?;
        let mut p = XenHvmParam {
            domid: domid.get(),
            index,
            ..Default::default()
        };
        // SAFETY: HVMOP_get_param reads and writes one xen_hvm_param, which holds no address.
        unsafe { self.hypercall_with(hypercall::HVM_OP, HVMOP_GET_PARAM, &mut p) }?;
        Ok(p.value)
    }

    /// Writes HVM parameter `index` (`HVM_PARAM_*`) of an HVM or PVH domain.
    pub fn set_hvm_param(&self, domid: DomId, index: u32, value: u64) -> Result<()> {
        Self::check_param(index)?;
        let mut p = XenHvmParam {
            domid: domid.get(),
            pad: 0,
            index,
            value,
        };
        // SAFETY: HVMOP_set_param reads one xen_hvm_param, which holds no address.
        unsafe { self.hypercall_with(hypercall::HVM_OP, HVMOP_SET_PARAM, &mut p) }?;
        Ok(())
    }

    /// The grant-table size of `domid` (`GNTTABOP_query_size`).
    pub fn grant_table_size(&self, domid: DomId) -> Result<GrantTableSize> {
        let mut q = GnttabQuerySize {
            dom: domid.get(),
            ..Default::default()
        };
        // grant_table_op takes a count as third argument, which `hypercall_with` does not pass.
        let mut buf = self.hypercall_buffer(std::mem::size_of::<GnttabQuerySize>())?;
        buf.write_at(0, &q);
        // SAFETY: grant_table_op(cmd, uop, count): one GnttabQuerySize in the buffer.
        unsafe {
            self.hypercall(
                hypercall::GRANT_TABLE_OP,
                [GNTTABOP_QUERY_SIZE, buf.addr(), 1, 0, 0],
            )
        }?;
        q = buf.read_at(0);
        if q.status != GNTST_OKAY {
            return Err(Error::OnDomain {
                op: "GNTTABOP_query_size",
                domid,
                source: std::io::Error::other(format!("grant status {}", q.status)),
            });
        }
        Ok(GrantTableSize {
            nr_frames: q.nr_frames,
            max_nr_frames: q.max_nr_frames,
        })
    }
}
