// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Safe wrapper of `/dev/xen/privcmd`: hypercalls, foreign mappings, resources, dm_op,
//! restriction, irqfd and ioeventfd.
//!
//! [`Privcmd`] is generic over the [`Sys`] seam (default [`RealSys`]) so every ioctl it makes
//! can be checked in unit tests. Hypercall arguments that Xen reads or writes live in
//! [`HypercallBuffer`]s: pages of `/dev/xen/hypercall` when the kernel offers it (memory the
//! hypervisor can always touch), else locked anonymous pages.
//!
//! Typed helpers on top ([`Privcmd::xen_version`], [`Privcmd::physinfo`],
//! [`Privcmd::domains`], ...) live in the `info` submodule and pick the domctl/sysctl interface
//! version of the running Xen at run time.
//!
//! ```no_run
//! use xen_bindings::privcmd::Privcmd;
//!
//! let privcmd = Privcmd::open()?;
//! let v = privcmd.xen_version()?;
//! println!("Xen {}.{}{}", v.major, v.minor, v.extra);
//! # Ok::<(), xen_bindings::privcmd::Error>(())
//! ```

mod buffer;
mod build;
mod error;
mod hvm;
mod info;
mod mapping;
mod resource;
#[cfg(test)]
mod tests;

use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::{Arc, OnceLock};

use crate::abi::linux::privcmd::*;
use crate::abi::xen::dm_op::XenDmOp;
use crate::abi::Pod;
use crate::sys::{RealSys, Sys};
use crate::{DomId, XEN_PAGE_SIZE};

pub use buffer::HypercallBuffer;
pub use build::DomainConfig;
pub use error::{Error, Result};
pub use hvm::GrantTableSize;
pub use info::{DomainFlags, DomainInfo, PhysCaps, PhysInfo, XenVersion};
pub use mapping::{ForeignMapping, Mapping, ResourceMapping};
pub use resource::Resource;

/// What a kernel ioeventfd registration ([`Privcmd::ioeventfd`]) is made of.
#[derive(Debug)]
pub struct Ioeventfd<'a, S: Sys = RealSys> {
    /// The IOREQ server's synchronous-ioreq page, mapped with [`Privcmd::map_resource`].
    pub ioreq_page: &'a ResourceMapping<S>,
    /// The server's per-vCPU event channels (local ports), one per vCPU.
    pub ports: &'a [u32],
    /// The guest-physical address of the virtio-mmio queue-notify register.
    pub addr: u64,
    /// The length of the write the kernel completes.
    pub addr_len: u32,
    /// The virtqueue whose notifications signal `eventfd`.
    pub vq: u32,
    /// The eventfd the kernel signals.
    pub eventfd: BorrowedFd<'a>,
}

// Manual: a derive would require `S: Clone`, yet only references are copied.
impl<S: Sys> Clone for Ioeventfd<'_, S> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<S: Sys> Copy for Ioeventfd<'_, S> {}

/// Path of the privcmd device.
pub const PRIVCMD_PATH: &str = "/dev/xen/privcmd";
/// Path of the hypercall-buffer device (Linux 4.18+).
pub const HYPERCALL_PATH: &str = "/dev/xen/hypercall";

/// Why irqfd/ioeventfd are unavailable when the kernel does not know the ioctl.
pub const EVENTFD_UNKNOWN_IOCTL: &str = "kernel does not know the ioctl (Linux < 6.7)";
/// Why irqfd/ioeventfd are unavailable when the kernel has them compiled out.
pub const EVENTFD_COMPILED_OUT: &str = "compiled out: CONFIG_XEN_PRIVCMD_EVENTFD not set";

/// An open `/dev/xen/privcmd`.
#[derive(Debug)]
pub struct Privcmd<S: Sys = RealSys> {
    fd: OwnedFd,
    hypercall_fd: Option<OwnedFd>,
    sys: Arc<S>,
    domctl_version: OnceLock<u32>,
    sysctl_version: OnceLock<u32>,
}

fn open_dev(path: &'static str) -> io::Result<OwnedFd> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)?;
    Ok(f.into())
}

impl Privcmd<RealSys> {
    /// Opens `/dev/xen/privcmd` (and `/dev/xen/hypercall` if present).
    pub fn open() -> Result<Self> {
        let fd = open_dev(PRIVCMD_PATH).map_err(|source| Error::Open {
            path: PRIVCMD_PATH,
            source,
        })?;
        // Older kernels lack the hypercall device: buffers then come from locked anonymous
        // memory, which works as long as the pages stay resident.
        let hypercall_fd = open_dev(HYPERCALL_PATH).ok();
        Ok(Self::from_parts(fd, hypercall_fd, RealSys))
    }
}

impl<S: Sys> Privcmd<S> {
    /// Builds a `Privcmd` from an open privcmd fd, an optional hypercall-buffer fd and a seam.
    pub fn from_parts(fd: OwnedFd, hypercall_fd: Option<OwnedFd>, sys: S) -> Self {
        Self {
            fd,
            hypercall_fd,
            sys: Arc::new(sys),
            domctl_version: OnceLock::new(),
            sysctl_version: OnceLock::new(),
        }
    }

    /// The privcmd file descriptor.
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.fd.as_fd()
    }

    /// Whether hypercall buffers come from `/dev/xen/hypercall`.
    pub fn has_hypercall_device(&self) -> bool {
        self.hypercall_fd.is_some()
    }

    /// Runs an ioctl on the privcmd fd with `arg` as argument.
    ///
    /// # Safety
    ///
    /// `T` must be the argument struct that `request` encodes (the kernel reads and writes
    /// that many bytes at `arg`), and every address inside `arg` must point to memory the
    /// kernel may read or write for that request for the duration of the call (the kernel
    /// checks that such memory is mapped, not what it belongs to).
    unsafe fn ioctl<T>(&self, op: &'static str, request: u32, arg: &mut T) -> Result<i32> {
        // SAFETY: `arg` is a live, exclusively borrowed `T`, the struct `request` encodes
        // (this function's contract), with addresses its caller vouched for.
        unsafe {
            self.sys
                .ioctl(self.fd.as_raw_fd(), request, (arg as *mut T).cast())
        }
        .map_err(|source| Error::Ioctl { op, source })
    }

    /// Allocates a zeroed hypercall buffer of at least `len` bytes (rounded up to pages).
    pub fn hypercall_buffer(&self, len: usize) -> Result<HypercallBuffer<S>> {
        HypercallBuffer::new(
            self.sys.clone(),
            self.hypercall_fd.as_ref().map(|f| f.as_raw_fd()),
            len,
        )
    }

    /// Issues a hypercall through `IOCTL_PRIVCMD_HYPERCALL` and returns its non-negative result.
    ///
    /// # Safety
    ///
    /// Arguments that Xen interprets as addresses must point into memory Xen may read or write
    /// for that op (normally a [`HypercallBuffer`]) and that nothing else uses meanwhile: the
    /// hypervisor writes there without Rust knowing.
    pub unsafe fn hypercall(&self, op: u64, args: [u64; 5]) -> Result<i64> {
        let mut call = PrivcmdHypercall { op, arg: args };
        // SAFETY: a PrivcmdHypercall for IOCTL_PRIVCMD_HYPERCALL; the addresses among the
        // arguments are this function's caller's to vouch for (its contract).
        unsafe { self.ioctl("hypercall", IOCTL_PRIVCMD_HYPERCALL, &mut call) }
            .map(i64::from)
            .map_err(|e| match e {
                Error::Ioctl { source, .. } => Error::Hypercall {
                    op,
                    subop: args[0],
                    source,
                },
                e => e,
            })
    }

    /// Issues hypercall `op` with sub-op `cmd` and one argument struct `arg` placed in a
    /// hypercall buffer; copies the struct back after the call (Xen may have written to it).
    ///
    /// # Safety
    ///
    /// Sub-op `cmd` of `op` must take a `T` (at most a page) as its only address argument, and
    /// any addresses inside `arg` must satisfy the rules of [`Privcmd::hypercall`].
    pub unsafe fn hypercall_with<T: Pod>(&self, op: u64, cmd: u64, arg: &mut T) -> Result<i64> {
        let mut buf = self.hypercall_buffer(std::mem::size_of::<T>())?;
        buf.write_at(0, arg);
        // SAFETY: the only address argument is the hypercall buffer holding a `T`, which is
        // what sub-op `cmd` of `op` reads/writes (guaranteed by the caller).
        let ret = unsafe { self.hypercall(op, [cmd, buf.addr(), 0, 0, 0]) };
        *arg = buf.read_at(0);
        ret
    }

    fn map_area(&self, op: &'static str, pages: usize, writable: bool) -> Result<Mapping<S>> {
        if pages == 0 {
            return Err(Error::InvalidArgument {
                op,
                what: "zero pages".into(),
            });
        }
        let len = pages
            .checked_mul(XEN_PAGE_SIZE)
            .ok_or_else(|| Error::InvalidArgument {
                op,
                what: format!("{pages} pages overflow the address space"),
            })?;
        let prot = libc::PROT_READ | if writable { libc::PROT_WRITE } else { 0 };
        // SAFETY: a fresh shared mapping of the privcmd fd at an address the kernel picks; it
        // replaces nothing.
        let addr = unsafe {
            self.sys.mmap(
                std::ptr::null_mut(),
                len,
                prot,
                libc::MAP_SHARED,
                self.fd.as_raw_fd(),
                0,
            )
        }
        .map_err(|source| Error::Mmap { op, pages, source })?;
        Ok(Mapping::new(self.sys.clone(), addr.cast(), len, Vec::new()))
    }

    /// Maps the guest frames `gfns` of domain `domid` (`IOCTL_PRIVCMD_MMAPBATCH_V2`).
    ///
    /// The mapping succeeds as a whole if the kernel accepted the batch; pages Xen refused carry
    /// their errno in [`ForeignMapping::page_errors`] (and must not be accessed). A failure of
    /// the whole call (bad domain, permission) is an error and leaves nothing mapped.
    pub fn map_foreign(
        &self,
        domid: DomId,
        gfns: &[u64],
        writable: bool,
    ) -> Result<ForeignMapping<S>> {
        let mut errs = vec![0i32; gfns.len()];
        let mut mapping = self.map_foreign_into(domid, gfns, writable, &mut errs)?;
        mapping.set_page_errors(errs);
        Ok(mapping)
    }

    /// [`Self::map_foreign`] with the per-page results written to `errs` (one per frame: 0,
    /// or a negative errno for a page that must not be touched) instead of being kept in the
    /// mapping, whose [`ForeignMapping::page_errors`] is then empty. It allocates nothing,
    /// which is what a caller that maps in a loop with its own error array wants (the calling
    /// convention of libxenforeignmemory's map).
    pub fn map_foreign_into(
        &self,
        domid: DomId,
        gfns: &[u64],
        writable: bool,
        errs: &mut [i32],
    ) -> Result<ForeignMapping<S>> {
        const OP: &str = "MMAPBATCH_V2";
        let num = u32::try_from(gfns.len()).map_err(|_| Error::InvalidArgument {
            op: OP,
            what: format!("{} frames", gfns.len()),
        })?;
        if errs.len() != gfns.len() {
            return Err(Error::InvalidArgument {
                op: OP,
                what: format!("{} error slots for {} frames", errs.len(), gfns.len()),
            });
        }
        let mapping = self.map_area(OP, gfns.len(), writable)?;
        let mut batch = PrivcmdMmapbatchV2 {
            num,
            dom: domid.get(),
            _pad: 0,
            addr: mapping.as_ptr() as u64,
            arr: gfns.as_ptr() as u64,
            err: errs.as_mut_ptr() as u64,
        };
        // SAFETY: a PrivcmdMmapbatchV2 for IOCTL_PRIVCMD_MMAPBATCH_V2: `addr` is the fresh
        // mapping of exactly `num` pages, `arr` and `err` slices of `num` entries (checked
        // above) that live across the call.
        match unsafe { self.ioctl(OP, IOCTL_PRIVCMD_MMAPBATCH_V2, &mut batch) } {
            Ok(_) => {}
            // ENOENT: the call went through but some frames failed (paged out or absent); the
            // error array says which.
            Err(Error::Ioctl { source, .. }) if source.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(e.with_domain(domid)),
        }
        Ok(mapping)
    }

    /// The number of frames of a resource (`IOCTL_PRIVCMD_MMAP_RESOURCE` with no mapping).
    pub fn resource_size(&self, domid: DomId, resource: Resource) -> Result<u64> {
        let (res_type, id) = resource.raw();
        let mut res = PrivcmdMmapResource {
            dom: domid.get(),
            type_: res_type,
            id,
            ..Default::default()
        };
        // SAFETY: a PrivcmdMmapResource for IOCTL_PRIVCMD_MMAP_RESOURCE with no address: the
        // kernel only writes the resource's size into it.
        unsafe { self.ioctl("MMAP_RESOURCE(size)", IOCTL_PRIVCMD_MMAP_RESOURCE, &mut res) }
            .map_err(|e| e.with_domain(domid))?;
        Ok(res.num)
    }

    /// Maps `nr_frames` frames of a resource of `domid` from frame index `frame`
    /// (`IOCTL_PRIVCMD_MMAP_RESOURCE`), e.g. an IOREQ server's pages or a grant table.
    pub fn map_resource(
        &self,
        domid: DomId,
        resource: Resource,
        frame: u64,
        nr_frames: u64,
        writable: bool,
    ) -> Result<ResourceMapping<S>> {
        const OP: &str = "MMAP_RESOURCE";
        let (res_type, id) = resource.raw();
        let idx = u32::try_from(frame).map_err(|_| Error::InvalidArgument {
            op: OP,
            what: format!("frame index {frame:#x} does not fit 32 bits"),
        })?;
        let pages = usize::try_from(nr_frames).map_err(|_| Error::InvalidArgument {
            op: OP,
            what: format!("{nr_frames} frames"),
        })?;
        let mapping = self.map_area(OP, pages, writable)?;
        let mut res = PrivcmdMmapResource {
            dom: domid.get(),
            _pad: 0,
            type_: res_type,
            id,
            idx,
            num: nr_frames,
            addr: mapping.as_ptr() as u64,
        };
        // SAFETY: a PrivcmdMmapResource for IOCTL_PRIVCMD_MMAP_RESOURCE whose `addr` is the
        // fresh privcmd mapping of exactly `num` pages, which outlives the call.
        unsafe { self.ioctl(OP, IOCTL_PRIVCMD_MMAP_RESOURCE, &mut res) }
            .map_err(|e| e.with_domain(domid))?;
        Ok(mapping)
    }

    /// Runs a device-model operation made of several buffers (`IOCTL_PRIVCMD_DM_OP`).
    ///
    /// The first buffer must start with a [`XenDmOp`]; Xen reads and may write all of them.
    pub fn dm_op(&self, domid: DomId, bufs: &mut [&mut [u8]]) -> Result<()> {
        const OP: &str = "DM_OP";
        let num = u16::try_from(bufs.len()).map_err(|_| Error::InvalidArgument {
            op: OP,
            what: format!("{} buffers", bufs.len()),
        })?;
        let descs: Vec<PrivcmdDmOpBuf> = bufs
            .iter_mut()
            .map(|b| PrivcmdDmOpBuf {
                uptr: b.as_mut_ptr() as u64,
                size: b.len() as u64,
            })
            .collect();
        let mut arg = PrivcmdDmOp {
            dom: domid.get(),
            num,
            _pad: 0,
            ubufs: descs.as_ptr() as u64,
        };
        // SAFETY: a PrivcmdDmOp for IOCTL_PRIVCMD_DM_OP: `ubufs` points to `num` descriptors,
        // each of a buffer exclusively borrowed for the call.
        unsafe { self.ioctl(OP, IOCTL_PRIVCMD_DM_OP, &mut arg) }
            .map(|_| ())
            .map_err(|e| e.with_domain(domid))
    }

    /// Runs dm_op `op` with argument struct `arg` (plus optional extra buffers) and returns the
    /// struct as Xen left it (for ops with OUT fields).
    pub fn dm_op_struct<T: Pod>(
        &self,
        domid: DomId,
        op: u32,
        arg: &T,
        extra: &mut [&mut [u8]],
    ) -> Result<T> {
        if std::mem::size_of::<T>() > 24 {
            return Err(Error::InvalidArgument {
                op: "DM_OP",
                what: format!("argument of op {op} larger than the dm_op union"),
            });
        }
        let mut head = XenDmOp::new(op, arg);
        let mut bufs: Vec<&mut [u8]> = Vec::with_capacity(1 + extra.len());
        bufs.push(head.as_bytes_mut());
        for b in extra.iter_mut() {
            bufs.push(b);
        }
        self.dm_op(domid, &mut bufs)?;
        Ok(head.payload())
    }

    /// Restricts this fd to operations on `domid` (`IOCTL_PRIVCMD_RESTRICT`). Irreversible.
    pub fn restrict(&self, domid: DomId) -> Result<()> {
        let mut dom: u16 = domid.get();
        // SAFETY: IOCTL_PRIVCMD_RESTRICT takes a domid_t (a u16).
        unsafe { self.ioctl("RESTRICT", IOCTL_PRIVCMD_RESTRICT, &mut dom) }
            .map(|_| ())
            .map_err(|e| e.with_domain(domid))
    }

    fn eventfd_error(op: &'static str, e: Error, domid: DomId) -> Error {
        match e {
            Error::Ioctl { source, .. } if source.raw_os_error() == Some(libc::ENOTTY) => {
                Error::Unsupported {
                    op,
                    reason: EVENTFD_UNKNOWN_IOCTL,
                }
            }
            Error::Ioctl { source, .. } if source.raw_os_error() == Some(libc::EOPNOTSUPP) => {
                Error::Unsupported {
                    op,
                    reason: EVENTFD_COMPILED_OUT,
                }
            }
            e => e.with_domain(domid),
        }
    }

    /// Binds (or with `deassign`, unbinds) `eventfd` so that each signal runs the dm_op in
    /// `dm_op` (a [`XenDmOp`] buffer, copied by the kernel) on `domid` (`IOCTL_PRIVCMD_IRQFD`,
    /// Linux 6.7+ ABI).
    pub fn irqfd(
        &self,
        domid: DomId,
        eventfd: BorrowedFd<'_>,
        dm_op: &[u8],
        deassign: bool,
    ) -> Result<()> {
        const OP: &str = "IRQFD";
        let size = u32::try_from(dm_op.len()).map_err(|_| Error::InvalidArgument {
            op: OP,
            what: format!("dm_op of {} bytes", dm_op.len()),
        })?;
        let mut arg = PrivcmdIrqfd {
            dm_op: dm_op.as_ptr() as u64,
            size,
            fd: eventfd.as_raw_fd() as u32,
            flags: if deassign {
                PRIVCMD_IRQFD_FLAG_DEASSIGN
            } else {
                0
            },
            dom: domid.get(),
            pad: [0; 2],
        };
        // SAFETY: a PrivcmdIrqfd for IOCTL_PRIVCMD_IRQFD: `dm_op` points to `size` bytes
        // borrowed for the call (the kernel copies them).
        unsafe { self.ioctl(OP, IOCTL_PRIVCMD_IRQFD, &mut arg) }
            .map(|_| ())
            .map_err(|e| Self::eventfd_error(OP, e, domid))
    }

    /// Whether this kernel's privcmd has `IOCTL_PRIVCMD_IOEVENTFD` (Linux 6.7+ built with
    /// `CONFIG_XEN_PRIVCMD_EVENTFD`), asked without side effects: the deassignment of no
    /// eventfd for `domid`. A kernel that has the ioctl refuses it for the descriptor (or, on
    /// a handle restricted to another domain, for the domain); one that has not refuses it
    /// as an unknown or compiled-out ioctl. Lets a caller choose its path before it sets
    /// anything up for the kernel's.
    pub fn ioeventfd_supported(&self, domid: DomId) -> Result<bool> {
        const OP: &str = "IOEVENTFD";
        let mut arg = PrivcmdIoeventfd {
            // No descriptor: the kernel looks the eventfd up first and fails with EBADF.
            event_fd: u32::MAX,
            flags: PRIVCMD_IOEVENTFD_FLAG_DEASSIGN,
            dom: domid.get(),
            ..PrivcmdIoeventfd::default()
        };
        // SAFETY: a PrivcmdIoeventfd for IOCTL_PRIVCMD_IOEVENTFD; a deassignment holds no
        // addresses (both are 0, and the kernel fails on the descriptor first).
        match unsafe { self.ioctl(OP, IOCTL_PRIVCMD_IOEVENTFD, &mut arg) } {
            Ok(_) => Ok(true),
            Err(e) => match Self::eventfd_error(OP, e, domid) {
                Error::Unsupported { .. } => Ok(false),
                Error::OnDomain { .. } | Error::Ioctl { .. } => Ok(true),
                e => Err(e),
            },
        }
    }

    /// Lets the kernel complete virtio-mmio queue-notify writes of `domid` described by `arg`
    /// by signalling its eventfd (`IOCTL_PRIVCMD_IOEVENTFD`, Linux 6.7+); with `deassign`,
    /// takes that registration back.
    ///
    /// # Safety
    ///
    /// An assignment hands the kernel the page behind `arg.ioreq_page`: privcmd takes it from
    /// the mapping (the backing page an auto-translated dom0, Arm or x86 PVH, has) and its
    /// handler writes to it on every request of `domid` until the registration is
    /// deassigned (a call with `deassign`). It is not pinned: privcmd frees it when the
    /// mapping goes. So every registration must be deassigned before `ioreq_page` is
    /// dropped, and no assignment may be made in an x86 PV dom0, where the mapping has no
    /// such page and privcmd would take something else for it. (A deassignment, and a call
    /// the kernel refuses, leave nothing behind.)
    pub unsafe fn ioeventfd(
        &self,
        domid: DomId,
        arg: &Ioeventfd<'_, S>,
        deassign: bool,
    ) -> Result<()> {
        const OP: &str = "IOEVENTFD";
        let Ioeventfd {
            ioreq_page,
            ports,
            addr,
            addr_len,
            vq,
            eventfd,
        } = *arg;
        let vcpus = u32::try_from(ports.len()).map_err(|_| Error::InvalidArgument {
            op: OP,
            what: format!("{} ports", ports.len()),
        })?;
        let mut arg = PrivcmdIoeventfd {
            ioreq: ioreq_page.as_ptr() as u64,
            ports: ports.as_ptr() as u64,
            addr,
            addr_len,
            event_fd: eventfd.as_raw_fd() as u32,
            vcpus,
            vq,
            flags: if deassign {
                PRIVCMD_IOEVENTFD_FLAG_DEASSIGN
            } else {
                0
            },
            dom: domid.get(),
            pad: [0; 2],
        };
        // SAFETY: a PrivcmdIoeventfd for IOCTL_PRIVCMD_IOEVENTFD: `ports` is a slice of `vcpus`
        // ports borrowed for the call, and what the kernel keeps of `ioreq` after it is this
        // function's caller's to keep valid (its contract).
        unsafe { self.ioctl(OP, IOCTL_PRIVCMD_IOEVENTFD, &mut arg) }
            .map(|_| ())
            .map_err(|e| Self::eventfd_error(OP, e, domid))
    }
}
