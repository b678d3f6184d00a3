// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The toolstack's xenstore requests about domains: `XS_INTRODUCE`, `XS_RELEASE`,
//! `XS_IS_DOMAIN_INTRODUCED`.
//!
//! Introducing a domain tells xenstored where the domain's xenstore ring is (a guest frame,
//! which xenstored maps through the domain's reserved grant entry or as a foreign page) and
//! which event channel the ring uses; xenstored then serves the domain and fires the
//! `@introduceDomain` watch. Releasing it makes xenstored forget the domain (and fire
//! `@releaseDomain`).
//!
//! What the toolstack recorded about a domain's memory is read here too.

use super::wire::MsgType;
use super::{malformed, nul_terminated, Error, Result, Transport, Xenstore};
use crate::DomId;

impl<T: Transport> Xenstore<T> {
    /// Introduces domain `domid`, whose xenstore ring is guest frame `ring_gfn` and whose
    /// ring event channel is `port` (its end, allocated for xenstored's domain).
    pub fn introduce_domain(&mut self, domid: DomId, ring_gfn: u64, port: u32) -> Result<()> {
        let mut p = nul_terminated(&domid.to_string());
        p.extend_from_slice(&nul_terminated(&ring_gfn.to_string()));
        p.extend_from_slice(&nul_terminated(&port.to_string()));
        self.request("introduce", MsgType::Introduce, 0, p, &domid.to_string())
            .map(drop)
    }

    /// Makes xenstored forget domain `domid` (`XS_RELEASE`).
    pub fn release_domain(&mut self, domid: DomId) -> Result<()> {
        let arg = domid.to_string();
        self.request("release", MsgType::Release, 0, nul_terminated(&arg), &arg)
            .map(drop)
    }

    /// Whether xenstored knows domain `domid` (`XS_IS_DOMAIN_INTRODUCED`).
    pub fn is_domain_introduced(&mut self, domid: DomId) -> Result<bool> {
        let arg = domid.to_string();
        let reply = self.request(
            "is_domain_introduced",
            MsgType::IsDomainIntroduced,
            0,
            nul_terminated(&arg),
            &arg,
        )?;
        match reply.strip_suffix(b"\0").unwrap_or(&reply) {
            b"T" => Ok(true),
            b"F" => Ok(false),
            _ => Err(Error::Malformed {
                op: "is_domain_introduced",
                reason: "reply is neither T nor F".into(),
            }),
        }
    }

    /// The RAM the toolstack gave domain `domid`, in bytes: its `memory/static-max` (KiB).
    /// [`GuestLayout::ram_ranges`](crate::layout::GuestLayout::ram_ranges) says where it lies.
    ///
    /// It is the toolstack's figure; Xen enforces its own limit
    /// ([`DomainInfo::max_memory`](crate::privcmd::DomainInfo::max_memory)), by which a caller
    /// that does not trust the node bounds it.
    pub fn domain_ram_bytes(&mut self, domid: DomId) -> Result<u64> {
        const OP: &str = "domain_ram_bytes";
        let value = self.read(&format!("/local/domain/{domid}/memory/static-max"))?;
        // A KiB count has at most 20 digits; longer is not one (and is not echoed whole).
        let text = std::str::from_utf8(&value)
            .ok()
            .map(str::trim)
            .filter(|t| t.len() <= 20);
        text.and_then(|t| t.parse::<u64>().ok())
            .and_then(|kib| kib.checked_mul(1024))
            .ok_or_else(|| {
                malformed(
                    OP,
                    format!("memory/static-max of domain {domid} is not a size in KiB: {text:?}"),
                )
            })
    }
}
