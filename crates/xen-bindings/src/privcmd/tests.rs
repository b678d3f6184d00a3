// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Unit tests of the privcmd wrapper through the mocked seam.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use libc::c_void;

use super::*;
use crate::abi::xen::dm_op::*;
use crate::abi::xen::domctl::*;
use crate::abi::xen::sysctl::*;
use crate::sys::{MockSys, RealSys};

fn null_fd() -> OwnedFd {
    std::fs::File::open("/dev/null").unwrap().into()
}

fn errno(e: i32) -> io::Error {
    io::Error::from_raw_os_error(e)
}

/// A mock whose mmap/munmap/mlock give real anonymous memory (so hypercall buffers and
/// mappings are usable) and count the unmaps.
fn mock_with_memory(unmaps: Arc<AtomicUsize>) -> MockSys {
    let mut m = MockSys::new();
    m.expect_mmap().returning(|_, len, _, _, _, _| {
        // SAFETY: fresh anonymous mapping; stands in for the device mapping.
        unsafe {
            RealSys.mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        }
    });
    m.expect_munmap().returning(move |p, len| {
        unmaps.fetch_add(1, Ordering::SeqCst);
        // SAFETY: `p` came from the mmap above and is unmapped exactly once by its owner.
        unsafe { RealSys.munmap(p, len) }
    });
    m.expect_mlock().returning(|_, _| Ok(()));
    m
}

fn privcmd(m: MockSys) -> Privcmd<MockSys> {
    Privcmd::from_parts(null_fd(), None, m)
}

/// Reads the argument the wrapper passed to ioctl.
///
/// # Safety
///
/// `arg` must point to a live `T`.
unsafe fn arg<T: Copy>(arg: *mut c_void) -> T {
    // SAFETY: guaranteed by the caller.
    unsafe { *(arg as *const T) }
}

#[test]
fn xen_version_marshalling() {
    let unmaps = Arc::new(AtomicUsize::new(0));
    let mut m = mock_with_memory(unmaps.clone());
    m.expect_ioctl()
        .withf(|_, req, _| *req == IOCTL_PRIVCMD_HYPERCALL)
        .times(2)
        .returning(|_, _, a| {
            // SAFETY: the wrapper passes a PrivcmdHypercall.
            let call: PrivcmdHypercall = unsafe { arg(a) };
            assert_eq!(call.op, 17, "xen_version hypercall number");
            match call.arg[0] {
                0 => Ok(0x0004_0011),
                1 => {
                    assert_ne!(call.arg[1], 0, "extraversion needs a buffer");
                    // SAFETY: arg[1] is the 16-byte (page-sized) hypercall buffer.
                    unsafe {
                        std::ptr::copy_nonoverlapping(
                            c".7".as_ptr().cast(),
                            call.arg[1] as *mut u8,
                            3,
                        )
                    };
                    Ok(0)
                }
                other => panic!("unexpected sub-op {other}"),
            }
        });
    let p = privcmd(m);
    let v = p.xen_version().unwrap();
    assert_eq!((v.major, v.minor, v.extra.as_str()), (4, 17, ".7"));
    assert_eq!(v.to_string(), "4.17.7");
    assert_eq!(
        unmaps.load(Ordering::SeqCst),
        1,
        "hypercall buffer unmapped"
    );
}

#[test]
fn hypercall_eperm_is_typed() {
    let mut m = MockSys::new();
    m.expect_ioctl()
        .returning(|_, _, _| Err(errno(libc::EPERM)));
    let p = privcmd(m);
    let e = p.xen_version().unwrap_err();
    assert!(
        matches!(
            e,
            Error::Hypercall {
                op: 17,
                subop: 0,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(e.errno(), Some(libc::EPERM));
    assert!(e.to_string().contains("hypercall 17"), "{e}");
}

#[test]
fn buffer_falls_back_to_locked_memory_and_reports_mlock_failure() {
    let unmaps = Arc::new(AtomicUsize::new(0));
    let mut m = MockSys::new();
    let u = unmaps.clone();
    m.expect_mmap()
        .withf(|_, len, _, flags, fd, _| {
            *len == 4096 && *flags == libc::MAP_PRIVATE | libc::MAP_ANONYMOUS && *fd == -1
        })
        .returning(|_, len, _, _, _, _| {
            // SAFETY: fresh anonymous mapping.
            unsafe {
                RealSys.mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            }
        });
    m.expect_mlock().returning(|_, _| Err(errno(libc::EPERM)));
    m.expect_munmap().returning(move |p, len| {
        u.fetch_add(1, Ordering::SeqCst);
        // SAFETY: `p` came from the mmap above.
        unsafe { RealSys.munmap(p, len) }
    });
    let p = privcmd(m);
    let e = p.hypercall_buffer(10).unwrap_err();
    assert!(matches!(e, Error::Buffer { len: 4096, .. }), "{e:?}");
    assert_eq!(
        unmaps.load(Ordering::SeqCst),
        1,
        "mapping released after mlock failure"
    );
}

#[test]
fn map_foreign_marshalling_and_partial_failure() {
    let unmaps = Arc::new(AtomicUsize::new(0));
    let mut m = mock_with_memory(unmaps.clone());
    m.expect_ioctl()
        .withf(|_, req, _| *req == IOCTL_PRIVCMD_MMAPBATCH_V2)
        .times(1)
        .returning(|_, _, a| {
            // SAFETY: the wrapper passes a PrivcmdMmapbatchV2.
            let b: PrivcmdMmapbatchV2 = unsafe { arg(a) };
            assert_eq!((b.num, b.dom), (4, 7));
            assert_ne!(b.addr, 0);
            // SAFETY: arr/err point to `num` entries owned by the caller for the call.
            let (gfns, errs) = unsafe {
                (
                    std::slice::from_raw_parts(b.arr as *const u64, 4),
                    std::slice::from_raw_parts_mut(b.err as *mut i32, 4),
                )
            };
            assert_eq!(gfns, &[0x100, 0x101, 0xdead_beef, 0x103]);
            errs.copy_from_slice(&[0, -libc::ENOENT, -libc::EINVAL, 0]);
            Err(errno(libc::ENOENT))
        });
    let p = privcmd(m);
    let map = p
        .map_foreign(DomId::new(7), &[0x100, 0x101, 0xdead_beef, 0x103], false)
        .unwrap();
    assert_eq!(map.len(), 4 * 4096);
    assert_eq!(map.page_errors(), &[0, -libc::ENOENT, -libc::EINVAL, 0]);
    assert!(!map.all_mapped());
    assert_eq!(
        map.page_error(2).unwrap().raw_os_error(),
        Some(libc::EINVAL)
    );
    assert!(map.page_error(0).is_none());
    assert_eq!(
        map.read_page(1).unwrap_err().raw_os_error(),
        Some(libc::ENOENT)
    );
    assert_eq!(map.read_page(0).unwrap().len(), 4096);
    assert_eq!(
        map.read_page(9).unwrap_err().raw_os_error(),
        Some(libc::EINVAL)
    );
    drop(map);
    assert_eq!(unmaps.load(Ordering::SeqCst), 1, "mapping unmapped on drop");
}

#[test]
fn map_foreign_efault_unmaps_and_errors() {
    let unmaps = Arc::new(AtomicUsize::new(0));
    let mut m = mock_with_memory(unmaps.clone());
    m.expect_ioctl()
        .returning(|_, _, _| Err(errno(libc::EFAULT)));
    let p = privcmd(m);
    let e = p.map_foreign(DomId::new(3), &[1], true).unwrap_err();
    assert!(
        matches!(
            e,
            Error::OnDomain {
                op: "MMAPBATCH_V2",
                domid,
                ..
            } if domid == DomId::new(3)
        ),
        "{e:?}"
    );
    assert_eq!(e.errno(), Some(libc::EFAULT));
    assert_eq!(unmaps.load(Ordering::SeqCst), 1);
}

#[test]
fn map_foreign_rejects_empty() {
    let p = privcmd(MockSys::new());
    assert!(matches!(
        p.map_foreign(DomId::new(1), &[], false),
        Err(Error::InvalidArgument { .. })
    ));
}

#[test]
fn map_foreign_into_writes_the_callers_error_array() {
    let unmaps = Arc::new(AtomicUsize::new(0));
    let mut m = mock_with_memory(unmaps.clone());
    m.expect_ioctl()
        .withf(|_, req, _| *req == IOCTL_PRIVCMD_MMAPBATCH_V2)
        .times(1)
        .returning(|_, _, a| {
            // SAFETY: the wrapper passes a PrivcmdMmapbatchV2.
            let b: PrivcmdMmapbatchV2 = unsafe { arg(a) };
            // SAFETY: err points to `num` entries owned by the caller for the call.
            let errs = unsafe { std::slice::from_raw_parts_mut(b.err as *mut i32, 2) };
            errs.copy_from_slice(&[-libc::ENOENT, 0]);
            Err(errno(libc::ENOENT))
        });
    let p = privcmd(m);
    let mut errs = [7; 2];
    let map = p
        .map_foreign_into(DomId::new(5), &[0x10, 0x11], true, &mut errs)
        .unwrap();
    assert_eq!(errs, [-libc::ENOENT, 0]);
    assert!(map.page_errors().is_empty(), "the results are the caller's");
    drop(map);
    assert_eq!(unmaps.load(Ordering::SeqCst), 1);
}

#[test]
fn map_foreign_into_rejects_a_short_error_array() {
    let p = privcmd(MockSys::new());
    let e = p
        .map_foreign_into(DomId::new(1), &[1, 2], false, &mut [0])
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::InvalidArgument {
                op: "MMAPBATCH_V2",
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn map_resource_marshalling() {
    let unmaps = Arc::new(AtomicUsize::new(0));
    let mut m = mock_with_memory(unmaps.clone());
    m.expect_ioctl()
        .withf(|_, req, _| *req == IOCTL_PRIVCMD_MMAP_RESOURCE)
        .times(1)
        .returning(|_, _, a| {
            // SAFETY: the wrapper passes a PrivcmdMmapResource.
            let r: PrivcmdMmapResource = unsafe { arg(a) };
            assert_eq!((r.dom, r.type_, r.id, r.idx, r.num), (5, 0, 1, 1, 1));
            assert_ne!(r.addr, 0);
            Ok(0)
        });
    let p = privcmd(m);
    let map = p
        .map_resource(DomId::new(5), Resource::IoreqServer(1), 1, 1, true)
        .unwrap();
    assert_eq!(map.pages(), 1);
    assert!(map.page_errors().is_empty());
}

#[test]
fn map_resource_enoent_is_domain_error() {
    let unmaps = Arc::new(AtomicUsize::new(0));
    let mut m = mock_with_memory(unmaps.clone());
    m.expect_ioctl()
        .returning(|_, _, _| Err(errno(libc::ENOENT)));
    let p = privcmd(m);
    let e = p
        .map_resource(DomId::new(9), Resource::IoreqServer(0), 0, 2, true)
        .unwrap_err();
    assert_eq!(e.errno(), Some(libc::ENOENT));
    assert!(e.to_string().contains("domain 9"), "{e}");
    assert_eq!(unmaps.load(Ordering::SeqCst), 1);
}

#[test]
fn restrict_marshalling() {
    let mut m = MockSys::new();
    m.expect_ioctl()
        .withf(|_, req, _| *req == 0x0002_5006)
        .times(1)
        .returning(|_, _, a| {
            // SAFETY: the wrapper passes a domid_t.
            if unsafe { arg::<u16>(a) } == 4 {
                Ok(0)
            } else {
                Err(errno(libc::EINVAL))
            }
        });
    privcmd(m).restrict(DomId::new(4)).unwrap();
}

#[test]
fn dm_op_multiple_buffers() {
    let mut m = MockSys::new();
    m.expect_ioctl()
        .withf(|_, req, _| *req == IOCTL_PRIVCMD_DM_OP)
        .times(1)
        .returning(|_, _, a| {
            // SAFETY: the wrapper passes a PrivcmdDmOp whose ubufs has `num` entries.
            let op: PrivcmdDmOp = unsafe { arg(a) };
            assert_eq!((op.dom, op.num), (2, 2));
            // SAFETY: as above.
            let bufs = unsafe { std::slice::from_raw_parts(op.ubufs as *const PrivcmdDmOpBuf, 2) };
            assert_eq!(bufs[0].size, 32);
            assert_eq!(bufs[1].size, 16);
            // SAFETY: buffer 0 holds a 32-byte XenDmOp the caller lent for the call.
            let head = unsafe { &mut *(bufs[0].uptr as *mut XenDmOp) };
            assert_eq!(head.op, XEN_DMOP_MODIFIED_MEMORY);
            let mm: XenDmOpModifiedMemory = head.payload();
            assert_eq!(mm.nr_extents, 1);
            // SAFETY: buffer 1 holds one extent.
            let ext = unsafe { *(bufs[1].uptr as *const XenDmOpModifiedMemoryExtent) };
            assert_eq!((ext.nr, ext.first_pfn), (3, 0x1000));
            // Xen writes OUT fields back.
            *head = XenDmOp::new(
                XEN_DMOP_MODIFIED_MEMORY,
                &XenDmOpModifiedMemory {
                    nr_extents: 0,
                    opaque: 0,
                },
            );
            Ok(0)
        });
    let p = privcmd(m);
    let mut ext = XenDmOpModifiedMemoryExtent {
        nr: 3,
        pad: 0,
        first_pfn: 0x1000,
    };
    let out = p
        .dm_op_struct(
            DomId::new(2),
            XEN_DMOP_MODIFIED_MEMORY,
            &XenDmOpModifiedMemory {
                nr_extents: 1,
                opaque: 0,
            },
            &mut [ext.as_bytes_mut()],
        )
        .unwrap();
    assert_eq!(out.nr_extents, 0);
}

#[test]
fn dm_op_eperm() {
    let mut m = MockSys::new();
    m.expect_ioctl()
        .returning(|_, _, _| Err(errno(libc::EPERM)));
    let p = privcmd(m);
    let e = p
        .dm_op_struct(
            DomId::new(6),
            XEN_DMOP_NR_VCPUS,
            &XenDmOpNrVcpus::default(),
            &mut [],
        )
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::OnDomain {
                op: "DM_OP",
                domid,
                ..
            } if domid == DomId::new(6)
        ),
        "{e:?}"
    );
}

fn eventfd_case(err: i32) -> Error {
    let mut m = MockSys::new();
    m.expect_ioctl()
        .withf(|_, req, _| *req == 0x4018_5008)
        .returning(move |_, _, a| {
            // SAFETY: the wrapper passes a PrivcmdIrqfd.
            let i: PrivcmdIrqfd = unsafe { arg(a) };
            assert_eq!((i.dom, i.size, i.flags), (1, 32, 0));
            Err(errno(err))
        });
    let p = privcmd(m);
    let fd = null_fd();
    let op = XenDmOp::new(
        XEN_DMOP_SET_IRQ_LEVEL,
        &XenDmOpSetIrqLevel {
            irq: 5,
            level: 1,
            pad: [0; 3],
        },
    );
    p.irqfd(DomId::new(1), fd.as_fd(), op.as_bytes(), false)
        .unwrap_err()
}

#[test]
fn irqfd_enotty_is_unsupported_old_kernel() {
    let e = eventfd_case(libc::ENOTTY);
    assert!(
        matches!(
            e,
            Error::Unsupported {
                op: "IRQFD",
                reason: EVENTFD_UNKNOWN_IOCTL
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("Linux < 6.7"), "{e}");
}

#[test]
fn irqfd_eopnotsupp_is_unsupported_compiled_out() {
    let e = eventfd_case(libc::EOPNOTSUPP);
    assert!(
        matches!(
            e,
            Error::Unsupported {
                reason: EVENTFD_COMPILED_OUT,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn irqfd_other_errors_stay_errors() {
    let e = eventfd_case(libc::EINVAL);
    assert_eq!(e.errno(), Some(libc::EINVAL));
}

#[test]
fn ioeventfd_errors_and_marshalling() {
    for (err, reason) in [
        (libc::ENOTTY, EVENTFD_UNKNOWN_IOCTL),
        (libc::EOPNOTSUPP, EVENTFD_COMPILED_OUT),
    ] {
        let unmaps = Arc::new(AtomicUsize::new(0));
        let mut m = mock_with_memory(unmaps);
        m.expect_ioctl()
            .withf(|_, req, _| *req == IOCTL_PRIVCMD_MMAP_RESOURCE)
            .returning(|_, _, _| Ok(0));
        m.expect_ioctl()
            .withf(|_, req, _| *req == 0x4030_5009)
            .returning(move |_, _, a| {
                // SAFETY: the wrapper passes a PrivcmdIoeventfd.
                let e: PrivcmdIoeventfd = unsafe { arg(a) };
                assert_eq!(
                    (e.dom, e.vcpus, e.addr, e.addr_len, e.vq),
                    (3, 2, 0xfe00_0050, 4, 1)
                );
                assert_ne!(e.ioreq, 0);
                Err(errno(err))
            });
        let p = privcmd(m);
        let page = p
            .map_resource(DomId::new(3), Resource::IoreqServer(0), 1, 1, true)
            .unwrap();
        let fd = null_fd();
        // SAFETY: the mocked kernel refuses it, so nothing keeps the page.
        let e = unsafe {
            p.ioeventfd(
                DomId::new(3),
                &Ioeventfd {
                    ioreq_page: &page,
                    ports: &[10, 11],
                    addr: 0xfe00_0050,
                    addr_len: 4,
                    vq: 1,
                    eventfd: fd.as_fd(),
                },
                false,
            )
        }
        .unwrap_err();
        assert!(
            matches!(e, Error::Unsupported { op: "IOEVENTFD", reason: r } if r == reason),
            "{e:?}"
        );
    }
}

#[test]
fn domctl_version_probe_skips_eacces() {
    let unmaps = Arc::new(AtomicUsize::new(0));
    let mut m = mock_with_memory(unmaps);
    m.expect_ioctl().returning(|_, _, a| {
        // SAFETY: only hypercalls are issued here.
        let call: PrivcmdHypercall = unsafe { arg(a) };
        match call.op {
            // Unknown release: no preferred version.
            17 if call.arg[0] == 0 => Ok(0x0005_0000),
            17 => Ok(0),
            36 => {
                // SAFETY: the domctl buffer holds a XenDomctl.
                let d = unsafe { &mut *(call.arg[0] as *mut XenDomctl) };
                assert_eq!(d.cmd, XEN_DOMCTL_GETDOMAININFO);
                if d.interface_version == XEN_DOMCTL_INTERFACE_VERSION_4_18 {
                    d.set_arg(&XenDomctlGetdomaininfo {
                        domain: 0,
                        tot_pages: 10,
                        ..Default::default()
                    });
                    Ok(0)
                } else {
                    Err(errno(libc::EACCES))
                }
            }
            op => panic!("unexpected hypercall {op}"),
        }
    });
    let p = privcmd(m);
    assert_eq!(p.domctl_version().unwrap(), 0x16);
    let info = p.domain_info(DomId::DOM0).unwrap();
    assert_eq!(info.memory, 10 * 4096);
}

#[test]
fn domctl_version_none_accepted() {
    let unmaps = Arc::new(AtomicUsize::new(0));
    let mut m = mock_with_memory(unmaps);
    m.expect_ioctl().returning(|_, _, a| {
        // SAFETY: only hypercalls are issued here.
        let call: PrivcmdHypercall = unsafe { arg(a) };
        match call.op {
            17 if call.arg[0] == 0 => Ok(0x0004_0011),
            17 => Ok(0),
            _ => Err(errno(libc::EACCES)),
        }
    });
    let e = privcmd(m).domctl_version().unwrap_err();
    assert!(
        matches!(
            e,
            Error::InterfaceVersion {
                interface: "domctl",
                major: 4,
                minor: 17,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn domain_list_marshalling_and_state() {
    let unmaps = Arc::new(AtomicUsize::new(0));
    let mut m = mock_with_memory(unmaps);
    m.expect_ioctl().returning(|_, _, a| {
        // SAFETY: only hypercalls are issued here.
        let call: PrivcmdHypercall = unsafe { arg(a) };
        match call.op {
            17 if call.arg[0] == 0 => Ok(0x0004_0014),
            17 => Ok(0),
            35 => {
                // SAFETY: the sysctl buffer holds a XenSysctl.
                let s = unsafe { &mut *(call.arg[0] as *mut XenSysctl) };
                assert_eq!(s.interface_version, 0x15);
                match s.cmd {
                    XEN_SYSCTL_PHYSINFO => Ok(0),
                    XEN_SYSCTL_GETDOMAININFOLIST => {
                        let mut l: XenSysctlGetdomaininfolist = s.arg();
                        assert_eq!((l.first_domain, l.max_domains), (0, 64));
                        let doms = [
                            XenDomctlGetdomaininfo {
                                domain: 0,
                                flags: XEN_DOMINF_RUNNING,
                                tot_pages: 256,
                                nr_online_vcpus: 2,
                                max_vcpu_id: 1,
                                ..Default::default()
                            },
                            XenDomctlGetdomaininfo {
                                domain: 5,
                                flags: XEN_DOMINF_PAUSED | XEN_DOMINF_BLOCKED,
                                tot_pages: 512,
                                nr_online_vcpus: 1,
                                gpaddr_bits: 40,
                                ..Default::default()
                            },
                        ];
                        // SAFETY: the buffer has room for max_domains entries.
                        unsafe {
                            std::ptr::copy_nonoverlapping(
                                doms.as_ptr(),
                                l.buffer as *mut XenDomctlGetdomaininfo,
                                2,
                            )
                        };
                        l.num_domains = 2;
                        s.set_arg(&l);
                        Ok(0)
                    }
                    c => panic!("unexpected sysctl {c}"),
                }
            }
            op => panic!("unexpected hypercall {op}"),
        }
    });
    let p = privcmd(m);
    let d = p.domains().unwrap();
    assert_eq!(d.len(), 2);
    assert_eq!(
        (d[0].domid, d[0].memory, d[0].online_vcpus),
        (DomId::DOM0, 1 << 20, 2)
    );
    assert_eq!(d[0].state_string(), "r-----");
    assert_eq!(d[1].state_string(), "-bp---");
    assert_eq!(d[1].max_memory, 0);
    assert_eq!(d[1].gpaddr_bits, 40);
}

#[test]
fn buffer_uses_the_hypercall_device_when_present() {
    let mut m = MockSys::new();
    let dev = null_fd();
    let dev_raw = std::os::fd::AsRawFd::as_raw_fd(&dev);
    m.expect_mmap()
        .withf(move |_, len, prot, flags, fd, off| {
            *len == 8192
                && *prot == libc::PROT_READ | libc::PROT_WRITE
                && *flags == libc::MAP_SHARED
                && *fd == dev_raw
                && *off == 0
        })
        .times(1)
        .returning(|_, len, _, _, _, _| {
            // SAFETY: fresh anonymous mapping standing in for the device pages.
            unsafe {
                RealSys.mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            }
        });
    // No mlock: device pages need none.
    m.expect_mlock().times(0);
    m.expect_munmap().times(1).returning(|p, len| {
        // SAFETY: `p` came from the mmap above.
        unsafe { RealSys.munmap(p, len) }
    });
    let p = Privcmd::from_parts(null_fd(), Some(dev), m);
    assert!(p.has_hypercall_device());
    let mut buf = p.hypercall_buffer(4097).unwrap();
    assert_eq!(buf.len(), 8192);
    assert!(buf.as_slice().iter().all(|&b| b == 0));
    buf.write_at(8188, &0xdead_beefu32);
    assert_eq!(buf.read_at::<u32>(8188), 0xdead_beef);
}

#[test]
fn hvm_param_marshalling_and_range_check() {
    let unmaps = Arc::new(AtomicUsize::new(0));
    let mut m = mock_with_memory(unmaps);
    m.expect_ioctl().times(1).returning(|_, _, a| {
        // SAFETY: the wrapper passes a PrivcmdHypercall.
        let call: PrivcmdHypercall = unsafe { arg(a) };
        assert_eq!((call.op, call.arg[0]), (34, 1), "hvm_op get_param");
        // SAFETY: arg[1] is the hypercall buffer holding a XenHvmParam.
        let p = unsafe { &mut *(call.arg[1] as *mut crate::abi::xen::hvm::XenHvmParam) };
        assert_eq!((p.domid, p.index), (4, 1));
        p.value = 0xfeffc;
        Ok(0)
    });
    let p = privcmd(m);
    assert_eq!(p.hvm_param(DomId::new(4), 1).unwrap(), 0xfeffc);
    assert!(matches!(
        p.hvm_param(DomId::new(4), 999),
        Err(Error::InvalidArgument { .. })
    ));
}

#[test]
fn grant_table_size_reports_grant_status() {
    let unmaps = Arc::new(AtomicUsize::new(0));
    let mut m = mock_with_memory(unmaps);
    m.expect_ioctl().returning(|_, _, a| {
        // SAFETY: the wrapper passes a PrivcmdHypercall.
        let call: PrivcmdHypercall = unsafe { arg(a) };
        assert_eq!((call.op, call.arg[0], call.arg[2]), (20, 6, 1));
        // SAFETY: arg[1] is the hypercall buffer holding a GnttabQuerySize.
        let q =
            unsafe { &mut *(call.arg[1] as *mut crate::abi::xen::grant_table::GnttabQuerySize) };
        if q.dom == 1 {
            q.nr_frames = 1;
            q.max_nr_frames = 64;
        } else {
            q.status = crate::abi::xen::grant_table::GNTST_BAD_DOMAIN;
        }
        Ok(0)
    });
    let p = privcmd(m);
    let s = p.grant_table_size(DomId::new(1)).unwrap();
    assert_eq!((s.nr_frames, s.max_nr_frames), (1, 64));
    let e = p.grant_table_size(DomId::new(9)).unwrap_err();
    assert!(e.to_string().contains("grant status -2"), "{e}");
}

#[test]
fn ioeventfd_support_is_probed_by_a_deassign_of_no_eventfd() {
    for (err, supported) in [
        (libc::ENOTTY, false),
        (libc::EOPNOTSUPP, false),
        (libc::EBADF, true),
        (libc::EPERM, true),
    ] {
        let mut m = MockSys::new();
        m.expect_ioctl()
            .withf(|_, req, _| *req == IOCTL_PRIVCMD_IOEVENTFD)
            .times(1)
            .returning(move |_, _, a| {
                // SAFETY: the wrapper passes a PrivcmdIoeventfd.
                let e: PrivcmdIoeventfd = unsafe { arg(a) };
                assert_eq!(
                    e.flags, PRIVCMD_IOEVENTFD_FLAG_DEASSIGN,
                    "only ever a deassign"
                );
                assert_eq!((e.dom, e.event_fd), (7, u32::MAX));
                Err(errno(err))
            });
        let p = privcmd(m);
        assert_eq!(
            p.ioeventfd_supported(DomId::new(7)).unwrap(),
            supported,
            "errno {err}"
        );
    }
}

/// A privcmd whose domctls go to `handle`, past the interface version probe (answered with
/// success) and `xen_version` (answered 0).
fn domctl_privcmd(
    handle: impl Fn(&mut XenDomctl) -> io::Result<i32> + Send + Sync + 'static,
) -> Privcmd<MockSys> {
    let unmaps = Arc::new(AtomicUsize::new(0));
    let mut m = mock_with_memory(unmaps);
    m.expect_ioctl().returning(move |_, _, a| {
        // SAFETY: only hypercalls are issued here.
        let call: PrivcmdHypercall = unsafe { arg(a) };
        match call.op {
            17 => Ok(0),
            36 => {
                // SAFETY: the domctl buffer holds a XenDomctl.
                let d = unsafe { &mut *(call.arg[0] as *mut XenDomctl) };
                if d.cmd == XEN_DOMCTL_GETDOMAININFO {
                    // The interface version probe.
                    return Ok(0);
                }
                handle(d)
            }
            op => panic!("unexpected hypercall {op}"),
        }
    });
    privcmd(m)
}

#[test]
fn vcpu_context_reads_the_context_xen_writes() {
    use crate::abi::xen::arch_arm::VcpuGuestContext;
    let p = domctl_privcmd(|d| {
        assert_eq!((d.cmd, d.domain), (XEN_DOMCTL_GETVCPUCONTEXT, 7));
        let v: XenDomctlVcpucontext = d.arg();
        if v.vcpu == 1 {
            return Err(errno(libc::ENODATA));
        }
        assert_eq!(v.vcpu, 0);
        // SAFETY: ctxt is the hypercall buffer, sized for a VcpuGuestContext.
        let c = unsafe { &mut *(v.ctxt as *mut VcpuGuestContext) };
        c.user_regs.pc64 = 0x4000_0000;
        c.sctlr = 0xc5_0078;
        Ok(0)
    });
    let c: VcpuGuestContext = p.vcpu_context(DomId::new(7), 0).unwrap();
    assert_eq!((c.user_regs.pc64, c.sctlr), (0x4000_0000, 0xc5_0078));
    let e = p
        .vcpu_context::<VcpuGuestContext>(DomId::new(7), 1)
        .unwrap_err();
    assert_eq!(e.errno(), Some(libc::ENODATA));
}

#[test]
fn yield_vcpu_is_sched_op_yield() {
    let mut m = MockSys::new();
    m.expect_ioctl().times(2).returning(|_, _, a| {
        // SAFETY: the wrapper passes a PrivcmdHypercall.
        let call: PrivcmdHypercall = unsafe { arg(a) };
        assert_eq!((call.op, call.arg), (29, [0; 5]), "sched_op(SCHEDOP_yield)");
        static CALLS: AtomicUsize = AtomicUsize::new(0);
        if CALLS.fetch_add(1, Ordering::SeqCst) == 0 {
            Ok(0)
        } else {
            Err(errno(libc::EPERM))
        }
    });
    let p = privcmd(m);
    p.yield_vcpu().unwrap();
    assert_eq!(p.yield_vcpu().unwrap_err().errno(), Some(libc::EPERM));
}

#[test]
fn vuart_init_asks_for_a_vpl011_and_returns_the_port_xen_writes() {
    let p = domctl_privcmd(|d| {
        assert_eq!((d.cmd, d.domain), (XEN_DOMCTL_VUART_OP, 9));
        let mut v: XenDomctlVuartOp = d.arg();
        assert_eq!(
            (v.cmd, v.vuart_type, v.gfn, v.console_domid),
            (
                XEN_DOMCTL_VUART_OP_INIT,
                XEN_DOMCTL_VUART_TYPE_VPL011,
                0x39003,
                0
            )
        );
        v.evtchn = 5;
        d.set_arg(&v);
        Ok(0)
    });
    assert_eq!(
        p.vuart_init(DomId::new(9), 0x39003, DomId::DOM0).unwrap(),
        5
    );
}
