// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Linux Xen device ioctl ABI (`include/uapi/xen/*.h`), 64-bit layouts.

pub mod evtchn;
pub mod gntalloc;
pub mod gntdev;
pub mod privcmd;
