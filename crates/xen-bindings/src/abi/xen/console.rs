// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The PV console ring (`io/console.h`): one page shared by a guest and its console backend.
//!
//! The guest writes its output into `out` and advances `out_prod`; the backend reads from
//! `out_cons` up to `out_prod` and advances `out_cons`. Indices are free-running 32-bit
//! counters, taken modulo the ring size ([`XENCONS_OUT_SIZE`], [`XENCONS_IN_SIZE`]) to index the
//! byte arrays. Each side notifies the other through the console event channel.

use crate::abi::impl_pod;

/// Size of the input ring (backend to guest).
pub const XENCONS_IN_SIZE: usize = 1024;
/// Size of the output ring (guest to backend).
pub const XENCONS_OUT_SIZE: usize = 2048;

/// `struct xencons_interface`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XenconsInterface {
    /// Input ring: bytes for the guest.
    pub in_: [u8; XENCONS_IN_SIZE],
    /// Output ring: bytes from the guest.
    pub out: [u8; XENCONS_OUT_SIZE],
    /// Input consumer index (guest).
    pub in_cons: u32,
    /// Input producer index (backend).
    pub in_prod: u32,
    /// Output consumer index (backend).
    pub out_cons: u32,
    /// Output producer index (guest).
    pub out_prod: u32,
}

impl_pod!(XenconsInterface);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        assert_layout!(
            XenconsInterface,
            size = 3088,
            align = 4,
            in_ = 0,
            out = 1024,
            in_cons = 3072,
            in_prod = 3076,
            out_cons = 3080,
            out_prod = 3084
        );
    }
}
