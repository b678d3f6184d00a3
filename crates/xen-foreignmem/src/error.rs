// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The crate's error type.

use std::io;

use vm_memory::GuestMemoryError;
use xen_bindings::privcmd::Resource;
use xen_bindings::DomId;

/// A frame that could not be mapped, with the errno Xen (through privcmd) reported for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameError {
    /// The guest frame number.
    pub gfn: u64,
    /// The positive errno of the failure (`ENOENT` for a paged-out or unpopulated frame, ...).
    pub errno: i32,
}

impl FrameError {
    /// What the errno means for a frame privcmd could not map: the libc name says little
    /// here (Xen's `ESRCH` is "no such domain", not "no such process").
    pub fn reason(&self) -> &'static str {
        errno_reason(self.errno)
    }
}

/// What `errno` means for a frame that privcmd could not map.
fn errno_reason(errno: i32) -> &'static str {
    match errno {
        libc::ESRCH => "no such domain",
        libc::ENOENT => "frame not populated or paged out",
        libc::EINVAL => "no such frame in the domain, or a bad grant reference",
        libc::EPERM | libc::EACCES => {
            "not permitted (a handle restricted to another domain, or not the domain's frame)"
        }
        libc::ENOMEM => "out of memory",
        libc::EFAULT => "bad address",
        libc::EBUSY => "frame busy",
        _ => "unexpected error",
    }
}

/// Errors of foreign and grant mappings and of the guest memory built on them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The mapping call itself failed (no mapping at all was made).
    #[error("mapping {count} frame(s) of domain {domid} from gfn {first_gfn:#x} failed: {source}")]
    MapFrames {
        /// The domain whose frames were to be mapped.
        domid: DomId,
        /// The first frame of the request.
        first_gfn: u64,
        /// The number of frames requested.
        count: usize,
        /// The error of the call.
        #[source]
        source: io::Error,
    },
    /// Some frames of a batch could not be mapped (unpopulated, paged out, not owned...).
    #[error(
        "{} frame(s) of domain {domid} could not be mapped, the first being gfn {:#x}: {} (errno {})",
        failed.len(), first.gfn, first.reason(), first.errno
    )]
    FramesUnavailable {
        /// The domain whose frames were to be mapped.
        domid: DomId,
        /// The first frame that failed.
        first: FrameError,
        /// Every frame that failed, in request order.
        failed: Vec<FrameError>,
    },
    /// An access touched a frame that the mapping reported as failed.
    #[error("guest address {addr:#x} of domain {domid} lies in frame {gfn:#x} that could not be mapped: {} (errno {errno})", errno_reason(*errno))]
    FrameNotMapped {
        /// The domain.
        domid: DomId,
        /// The guest address accessed.
        addr: u64,
        /// Its frame.
        gfn: u64,
        /// The errno the mapping call reported for the frame.
        errno: i32,
    },
    /// Mapping a resource (`IOCTL_PRIVCMD_MMAP_RESOURCE`) failed.
    #[error("mapping {nr_frames} frame(s) of the {resource} of domain {domid} from frame {frame} failed: {source}")]
    MapResource {
        /// The domain owning the resource.
        domid: DomId,
        /// The resource.
        resource: Resource,
        /// The first frame of the resource requested.
        frame: u64,
        /// The number of frames requested.
        nr_frames: u64,
        /// The error of the call.
        #[source]
        source: io::Error,
    },
    /// Mapping a grant reference through gntdev failed (for example because the guest revoked it).
    #[error("mapping grant reference {gref} of domain {domid} failed: {source}")]
    MapGrant {
        /// The granting domain.
        domid: DomId,
        /// The grant reference.
        gref: u32,
        /// The error of the call.
        #[source]
        source: io::Error,
    },
    /// The address range lies (partly) outside the guest memory this object covers.
    #[error("guest range {addr:#x}+{len:#x} is outside the guest memory (which ends at {end:#x})")]
    OutOfRange {
        /// The start of the range.
        addr: u64,
        /// Its length.
        len: u64,
        /// The first address past the memory covered.
        end: u64,
    },
    /// A grant-mode address does not carry the grant marker bit (bit 63) or its reference does not fit.
    #[error(
        "address {addr:#x} is not a valid grant DMA address (bit 63 set, reference below 2^32)"
    )]
    NotAGrantAddress {
        /// The address.
        addr: u64,
    },
    /// The cache cannot map another bucket because every mapped bucket is pinned by a live view.
    #[error(
        "mapping cache is full: all {bound} buckets are pinned by live views; drop views and retry"
    )]
    CacheExhausted {
        /// The cache's bound (in buckets).
        bound: usize,
    },
    /// A configuration value is unusable.
    #[error("invalid configuration: {0}")]
    InvalidConfig(&'static str),
}

impl Error {
    /// Finds this crate's error inside a vm-memory error returned by a [`vm_memory::GuestMemory`]
    /// method of this crate's types.
    ///
    /// vm-memory's traits can only return [`GuestMemoryError`]; this crate carries its typed errors
    /// inside [`GuestMemoryError::IOError`] so callers can still tell a revoked grant from an
    /// unpopulated frame. Ranges outside guest memory come back as vm-memory's own
    /// [`GuestMemoryError::InvalidGuestAddress`].
    pub fn from_guest_memory_error(err: &GuestMemoryError) -> Option<&Error> {
        match err {
            GuestMemoryError::IOError(e) => e.get_ref().and_then(|inner| inner.downcast_ref()),
            _ => None,
        }
    }

    /// Converts to vm-memory's error type (see [`Error::from_guest_memory_error`]).
    pub(crate) fn into_guest_memory_error(self) -> GuestMemoryError {
        match self {
            Error::OutOfRange { addr, .. } => {
                GuestMemoryError::InvalidGuestAddress(vm_memory::GuestAddress(addr))
            }
            e => GuestMemoryError::IOError(io::Error::other(e)),
        }
    }
}

/// Result of this crate's operations.
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unmapped_frames_say_what_the_errno_means() {
        let first = FrameError {
            gfn: 0x10,
            errno: libc::ESRCH,
        };
        let e = Error::FramesUnavailable {
            domid: DomId::new(999),
            first,
            failed: vec![first],
        };
        assert_eq!(
            e.to_string(),
            "1 frame(s) of domain 999 could not be mapped, the first being gfn 0x10: no such \
             domain (errno 3)"
        );
        let e = Error::FrameNotMapped {
            domid: DomId::new(5),
            addr: 0x1_0000,
            gfn: 0x10,
            errno: libc::ENOENT,
        };
        assert!(
            e.to_string()
                .contains("not populated or paged out (errno 2)"),
            "{e}"
        );
        assert_eq!(
            FrameError {
                gfn: 0,
                errno: 4095
            }
            .reason(),
            "unexpected error"
        );
    }
}
