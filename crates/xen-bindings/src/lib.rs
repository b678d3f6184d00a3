// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Pure-Rust Xen public ABI and safe wrappers of the Linux Xen devices.
//!
//! - [`abi`]: the Xen public interface and the Linux Xen device ioctls as `#[repr(C)]` types,
//!   each pinned to the C layout by tests.
//! - [`sys`]: the seam at the syscall edge; device wrappers are generic over [`sys::Sys`] so
//!   their marshalling and error paths are unit-tested against a mock.
//! - [`privcmd`]: hypercalls, foreign and resource mappings, dm_op, restriction, irqfd and
//!   ioeventfd, plus typed host and domain information.
//! - [`evtchn`], [`gntdev`], [`gntalloc`], [`xenstore`]: the other devices and xenstore.
//! - [`layout`]: where a domain's RAM lies in guest-physical space.
//! - [`poll`]: bounded waits on one or several of the devices' descriptors.
//! - [`DomId`]: the domain id every wrapper takes, a newtype over `domid_t` (the `abi` structs
//!   keep the raw `u16`).
//! - `fake` (feature `test-utils`): a fake Xen at the `Sys` seam that answers privcmd's and
//!   evtchn's calls as Xen and Linux would, for unit tests of device models built on them.
//!
//! ```no_run
//! use xen_bindings::privcmd::Privcmd;
//!
//! let privcmd = Privcmd::open()?;
//! let info = privcmd.physinfo()?;
//! println!("Xen {} on {} CPUs", privcmd.xen_version()?, info.nr_cpus);
//! # Ok::<(), xen_bindings::privcmd::Error>(())
//! ```

pub mod abi;
mod domid;
pub mod evtchn;
#[cfg(any(test, feature = "test-utils"))]
pub mod fake;
pub mod gntalloc;
pub mod gntdev;
pub mod layout;
pub mod poll;
pub mod privcmd;
pub mod sys;
pub mod xenstore;

pub use abi::xen::XEN_PAGE_SIZE;
pub use domid::{DomId, ParseDomIdError};

// Compiles the README's example as a doc test.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
