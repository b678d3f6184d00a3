// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Safe wrapper of /dev/xen/privcmd (not yet implemented).
