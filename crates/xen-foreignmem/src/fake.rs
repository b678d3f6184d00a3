// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! An in-process stand-in for a Xen guest, for tests and benchmarks without Xen.
//!
//! [`FakeGuest`] keeps the "guest RAM" in a memfd and implements [`ForeignMapper`] and
//! [`GrantMapper`] by mapping pages of that memfd with `MAP_SHARED`, so two mappings of the same
//! frame alias exactly as two foreign mappings of a real guest frame do, a write through one is
//! seen through the other and through [`FakeGuest::read_guest`]. Unpopulated frames come back as
//! per-frame `ENOENT` and stay `PROT_NONE` in the mapping (touching them would fault, which is
//! what the code above must never do). Grants can be issued and revoked; revoked or unknown
//! references fail to map with `EINVAL`, a write mapping of a read-only grant with `EPERM`.
//!
//! The fake counts live mappings and mapping calls so tests can check cache bounds and reuse.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::mapper::{ForeignMapper, GrantMapper, MappedFrames, MappedPages};
use xen_bindings::privcmd::Resource;
use xen_bindings::{DomId, XEN_PAGE_SIZE};

const PAGE: u64 = XEN_PAGE_SIZE as u64;

#[derive(Debug, Clone, Copy)]
struct Grant {
    gfn: u64,
    writable: bool,
}

#[derive(Debug, Default)]
struct Tables {
    /// The guest physmap: gfn -> page of the memfd, `None` when unpopulated.
    physmap: Vec<Option<u64>>,
    grants: HashMap<u32, Grant>,
    next_gref: u32,
    /// (type, id) -> (first page in the memfd, number of frames).
    resources: HashMap<Resource, (u64, u64)>,
    file_pages: u64,
}

#[derive(Debug)]
struct Inner {
    domid: DomId,
    pages: u64,
    file: File,
    tables: Mutex<Tables>,
    live: AtomicUsize,
    map_calls: AtomicUsize,
}

impl Inner {
    fn tables(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A fake domain whose memory lives in a memfd; cheap to clone (all clones share the guest).
#[derive(Debug, Clone)]
pub struct FakeGuest {
    inner: Arc<Inner>,
}

impl FakeGuest {
    /// Creates domain `domid` with `pages` populated 4 KiB frames (gfn 0 to `pages - 1`), zeroed.
    pub fn new(domid: DomId, pages: u64) -> io::Result<Self> {
        // SAFETY: the name is a NUL-terminated string literal; flags are valid memfd flags.
        let fd = unsafe { libc::memfd_create(c"xen-foreignmem-fake".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by memfd_create and is owned by nobody else.
        let file = unsafe { File::from_raw_fd(fd) };
        file.set_len(pages * PAGE)?;
        Ok(FakeGuest {
            inner: Arc::new(Inner {
                domid,
                pages,
                file,
                tables: Mutex::new(Tables {
                    physmap: (0..pages).map(Some).collect(),
                    next_gref: 8,
                    file_pages: pages,
                    ..Tables::default()
                }),
                live: AtomicUsize::new(0),
                map_calls: AtomicUsize::new(0),
            }),
        })
    }

    /// The domain id.
    pub fn domid(&self) -> DomId {
        self.inner.domid
    }

    /// The size of guest memory in bytes.
    pub fn mem_size(&self) -> u64 {
        self.inner.pages * PAGE
    }

    /// Marks a frame populated or not (an unpopulated frame fails to map with `ENOENT`).
    ///
    /// Repopulating gives the frame its original backing page back.
    pub fn set_populated(&self, gfn: u64, populated: bool) {
        if let Some(p) = self.inner.tables().physmap.get_mut(gfn as usize) {
            *p = populated.then_some(gfn);
        }
    }

    /// Swaps the backing pages of two frames: a change of the guest physmap, as ballooning or
    /// `XENMEM_exchange` make. Existing mappings keep showing the old pages (as in Xen), new
    /// ones show the new layout.
    pub fn exchange_frames(&self, a: u64, b: u64) {
        let mut t = self.inner.tables();
        if (a as usize) < t.physmap.len() && (b as usize) < t.physmap.len() {
            t.physmap.swap(a as usize, b as usize);
        }
    }

    /// Applies `f` to each (memfd offset, range of `len`) piece of guest range `gpa..gpa+len`.
    fn for_each_piece(
        &self,
        gpa: u64,
        len: usize,
        mut f: impl FnMut(u64, std::ops::Range<usize>) -> io::Result<()>,
    ) -> io::Result<()> {
        let t = self.inner.tables();
        let mut done = 0;
        while done < len {
            let addr = gpa + done as u64;
            let in_page = (PAGE - addr % PAGE).min((len - done) as u64) as usize;
            let page = t
                .physmap
                .get((addr / PAGE) as usize)
                .copied()
                .flatten()
                .ok_or_else(|| io::Error::from_raw_os_error(libc::EFAULT))?;
            f(page * PAGE + addr % PAGE, done..done + in_page)?;
            done += in_page;
        }
        Ok(())
    }

    /// Writes guest memory directly (as the guest would), bypassing every mapping.
    pub fn write_guest(&self, gpa: u64, data: &[u8]) -> io::Result<()> {
        self.for_each_piece(gpa, data.len(), |off, r| {
            self.inner.file.write_all_at(&data[r], off)
        })
    }

    /// Reads guest memory directly (as the guest would), bypassing every mapping.
    pub fn read_guest(&self, gpa: u64, data: &mut [u8]) -> io::Result<()> {
        let len = data.len();
        self.for_each_piece(gpa, len, |off, r| {
            self.inner.file.read_exact_at(&mut data[r], off)
        })
    }

    /// Grants frame `gfn` to the backend and returns the grant reference.
    pub fn grant(&self, gfn: u64, writable: bool) -> u32 {
        let mut t = self.inner.tables();
        let gref = t.next_gref;
        t.next_gref += 1;
        t.grants.insert(gref, Grant { gfn, writable });
        gref
    }

    /// Grants `count` consecutive frames from `gfn` with consecutive references, as Linux's
    /// grant DMA layer does for a multi-page buffer; returns the first reference.
    pub fn grant_range(&self, gfn: u64, count: u32, writable: bool) -> u32 {
        let mut t = self.inner.tables();
        let first = t.next_gref;
        for i in 0..count {
            t.grants.insert(
                first + i,
                Grant {
                    gfn: gfn + u64::from(i),
                    writable,
                },
            );
        }
        t.next_gref += count;
        first
    }

    /// Revokes a grant: later attempts to map it fail (existing mappings stay, as in Xen).
    pub fn revoke(&self, gref: u32) {
        self.inner.tables().grants.remove(&gref);
    }

    /// Adds `resource` of `frames` zeroed frames.
    pub fn add_resource(&self, resource: Resource, frames: u64) -> io::Result<()> {
        let mut t = self.inner.tables();
        let first = t.file_pages;
        self.inner.file.set_len((first + frames) * PAGE)?;
        t.file_pages += frames;
        t.resources.insert(resource, (first, frames));
        Ok(())
    }

    /// The number of mappings alive now.
    pub fn live_mappings(&self) -> usize {
        self.inner.live.load(Ordering::SeqCst)
    }

    /// The number of successful mapping calls so far.
    pub fn map_calls(&self) -> usize {
        self.inner.map_calls.load(Ordering::SeqCst)
    }

    /// Reserves `pages` of address space, then maps each `(index, file page, writable)` of
    /// `pages` over it; indexes not listed stay inaccessible.
    fn map_pages(&self, count: usize, pages: &[(usize, u64, bool)]) -> io::Result<FakeMapping> {
        let len = count * XEN_PAGE_SIZE;
        // SAFETY: a fresh anonymous reservation: no address hint, nothing is replaced.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // Owns the reservation from here on, so an error below unmaps it.
        let mapping = FakeMapping {
            ptr: base.cast(),
            len,
            guest: self.inner.clone(),
        };
        self.inner.live.fetch_add(1, Ordering::SeqCst);
        for &(index, file_page, writable) in pages {
            let prot = if writable {
                libc::PROT_READ | libc::PROT_WRITE
            } else {
                libc::PROT_READ
            };
            // SAFETY: the target page lies inside the reservation this function owns (index <
            // count), so MAP_FIXED replaces only our own PROT_NONE page.
            let ret = unsafe {
                libc::mmap(
                    base.cast::<u8>().add(index * XEN_PAGE_SIZE).cast(),
                    XEN_PAGE_SIZE,
                    prot,
                    libc::MAP_SHARED | libc::MAP_FIXED,
                    self.inner.file.as_raw_fd(),
                    (file_page * PAGE) as libc::off_t,
                )
            };
            if ret == libc::MAP_FAILED {
                return Err(io::Error::last_os_error());
            }
        }
        self.inner.map_calls.fetch_add(1, Ordering::SeqCst);
        Ok(mapping)
    }

    fn check_domid(&self, domid: DomId) -> io::Result<()> {
        if domid == self.inner.domid {
            Ok(())
        } else {
            Err(io::Error::from_raw_os_error(libc::ESRCH))
        }
    }
}

/// A mapping made by [`FakeGuest`]; unmapped on drop.
#[derive(Debug)]
pub struct FakeMapping {
    ptr: *mut u8,
    len: usize,
    guest: Arc<Inner>,
}

// SAFETY: the mapping is plain shared memory owned by this value; it can be used and dropped from
// any thread, and all access through it is volatile.
unsafe impl Send for FakeMapping {}
// SAFETY: as above; `&FakeMapping` only exposes the address and length.
unsafe impl Sync for FakeMapping {}

// SAFETY: `ptr..ptr+len` stays mapped (reserved, with the successfully mapped pages accessible)
// until `drop` unmaps it.
unsafe impl MappedPages for FakeMapping {
    fn as_ptr(&self) -> *mut u8 {
        self.ptr
    }

    fn len(&self) -> usize {
        self.len
    }
}

impl Drop for FakeMapping {
    fn drop(&mut self) {
        // SAFETY: the range is the reservation made in `map_pages`, owned by this value and no
        // longer used by anything (whoever borrowed it held a reference to this value).
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
        self.guest.live.fetch_sub(1, Ordering::SeqCst);
    }
}

impl ForeignMapper for FakeGuest {
    type Mapping = FakeMapping;

    fn map_frames(&self, domid: DomId, gfns: &[u64]) -> io::Result<MappedFrames<FakeMapping>> {
        self.check_domid(domid)?;
        if gfns.is_empty() {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let mut errors = vec![0; gfns.len()];
        let mut pages = Vec::with_capacity(gfns.len());
        {
            let t = self.inner.tables();
            for (i, &gfn) in gfns.iter().enumerate() {
                match t.physmap.get(gfn as usize) {
                    Some(Some(page)) => pages.push((i, *page, true)),
                    Some(None) => errors[i] = libc::ENOENT,
                    None => errors[i] = libc::EINVAL,
                }
            }
        }
        let mapping = self.map_pages(gfns.len(), &pages)?;
        Ok(MappedFrames { mapping, errors })
    }

    fn map_resource(
        &self,
        domid: DomId,
        resource: Resource,
        frame: u64,
        nr_frames: u64,
    ) -> io::Result<FakeMapping> {
        self.check_domid(domid)?;
        let (first, frames) = self
            .inner
            .tables()
            .resources
            .get(&resource)
            .copied()
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))?;
        if nr_frames == 0 || frame.checked_add(nr_frames).is_none_or(|end| end > frames) {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let pages: Vec<_> = (0..nr_frames)
            .map(|i| (i as usize, first + frame + i, true))
            .collect();
        self.map_pages(nr_frames as usize, &pages)
    }
}

impl GrantMapper for FakeGuest {
    type Mapping = FakeMapping;

    fn map_grants(&self, domid: DomId, refs: &[u32], writable: bool) -> io::Result<FakeMapping> {
        self.check_domid(domid)?;
        if refs.is_empty() {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let mut pages = Vec::with_capacity(refs.len());
        {
            let t = self.inner.tables();
            for (i, gref) in refs.iter().enumerate() {
                let g = t
                    .grants
                    .get(gref)
                    .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
                if writable && !g.writable {
                    return Err(io::Error::from_raw_os_error(libc::EPERM));
                }
                let page = t
                    .physmap
                    .get(g.gfn as usize)
                    .copied()
                    .flatten()
                    .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
                pages.push((i, page, writable));
            }
        }
        self.map_pages(refs.len(), &pages)
    }
}
