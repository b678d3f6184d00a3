// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Node permissions.
//!
//! On the wire a permission list is a sequence of NUL-terminated entries like `"b0"` or `"r5"`:
//! a letter for the access (`n`one, `r`ead, `w`rite, `b`oth) followed by a domain id. The first
//! entry names the node's owner (who may always do everything) and the access every domain not
//! listed gets; the others grant access to specific domains.

use std::fmt;

use crate::DomId;

/// Access granted by a [`Permission`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Access {
    /// No access (`n`).
    None,
    /// Read only (`r`).
    Read,
    /// Write only (`w`).
    Write,
    /// Read and write (`b`).
    ReadWrite,
}

/// One entry of a permission list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Permission {
    /// The domain.
    pub domid: DomId,
    /// What it may do.
    pub access: Access,
}

impl Permission {
    /// An entry.
    pub fn new(domid: DomId, access: Access) -> Self {
        Self { domid, access }
    }

    /// Parses one entry (without its NUL); `None` if it is not a valid one.
    pub fn parse(entry: &[u8]) -> Option<Self> {
        let (&letter, digits) = entry.split_first()?;
        let access = match letter {
            b'n' => Access::None,
            b'r' => Access::Read,
            b'w' => Access::Write,
            b'b' => Access::ReadWrite,
            _ => return None,
        };
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        // Any 16-bit id, reserved ones included, as xenstored keeps them (`DomId`'s `FromStr`
        // refuses those: it reads the name of a real domain).
        let id: u16 = std::str::from_utf8(digits).ok()?.parse().ok()?;
        Some(Self {
            domid: DomId::new(id),
            access,
        })
    }

    /// Parses a whole list (NUL-separated entries); `None` if it is empty or any entry is
    /// invalid.
    pub fn parse_list(payload: &[u8]) -> Option<Vec<Self>> {
        let body = payload.strip_suffix(b"\0").unwrap_or(payload);
        if body.is_empty() {
            return None;
        }
        body.split(|&b| b == 0).map(Self::parse).collect()
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let letter = match self.access {
            Access::None => 'n',
            Access::Read => 'r',
            Access::Write => 'w',
            Access::ReadWrite => 'b',
        };
        write!(f, "{letter}{}", self.domid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_format() {
        let list = Permission::parse_list(b"n0\0r5\0b65535\0w7\0").unwrap();
        assert_eq!(
            list,
            vec![
                Permission::new(DomId::DOM0, Access::None),
                Permission::new(DomId::new(5), Access::Read),
                Permission::new(DomId::new(65535), Access::ReadWrite),
                Permission::new(DomId::new(7), Access::Write),
            ]
        );
        let text: Vec<String> = list.iter().map(ToString::to_string).collect();
        assert_eq!(text, ["n0", "r5", "b65535", "w7"]);
    }

    #[test]
    fn malformed_entries_are_rejected() {
        for bad in [
            &b""[..],
            b"\0",
            b"x1\0",
            b"r\0",
            b"r65536\0",
            b"r-1\0",
            b"r+1\0",
            b"r1\0\0",
            b"b0\0r1x\0",
        ] {
            assert_eq!(Permission::parse_list(bad), None, "{bad:?}");
        }
    }
}
