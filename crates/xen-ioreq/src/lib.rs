// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Xen IOREQ server for device emulation in Rust.
//!
//! This crate is at its start; see the workspace README for the plan.
