// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Project automation. Run `cargo xtask help`.

fn main() {
    println!("xtask: not yet implemented");
}
