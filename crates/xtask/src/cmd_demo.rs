// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! TODO

/// TODO
pub fn demo(_s: crate::stack::Stack) -> crate::util::Result<i32> {
    Ok(1)
}
