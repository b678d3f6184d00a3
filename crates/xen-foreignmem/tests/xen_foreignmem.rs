// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Integration tests against a real Xen: run as root in dom0 (`cargo xtask xen-box test`).
//!
//! Each test creates a paused PVH domU with `xl create -p` from `XEN_BOX_DOMU_KERNEL` and
//! `XEN_BOX_DOMU_RAMDISK`, works on its memory (the domU never runs, so its memory holds
//! exactly what the toolstack loaded and what the test writes) and destroys it afterwards.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Mutex;

use virtio_queue::desc::split::Descriptor;
use virtio_queue::{Queue, QueueOwnedT, QueueT};
use vm_memory::{Address, Bytes, GuestAddress, GuestAddressSpace, GuestMemory, GuestMemoryError};
use xen_bindings::gntalloc::GntAlloc;
use xen_box_testing::XlDomain;
use xen_foreignmem::{
    grant_addr, map_whole_guest, CacheConfig, DomId, Error, ForeignResource, GrantMemory,
    LazyForeignMemory, Resource, XenForeignMapper, XenGrantMapper, XEN_PAGE_SIZE,
};

const PAGE: u64 = XEN_PAGE_SIZE as u64;
/// The domU's memory (`memory = 128` in its configuration).
const DOMU_MEM: u64 = 128 << 20;
/// Where the domU's RAM starts: guest-physical 0 on x86; on Arm the toolstack puts it at
/// GUEST_RAM0_BASE (1 GiB, gfn 0x40000) and nothing is mapped below.
const RAM_BASE: u64 = if cfg!(target_arch = "aarch64") {
    0x4000_0000
} else {
    0
};
/// The end of the domU's RAM: the size of a lazy cache covering all of it.
const RAM_END: u64 = RAM_BASE + DOMU_MEM;

/// One domU at a time: the box is small and `xl` serialises anyway.
static DOMU_LOCK: Mutex<()> = Mutex::new(());

/// What a test needs from the box, or `None` after printing why the test is skipped.
struct Env {
    kernel: PathBuf,
    ramdisk: PathBuf,
}

fn xen_env(test: &str) -> Option<Env> {
    xen_box_testing::domu_env_with_ramdisk(test).map(|(kernel, ramdisk)| Env { kernel, ramdisk })
}

/// A paused PVH domU (on Arm, where `xl` knows no guest types, an ordinary guest) booting the
/// box's kernel and ramdisk with `marker` on its command line, destroyed on drop.
fn create_domu(env: &Env, tag: &str, marker: &str) -> XlDomain {
    let name = format!("xfm-{tag}-{}", std::process::id());
    let guest_type = xen_box_testing::pvh_type_line();
    let domu = XlDomain::create(
        name,
        &format!(
            "{guest_type}kernel = \"{}\"\nramdisk = \"{}\"\n\
             extra = \"console=hvc0 {marker}\"\nmemory = {}\nvcpus = 1\n\
             on_poweroff = \"destroy\"\non_crash = \"destroy\"\n",
            env.kernel.display(),
            env.ramdisk.display(),
            DOMU_MEM >> 20
        ),
        true,
    );
    eprintln!(
        "created paused PVH domU {} (domid {})",
        domu.name, domu.domid
    );
    domu
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The kernel release string, read from the kernel file dom0-side: from the bzImage setup
/// header (`kernel_version` at 0x20e points at "release (builder) version"), or from the
/// "Linux version " banner of an uncompressed image.
fn kernel_release(kernel: &std::path::Path) -> String {
    let image = std::fs::read(kernel).unwrap();
    if image.len() > 0x210 && &image[0x202..0x206] == b"HdrS" {
        let ptr = u16::from_le_bytes([image[0x20e], image[0x20f]]) as usize + 0x200;
        let s = &image[ptr..];
        let end = s.iter().position(|&b| b == b' ' || b == 0).unwrap();
        return String::from_utf8_lossy(&s[..end]).into_owned();
    }
    let at = find(&image, b"Linux version ").expect("kernel file has a version banner") + 14;
    let end = image[at..].iter().position(|&b| b == b' ').unwrap();
    String::from_utf8_lossy(&image[at..at + end]).into_owned()
}

/// Reads all guest RAM (from `RAM_BASE`) through the lazy cache, page by page, and returns it
/// with the list of frames that failed (their bytes left zero).
fn read_all(cache: &LazyForeignMemory<XenForeignMapper>) -> (Vec<u8>, Vec<(u64, i32)>) {
    let mut image = vec![0u8; DOMU_MEM as usize];
    let mut failed = Vec::new();
    for (i, page) in image.chunks_mut(XEN_PAGE_SIZE).enumerate() {
        // A view per page, as a device takes one per request.
        let view = cache.memory();
        match view.read_slice(page, GuestAddress(RAM_BASE + i as u64 * PAGE)) {
            Ok(()) => {}
            Err(e) => match Error::from_guest_memory_error(&e) {
                Some(Error::FrameNotMapped { gfn, errno, .. }) => failed.push((*gfn, *errno)),
                _ => panic!("reading gfn {i:#x}: {e}"),
            },
        }
    }
    (image, failed)
}

#[test]
fn reads_what_the_toolstack_loaded() {
    let Some(env) = xen_env("reads_what_the_toolstack_loaded") else {
        return;
    };
    let _lock = DOMU_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let marker = format!("xfm-marker-{}-{nanos:x}", std::process::id());
    let domu = create_domu(&env, "load", &marker);
    let release = kernel_release(&env.kernel);
    eprintln!("kernel release from {}: {release}", env.kernel.display());

    let mapper = XenForeignMapper::open().unwrap();
    let config = CacheConfig {
        bucket_size: 2 << 20,
        max_buckets: 8,
    };
    let cache =
        LazyForeignMemory::new(mapper.clone(), DomId::new(domu.domid), RAM_END, config).unwrap();
    let (image, failed) = read_all(&cache);
    eprintln!(
        "read {} MiB, {} frame(s) unmapped, cache {:?}",
        DOMU_MEM >> 20,
        failed.len(),
        cache.stats()
    );
    assert!(cache.stats().live <= 8, "bound held: {:?}", cache.stats());
    assert!(
        failed.len() < 64,
        "most of RAM maps: {} failed",
        failed.len()
    );

    // The decompressed kernel is in guest memory: its banner names the release the kernel
    // file's header names.
    let banner = format!("Linux version {release} ");
    let at = RAM_BASE as usize
        + find(&image, banner.as_bytes())
            .unwrap_or_else(|| panic!("\"{banner}\" not found in domU memory"));
    eprintln!("kernel banner at gpa {at:#x}");
    // The command line the toolstack copied in for the guest.
    let cmd_at = RAM_BASE as usize
        + find(&image, marker.as_bytes())
            .unwrap_or_else(|| panic!("command line marker {marker} not found in domU memory"));
    eprintln!("command line at gpa {cmd_at:#x}");

    // Whole-guest mode over the banner's pages sees the same bytes.
    let start = (at as u64 / PAGE) * PAGE;
    let whole = map_whole_guest(
        &mapper,
        DomId::new(domu.domid),
        &[(GuestAddress(start), 4 * PAGE)],
    )
    .unwrap();
    let mut buf = vec![0u8; banner.len()];
    whole.read_slice(&mut buf, GuestAddress(at as u64)).unwrap();
    assert_eq!(buf, banner.as_bytes());

    // The domain's grant table through MMAP_RESOURCE (XENMEM_resource_grant_table = 1,
    // id 0 = shared frames): the toolstack seeds entries 0 (console) and 1 (xenstore) for
    // dom0 with GTF_permit_access.
    let table = ForeignResource::map(
        &mapper,
        DomId::new(domu.domid),
        Resource::GrantTableShared,
        0,
        1,
    )
    .unwrap();
    assert_eq!(table.len(), XEN_PAGE_SIZE);
    let slice = table.as_volatile_slice();
    for entry in 0..2usize {
        let flags: u16 = slice.read_obj(entry * 8).unwrap();
        let domid: u16 = slice.read_obj(entry * 8 + 2).unwrap();
        let frame: u32 = slice.read_obj(entry * 8 + 4).unwrap();
        eprintln!("grant entry {entry}: flags {flags:#x} domid {domid} frame {frame:#x}");
        assert_eq!(
            (flags & 1, domid),
            (1, 0),
            "grant entry {entry} seeded for dom0"
        );
    }
}

#[test]
fn writes_are_seen_through_independent_mappings_and_bad_input_is_typed() {
    let Some(env) = xen_env("writes_are_seen_through_independent_mappings") else {
        return;
    };
    let _lock = DOMU_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let domu = create_domu(&env, "rw", "xfm-rw");
    let mapper = XenForeignMapper::open().unwrap();

    // A pattern written through the lazy cache...
    let base = RAM_BASE + (100u64 << 20);
    let pattern: Vec<u8> = (0..3 * XEN_PAGE_SIZE + 100)
        .map(|i| (i * 13 % 251) as u8)
        .collect();
    let cache = LazyForeignMemory::new(
        mapper.clone(),
        DomId::new(domu.domid),
        RAM_END,
        CacheConfig {
            bucket_size: 64 << 10,
            max_buckets: 4,
        },
    )
    .unwrap();
    let at = GuestAddress(base + PAGE - 50);
    cache.memory().write_slice(&pattern, at).unwrap();

    // ... reads back through a second, independent whole-guest mapping ...
    let whole = map_whole_guest(
        &mapper,
        DomId::new(domu.domid),
        &[(GuestAddress(base), 8 * PAGE)],
    )
    .unwrap();
    let mut back = vec![0u8; pattern.len()];
    whole.read_slice(&mut back, at).unwrap();
    assert_eq!(back, pattern);
    // ... and a second cache, also after invalidation of the first.
    let other = LazyForeignMemory::new(
        mapper.clone(),
        DomId::new(domu.domid),
        RAM_END,
        CacheConfig::default(),
    )
    .unwrap();
    let mut back2 = vec![0u8; pattern.len()];
    other.memory().read_slice(&mut back2, at).unwrap();
    assert_eq!(back2, pattern);
    whole
        .write_obj(0xdead_beef_u32, GuestAddress(base + 8))
        .unwrap();
    cache.invalidate();
    assert_eq!(cache.stats().live, 0);
    assert_eq!(
        cache
            .memory()
            .read_obj::<u32>(GuestAddress(base + 8))
            .unwrap(),
        0xdead_beef
    );

    // Past the end of guest memory: vm-memory's error, no mapping call.
    assert!(matches!(
        cache.memory().read_obj::<u32>(GuestAddress(RAM_END)),
        Err(GuestMemoryError::InvalidGuestAddress(_))
    ));
    // Frames the domU does not have (far above its RAM): Xen refuses them per frame.
    let hole = RAM_BASE + (1u64 << 30);
    match map_whole_guest(
        &mapper,
        DomId::new(domu.domid),
        &[(GuestAddress(hole), 2 * PAGE)],
    ) {
        Err(Error::FramesUnavailable { first, failed, .. }) => {
            eprintln!("unpopulated gfn {:#x}: errno {}", first.gfn, first.errno);
            assert_eq!(first.gfn, hole / PAGE);
            assert_eq!(failed.len(), 2);
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("frames above the domU's RAM mapped"),
    }
    let big = LazyForeignMemory::new(
        mapper.clone(),
        DomId::new(domu.domid),
        RAM_BASE + (2 << 30),
        CacheConfig::default(),
    )
    .unwrap();
    let err = big
        .memory()
        .read_obj::<u64>(GuestAddress(hole + 16))
        .unwrap_err();
    match Error::from_guest_memory_error(&err) {
        Some(Error::FrameNotMapped { gfn, .. }) => assert_eq!(*gfn, hole / PAGE),
        _ => panic!("unexpected error {err}"),
    }
    // A domain that does not exist (0x7ff0 and up are DOMID_SELF & co.): an error (the kernel fails the call, or Xen every frame).
    match map_whole_guest(&mapper, DomId::new(0x7000), &[(GuestAddress(0), PAGE)]) {
        Err(e @ (Error::MapFrames { .. } | Error::FramesUnavailable { .. })) => {
            eprintln!("domain 0x7000: {e}")
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("a frame of a domain that does not exist mapped"),
    }
}

#[test]
fn virtio_queue_walks_a_chain_in_domu_memory() {
    let Some(env) = xen_env("virtio_queue_walks_a_chain_in_domu_memory") else {
        return;
    };
    let _lock = DOMU_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let domu = create_domu(&env, "vq", "xfm-vq");
    let mapper = XenForeignMapper::open().unwrap();
    let cache = LazyForeignMemory::new(
        mapper.clone(),
        DomId::new(domu.domid),
        RAM_END,
        CacheConfig {
            bucket_size: 16 << 10,
            max_buckets: 4,
        },
    )
    .unwrap();
    let base = RAM_BASE + (96u64 << 20);
    let request: Vec<u8> = (0..112u32).map(|i| (i * 7 + 3) as u8).collect();
    let mem = cache.memory();
    let got = walk_chain(&*mem, &layout_at(base), &request);
    assert_eq!(got, request);
    drop(mem);

    // The device's reply and the used ring, read through an independent mapping.
    let whole = map_whole_guest(
        &mapper,
        DomId::new(domu.domid),
        &[(GuestAddress(base), 8 * PAGE)],
    )
    .unwrap();
    let mut reply = vec![0u8; request.len()];
    whole
        .read_slice(&mut reply, GuestAddress(base + 5 * PAGE + 8))
        .unwrap();
    assert_eq!(reply, request.iter().rev().copied().collect::<Vec<_>>());
    assert_eq!(
        whole
            .read_obj::<u16>(GuestAddress(base + 0x200 + 2))
            .unwrap(),
        1
    );
    assert_eq!(
        whole
            .read_obj::<u32>(GuestAddress(base + 0x200 + 8))
            .unwrap(),
        112
    );

    // The same walk over whole-guest memory.
    let second = base + (16 << 10);
    let got = walk_chain(
        &whole_at(&mapper, DomId::new(domu.domid), second),
        &layout_at(second),
        &request,
    );
    assert_eq!(got, request);
}

fn whole_at(
    mapper: &XenForeignMapper,
    domid: DomId,
    base: u64,
) -> xen_foreignmem::ForeignGuestMemory<xen_foreignmem::XenForeignMapping> {
    map_whole_guest(mapper, domid, &[(GuestAddress(base), 8 * PAGE)]).unwrap()
}

const QSIZE: u16 = 8;

/// A split virtqueue with one chain: ring addresses and (address, length, device-writable)
/// of each buffer.
struct Layout {
    desc: u64,
    avail: u64,
    used: u64,
    bufs: Vec<(u64, u32, bool)>,
}

/// The descriptor table, avail and used rings in the first page at `base`; a header
/// straddling the first page boundary, a body, a writable reply.
fn layout_at(base: u64) -> Layout {
    Layout {
        desc: base,
        avail: base + 0x100,
        used: base + 0x200,
        bufs: vec![
            (base + PAGE - 6, 12, false),
            (base + 3 * PAGE, 100, false),
            (base + 5 * PAGE + 8, 112, true),
        ],
    }
}

/// Lays the queue out through `mem` as a driver would (writing `request` into the readable
/// buffers unless it is empty: then they are filled already), walks it with virtio-queue,
/// answers with the request reversed and returns the bytes the device read.
fn walk_chain<M: GuestMemory>(mem: &M, l: &Layout, request: &[u8]) -> Vec<u8> {
    let mut off = 0;
    for (i, &(addr, len, write)) in l.bufs.iter().enumerate() {
        let last = i + 1 == l.bufs.len();
        let flags = if last { 0 } else { 1 } | if write { 2 } else { 0 };
        let slot = u64::from(QSIZE) - 1 - i as u64;
        let next = if last { 0 } else { QSIZE - 2 - i as u16 };
        mem.write_obj(
            Descriptor::new(addr, len, flags, next),
            GuestAddress(l.desc + slot * 16),
        )
        .unwrap();
        if !write && !request.is_empty() {
            mem.write_slice(&request[off..off + len as usize], GuestAddress(addr))
                .unwrap();
            off += len as usize;
        }
    }
    mem.write_obj(0u16, GuestAddress(l.avail)).unwrap();
    mem.write_obj(QSIZE - 1, GuestAddress(l.avail + 4)).unwrap();
    mem.store(1u16, GuestAddress(l.avail + 2), Ordering::Release)
        .unwrap();
    mem.write_obj(0u16, GuestAddress(l.used + 2)).unwrap();

    let mut q = Queue::new(QSIZE).unwrap();
    q.set_size(QSIZE);
    q.try_set_desc_table_address(GuestAddress(l.desc)).unwrap();
    q.try_set_avail_ring_address(GuestAddress(l.avail)).unwrap();
    q.try_set_used_ring_address(GuestAddress(l.used)).unwrap();
    q.set_ready(true);
    assert!(q.is_valid(mem));
    let chain = q.iter(mem).unwrap().next().expect("one chain");
    let descs: Vec<_> = chain.clone().collect();
    assert_eq!(descs.len(), l.bufs.len());
    for (d, &(addr, len, write)) in descs.iter().zip(&l.bufs) {
        assert_eq!(
            (d.addr().raw_value(), d.len(), d.is_write_only()),
            (addr, len, write)
        );
    }
    let mut reader = chain.clone().reader(mem).unwrap();
    let mut got = vec![0u8; reader.available_bytes()];
    std::io::Read::read_exact(&mut reader, &mut got).unwrap();
    let mut writer = chain.clone().writer(mem).unwrap();
    let reply: Vec<u8> = got.iter().rev().copied().collect();
    let n = std::io::Write::write(&mut writer, &reply).unwrap();
    q.add_used(mem, chain.head_index(), n as u32).unwrap();
    assert_eq!(q.used_idx(mem, Ordering::Acquire).unwrap().0, 1);
    got
}

#[test]
fn grant_mode_over_dom0_self_grants() {
    let Some(_env) = xen_env("grant_mode_over_dom0_self_grants") else {
        return;
    };
    // Dom0 grants three of its own pages to itself (gntalloc) and reaches them through grant
    // addresses (gntdev): the grant path of a real Xen without a domU-side program.
    let alloc = GntAlloc::open().unwrap();
    let shared = alloc.share(DomId::DOM0, 3, true).unwrap();
    let g = shared.grefs().to_vec();
    eprintln!("dom0 self-grants: {g:?}");
    shared.write_at(16, b"hello grant").unwrap();

    let grants = GrantMemory::new(XenGrantMapper::open().unwrap(), DomId::DOM0, 8).unwrap();
    let mem = grants.memory();
    let mut buf = [0u8; 11];
    mem.read_slice(&mut buf, GuestAddress(grant_addr(g[0], 16)))
        .unwrap();
    assert_eq!(&buf, b"hello grant");
    mem.write_obj(0xfeed_f00d_u32, GuestAddress(grant_addr(g[1], 100)))
        .unwrap();
    let mut raw = [0u8; 4];
    shared.read_at(XEN_PAGE_SIZE + 100, &mut raw).unwrap();
    assert_eq!(u32::from_le_bytes(raw), 0xfeed_f00d);

    // A virtqueue whose rings and buffers are all grant addresses.
    let l = Layout {
        desc: grant_addr(g[2], 0),
        avail: grant_addr(g[2], 0x100),
        used: grant_addr(g[2], 0x200),
        bufs: vec![
            (grant_addr(g[0], 0x800), 12, false),
            (grant_addr(g[0], 0x900), 100, false),
            (grant_addr(g[1], 0x200), 112, true),
        ],
    };
    let request: Vec<u8> = (0..112u32).map(|i| (i * 5 + 1) as u8).collect();
    assert_eq!(walk_chain(&*mem, &l, &request), request);
    let mut reply = vec![0u8; 112];
    shared.read_at(XEN_PAGE_SIZE + 0x200, &mut reply).unwrap();
    assert_eq!(reply, request.iter().rev().copied().collect::<Vec<_>>());
    let calls = grants.stats().misses;
    assert_eq!(walk_chain(&*grants.memory(), &l, &request), request);
    assert_eq!(grants.stats().misses, calls, "hot grants are not remapped");

    // A reference nobody granted.
    let bogus = g.iter().max().unwrap() + 1000;
    let err = mem
        .read_obj::<u32>(GuestAddress(grant_addr(bogus, 0)))
        .unwrap_err();
    match Error::from_guest_memory_error(&err) {
        Some(Error::MapGrant { gref, source, .. }) => {
            eprintln!("bogus grant {gref}: {source}");
            assert_eq!(*gref, bogus);
        }
        _ => panic!("unexpected error {err}"),
    }
    drop(mem);
    assert!(grants.stats().live > 0);
    for &r in &g {
        grants.release(r);
    }
    assert_eq!(grants.stats().live, 0, "released grants are unmapped");
    drop(shared);
}
