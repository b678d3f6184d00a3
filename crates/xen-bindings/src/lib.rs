// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Pure-Rust Xen public ABI and safe wrappers of the Linux Xen devices.
//!
//! The raw ABI lives in [`abi`]; each device has its own safe module.

pub mod abi;
pub mod evtchn;
pub mod gntalloc;
pub mod gntdev;
pub mod privcmd;
pub mod sys;
pub mod xenstore;
