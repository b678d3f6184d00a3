// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! `xen_version` hypercall (`version.h`): sub-ops and their buffers.

use super::XenUlong;
use crate::abi::impl_pod;

/// `XENVER_version`: returns `(major << 16) | minor` directly, no buffer.
pub const XENVER_VERSION: u64 = 0;
/// `XENVER_extraversion`: fills a [`XenExtraversion`].
pub const XENVER_EXTRAVERSION: u64 = 1;
/// `XENVER_compile_info`: fills a [`XenCompileInfo`].
pub const XENVER_COMPILE_INFO: u64 = 2;
/// `XENVER_capabilities`: fills a [`XenCapabilitiesInfo`].
pub const XENVER_CAPABILITIES: u64 = 3;
/// `XENVER_changeset`: fills a [`XenChangesetInfo`].
pub const XENVER_CHANGESET: u64 = 4;
/// `XENVER_platform_parameters`: fills a [`XenPlatformParameters`].
pub const XENVER_PLATFORM_PARAMETERS: u64 = 5;
/// `XENVER_get_features`: fills a [`XenFeatureInfo`].
pub const XENVER_GET_FEATURES: u64 = 6;
/// `XENVER_pagesize`: returns the page size directly.
pub const XENVER_PAGESIZE: u64 = 7;
/// `XENVER_guest_handle`: fills the domain's handle (16 bytes).
pub const XENVER_GUEST_HANDLE: u64 = 8;
/// `XENVER_commandline`: fills a [`XenCommandline`].
pub const XENVER_COMMANDLINE: u64 = 9;
/// `XENVER_build_id`: fills a [`XenVarbuf`] header plus data.
pub const XENVER_BUILD_ID: u64 = 10;
/// `XENVER_extraversion2` (Xen 4.20+): variable-length extraversion in a [`XenVarbuf`].
pub const XENVER_EXTRAVERSION2: u64 = 11;
/// `XENVER_capabilities2` (Xen 4.20+).
pub const XENVER_CAPABILITIES2: u64 = 12;
/// `XENVER_changeset2` (Xen 4.20+).
pub const XENVER_CHANGESET2: u64 = 13;
/// `XENVER_commandline2` (Xen 4.20+).
pub const XENVER_COMMANDLINE2: u64 = 14;

/// `xen_extraversion_t`: NUL-terminated extra version, e.g. `.7`.
pub type XenExtraversion = [u8; 16];
/// `xen_capabilities_info_t`: NUL-terminated, space-separated capability list.
pub type XenCapabilitiesInfo = [u8; 1024];
/// `xen_changeset_info_t`: NUL-terminated changeset description.
pub type XenChangesetInfo = [u8; 64];
/// `xen_commandline_t`: NUL-terminated hypervisor command line.
pub type XenCommandline = [u8; 1024];

/// `struct xen_compile_info`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XenCompileInfo {
    /// The compiler used.
    pub compiler: [u8; 64],
    /// Who built it.
    pub compile_by: [u8; 16],
    /// The builder's domain.
    pub compile_domain: [u8; 32],
    /// When it was built.
    pub compile_date: [u8; 32],
}

/// `struct xen_platform_parameters`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct XenPlatformParameters {
    /// Start of the hypervisor's virtual address range.
    pub virt_start: XenUlong,
}

/// `struct xen_feature_info`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct XenFeatureInfo {
    /// IN: which 32-bit word of the feature map.
    pub submap_idx: u32,
    /// OUT: that word.
    pub submap: u32,
}

/// Header of `struct xen_varbuf` / `struct xen_build_id`: `len` then `len` bytes of data.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct XenVarbuf {
    /// IN: room for data after the header; OUT: bytes written.
    pub len: u32,
}

impl_pod!(
    XenCompileInfo,
    XenPlatformParameters,
    XenFeatureInfo,
    XenVarbuf
);

/// Splits the return value of [`XENVER_VERSION`] into `(major, minor)`.
pub const fn split_version(ret: u32) -> (u16, u16) {
    ((ret >> 16) as u16, ret as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts() {
        assert_layout!(
            XenCompileInfo,
            size = 144,
            align = 1,
            compiler = 0,
            compile_by = 64,
            compile_domain = 80,
            compile_date = 112
        );
        assert_layout!(XenPlatformParameters, size = 8, align = 8, virt_start = 0);
        assert_layout!(
            XenFeatureInfo,
            size = 8,
            align = 4,
            submap_idx = 0,
            submap = 4
        );
        assert_layout!(XenVarbuf, size = 4, align = 4, len = 0);
        assert_eq!(std::mem::size_of::<XenExtraversion>(), 16);
        assert_eq!(std::mem::size_of::<XenCapabilitiesInfo>(), 1024);
        assert_eq!(std::mem::size_of::<XenChangesetInfo>(), 64);
    }

    #[test]
    fn version_split() {
        assert_eq!(split_version(0x0004_0011), (4, 17));
        assert_eq!(split_version(0x0004_0014), (4, 20));
    }
}
