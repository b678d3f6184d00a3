// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Integration tests of the privcmd wrapper against a real Xen dom0 (run by
//! `cargo xtask xen-box test`). Outside a dom0 they print `SKIPPED` and pass, unless `XEN_BOX=1`
//! says they are in the box, where a missing device is a failure.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::process::Command;
use std::time::{Duration, Instant};

use xen_bindings::abi::xen::dm_op::{
    XenDmOp, XenDmOpCreateIoreqServer, XenDmOpDestroyIoreqServer, XenDmOpGetIoreqServerInfo,
    XenDmOpRemoteShutdown, XEN_DMOP_CREATE_IOREQ_SERVER, XEN_DMOP_DESTROY_IOREQ_SERVER,
    XEN_DMOP_GET_IOREQ_SERVER_INFO, XEN_DMOP_NO_GFNS, XEN_DMOP_REMOTE_SHUTDOWN,
};
use xen_bindings::abi::Pod;

use xen_bindings::abi::xen::hvm::{
    HVM_PARAM_CONSOLE_PFN, HVM_PARAM_STORE_EVTCHN, HVM_PARAM_STORE_PFN,
};
use xen_bindings::abi::xen::XEN_PAGE_SIZE;
use xen_bindings::privcmd::{
    Error, Ioeventfd, Privcmd, Resource, EVENTFD_COMPILED_OUT, EVENTFD_UNKNOWN_IOCTL,
};
use xen_bindings::xenstore::Xenstore;
use xen_bindings::DomId;
use xen_box_testing::{in_dom0, run, XlDomain as DomU};

/// Opens privcmd, or returns None after printing SKIPPED when not in a dom0.
fn privcmd_or_skip(test: &str) -> Option<Privcmd> {
    in_dom0(test).then(|| Privcmd::open().expect("open /dev/xen/privcmd"))
}

#[test]
fn xen_version_matches_the_box() {
    let Some(p) = privcmd_or_skip("xen_version_matches_the_box") else {
        return;
    };
    let v = p.xen_version().expect("xen_version");
    eprintln!("xen_version via privcmd: {v}");
    assert!(v.major >= 4, "implausible version {v}");
    match std::env::var("XEN_BOX_XEN_VERSION") {
        Ok(want) => assert_eq!(format!("{}.{}", v.major, v.minor), want),
        Err(_) => eprintln!("XEN_BOX_XEN_VERSION unset: only checked plausibility"),
    }
    let caps = p.xen_capabilities().expect("capabilities");
    assert!(caps.contains("xen-3.0-"), "capabilities {caps:?}");
}

#[test]
fn physinfo_is_consistent() {
    let Some(p) = privcmd_or_skip("physinfo_is_consistent") else {
        return;
    };
    let info = p.physinfo().expect("physinfo");
    eprintln!(
        "nr_cpus={} total={} MiB free={} MiB caps={:?}",
        info.nr_cpus,
        info.total_memory >> 20,
        info.free_memory >> 20,
        info.virt_caps()
    );
    assert!(info.nr_cpus >= 1);
    assert!(info.total_memory > 0 && info.free_memory <= info.total_memory);
    if cfg!(target_arch = "aarch64") {
        // Xen on Arm has one guest type, HVM-like with hardware paging, and no PV.
        for cap in ["hvm", "hap"] {
            assert!(info.virt_caps().contains(&cap), "{:?}", info.virt_caps());
        }
        assert!(!info.virt_caps().contains(&"pv"), "{:?}", info.virt_caps());
    } else {
        assert!(info.virt_caps().contains(&"pv"), "{:?}", info.virt_caps());
    }
    // `xl info` agrees on the CPU count and total memory.
    let xl = run(Command::new("xl").arg("info"));
    let field = |name: &str| -> u64 {
        xl.lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == name).then(|| v.trim().parse().ok())?
            })
            .unwrap_or_else(|| panic!("xl info lacks {name}"))
    };
    assert_eq!(field("nr_cpus"), u64::from(info.nr_cpus));
    assert_eq!(field("total_memory"), info.total_memory >> 20);
}

/// A paused PVH domU created with xl (PVH so that frame numbers are guest-physical), destroyed
/// on drop. On Arm, xl knows no guest types (every guest is auto-translated), so none is named.
fn create_domu(name: &str) -> DomU {
    let kernel = std::env::var("XEN_BOX_DOMU_KERNEL").expect("XEN_BOX_DOMU_KERNEL");
    let ramdisk = std::env::var("XEN_BOX_DOMU_RAMDISK").expect("XEN_BOX_DOMU_RAMDISK");
    let guest_type = xen_box_testing::pvh_type_line();
    DomU::create(
        name.into(),
        &format!(
            "{guest_type}kernel = \"{kernel}\"\nramdisk = \"{ramdisk}\"\n\
             memory = 128\nvcpus = 1\nextra = \"console=hvc0\"\non_poweroff = \"destroy\"\n"
        ),
        true,
    )
}

fn xenstore_read(path: &str) -> Option<String> {
    let mut xs = Xenstore::open().expect("xenstore client");
    xs.read_string(path).ok()
}

/// Everything that needs a domU, in one test so only one guest is built.
#[test]
fn with_a_pvh_domu() {
    let Some(p) = privcmd_or_skip("with_a_pvh_domu") else {
        return;
    };
    if std::env::var("XEN_BOX_DOMU_KERNEL").is_err() {
        assert!(
            std::env::var("XEN_BOX").is_err(),
            "XEN_BOX=1 without XEN_BOX_DOMU_KERNEL"
        );
        eprintln!("SKIPPED: with_a_pvh_domu: no XEN_BOX_DOMU_KERNEL");
        return;
    }
    let domu = create_domu("xbcore");
    eprintln!("created paused PVH domU {} id {}", domu.name, domu.domid);

    domain_list_matches_xl(&p, &domu);
    grant_table_resource_matches_xenstore(&p, &domu);
    hvm_params_match_xenstore(&p, &domu);
    foreign_mapping_reads_the_kernel(&p, &domu);
    eventfd_ioctls_are_typed(&p, &domu);
    restrict_limits_to_one_domain(&domu);
}

fn domain_list_matches_xl(p: &Privcmd, domu: &DomU) {
    let ours = p.domains().expect("domains");
    let xl = run(Command::new("xl").arg("list"));
    let mut theirs = Vec::new();
    for line in xl.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 5 {
            continue;
        }
        let n = f.len();
        // Name may hold spaces in theory; the numeric columns are counted from the end.
        let state = f[n - 2].to_string();
        let vcpus: u32 = f[n - 3].parse().unwrap();
        let mem: u64 = f[n - 4].parse().unwrap();
        let id: DomId = f[n - 5].parse().unwrap();
        let name = f[..n - 5].join(" ");
        theirs.push((id, name, mem, vcpus, state));
    }
    eprintln!("xl list: {theirs:?}");
    assert_eq!(
        ours.iter().map(|d| d.domid).collect::<Vec<_>>(),
        theirs.iter().map(|t| t.0).collect::<Vec<_>>(),
        "domain ids"
    );
    for (d, (id, name, mem, vcpus, state)) in ours.iter().zip(&theirs) {
        // Names come from xenstore, read with this crate's client.
        let our_name = xenstore_read(&format!("/local/domain/{id}/name"))
            .unwrap_or_else(|| "(null)".to_string());
        assert_eq!(&our_name, name, "name of domain {id}");
        assert_eq!(d.memory >> 20, *mem, "memory of domain {id} in MiB");
        assert_eq!(d.online_vcpus, *vcpus, "vcpus of domain {id}");
        if *id == DomId::new(domu.domid) {
            assert_eq!(&d.state_string(), state, "state of the paused domU");
            assert!(d.paused());
        }
    }
    let info = p.domain_info(DomId::new(domu.domid)).expect("domain_info");
    assert_eq!(info.domid, DomId::new(domu.domid));
    assert!(
        info.paused() && info.hvm(),
        "a PVH domU is an HVM container"
    );
    assert_eq!(info.memory >> 20, 128);
}

fn grant_table_resource_matches_xenstore(p: &Privcmd, domu: &DomU) {
    // The toolstack seeds the domU's grant table: entry 0 grants the console ring and entry 1
    // the xenstore ring to the backends; xenstore holds the same frame numbers.
    let frames = p
        .resource_size(DomId::new(domu.domid), Resource::GrantTableShared)
        .expect("grant table resource size");
    assert!(frames >= 1, "grant table of {frames} frames");
    let map = p
        .map_resource(
            DomId::new(domu.domid),
            Resource::GrantTableShared,
            0,
            1,
            false,
        )
        .expect("map grant table frame 0");
    let page = map.read_page(0).unwrap();
    let entry = |i: usize| {
        let e = &page[i * 8..i * 8 + 8];
        (
            u16::from_ne_bytes([e[0], e[1]]),
            u16::from_ne_bytes([e[2], e[3]]),
            u32::from_ne_bytes([e[4], e[5], e[6], e[7]]),
        )
    };
    let (flags, backend, frame) = entry(1);
    eprintln!("grant entry 0 {:?}, entry 1 {:?}", entry(0), entry(1));
    assert_eq!(flags & 1, 1, "xenstore grant is GTF_permit_access");
    assert_eq!(backend, 0, "xenstore grant goes to dom0");
    let store: u64 = xenstore_read(&format!("/local/domain/{}/store/ring-ref", domu.domid))
        .expect("store/ring-ref")
        .parse()
        .unwrap();
    assert_eq!(
        u64::from(frame),
        store,
        "grant entry 1 frame vs xenstore store/ring-ref"
    );
}

fn hvm_params_match_xenstore(p: &Privcmd, domu: &DomU) {
    let read = |node: &str| -> u64 {
        xenstore_read(&format!("/local/domain/{}/{node}", domu.domid))
            .unwrap_or_else(|| panic!("xenstore {node}"))
            .parse()
            .unwrap()
    };
    let store_pfn = p
        .hvm_param(DomId::new(domu.domid), HVM_PARAM_STORE_PFN)
        .expect("STORE_PFN");
    let store_port = p
        .hvm_param(DomId::new(domu.domid), HVM_PARAM_STORE_EVTCHN)
        .expect("STORE_EVTCHN");
    let console_pfn = p
        .hvm_param(DomId::new(domu.domid), HVM_PARAM_CONSOLE_PFN)
        .expect("CONSOLE_PFN");
    eprintln!(
        "HVM params: store pfn {store_pfn:#x} port {store_port}, console pfn {console_pfn:#x}"
    );
    assert_eq!(store_pfn, read("store/ring-ref"));
    assert_eq!(store_port, read("store/port"));
    assert_eq!(console_pfn, read("console/ring-ref"));
    let size = p
        .grant_table_size(DomId::new(domu.domid))
        .expect("grant table size");
    eprintln!("grant table: {size:?}");
    assert!(size.nr_frames >= 1 && size.nr_frames <= size.max_nr_frames);
}

fn foreign_mapping_reads_the_kernel(p: &Privcmd, domu: &DomU) {
    let (first, found) = if cfg!(target_arch = "aarch64") {
        find_arm64_image(p, domu)
    } else {
        find_xen_elf_note(p, domu)
    };
    assert!(
        found.is_some(),
        "no page of the domU kernel holds its Xen ELF note (x86) or arm64 Image header (Arm)"
    );

    // A frame beyond the guest's memory gives a per-page error, the good one still maps.
    let map = p
        .map_foreign(DomId::new(domu.domid), &[first, 0xff_ffff_ffff], false)
        .expect("map with one bad frame");
    eprintln!("per-page errors: {:?}", map.page_errors());
    assert_eq!(map.page_errors()[0], 0);
    assert_ne!(map.page_errors()[1], 0);
    assert!(map.read_page(0).is_ok() && map.read_page(1).is_err());
    assert_eq!(map.len(), 2 * XEN_PAGE_SIZE);
}

/// x86: a Linux kernel (PVH entry) is loaded from 16 MiB (pfn 0x1000) of the guest; its image
/// carries the ELF note string "xen-3.0" telling the loader which ABI it speaks. Returns the first
/// frame searched and the frame holding the note.
fn find_xen_elf_note(p: &Privcmd, domu: &DomU) -> (u64, Option<u64>) {
    const FIRST: u64 = 0x1000;
    const BATCH: u64 = 1024;
    let mut found = None;
    'outer: for b in 0..8 {
        let gfns: Vec<u64> = (0..BATCH).map(|i| FIRST + b * BATCH + i).collect();
        let map = p
            .map_foreign(DomId::new(domu.domid), &gfns, false)
            .expect("map_foreign");
        for (i, &e) in map.page_errors().iter().enumerate() {
            if e != 0 {
                continue;
            }
            let page = map.read_page(i).unwrap();
            if page.windows(7).any(|w| w == b"xen-3.0") {
                found = Some(gfns[i]);
                break 'outer;
            }
        }
    }
    eprintln!("\"xen-3.0\" found in domU page {found:x?}");
    (FIRST, found)
}

/// Arm: guest RAM starts at 1 GiB (gfn 0x40000, GUEST_RAM0_BASE) and the toolstack loads the
/// arm64 `Image` there plus its header's text_offset; that header has the magic "ARM\x64" at
/// byte 0x38. Returns the first frame searched and the frame starting with the header.
fn find_arm64_image(p: &Privcmd, domu: &DomU) -> (u64, Option<u64>) {
    const FIRST: u64 = 0x40000;
    const BATCH: u64 = 1024;
    const MAGIC: &[u8] = b"ARM\x64";
    let mut found = None;
    let mut mapped = 0;
    'outer: for b in 0..8 {
        let gfns: Vec<u64> = (0..BATCH).map(|i| FIRST + b * BATCH + i).collect();
        let map = p
            .map_foreign(DomId::new(domu.domid), &gfns, false)
            .expect("map_foreign");
        for (i, &e) in map.page_errors().iter().enumerate() {
            if e != 0 {
                continue;
            }
            mapped += 1;
            let page = map.read_page(i).unwrap();
            if &page[0x38..0x3c] == MAGIC {
                let text_offset = u64::from_le_bytes(page[8..16].try_into().unwrap());
                eprintln!("arm64 Image header: text_offset {text_offset:#x}");
                found = Some(gfns[i]);
                break 'outer;
            }
        }
    }
    eprintln!("arm64 Image header found in domU page {found:x?} ({mapped} RAM pages mapped)");
    assert!(mapped > 0, "no page of guest RAM from gfn {FIRST:#x} maps");
    (FIRST, found)
}

/// True when the box booted its purpose-built dom0 kernel with privcmd IRQFD/IOEVENTFD
/// (`cargo xtask xen-box test --dom0-kernel eventfd`); Debian's kernels lack them.
fn eventfd_kernel() -> bool {
    std::env::var("XEN_BOX_DOM0_KERNEL").as_deref() == Ok("eventfd")
}

fn new_eventfd() -> OwnedFd {
    // SAFETY: eventfd returns a fresh descriptor (or -1, checked).
    let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    assert!(raw >= 0, "eventfd: {}", std::io::Error::last_os_error());
    // SAFETY: `raw` is a fresh descriptor owned by nothing else.
    unsafe { OwnedFd::from_raw_fd(raw) }
}

fn eventfd_ioctls_are_typed(p: &Privcmd, domu: &DomU) {
    if eventfd_kernel() {
        eventfd_ioctls_work(p, domu);
        return;
    }
    let stack = std::env::var("XEN_BOX_STACK").unwrap_or_default();
    // SAFETY: eventfd returns a fresh descriptor (or -1, checked).
    let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    assert!(raw >= 0);
    // SAFETY: `raw` is a fresh descriptor owned by nothing else.
    let efd = unsafe { OwnedFd::from_raw_fd(raw) };
    let dm = [0u8; 32];
    let irq = p.irqfd(DomId::new(domu.domid), efd.as_fd(), &dm, false);
    let page = p
        .map_resource(
            DomId::new(domu.domid),
            Resource::GrantTableShared,
            0,
            1,
            false,
        )
        .expect("a resource page");
    let ioeventfd = |deassign| {
        // SAFETY: on the stacks this test knows, the kernel has no IOEVENTFD and refuses the
        // call (checked below); on another kernel an assignment is deassigned right after,
        // before `page` goes.
        unsafe {
            p.ioeventfd(
                DomId::new(domu.domid),
                &Ioeventfd {
                    ioreq_page: &page,
                    ports: &[0],
                    addr: 0xfe00_0000,
                    addr_len: 4,
                    vq: 0,
                    eventfd: efd.as_fd(),
                },
                deassign,
            )
        }
    };
    let ioev = ioeventfd(false);
    if ioev.is_ok() {
        let _ = ioeventfd(true);
    }
    eprintln!("irqfd: {irq:?}\nioeventfd: {ioev:?}");
    let want = match stack.as_str() {
        "bookworm" => Some(EVENTFD_UNKNOWN_IOCTL),
        "trixie" => Some(EVENTFD_COMPILED_OUT),
        _ => None,
    };
    for (op, r) in [("IRQFD", irq), ("IOEVENTFD", ioev)] {
        match (want, r) {
            (Some(w), Err(Error::Unsupported { reason, .. })) => assert_eq!(reason, w, "{op}"),
            (Some(w), other) => panic!("{op}: expected Unsupported({w}), got {other:?}"),
            // Another kernel: anything typed is fine, a crash is not.
            (None, r) => eprintln!("{op} on an unknown stack: {r:?}"),
        }
    }
}

/// With a kernel that has privcmd IRQFD/IOEVENTFD: registration and removal succeed, the
/// kernel's own checks answer with their errnos.
fn eventfd_ioctls_work(p: &Privcmd, domu: &DomU) {
    let efd = new_eventfd();
    // Never signalled here, so the dm_op (op 0, which Xen would refuse) is never issued.
    let dm = [0u8; 32];
    p.irqfd(DomId::new(domu.domid), efd.as_fd(), &dm, false)
        .expect("IRQFD assign on the paused domU");
    let again = p
        .irqfd(DomId::new(domu.domid), efd.as_fd(), &dm, false)
        .unwrap_err();
    eprintln!("IRQFD assigned; the same eventfd again: {again}");
    assert_eq!(again.errno(), Some(libc::EBUSY), "{again:?}");
    p.irqfd(DomId::new(domu.domid), efd.as_fd(), &dm, true)
        .expect("IRQFD deassign");
    // Deassign really removed it: the same eventfd can be bound again.
    p.irqfd(DomId::new(domu.domid), efd.as_fd(), &dm, false)
        .expect("IRQFD assign after deassign");
    p.irqfd(DomId::new(domu.domid), efd.as_fd(), &dm, true)
        .expect("second IRQFD deassign");

    // IOEVENTFD. On an x86 PV dom0 a successful registration cannot be tried: Linux 6.12's
    // privcmd takes the IOREQ page of the mapping as `vma->vm_private_data` interpreted as a
    // page array, which only auto-translated (Arm, PVH) dom0s have; a PV dom0 would oops. So
    // this checks everything the kernel answers before that point, with a real IOREQ-sized
    // mapping and a real eventfd: each answer proves the ioctl is compiled in (Debian's
    // kernels say ENOTTY/EOPNOTSUPP, see `eventfd_ioctls_are_typed`).
    let page = p
        .map_resource(
            DomId::new(domu.domid),
            Resource::GrantTableShared,
            0,
            1,
            false,
        )
        .expect("a resource page");
    let errno_of = |what: &str, r: xen_bindings::privcmd::Result<()>| {
        let e = r.expect_err(what);
        eprintln!("IOEVENTFD {what}: {e}");
        assert!(
            !matches!(e, Error::Unsupported { .. }),
            "{what}: the eventfd kernel reports {e:?}"
        );
        e.errno()
    };
    let addr = 0xfe00_0000;
    // A registration the kernel would take; each call below changes what it tests.
    let valid = Ioeventfd {
        ioreq_page: &page,
        ports: &[0],
        addr,
        addr_len: 4,
        vq: 0,
        eventfd: efd.as_fd(),
    };
    // Every IOEVENTFD call below is one the kernel refuses (checked: each is an error) or a
    // deassignment, so none leaves a registration on `page` behind.
    let refused = |what: &str, arg: &Ioeventfd<'_>, deassign| {
        // SAFETY: refused by the kernel, or a deassignment (see above).
        errno_of(what, unsafe {
            p.ioeventfd(DomId::new(domu.domid), arg, deassign)
        })
    };
    let einval = Some(libc::EINVAL);
    let short = Ioeventfd {
        addr_len: 3,
        ..valid
    };
    assert_eq!(refused("addr_len 3", &short, false), einval);
    let no_ports = Ioeventfd {
        ports: &[],
        ..valid
    };
    assert_eq!(refused("no vCPU ports", &no_ports, false), einval);
    let wrapping = Ioeventfd {
        addr: u64::MAX - 1,
        ..valid
    };
    assert_eq!(
        refused("range wrapping past 2^64", &wrapping, false),
        einval
    );
    assert_eq!(
        refused("deassign of one never assigned", &valid, true),
        Some(libc::ENODEV)
    );
    // A descriptor that is not an eventfd is refused by both ioctls before anything is bound.
    let file = std::fs::File::open("/proc/uptime").expect("/proc/uptime");
    let e = p
        .irqfd(DomId::new(domu.domid), file.as_fd(), &dm, false)
        .unwrap_err();
    eprintln!("IRQFD with a non-eventfd descriptor: {e}");
    assert_eq!(e.errno(), Some(libc::EINVAL), "{e:?}");
    // Restricted to another domain, both refuse with EPERM.
    let r = Privcmd::open().expect("restricted privcmd");
    r.restrict(DomId::DOM0).expect("restrict to dom0");
    let e = r
        .irqfd(DomId::new(domu.domid), efd.as_fd(), &dm, false)
        .unwrap_err();
    assert_eq!(e.errno(), Some(libc::EPERM), "{e:?}");
    // SAFETY: a deassignment, refused besides.
    let e = unsafe { r.ioeventfd(DomId::new(domu.domid), &valid, true) }.unwrap_err();
    assert_eq!(e.errno(), Some(libc::EPERM), "{e:?}");
}

/// Arm: the IRQFD's dm_op destroys an IOREQ server created here. privcmd issues the dm_op
/// inside the eventfd write (its wait-queue callback runs the hypercall), so once `write`
/// has returned the server is gone: no waiting needed.
fn irqfd_signal_destroys_an_ioreq_server(p: &Privcmd, domu: &DomU) {
    let id = p
        .dm_op_struct(
            DomId::new(domu.domid),
            XEN_DMOP_CREATE_IOREQ_SERVER,
            &XenDmOpCreateIoreqServer::default(),
            &mut [],
        )
        .expect("create an IOREQ server")
        .id;
    let info = |p: &Privcmd| {
        p.dm_op_struct(
            DomId::new(domu.domid),
            XEN_DMOP_GET_IOREQ_SERVER_INFO,
            &XenDmOpGetIoreqServerInfo {
                id,
                flags: XEN_DMOP_NO_GFNS,
                ..Default::default()
            },
            &mut [],
        )
    };
    info(p).expect("the new IOREQ server exists");
    let efd = new_eventfd();
    let op = XenDmOp::new(
        XEN_DMOP_DESTROY_IOREQ_SERVER,
        &XenDmOpDestroyIoreqServer { id, pad: 0 },
    );
    p.irqfd(DomId::new(domu.domid), efd.as_fd(), op.as_bytes(), false)
        .expect("IRQFD assign");
    info(p).expect("the IOREQ server is still there before the signal");
    let one = 1u64.to_ne_bytes();
    // SAFETY: writes 8 bytes from a live buffer to an eventfd we own.
    let n = unsafe { libc::write(efd.as_raw_fd(), one.as_ptr().cast(), one.len()) };
    assert_eq!(n, 8, "eventfd write: {}", std::io::Error::last_os_error());
    let e = info(p).expect_err("the IRQFD's dm_op destroyed the IOREQ server");
    eprintln!("signalled the IRQFD: the kernel issued destroy_ioreq_server {id}: {e}");
    assert_eq!(e.errno(), Some(libc::ENOENT), "{e:?}");
    p.irqfd(DomId::new(domu.domid), efd.as_fd(), op.as_bytes(), true)
        .expect("IRQFD deassign");
}

/// `SHUTDOWN_poweroff` (Xen public/sched.h).
const SHUTDOWN_POWEROFF: u32 = 0;

/// End to end through the kernel: an IRQFD whose dm_op is `XEN_DMOP_remote_shutdown`; writing
/// to the eventfd makes the kernel issue it, and the domU shuts down (seen through xenstore's
/// `@releaseDomain` watch and the domain list). Arm's Xen has no `remote_shutdown` (its dm_op
/// knows only `set_irq_level`, `nr_vcpus` and the IOREQ-server ops), so there see
/// [`irqfd_signal_destroys_an_ioreq_server`].
#[test]
fn irqfd_signal_issues_the_dm_op() {
    let Some(p) = privcmd_or_skip("irqfd_signal_issues_the_dm_op") else {
        return;
    };
    if !eventfd_kernel() {
        eprintln!(
            "SKIPPED: irqfd_signal_issues_the_dm_op: the dom0 kernel has no privcmd IRQFD \
             (XEN_BOX_DOM0_KERNEL={}; with_a_pvh_domu checks how it refuses)",
            std::env::var("XEN_BOX_DOM0_KERNEL").unwrap_or_default()
        );
        return;
    }
    let domu = create_domu("xbirqfd");
    if cfg!(target_arch = "aarch64") {
        irqfd_signal_destroys_an_ioreq_server(&p, &domu);
        return;
    }
    let efd = new_eventfd();
    let op = XenDmOp::new(
        XEN_DMOP_REMOTE_SHUTDOWN,
        &XenDmOpRemoteShutdown {
            reason: SHUTDOWN_POWEROFF,
        },
    );
    p.irqfd(DomId::new(domu.domid), efd.as_fd(), op.as_bytes(), false)
        .expect("IRQFD assign");
    let mut xs = Xenstore::open().expect("xenstore client");
    xs.watch("@releaseDomain", "irqfd")
        .expect("watch @releaseDomain");
    let down = |p: &Privcmd| {
        let d = p.domains().expect("domains");
        match d.iter().find(|d| d.domid == DomId::new(domu.domid)) {
            Some(d) => d.shutdown() || d.dying(),
            None => true,
        }
    };
    assert!(!down(&p), "domU {} down before the signal", domu.domid);
    let one = 1u64.to_ne_bytes();
    // SAFETY: writes 8 bytes from a live buffer to an eventfd we own.
    let n = unsafe { libc::write(efd.as_raw_fd(), one.as_ptr().cast(), one.len()) };
    assert_eq!(n, 8, "eventfd write: {}", std::io::Error::last_os_error());
    // Each check follows a watch event (the first fires on registration), so a shutdown that
    // happened before the watch is seen too.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !down(&p) {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "domU {} still up 60 s after the signal",
            domu.domid
        );
        xs.wait_event(Some(left)).expect("wait for @releaseDomain");
    }
    eprintln!(
        "signalled the IRQFD: the kernel issued remote_shutdown, domU {} is down",
        domu.domid
    );
    p.irqfd(DomId::new(domu.domid), efd.as_fd(), op.as_bytes(), true)
        .expect("IRQFD deassign");
}

fn restrict_limits_to_one_domain(domu: &DomU) {
    let p = Privcmd::open().expect("second privcmd");
    p.restrict(DomId::new(domu.domid)).expect("restrict");
    // Foreign mapping of the allowed domain still works ...
    // A frame of the domU's RAM: it starts at gfn 0 on x86, at gfn 0x40000 (1 GiB) on Arm.
    let ram_gfn = if cfg!(target_arch = "aarch64") {
        0x40000
    } else {
        0x1000
    };
    let ok = p
        .map_foreign(DomId::new(domu.domid), &[ram_gfn], false)
        .expect("map allowed domain");
    assert!(ok.all_mapped());
    // ... one of another domain (dom0) is refused, and so are raw hypercalls.
    let e = p.map_foreign(DomId::DOM0, &[0], false).unwrap_err();
    eprintln!("after RESTRICT, mapping dom0: {e}");
    assert_eq!(e.errno(), Some(libc::EPERM), "{e:?}");
    let e = p.xen_version().unwrap_err();
    assert_eq!(e.errno(), Some(libc::EPERM), "{e:?}");
}
