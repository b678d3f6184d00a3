// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! [`DomId`], the typed domain id every safe interface of this crate and its users takes.

use std::fmt;
use std::str::FromStr;

use crate::abi::xen::{
    DOMID_COW, DOMID_FIRST_RESERVED, DOMID_IDLE, DOMID_INVALID, DOMID_IO, DOMID_SELF, DOMID_XEN,
};

/// A Xen domain id (`domid_t`).
///
/// A newtype over the 16-bit value Xen uses, so that a domain id cannot be confused with a
/// vCPU index, an event-channel port or a grant reference. The `#[repr(C)]` types of
/// [`abi`](crate::abi) keep the raw `u16` of the C headers; the safe wrappers take and return
/// `DomId` and convert at the edge.
///
/// There is deliberately no `From<u16>`: [`DomId::new`] says where a raw number becomes a
/// domain id. [`DomId::get`] (or `u16::from`/`u32::from`) gives the number back.
///
/// ```
/// use xen_bindings::DomId;
///
/// let domid = DomId::new(3);
/// assert_eq!(domid.get(), 3);
/// assert_eq!(domid.to_string(), "3");
/// assert_eq!("3".parse::<DomId>(), Ok(domid));
/// assert!(!domid.is_reserved());
/// assert!(DomId::SELF.is_reserved());
/// // Text never names a pseudo-domain.
/// assert!(DomId::SELF.get().to_string().parse::<DomId>().is_err());
/// ```
#[repr(transparent)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DomId(u16);

impl DomId {
    /// Domain 0, the initial (control) domain.
    pub const DOM0: DomId = DomId(0);
    /// The calling domain (`DOMID_SELF`), valid only where a hypercall or ioctl accepts it.
    pub const SELF: DomId = DomId(DOMID_SELF);
    /// The I/O pseudo-domain (`DOMID_IO`).
    pub const IO: DomId = DomId(DOMID_IO);
    /// The hypervisor itself (`DOMID_XEN`).
    pub const XEN: DomId = DomId(DOMID_XEN);
    /// The copy-on-write pseudo-domain of memory sharing (`DOMID_COW`).
    pub const COW: DomId = DomId(DOMID_COW);
    /// The id that names no domain (`DOMID_INVALID`).
    pub const INVALID: DomId = DomId(DOMID_INVALID);
    /// The idle domain (`DOMID_IDLE`).
    pub const IDLE: DomId = DomId(DOMID_IDLE);

    /// The domain id `id`, as Xen's `domid_t`. Any value is accepted: the pseudo-domain ids
    /// from `DOMID_FIRST_RESERVED` (0x7ff0) up are meaningful to some interfaces.
    pub const fn new(id: u16) -> Self {
        DomId(id)
    }

    /// The raw `domid_t` value.
    pub const fn get(self) -> u16 {
        self.0
    }

    /// Whether this is one of Xen's reserved pseudo-domain ids (`DOMID_FIRST_RESERVED`,
    /// 0x7ff0, and up: [`SELF`](Self::SELF), [`IO`](Self::IO), [`XEN`](Self::XEN), ...)
    /// rather than the id of a real domain.
    pub const fn is_reserved(self) -> bool {
        self.0 >= DOMID_FIRST_RESERVED
    }
}

impl fmt::Display for DomId {
    /// The decimal number, as xenstore paths and `xl` write it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl From<DomId> for u16 {
    fn from(domid: DomId) -> u16 {
        domid.0
    }
}

impl From<DomId> for u32 {
    fn from(domid: DomId) -> u32 {
        u32::from(domid.0)
    }
}

/// Why a string is not a [`DomId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseDomIdError {
    /// Not a decimal number that fits in 16 bits.
    #[error("not a decimal domain id")]
    NotANumber,
    /// A reserved pseudo-domain id (0x7ff0 and up), which text never names.
    #[error("{0:#x} is a reserved pseudo-domain id")]
    Reserved(u16),
}

impl FromStr for DomId {
    type Err = ParseDomIdError;

    /// Parses the id of a real domain written in decimal, the way [`Display`](fmt::Display)
    /// writes it (with `u16`'s parser: an optional `+`, leading zeros allowed). The reserved
    /// pseudo-domain ids ([`DomId::is_reserved`]) are refused: a xenstore path or a command
    /// line names a domain, and a number that named `DOMID_SELF` there would be hostile or a
    /// mistake.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let id = s.parse::<u16>().map_err(|_| ParseDomIdError::NotANumber)?;
        let domid = DomId(id);
        if domid.is_reserved() {
            return Err(ParseDomIdError::Reserved(id));
        }
        Ok(domid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_domid_t() {
        assert_eq!(std::mem::size_of::<DomId>(), 2);
        assert_eq!(std::mem::align_of::<DomId>(), 2);
    }

    #[test]
    fn well_known_ids_are_the_headers() {
        assert_eq!(DomId::DOM0.get(), 0);
        assert_eq!(DomId::SELF.get(), 0x7ff0);
        assert_eq!(DomId::IO.get(), 0x7ff1);
        assert_eq!(DomId::XEN.get(), 0x7ff2);
        assert_eq!(DomId::COW.get(), 0x7ff3);
        assert_eq!(DomId::INVALID.get(), 0x7ff4);
        assert_eq!(DomId::IDLE.get(), 0x7fff);
        for d in [
            DomId::SELF,
            DomId::IO,
            DomId::XEN,
            DomId::COW,
            DomId::INVALID,
            DomId::IDLE,
        ] {
            assert!(d.is_reserved(), "{d}");
        }
        assert!(!DomId::DOM0.is_reserved());
        assert!(!DomId::new(0x7fef).is_reserved());
    }

    #[test]
    fn conversions() {
        let d = DomId::new(0x1234);
        assert_eq!(u16::from(d), 0x1234);
        assert_eq!(u32::from(d), 0x1234);
        assert_eq!(d.to_string(), "4660");
        assert_eq!(format!("{:>6}", d), "  4660");
        assert!(DomId::new(1) < DomId::new(2));
    }

    #[test]
    fn parses_real_domains_and_refuses_the_rest() {
        assert_eq!("0".parse(), Ok(DomId::DOM0));
        assert_eq!("7".parse(), Ok(DomId::new(7)));
        assert_eq!("32751".parse(), Ok(DomId::new(0x7fef)));
        for reserved in ["32752", "32756", "32767", "65535"] {
            assert!(
                matches!(reserved.parse::<DomId>(), Err(ParseDomIdError::Reserved(_))),
                "{reserved}"
            );
        }
        for bad in [
            "",
            " ",
            "-1",
            "1 ",
            "0x1",
            "65536",
            "99999999999999999999",
            "x",
            "1.0",
        ] {
            assert_eq!(
                bad.parse::<DomId>(),
                Err(ParseDomIdError::NotANumber),
                "{bad:?}"
            );
        }
        let e = "32752".parse::<DomId>().unwrap_err();
        assert_eq!(e.to_string(), "0x7ff0 is a reserved pseudo-domain id");
    }
}
