// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! One virtio-mmio device as the toolstack publishes it.

use xen_bindings::DomId;

use crate::error::Error;
use crate::store::Store;

/// Size of the register window the toolstack gives each virtio-mmio device (libxl's
/// `GUEST_VIRTIO_MMIO_SIZE` on Arm).
pub const MMIO_WINDOW: u64 = 0x200;

/// Longest value this crate reads as a number or a name: the toolstack writes a few
/// characters; anything longer is refused rather than parsed.
const MAX_VALUE: usize = 64;

/// Which xenstore layout the toolstack used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Layout {
    /// Xen 4.18 and later: `backend/virtio/<domid>/<devid>`, from `virtio = [...]`.
    Virtio,
    /// Xen 4.17: `backend/virtio_disk/<domid>/<devid>`, from a disk with
    /// `specification=virtio`: 4.17's only way to give a guest a virtio-mmio node. The node is
    /// the generic `virtio,mmio` (the guest reads the device ID from the transport), so the
    /// backend decides what device it is.
    VirtioDisk,
}

impl Layout {
    /// The directory under the backend domain's path.
    pub fn dir(self) -> &'static str {
        match self {
            Self::Virtio => "backend/virtio",
            Self::VirtioDisk => "backend/virtio_disk",
        }
    }
}

/// A virtio-mmio device of a domU, read from its backend directory and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtioDevice {
    /// The backend directory it was read from.
    pub backend_path: String,
    /// The xenstore layout.
    pub layout: Layout,
    /// The guest's domain id.
    pub domid: DomId,
    /// The device's index among the guest's virtio devices.
    pub devid: u32,
    /// Guest physical address of its register window ([`MMIO_WINDOW`] bytes).
    pub base: u64,
    /// The guest interrupt (an SPI on Arm) it signals.
    pub irq: u32,
    /// The virtio device ID the toolstack named (`type = "virtio,device<hex>"`; none for
    /// [`Layout::VirtioDisk`]), or `None` when it named none and the caller must say.
    pub device_id: Option<u32>,
    /// The guest uses grants for its buffers (`grant_usage = 1`: addresses carry bit 63),
    /// rather than foreign mappings of its memory.
    pub grants: bool,
}

impl VirtioDevice {
    /// Reads and checks the device at `backend_path` (`<backend dom>/<layout dir>/<domid>/<devid>`).
    /// `backend_domid` decides the grant default when `grant_usage` is absent (libxl: grants
    /// unless the backend is dom0).
    pub fn read(
        store: &mut dyn Store,
        backend_path: &str,
        layout: Layout,
        domid: DomId,
        devid: u32,
        backend_domid: DomId,
    ) -> Result<Self, Error> {
        let mut key = |k: &str| {
            let path = format!("{backend_path}/{k}");
            let value = store.read(&path);
            (path, value)
        };
        let (path, v) = key("frontend-id");
        let frontend: u16 = number(&path, v.as_deref())?;
        if frontend != domid.get() {
            return Err(Error::invalid(
                &path,
                &frontend.to_string(),
                "is not the domain the directory is for",
            ));
        }
        let (path, v) = key("base");
        let base: u64 = number(&path, v.as_deref())?;
        if base == 0 || base % MMIO_WINDOW != 0 || base.checked_add(MMIO_WINDOW).is_none() {
            return Err(Error::invalid(
                &path,
                &format!("{base:#x}"),
                "is not a usable register window (0 on x86, where the toolstack assigns none; \
                 unaligned; or wrapping)",
            ));
        }
        let (path, v) = key("irq");
        let irq: u32 = number(&path, v.as_deref())?;
        if irq == 0 {
            return Err(Error::invalid(&path, "0", "no interrupt assigned"));
        }
        let (path, v) = key("transport");
        match v.as_deref() {
            None | Some("mmio") => {}
            Some(other) => {
                return Err(Error::invalid(
                    &path,
                    other,
                    "is not mmio, the one transport served",
                ))
            }
        }
        let device_id = match layout {
            // The disk syntax is how 4.17 makes a virtio-mmio node; the node names no type.
            Layout::VirtioDisk => None,
            Layout::Virtio => {
                let (path, v) = key("type");
                device_type(&path, v.as_deref())?
            }
        };
        let (path, v) = key("grant_usage");
        let grants = match v.as_deref() {
            None => backend_domid != DomId::DOM0,
            Some("0") => false,
            Some("1") => true,
            Some(other) => return Err(Error::invalid(&path, other, "is not 0 or 1")),
        };
        Ok(Self {
            backend_path: backend_path.to_string(),
            layout,
            domid,
            devid,
            base,
            irq,
            device_id,
            grants,
        })
    }
}

/// A decimal or `0x` hexadecimal number of type `T`.
fn number<T: TryFrom<u64>>(path: &str, value: Option<&str>) -> Result<T, Error> {
    let Some(text) = value else {
        return Err(Error::Missing {
            path: path.to_string(),
        });
    };
    if text.len() > MAX_VALUE {
        return Err(Error::invalid(path, text, "is too long"));
    }
    let t = text.trim();
    let parsed = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => t.parse::<u64>(),
    };
    parsed
        .ok()
        .and_then(|n| T::try_from(n).ok())
        .ok_or_else(|| Error::invalid(path, text, "is not a number in range"))
}

/// `virtio,device` (no device named) or `virtio,device<hex ID>`: the device-tree compatible
/// libxl writes.
fn device_type(path: &str, value: Option<&str>) -> Result<Option<u32>, Error> {
    let Some(text) = value else {
        return Err(Error::Missing {
            path: path.to_string(),
        });
    };
    let Some(id) = text.strip_prefix("virtio,device") else {
        return Err(Error::invalid(path, text, "is not virtio,device[<hex id>]"));
    };
    if id.is_empty() {
        return Ok(None);
    }
    if id.len() > 8 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::invalid(
            path,
            text,
            "has no hexadecimal device ID after virtio,device",
        ));
    }
    u32::from_str_radix(id, 16).map(Some).map_err(|_| {
        Error::invalid(
            path,
            text,
            "has no hexadecimal device ID after virtio,device",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(number::<u64>("p", Some("33554432")), Ok(0x200_0000));
        assert_eq!(number::<u64>("p", Some("0x2000000")), Ok(0x200_0000));
        assert_eq!(number::<u16>("p", Some("65535")), Ok(u16::MAX));
        for bad in ["", "x", "-1", "0x", "65536", "1 2", &"9".repeat(65)] {
            assert!(
                matches!(number::<u16>("p", Some(bad)), Err(Error::Invalid { .. })),
                "{bad:?}"
            );
        }
        assert_eq!(
            number::<u16>("p", None),
            Err(Error::Missing { path: "p".into() })
        );
    }

    #[test]
    fn device_types() {
        assert_eq!(device_type("t", Some("virtio,device")), Ok(None));
        assert_eq!(device_type("t", Some("virtio,device4")), Ok(Some(4)));
        assert_eq!(device_type("t", Some("virtio,device22")), Ok(Some(0x22)));
        for bad in [
            "virtio,mmio",
            "virtio,devicez",
            "virtio,device123456789",
            "",
            "virtio,device-1",
        ] {
            assert!(device_type("t", Some(bad)).is_err(), "{bad:?}");
        }
    }
}
