// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The Xen public interface (`xen/include/public`), one module per header.
//!
//! Layouts are those of a 64-bit tools domain (x86_64 or aarch64). Where the two differ, the
//! definitions are selected with `cfg(target_arch)`.

pub mod arch_arm;
pub mod console;
pub mod dm_op;
pub mod domctl;
pub mod event_channel;
pub mod grant_table;
pub mod hvm;
pub mod hvm_save;
pub mod hypercall;
pub mod ioreq;
pub mod memory;
pub mod sysctl;
pub mod version;

// A domain id (`domid_t`) is a `u16` in these layouts; the typed `DomId` of the safe
// interfaces is `crate::DomId`. The well-known ids below are the header's raw values; they are
// also `DomId`'s associated constants (`DomId::SELF`, ...).

/// The first domain id that does not name a real domain (`DOMID_FIRST_RESERVED`).
pub const DOMID_FIRST_RESERVED: u16 = 0x7ff0;
/// The calling domain (`DOMID_SELF`).
pub const DOMID_SELF: u16 = 0x7ff0;
/// The I/O pseudo-domain (`DOMID_IO`).
pub const DOMID_IO: u16 = 0x7ff1;
/// The hypervisor itself (`DOMID_XEN`).
pub const DOMID_XEN: u16 = 0x7ff2;
/// Copy-on-write pseudo-domain (memory sharing, `DOMID_COW`).
pub const DOMID_COW: u16 = 0x7ff3;
/// An invalid domain id (`DOMID_INVALID`).
pub const DOMID_INVALID: u16 = 0x7ff4;
/// The idle domain (`DOMID_IDLE`).
pub const DOMID_IDLE: u16 = 0x7fff;

/// A guest frame number (`xen_pfn_t`): `unsigned long` on x86, `uint64_t` on Arm.
#[cfg(target_arch = "x86_64")]
pub type XenPfn = std::ffi::c_ulong;
/// A guest frame number (`xen_pfn_t`): `unsigned long` on x86, `uint64_t` on Arm.
#[cfg(not(target_arch = "x86_64"))]
pub type XenPfn = u64;

/// `xen_ulong_t`: `unsigned long` on x86, `uint64_t` on Arm.
#[cfg(target_arch = "x86_64")]
pub type XenUlong = std::ffi::c_ulong;
/// `xen_ulong_t`: `unsigned long` on x86, `uint64_t` on Arm.
#[cfg(not(target_arch = "x86_64"))]
pub type XenUlong = u64;

/// A guest handle (`XEN_GUEST_HANDLE`/`XEN_GUEST_HANDLE_64`): the caller's virtual address of
/// a buffer.
///
/// On x86_64 it is a pointer, on Arm a pointer in a 64-bit union; on both 64-bit targets it is
/// 8 bytes with 8-byte alignment, which `u64` matches.
pub type GuestHandle = u64;

/// The unique handle of a domain (`xen_domain_handle_t`), a UUID.
pub type DomainHandle = [u8; 16];

/// Size of a Xen page (4 KiB on both x86 and Arm).
pub const XEN_PAGE_SIZE: usize = 4096;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_types() {
        assert_eq!(std::mem::size_of::<XenPfn>(), 8);
        assert_eq!(std::mem::size_of::<XenUlong>(), 8);
        assert_eq!(std::mem::size_of::<GuestHandle>(), 8);
        assert_eq!(std::mem::align_of::<GuestHandle>(), 8);
        assert_eq!(DOMID_SELF, 0x7ff0);
        assert_eq!(DOMID_INVALID, 0x7ff4);
    }
}
