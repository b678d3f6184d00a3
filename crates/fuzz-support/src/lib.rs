// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! What this workspace's cargo-fuzz crates (`crates/*/fuzz`) share: [`Input`], the reader
//! their targets take their choices from, and [`replay`], which runs the crash inputs each
//! keeps in its `regressions/` folder as a plain test (their `tests/replay.rs`, run by
//! `rust-vmm-ci/fuzz-replay.sh`).
//!
//! ```
//! fn decode(data: &[u8]) {
//!     let mut input = fuzz_support::Input::new(data);
//!     let (kind, len) = (input.u8(), input.u16());
//!     let _ = (kind, input.bytes(usize::from(len)));
//! }
//! let dir = std::env::temp_dir().join(format!("fuzz-support-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! std::fs::write(dir.join("decode-short-length.bin"), [1, 0xff, 0xff]).unwrap();
//! assert_eq!(fuzz_support::replay(&dir, &[("decode", decode)]), 1);
//! # std::fs::remove_dir_all(&dir).unwrap();
//! ```

#![deny(missing_docs)]

mod input;
mod regressions;

pub use input::Input;
pub use regressions::{replay, Target};
