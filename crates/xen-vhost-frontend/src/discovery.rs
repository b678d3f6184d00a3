// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Finding the virtio devices the toolstack published for this backend domain.

use xen_bindings::DomId;

use crate::device::{Layout, VirtioDevice};
use crate::error::Error;
use crate::store::Store;

/// Most guests and devices per guest looked at in one pass: a directory is text anyone with
/// write access to it can grow, and a pass must stay bounded.
const MAX_ENTRIES: usize = 4096;

/// Every virtio device under `backend_dom_path` (`/local/domain/<backend domid>`), in both
/// layouts, each read and checked; a device that cannot be served is an `Err` naming the key
/// at fault, so the caller can log it and go on with the others. A guest directory whose name
/// is not a domain id in canonical decimal, or is a reserved pseudo-domain id
/// ([`DomId::is_reserved`]), is such an `Err`.
pub fn discover(store: &mut dyn Store, backend_dom_path: &str) -> Vec<Result<VirtioDevice, Error>> {
    let backend_domid = backend_dom_path
        .rsplit('/')
        .next()
        .and_then(|d| d.parse::<u16>().ok())
        .map_or(DomId::DOM0, DomId::new);
    let mut found = Vec::new();
    for layout in [Layout::Virtio, Layout::VirtioDisk] {
        let dir = format!("{backend_dom_path}/{}", layout.dir());
        for dom in store.directory(&dir).into_iter().take(MAX_ENTRIES) {
            let dom_path = format!("{dir}/{dom}");
            let Some(domid) = canonical::<DomId>(&dom) else {
                found.push(Err(Error::invalid(&dom_path, &dom, "is not a domain id")));
                continue;
            };
            for dev in store.directory(&dom_path).into_iter().take(MAX_ENTRIES) {
                let path = format!("{dom_path}/{dev}");
                found.push(match canonical::<u32>(&dev) {
                    Some(devid) => {
                        VirtioDevice::read(store, &path, layout, domid, devid, backend_domid)
                    }
                    None => Err(Error::invalid(&path, &dev, "is not a device index")),
                });
            }
        }
    }
    found
}

/// `name` as a number written the way the toolstack writes one: decimal, no sign, no leading
/// zero. Another spelling ("01", "+1") would be a second directory for the same domain or
/// device, served twice.
fn canonical<T: std::str::FromStr + ToString>(name: &str) -> Option<T> {
    name.parse::<T>().ok().filter(|n| n.to_string() == name)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[derive(Default)]
    pub(crate) struct Map(pub BTreeMap<String, String>);

    impl Store for Map {
        fn read(&mut self, path: &str) -> Option<String> {
            self.0.get(path).cloned()
        }
        fn directory(&mut self, path: &str) -> Vec<String> {
            let prefix = format!("{path}/");
            let mut kids: Vec<String> = self
                .0
                .keys()
                .filter_map(|k| k.strip_prefix(&prefix))
                .map(|rest| rest.split('/').next().unwrap_or_default().to_string())
                .collect();
            kids.dedup();
            kids
        }
        fn write(&mut self, path: &str, value: &str) -> Result<(), String> {
            self.0.insert(path.to_string(), value.to_string());
            Ok(())
        }
    }

    /// What Xen 4.20's libxl wrote for `virtio = [ "type=virtio,device,transport=mmio,backend=0" ]`
    /// in the aarch64 box (domid 1).
    fn xen_420(map: &mut Map, domid: DomId) {
        let be = format!("/local/domain/0/backend/virtio/{domid}/0");
        for (k, v) in [
            ("frontend", format!("/local/domain/{domid}/device/virtio/0")),
            ("frontend-id", domid.to_string()),
            ("online", "1".into()),
            ("state", "2".into()),
            ("irq", "33".into()),
            ("base", "0x2000000".into()),
            ("type", "virtio,device".into()),
            ("transport", "mmio".into()),
            ("grant_usage", "0".into()),
        ] {
            map.0.insert(format!("{be}/{k}"), v);
        }
    }

    #[test]
    fn finds_the_box_layout() {
        let mut m = Map::default();
        xen_420(&mut m, DomId::new(1));
        let found = discover(&mut m, "/local/domain/0");
        assert_eq!(
            found,
            vec![Ok(VirtioDevice {
                backend_path: "/local/domain/0/backend/virtio/1/0".into(),
                layout: Layout::Virtio,
                domid: DomId::new(1),
                devid: 0,
                base: 0x200_0000,
                irq: 33,
                device_id: None,
                grants: false,
            })]
        );
    }

    #[test]
    fn another_spelling_of_a_domain_or_device_number_is_refused() {
        for (dom, dev) in [
            ("01", "0"),
            ("1", "00"),
            ("+1", "0"),
            ("1", "+0"),
            ("1 ", "0"),
        ] {
            let mut m = Map::default();
            xen_420(&mut m, DomId::new(1));
            let good = "/local/domain/0/backend/virtio/1/0/";
            let moved: Vec<(String, String)> =
                m.0.iter()
                    .map(|(k, v)| {
                        let rest = k.strip_prefix(good).unwrap();
                        (
                            format!("/local/domain/0/backend/virtio/{dom}/{dev}/{rest}"),
                            v.clone(),
                        )
                    })
                    .collect();
            m.0.extend(moved);
            let found = discover(&mut m, "/local/domain/0");
            assert_eq!(found.len(), 2, "{dom}/{dev}: {found:?}");
            assert!(
                found[0].is_ok() != found[1].is_ok(),
                "{dom}/{dev}: {found:?}"
            );
            let refused = found.iter().find_map(|r| r.as_ref().err()).unwrap();
            assert!(
                refused.to_string().contains("is not a"),
                "{dom}/{dev}: {refused}"
            );
        }
    }

    #[test]
    fn xen_417_disk_layout_names_no_device_type_and_has_the_grant_default() {
        let mut m = Map::default();
        let be = "/local/domain/0/backend/virtio_disk/7/51712";
        for (k, v) in [
            ("frontend-id", "7"),
            ("base", "33554432"),
            ("irq", "33"),
            ("state", "1"),
        ] {
            m.0.insert(format!("{be}/{k}"), v.into());
        }
        let dev = discover(&mut m, "/local/domain/0").remove(0).unwrap();
        assert_eq!(
            (dev.layout, dev.domid, dev.devid),
            (Layout::VirtioDisk, DomId::new(7), 51712)
        );
        assert_eq!(dev.device_id, None, "the backend decides");
        assert!(!dev.grants, "dom0 backend: foreign mappings by default");
        // A driver domain backend defaults to grants.
        let mut m2 = Map::default();
        for (k, v) in &m.0 {
            m2.0.insert(k.replace("/local/domain/0/", "/local/domain/5/"), v.clone());
        }
        assert!(
            discover(&mut m2, "/local/domain/5")
                .remove(0)
                .unwrap()
                .grants
        );
    }

    #[test]
    fn hostile_or_broken_entries_are_typed_errors() {
        let cases: &[(&str, Option<&str>)] = &[
            ("frontend-id", Some("2")),
            ("frontend-id", None),
            ("base", Some("0")),
            ("base", Some("0x2000001")),
            ("base", Some("0xfffffffffffffe00")),
            ("base", Some("lots")),
            ("irq", Some("0")),
            ("irq", Some("4294967296")),
            ("transport", Some("pci")),
            ("type", Some("virtio,mmio")),
            ("grant_usage", Some("2")),
        ];
        for (key, value) in cases {
            let mut m = Map::default();
            xen_420(&mut m, DomId::new(1));
            let path = format!("/local/domain/0/backend/virtio/1/0/{key}");
            match value {
                Some(v) => m.0.insert(path.clone(), v.to_string()),
                None => m.0.remove(&path),
            };
            let found = discover(&mut m, "/local/domain/0");
            assert_eq!(found.len(), 1);
            let err = found[0].as_ref().unwrap_err();
            let named = match err {
                Error::Missing { path: p } | Error::Invalid { path: p, .. } => p,
            };
            assert_eq!(named, &path, "{key} = {value:?}: {err}");
        }
    }

    #[test]
    fn junk_directory_names_are_reported_and_others_still_found() {
        let mut m = Map::default();
        xen_420(&mut m, DomId::new(1));
        m.0.insert(
            "/local/domain/0/backend/virtio/x/0/state".into(),
            "1".into(),
        );
        m.0.insert(
            "/local/domain/0/backend/virtio/1/y/state".into(),
            "1".into(),
        );
        // DOMID_SELF and DOMID_INVALID: pseudo-domains, no guest to serve.
        for reserved in ["32752", "32756"] {
            m.0.insert(
                format!("/local/domain/0/backend/virtio/{reserved}/0/state"),
                "1".into(),
            );
        }
        let found = discover(&mut m, "/local/domain/0");
        assert_eq!(found.iter().filter(|r| r.is_ok()).count(), 1);
        assert_eq!(found.iter().filter(|r| r.is_err()).count(), 4);
    }
}
