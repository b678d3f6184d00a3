// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The xenstore wire protocol (Xen `xen/include/public/io/xs_wire.h`).
//!
//! Every message, in both directions, is a 16-byte [`Header`] (`struct xsd_sockmsg`) followed by
//! `len` bytes of payload, usually NUL-terminated strings. Replies echo the request's `req_id`;
//! watch events ([`MsgType::WatchEvent`]) arrive unsolicited on the same stream. Errors come
//! back as [`MsgType::Error`] with an errno name (`"ENOENT"`) as payload.

use std::fmt;

/// The largest payload of a message ("violating this is very bad" says the header).
pub const XENSTORE_PAYLOAD_MAX: usize = 4096;
/// The longest absolute path xenstored accepts.
pub const XENSTORE_ABS_PATH_MAX: usize = 3072;
/// The longest relative path xenstored accepts.
pub const XENSTORE_REL_PATH_MAX: usize = 2048;

/// Size of [`Header`] on the wire.
pub const HEADER_LEN: usize = 16;

/// Message types (`enum xsd_sockmsg_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[repr(u32)]
pub enum MsgType {
    /// Debug / control commands.
    Control = 0,
    /// List the children of a node.
    Directory = 1,
    /// Read a node.
    Read = 2,
    /// Read a node's permissions.
    GetPerms = 3,
    /// Register a watch.
    Watch = 4,
    /// Remove a watch.
    Unwatch = 5,
    /// Start a transaction.
    TransactionStart = 6,
    /// Commit or abort a transaction.
    TransactionEnd = 7,
    /// Introduce a domain (toolstack).
    Introduce = 8,
    /// Release a domain (toolstack).
    Release = 9,
    /// The home path of a domain.
    GetDomainPath = 10,
    /// Write a node.
    Write = 11,
    /// Create a node.
    Mkdir = 12,
    /// Remove a node and its children.
    Rm = 13,
    /// Set a node's permissions.
    SetPerms = 14,
    /// A watch fired (unsolicited).
    WatchEvent = 15,
    /// An error reply.
    Error = 16,
    /// Whether a domain was introduced.
    IsDomainIntroduced = 17,
    /// Resume a domain.
    Resume = 18,
    /// Give a domain power over another one (device models).
    SetTarget = 19,
    /// Restrict the connection to a domain's privileges (obsolete).
    Restrict = 20,
    /// Remove all watches of the connection.
    ResetWatches = 21,
    /// One part of a large directory listing.
    DirectoryPart = 22,
}

impl MsgType {
    /// Decodes a type field; `None` for values this crate does not know.
    pub fn from_raw(raw: u32) -> Option<Self> {
        use MsgType::*;
        Some(match raw {
            0 => Control,
            1 => Directory,
            2 => Read,
            3 => GetPerms,
            4 => Watch,
            5 => Unwatch,
            6 => TransactionStart,
            7 => TransactionEnd,
            8 => Introduce,
            9 => Release,
            10 => GetDomainPath,
            11 => Write,
            12 => Mkdir,
            13 => Rm,
            14 => SetPerms,
            15 => WatchEvent,
            16 => Error,
            17 => IsDomainIntroduced,
            18 => Resume,
            19 => SetTarget,
            20 => Restrict,
            21 => ResetWatches,
            22 => DirectoryPart,
            _ => return None,
        })
    }
}

/// `struct xsd_sockmsg`, in native byte order (xenstored runs on the same machine).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// A [`MsgType`] value.
    pub ty: u32,
    /// Request identifier, echoed in the reply.
    pub req_id: u32,
    /// Transaction id, 0 outside transactions.
    pub tx_id: u32,
    /// Length of the payload that follows.
    pub len: u32,
}

impl Header {
    /// The wire bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0; HEADER_LEN];
        b[0..4].copy_from_slice(&self.ty.to_ne_bytes());
        b[4..8].copy_from_slice(&self.req_id.to_ne_bytes());
        b[8..12].copy_from_slice(&self.tx_id.to_ne_bytes());
        b[12..16].copy_from_slice(&self.len.to_ne_bytes());
        b
    }

    /// Decodes the first [`HEADER_LEN`] bytes; `None` if there are fewer.
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        let word = |i: usize| -> Option<u32> {
            Some(u32::from_ne_bytes(b.get(i..i + 4)?.try_into().ok()?))
        };
        Some(Self {
            ty: word(0)?,
            req_id: word(4)?,
            tx_id: word(8)?,
            len: word(12)?,
        })
    }
}

/// A framed message: header and payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The header (its `len` equals `payload.len()`).
    pub header: Header,
    /// The payload.
    pub payload: Vec<u8>,
}

impl Message {
    /// Builds a message; `None` if the payload exceeds [`XENSTORE_PAYLOAD_MAX`].
    pub fn new(ty: MsgType, req_id: u32, tx_id: u32, payload: Vec<u8>) -> Option<Self> {
        if payload.len() > XENSTORE_PAYLOAD_MAX {
            return None;
        }
        Some(Self {
            header: Header {
                ty: ty as u32,
                req_id,
                tx_id,
                len: payload.len() as u32,
            },
            payload,
        })
    }

    /// Header and payload as one buffer, ready for a single write.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(HEADER_LEN + self.payload.len());
        v.extend_from_slice(&self.header.to_bytes());
        v.extend_from_slice(&self.payload);
        v
    }
}

/// Why a byte stream is not a valid message sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// The header announces a payload larger than [`XENSTORE_PAYLOAD_MAX`].
    TooLong(u32),
}

/// Splits the first complete message off the front of `buf`.
///
/// `Ok(None)` means more bytes are needed. Errors mean the stream cannot be trusted any more:
/// the boundaries of the following messages are unknown.
pub fn take_message(buf: &mut Vec<u8>) -> Result<Option<Message>, FrameError> {
    let Some(header) = Header::from_bytes(buf) else {
        return Ok(None);
    };
    if header.len as usize > XENSTORE_PAYLOAD_MAX {
        return Err(FrameError::TooLong(header.len));
    }
    let total = HEADER_LEN + header.len as usize;
    if buf.len() < total {
        return Ok(None);
    }
    let payload = buf[HEADER_LEN..total].to_vec();
    buf.drain(..total);
    Ok(Some(Message { header, payload }))
}

/// An errno name from an error reply (`struct xsd_errors`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum XsErrno {
    /// `EINVAL`: invalid argument (bad path, bad permission string, ...).
    Inval,
    /// `EACCES`: permission denied.
    Acces,
    /// `EEXIST`: the node exists.
    Exist,
    /// `EISDIR`: is a directory.
    IsDir,
    /// `ENOENT`: no such node (or transaction).
    NoEnt,
    /// `ENOMEM`: out of memory.
    NoMem,
    /// `ENOSPC`: quota exceeded.
    NoSpc,
    /// `EIO`: I/O error.
    Io,
    /// `ENOTEMPTY`: the node has children.
    NotEmpty,
    /// `ENOSYS`: not implemented.
    NoSys,
    /// `EROFS`: read-only.
    RoFs,
    /// `EBUSY`: busy.
    Busy,
    /// `EAGAIN`: try again (a conflicting transaction committed first).
    Again,
    /// `EISCONN`: already connected.
    IsConn,
    /// `E2BIG`: too big (quota on node size or count).
    TooBig,
    /// A name this crate does not know (sanitised: printable ASCII, at most 32 characters).
    Other(String),
}

impl XsErrno {
    /// Decodes an error payload (the name, optionally NUL-terminated).
    pub fn from_payload(payload: &[u8]) -> Self {
        let name = payload.split(|&b| b == 0).next().unwrap_or_default();
        match name {
            b"EINVAL" => Self::Inval,
            b"EACCES" => Self::Acces,
            b"EEXIST" => Self::Exist,
            b"EISDIR" => Self::IsDir,
            b"ENOENT" => Self::NoEnt,
            b"ENOMEM" => Self::NoMem,
            b"ENOSPC" => Self::NoSpc,
            b"EIO" => Self::Io,
            b"ENOTEMPTY" => Self::NotEmpty,
            b"ENOSYS" => Self::NoSys,
            b"EROFS" => Self::RoFs,
            b"EBUSY" => Self::Busy,
            b"EAGAIN" => Self::Again,
            b"EISCONN" => Self::IsConn,
            b"E2BIG" => Self::TooBig,
            other => Self::Other(
                other
                    .iter()
                    .take(32)
                    .map(|&b| if b.is_ascii_graphic() { b as char } else { '?' })
                    .collect(),
            ),
        }
    }

    /// The matching Linux errno, if the name is a known one.
    pub fn errno(&self) -> Option<i32> {
        Some(match self {
            Self::Inval => libc::EINVAL,
            Self::Acces => libc::EACCES,
            Self::Exist => libc::EEXIST,
            Self::IsDir => libc::EISDIR,
            Self::NoEnt => libc::ENOENT,
            Self::NoMem => libc::ENOMEM,
            Self::NoSpc => libc::ENOSPC,
            Self::Io => libc::EIO,
            Self::NotEmpty => libc::ENOTEMPTY,
            Self::NoSys => libc::ENOSYS,
            Self::RoFs => libc::EROFS,
            Self::Busy => libc::EBUSY,
            Self::Again => libc::EAGAIN,
            Self::IsConn => libc::EISCONN,
            Self::TooBig => libc::E2BIG,
            Self::Other(_) => return None,
        })
    }
}

impl fmt::Display for XsErrno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::Inval => "EINVAL",
            Self::Acces => "EACCES",
            Self::Exist => "EEXIST",
            Self::IsDir => "EISDIR",
            Self::NoEnt => "ENOENT",
            Self::NoMem => "ENOMEM",
            Self::NoSpc => "ENOSPC",
            Self::Io => "EIO",
            Self::NotEmpty => "ENOTEMPTY",
            Self::NoSys => "ENOSYS",
            Self::RoFs => "EROFS",
            Self::Busy => "EBUSY",
            Self::Again => "EAGAIN",
            Self::IsConn => "EISCONN",
            Self::TooBig => "E2BIG",
            Self::Other(s) => s,
        };
        f.write_str(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{align_of, offset_of, size_of};

    #[test]
    fn header_layout_matches_xs_wire() {
        assert_eq!(size_of::<Header>(), HEADER_LEN);
        assert_eq!(align_of::<Header>(), 4);
        assert_eq!(offset_of!(Header, ty), 0);
        assert_eq!(offset_of!(Header, req_id), 4);
        assert_eq!(offset_of!(Header, tx_id), 8);
        assert_eq!(offset_of!(Header, len), 12);
    }

    #[test]
    fn type_numbers_match_xs_wire() {
        assert_eq!(MsgType::Directory as u32, 1);
        assert_eq!(MsgType::Read as u32, 2);
        assert_eq!(MsgType::Watch as u32, 4);
        assert_eq!(MsgType::TransactionStart as u32, 6);
        assert_eq!(MsgType::GetDomainPath as u32, 10);
        assert_eq!(MsgType::Write as u32, 11);
        assert_eq!(MsgType::SetPerms as u32, 14);
        assert_eq!(MsgType::WatchEvent as u32, 15);
        assert_eq!(MsgType::Error as u32, 16);
        assert_eq!(MsgType::DirectoryPart as u32, 22);
        for raw in 0..=22 {
            assert_eq!(MsgType::from_raw(raw).map(|t| t as u32), Some(raw));
        }
        assert_eq!(MsgType::from_raw(0xffff), None);
    }

    #[test]
    fn framing_roundtrip_and_fragments() {
        let m = Message::new(MsgType::Read, 7, 3, b"/local\0".to_vec()).unwrap();
        let bytes = m.to_bytes();
        assert_eq!(bytes.len(), HEADER_LEN + 7);
        let mut buf = Vec::new();
        // Byte by byte: no message until the last byte arrives.
        for (i, b) in bytes.iter().enumerate() {
            buf.push(*b);
            let got = take_message(&mut buf).unwrap();
            assert_eq!(got.is_some(), i == bytes.len() - 1);
            if let Some(got) = got {
                assert_eq!(got, m);
            }
        }
        assert!(buf.is_empty());
    }

    #[test]
    fn oversized_frames_are_rejected() {
        assert!(Message::new(MsgType::Write, 1, 0, vec![0; XENSTORE_PAYLOAD_MAX + 1]).is_none());
        let mut buf = Header {
            ty: MsgType::Read as u32,
            req_id: 1,
            tx_id: 0,
            len: u32::MAX,
        }
        .to_bytes()
        .to_vec();
        assert_eq!(take_message(&mut buf), Err(FrameError::TooLong(u32::MAX)));
    }

    #[test]
    fn errno_names() {
        assert_eq!(XsErrno::from_payload(b"ENOENT\0"), XsErrno::NoEnt);
        assert_eq!(XsErrno::from_payload(b"EAGAIN"), XsErrno::Again);
        assert_eq!(XsErrno::NoEnt.errno(), Some(libc::ENOENT));
        assert_eq!(XsErrno::TooBig.to_string(), "E2BIG");
        let odd = XsErrno::from_payload(b"EWEIRD\n\xff");
        assert_eq!(odd, XsErrno::Other("EWEIRD??".into()));
        assert_eq!(odd.errno(), None);
        let long = XsErrno::from_payload(&[b'A'; 100]);
        assert_eq!(long.to_string().len(), 32);
    }
}
