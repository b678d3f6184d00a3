// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! A fake Xen for the builder's unit tests: it records the calls, keeps what guest pages held
//! when unmapped, and fails the call it is told to.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use xen_bindings::abi::xen::arch_arm::VcpuGuestContext;
use xen_bindings::abi::xen::domctl::XenArchDomainconfig;
use xen_bindings::abi::xen::grant_table::GrantRef;
use xen_bindings::privcmd::DomainConfig;
use xen_bindings::xenstore::Permission;
use xen_bindings::DomId;

use super::ops::{DomainOps, DomainState, MappedPages};

use crate::error::{Error, Result};

/// Guest pages of the fake: plain memory (not shared between two maps of the same frame,
/// which the build does not rely on). They come filled with [`STALE`], as a Xen that does
/// not scrub (a host booted with `bootscrub=0`) hands out freed memory, and what they hold
/// when unmapped is kept, by frame, in [`State::contents`].
#[derive(Debug)]
pub(crate) struct FakePages {
    _pages: Vec<Page>,
    /// The pages' address, taken from a mutable borrow so that writes through it are allowed.
    addr: usize,
    gfns: Vec<u64>,
    contents: Arc<Mutex<BTreeMap<u64, Vec<u8>>>>,
}

/// The byte a fresh fake page holds.
pub(crate) const STALE: u8 = 0xa5;

impl Drop for FakePages {
    fn drop(&mut self) {
        let mut contents = self.contents.lock().unwrap();
        for (gfn, page) in self.gfns.iter().zip(&self._pages) {
            contents.insert(*gfn, page.0.to_vec());
        }
    }
}

/// A page-aligned page, as mmap gives them.
#[derive(Debug, Clone)]
#[repr(C, align(4096))]
struct Page([u8; 4096]);

impl MappedPages for FakePages {
    fn as_ptr(&self) -> *mut u8 {
        self.addr as *mut u8
    }
    fn len(&self) -> usize {
        self._pages.len() * 4096
    }
}

#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) calls: Vec<String>,
    pub(crate) live: BTreeSet<DomId>,
    pub(crate) xs: BTreeSet<String>,
    pub(crate) introduced: BTreeSet<DomId>,
    pub(crate) next_port: u32,
    /// Every guest frame mapped, in order.
    pub(crate) mapped: Vec<u64>,
    /// Each unmapped frame's last contents.
    pub(crate) contents: Arc<Mutex<BTreeMap<u64, Vec<u8>>>>,
    /// Every HVM parameter set, in order.
    pub(crate) params: Vec<(u32, u64)>,
    /// The HVM contexts loaded, in order.
    pub(crate) hvm_contexts: Vec<Vec<u8>>,
    /// The Arm vCPU contexts loaded, by vCPU.
    pub(crate) arm_contexts: Vec<(u32, VcpuGuestContext)>,
    /// The address size asked for.
    pub(crate) address_size: Option<u32>,
    /// The frame ranges whose data cache was flushed, as `(first, count)`.
    pub(crate) flushed: Vec<(u64, u64)>,
    /// Every populate call, as `(order, first gfn, extents asked, extents given)`.
    pub(crate) populated: Vec<(u32, u64, usize, usize)>,
}

/// A fake Xen that fails the first call named `fail_at` (with `populate_short`, populate
/// returns one extent fewer than asked instead).
#[derive(Debug)]
pub(crate) struct FakeXen {
    pub(crate) state: Mutex<State>,
    pub(crate) fail_at: Option<&'static str>,
    pub(crate) populate_short: bool,
    /// How many 2 MiB extents Xen has in all (`None`: as many as asked).
    pub(crate) superpages: Mutex<Option<usize>>,
    /// The GIC version createdomain writes back on Arm.
    #[cfg_attr(not(target_arch = "aarch64"), allow(dead_code))]
    pub(crate) gic_written_back: u8,
}

impl Default for FakeXen {
    fn default() -> Self {
        Self {
            state: Mutex::default(),
            fail_at: None,
            populate_short: false,
            superpages: Mutex::new(None),
            gic_written_back: 2,
        }
    }
}

impl FakeXen {
    pub(crate) fn failing_at(step: &'static str) -> Self {
        Self {
            fail_at: Some(step),
            ..Default::default()
        }
    }

    fn call(&self, name: &'static str) -> Result<()> {
        self.state.lock().unwrap().calls.push(name.into());
        if self.fail_at == Some(name) {
            return Err(Error::Xen {
                step: name,
                source: xen_bindings::privcmd::Error::Hypercall {
                    op: 0,
                    subop: 0,
                    source: std::io::Error::from_raw_os_error(libc_enomem()),
                },
            });
        }
        Ok(())
    }

    pub(crate) fn live(&self) -> usize {
        self.state.lock().unwrap().live.len()
    }
    pub(crate) fn xs_entries(&self) -> usize {
        self.state.lock().unwrap().xs.len()
    }
    pub(crate) fn calls(&self) -> Vec<String> {
        self.state.lock().unwrap().calls.clone()
    }
}

const fn libc_enomem() -> i32 {
    12
}

impl DomainOps for FakeXen {
    fn create_domain(&self, config: &DomainConfig) -> Result<(DomId, XenArchDomainconfig)> {
        self.call("create_domain")?;
        assert_eq!(config.flags, 3, "HVM container with HAP");
        #[cfg(target_arch = "x86_64")]
        assert_eq!(config.arch.emulation_flags, 1, "local APIC only");
        #[cfg(target_arch = "aarch64")]
        assert_eq!(config.arch.gic_version, 0, "Xen picks the GIC");
        // What Xen writes back: on Arm the GIC it picked and the timer's frequency.
        #[cfg(target_arch = "aarch64")]
        let arch = XenArchDomainconfig {
            gic_version: self.gic_written_back,
            clock_frequency: 62_500_000,
            ..config.arch
        };
        #[cfg(not(target_arch = "aarch64"))]
        let arch = config.arch;
        self.state.lock().unwrap().live.insert(DomId::new(5));
        Ok((DomId::new(5), arch))
    }
    fn set_address_size(&self, _: DomId, bits: u32) -> Result<()> {
        self.call("set_address_size")?;
        self.state.lock().unwrap().address_size = Some(bits);
        Ok(())
    }
    fn set_arm_vcpu_context(&self, _: DomId, vcpu: u32, ctx: &VcpuGuestContext) -> Result<()> {
        self.call("set_arm_vcpu_context")?;
        self.state.lock().unwrap().arm_contexts.push((vcpu, *ctx));
        Ok(())
    }
    fn cache_flush(&self, _: DomId, gfn: u64, count: u64) -> Result<()> {
        self.call("cache_flush")?;
        self.state.lock().unwrap().flushed.push((gfn, count));
        Ok(())
    }
    fn vuart_init(&self, _: DomId, _: u64, _: DomId) -> Result<u32> {
        self.call("vuart_init")?;
        Ok(77)
    }
    fn xen_version(&self) -> Result<(u16, u16)> {
        self.call("xen_version")?;
        Ok((4, 17))
    }
    fn destroy_domain(&self, domid: DomId) -> Result<()> {
        self.call("destroy_domain")?;
        assert!(
            self.state.lock().unwrap().live.remove(&domid),
            "destroyed twice"
        );
        Ok(())
    }
    fn set_max_vcpus(&self, _: DomId, max: u32) -> Result<()> {
        self.call("set_max_vcpus")?;
        assert!((1..=super::MAX_VCPUS).contains(&max));
        Ok(())
    }
    fn set_max_mem(&self, _: DomId, _: u64) -> Result<()> {
        self.call("set_max_mem")
    }
    fn set_paging_mempool_size(&self, _: DomId, _: u64) -> Result<()> {
        self.call("set_paging_mempool_size")
    }
    fn populate_physmap(&self, _: DomId, order: u32, gfns: &[u64]) -> Result<usize> {
        self.call("populate_physmap")?;
        let mut given = if self.populate_short {
            gfns.len() - 1
        } else {
            gfns.len()
        };
        if order > 0 {
            if let Some(left) = self.superpages.lock().unwrap().as_mut() {
                given = given.min(*left);
                *left -= given;
            }
        }
        let first = gfns.first().copied().unwrap_or(u64::MAX);
        self.state
            .lock()
            .unwrap()
            .populated
            .push((order, first, gfns.len(), given));
        Ok(given)
    }
    fn map_guest(&self, _: DomId, gfns: &[u64]) -> Result<Box<dyn MappedPages>> {
        self.call("map_guest")?;
        let contents = {
            let mut state = self.state.lock().unwrap();
            state.mapped.extend_from_slice(gfns);
            state.contents.clone()
        };
        let mut pages = vec![Page([STALE; 4096]); gfns.len()];
        let addr = pages.as_mut_ptr() as usize;
        Ok(Box::new(FakePages {
            _pages: pages,
            addr,
            gfns: gfns.to_vec(),
            contents,
        }))
    }
    fn seed_grant_table(&self, _: DomId, entries: &[(GrantRef, DomId, u64)]) -> Result<()> {
        self.call("seed_grant_table")?;
        assert_eq!(entries.len(), 2);
        Ok(())
    }
    fn set_hvm_param(&self, _: DomId, index: u32, value: u64) -> Result<()> {
        self.call("set_hvm_param")?;
        self.state.lock().unwrap().params.push((index, value));
        Ok(())
    }
    fn hvm_context(&self, _: DomId) -> Result<Vec<u8>> {
        self.call("hvm_context")?;
        #[cfg(target_arch = "x86_64")]
        return Ok(super::vcpu::tests::fake_context());
        #[cfg(not(target_arch = "x86_64"))]
        Ok(Vec::new())
    }
    fn set_hvm_context(&self, _: DomId, records: &[u8]) -> Result<()> {
        self.call("set_hvm_context")?;
        self.state
            .lock()
            .unwrap()
            .hvm_contexts
            .push(records.to_vec());
        Ok(())
    }
    fn evtchn_alloc_unbound(&self, _: DomId, _: DomId) -> Result<u32> {
        self.call("evtchn_alloc_unbound")?;
        let mut s = self.state.lock().unwrap();
        s.next_port += 1;
        Ok(s.next_port)
    }
    fn unpause(&self, _: DomId) -> Result<()> {
        self.call("unpause")
    }
    fn domain_state(&self, domid: DomId) -> Result<DomainState> {
        self.call("domain_state")?;
        Ok(if self.state.lock().unwrap().live.contains(&domid) {
            DomainState::Alive
        } else {
            DomainState::Gone
        })
    }
    fn guest_address_bits(&self, _: DomId) -> Result<u8> {
        self.call("guest_address_bits")?;
        Ok(40)
    }
    fn xs_write(&self, path: &str, _: &str) -> Result<()> {
        self.call("xs_write")?;
        self.state.lock().unwrap().xs.insert(path.into());
        Ok(())
    }
    fn xs_set_perms(&self, _: &str, _: &[Permission]) -> Result<()> {
        self.call("xs_set_perms")
    }
    fn xs_rm(&self, path: &str) -> Result<()> {
        self.call("xs_rm")?;
        self.state
            .lock()
            .unwrap()
            .xs
            .retain(|p| !p.starts_with(path));
        Ok(())
    }
    fn xs_introduce(&self, domid: DomId, _: u64, _: u32) -> Result<()> {
        self.call("xs_introduce")?;
        self.state.lock().unwrap().introduced.insert(domid);
        Ok(())
    }
    fn xs_release(&self, domid: DomId) -> Result<()> {
        self.call("xs_release")?;
        self.state.lock().unwrap().introduced.remove(&domid);
        Ok(())
    }
}
