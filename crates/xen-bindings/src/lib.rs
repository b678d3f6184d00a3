// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Pure-Rust Xen public ABI and safe wrappers of the Linux Xen devices (privcmd, evtchn, gntdev, gntalloc, xenstore).
//!
//! This crate is at its start; see the workspace README for the plan.
