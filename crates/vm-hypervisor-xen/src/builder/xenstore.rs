// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The xenstore side of a new domain: its home directory with the entries tools and the guest
//! read, and the introduction to xenstored.
//!
//! `/local/domain/<id>` is owned by dom0 and readable by the guest. It holds `name` (what
//! `xl list` shows), `domid`, the console (`console/ring-ref`, `console/port`, `console/type`)
//! and store (`store/ring-ref`, `store/port`) rings, and the directories a Linux guest writes
//! to (`control`, `data`, `device`, `drivers`, `feature`, `attr`, `error`), which the guest
//! owns. `console/type` says who serves the console: `xenconsoled` hands the ring to dom0's
//! console daemon (`xl console` works), anything else keeps that daemon off it so that the
//! builder's own reader ([`crate::console::Console`]) is the only consumer.

use xen_bindings::xenstore::{Access, Permission};
use xen_bindings::DomId;

use super::domain::{Domain, Rings};
use super::ops::DomainOps;
use crate::error::Result;

/// Who reads the guest's console ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ConsoleBackend {
    /// This process, through [`crate::console::Console`]; dom0's xenconsoled leaves it alone.
    #[default]
    Builder,
    /// Dom0's xenconsoled (logs, `xl console`).
    Xenconsoled,
}

impl ConsoleBackend {
    /// The `console/type` value.
    pub fn xs_type(self) -> &'static str {
        match self {
            ConsoleBackend::Builder => "vm-hypervisor-xen",
            ConsoleBackend::Xenconsoled => "xenconsoled",
        }
    }
}

/// Directories the guest owns.
const GUEST_DIRS: [&str; 7] = [
    "control", "data", "device", "drivers", "feature", "attr", "error",
];

/// Writes the domain's entries and introduces it to xenstored.
pub fn publish<O: DomainOps>(
    dom: &mut Domain<O>,
    rings: Rings,
    console: ConsoleBackend,
) -> Result<()> {
    let domid: DomId = dom.domid();
    let ops = dom.ops().clone();
    let home = format!("/local/domain/{domid}");
    dom.owns_xs_path(home.clone());
    ops.xs_write(&home, "")?;
    ops.xs_set_perms(
        &home,
        &[
            Permission::new(DomId::DOM0, Access::None),
            Permission::new(domid, Access::Read),
        ],
    )?;
    let mut entries = vec![
        ("name", dom.name().to_string()),
        ("domid", domid.to_string()),
        ("console/ring-ref", rings.console_gfn.to_string()),
        ("console/port", rings.console_port.to_string()),
        ("console/type", console.xs_type().to_string()),
        ("console/limit", "1048576".to_string()),
        ("store/ring-ref", rings.store_gfn.to_string()),
        ("store/port", rings.store_port.to_string()),
    ];
    // The virtual UART, where xenconsoled looks for it (served as the console is).
    if let Some(vuart) = rings.vuart {
        entries.extend([
            ("vuart/0/ring-ref", vuart.gfn.to_string()),
            ("vuart/0/port", vuart.port.to_string()),
            ("vuart/0/type", console.xs_type().to_string()),
            ("vuart/0/limit", "1048576".to_string()),
        ]);
    }
    for (key, value) in &entries {
        ops.xs_write(&format!("{home}/{key}"), value)?;
    }
    for dir in GUEST_DIRS {
        let path = format!("{home}/{dir}");
        ops.xs_write(&path, "")?;
        ops.xs_set_perms(
            &path,
            &[
                Permission::new(domid, Access::None),
                Permission::new(DomId::DOM0, Access::ReadWrite),
            ],
        )?;
    }
    ops.xs_introduce(domid, rings.store_gfn, rings.store_port)?;
    dom.set_introduced();
    Ok(())
}
