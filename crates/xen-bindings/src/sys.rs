// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The seam at the syscall edge.
//!
//! Every device wrapper of this crate reaches the kernel only through the [`Sys`] trait, so unit
//! tests can replace the kernel by a mock (`MockSys`, generated with mockall in test builds) and
//! check which ioctl number and which argument bytes a wrapper passes, and how it handles each
//! errno, without a Xen host. [`RealSys`] is the implementation over libc that everything uses by
//! default.
//!
//! The module also holds the Linux `_IOC` encoding as `const fn`s ([`ioc`], [`io()`], [`ior`],
//! [`iow`], [`iowr`]) so ioctl numbers can be written as constants next to their structs.

use std::io;
use std::os::fd::RawFd;

use libc::c_void;

/// Access to the system calls used by the device wrappers.
///
/// The methods mirror the libc calls of the same names, except that failures come back as
/// [`io::Error`] carrying the errno instead of `-1`.
///
/// # Safety for callers
///
/// The methods are `unsafe` because they take raw pointers that the kernel (or the mock) reads or
/// writes: the caller promises what the libc call would require (valid, suitably sized buffers that
/// live for the duration of the call; for [`Sys::mmap`]/[`Sys::munmap`], ranges that nothing else
/// in the program owns).
#[cfg_attr(test, mockall::automock)]
pub trait Sys: Send + Sync {
    /// `ioctl(fd, request, arg)`; returns the non-negative return value of the ioctl.
    ///
    /// # Safety
    ///
    /// `arg` must be what `request` expects: a pointer to a valid, live object of the encoded
    /// size (or larger for variable-length requests), or an integer for requests taking one.
    unsafe fn ioctl(&self, fd: RawFd, request: u32, arg: *mut c_void) -> io::Result<i32>;

    /// `mmap(addr, len, prot, flags, fd, offset)`; returns the mapped address.
    ///
    /// # Safety
    ///
    /// With `MAP_FIXED`, `[addr, addr + len)` must be a range the caller owns and may replace.
    unsafe fn mmap(
        &self,
        addr: *mut c_void,
        len: usize,
        prot: i32,
        flags: i32,
        fd: RawFd,
        offset: i64,
    ) -> io::Result<*mut c_void>;

    /// `munmap(addr, len)`.
    ///
    /// # Safety
    ///
    /// `[addr, addr + len)` must be a mapping the caller owns and no longer uses.
    unsafe fn munmap(&self, addr: *mut c_void, len: usize) -> io::Result<()>;

    /// `mlock(addr, len)`: keeps the pages resident (used for hypercall buffers).
    ///
    /// # Safety
    ///
    /// `[addr, addr + len)` must be memory the caller owns.
    unsafe fn mlock(&self, addr: *const c_void, len: usize) -> io::Result<()>;

    /// `read(fd, buf, len)`; returns the number of bytes read.
    ///
    /// # Safety
    ///
    /// `buf` must be valid for writes of `len` bytes.
    unsafe fn read(&self, fd: RawFd, buf: *mut u8, len: usize) -> io::Result<usize>;

    /// `write(fd, buf, len)`; returns the number of bytes written.
    ///
    /// # Safety
    ///
    /// `buf` must be valid for reads of `len` bytes.
    unsafe fn write(&self, fd: RawFd, buf: *const u8, len: usize) -> io::Result<usize>;
}

/// The real system calls, through libc.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RealSys;

/// Turns a libc `-1` return into the errno as an [`io::Error`].
fn check(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// A system call of three arguments, made directly: ioctl, read and write of the event channel
/// and privcmd are on every IOREQ's path, and glibc's wrappers of them cost more than the call's
/// own instructions (read and write are pthread cancellation points: in a process with more
/// than one thread, each call switches asynchronous cancellation on and off around the system
/// call; ioctl is variadic). Nothing in Rust cancels threads.
///
/// # Safety
///
/// The arguments must be what system call `nr` expects (buffers valid for the call's accesses).
#[inline]
unsafe fn syscall3(
    nr: libc::c_long,
    a: libc::c_long,
    b: libc::c_long,
    c: libc::c_long,
) -> io::Result<libc::c_long> {
    let ret: libc::c_long;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the Linux x86_64 system call convention: number in rax, arguments in rdi, rsi,
    // rdx, result in rax; the instruction overwrites rcx and r11 and nothing else, and does not
    // touch the stack. The caller vouches for the arguments; memory is not declared untouched,
    // so the kernel's writes to buffers are seen.
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") nr => ret,
            in("rdi") a,
            in("rsi") b,
            in("rdx") c,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: the Linux arm64 system call convention: number in x8, arguments in x0 to x2,
    // result in x0; nothing else is changed. As above for the arguments and memory.
    unsafe {
        std::arch::asm!(
            "svc 0",
            in("x8") nr,
            inlateout("x0") a => ret,
            in("x1") b,
            in("x2") c,
            options(nostack),
        );
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        // SAFETY: as the caller vouches; syscall(2) returns -1 and sets errno on failure.
        return check(unsafe { libc::syscall(nr, a, b, c) });
    }
    // The kernel returns -errno, from -4095 to -1, on failure.
    #[allow(unreachable_code)]
    if (-4095..0).contains(&ret) {
        Err(errno_error(ret))
    } else {
        Ok(ret)
    }
}

/// The error of a system call that returned `ret`, a negated errno. Out of line: inline, the
/// error's representation was computed on the success path too, before the test chose it.
#[cold]
#[inline(never)]
fn errno_error(ret: libc::c_long) -> io::Error {
    io::Error::from_raw_os_error(-ret as i32)
}

impl Sys for RealSys {
    #[inline]
    unsafe fn ioctl(&self, fd: RawFd, request: u32, arg: *mut c_void) -> io::Result<i32> {
        // SAFETY: the caller guarantees `arg` matches `request` (see the trait's contract). The
        // kernel reads the request as an unsigned int, zero-extended here.
        let ret = unsafe {
            syscall3(
                libc::SYS_ioctl,
                fd.into(),
                request.into(),
                arg as libc::c_long,
            )
        };
        ret.map(|r| r as i32)
    }

    unsafe fn mmap(
        &self,
        addr: *mut c_void,
        len: usize,
        prot: i32,
        flags: i32,
        fd: RawFd,
        offset: i64,
    ) -> io::Result<*mut c_void> {
        // SAFETY: the caller guarantees the range rules of the trait's contract; the kernel
        // validates everything else and reports errors through errno.
        let ptr = unsafe { libc::mmap(addr, len, prot, flags, fd, offset as libc::off_t) };
        if ptr == libc::MAP_FAILED {
            Err(io::Error::last_os_error())
        } else {
            Ok(ptr)
        }
    }

    unsafe fn munmap(&self, addr: *mut c_void, len: usize) -> io::Result<()> {
        // SAFETY: the caller owns the mapping and no longer uses it.
        check(unsafe { libc::munmap(addr, len) }.into()).map(|_| ())
    }

    unsafe fn mlock(&self, addr: *const c_void, len: usize) -> io::Result<()> {
        // SAFETY: mlock does not touch memory contents; the caller owns the range.
        check(unsafe { libc::mlock(addr, len) }.into()).map(|_| ())
    }

    #[inline]
    unsafe fn read(&self, fd: RawFd, buf: *mut u8, len: usize) -> io::Result<usize> {
        // SAFETY: the caller guarantees `buf` is writable for `len` bytes.
        let ret = unsafe { syscall3(libc::SYS_read, fd.into(), buf as libc::c_long, len as _) };
        ret.map(|n| n as usize)
    }

    #[inline]
    unsafe fn write(&self, fd: RawFd, buf: *const u8, len: usize) -> io::Result<usize> {
        // SAFETY: the caller guarantees `buf` is readable for `len` bytes.
        let ret = unsafe { syscall3(libc::SYS_write, fd.into(), buf as libc::c_long, len as _) };
        ret.map(|n| n as usize)
    }
}

/// `_IOC` direction: no data transfer.
pub const IOC_NONE: u32 = 0;
/// `_IOC` direction: user space writes, the kernel reads (`_IOW`).
pub const IOC_WRITE: u32 = 1;
/// `_IOC` direction: the kernel writes, user space reads (`_IOR`).
pub const IOC_READ: u32 = 2;

// Field layout of the generic Linux ioctl number (x86 and arm64 share it): nr in bits 0..8,
// type in 8..16, size in 16..30, direction in 30..32.
const IOC_NRSHIFT: u32 = 0;
const IOC_TYPESHIFT: u32 = 8;
const IOC_SIZESHIFT: u32 = 16;
const IOC_DIRSHIFT: u32 = 30;
const IOC_SIZEMASK: usize = (1 << 14) - 1;

/// Builds an ioctl number like the kernel's `_IOC(dir, type, nr, size)`.
///
/// Fails to compile (in a `const`) or panics if `size` does not fit the 14-bit size field.
pub const fn ioc(dir: u32, ty: u8, nr: u8, size: usize) -> u32 {
    assert!(
        size <= IOC_SIZEMASK,
        "ioctl argument size does not fit _IOC"
    );
    (dir << IOC_DIRSHIFT)
        | ((size as u32) << IOC_SIZESHIFT)
        | ((ty as u32) << IOC_TYPESHIFT)
        | ((nr as u32) << IOC_NRSHIFT)
}

/// `_IO(type, nr)`: an ioctl without argument data.
pub const fn io(ty: u8, nr: u8) -> u32 {
    ioc(IOC_NONE, ty, nr, 0)
}

/// `_IOR(type, nr, T)`: the kernel writes a `T`.
pub const fn ior<T>(ty: u8, nr: u8) -> u32 {
    ioc(IOC_READ, ty, nr, std::mem::size_of::<T>())
}

/// `_IOW(type, nr, T)`: the kernel reads a `T`.
pub const fn iow<T>(ty: u8, nr: u8) -> u32 {
    ioc(IOC_WRITE, ty, nr, std::mem::size_of::<T>())
}

/// `_IOWR(type, nr, T)`: the kernel reads and writes a `T`.
pub const fn iowr<T>(ty: u8, nr: u8) -> u32 {
    ioc(IOC_READ | IOC_WRITE, ty, nr, std::mem::size_of::<T>())
}

/// `_IOC_NONE` with a size: the encoding the Xen device headers use for most of their ioctls
/// (`_IOC(_IOC_NONE, type, nr, sizeof(T))`), which carries the size but no direction.
pub const fn ioc_none<T>(ty: u8, nr: u8) -> u32 {
    ioc(IOC_NONE, ty, nr, std::mem::size_of::<T>())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Numbers computed from the Linux uapi headers with a C compiler (64-bit Linux).
    #[test]
    fn encoding_matches_kernel_numbers() {
        // IOCTL_PRIVCMD_HYPERCALL: _IOC(_IOC_NONE, 'P', 0, 48)
        assert_eq!(ioc(IOC_NONE, b'P', 0, 48), 0x0030_5000);
        assert_eq!(ioc_none::<[u64; 6]>(b'P', 0), 0x0030_5000);
        // IOCTL_PRIVCMD_RESTRICT: _IOC(_IOC_NONE, 'P', 6, sizeof(domid_t))
        assert_eq!(ioc_none::<u16>(b'P', 6), 0x0002_5006);
        // IOCTL_PRIVCMD_IRQFD (Linux >= 6.7): _IOW('P', 8, 24-byte struct)
        assert_eq!(iow::<[u64; 3]>(b'P', 8), 0x4018_5008);
        // IOCTL_PRIVCMD_IOEVENTFD: _IOW('P', 9, 48-byte struct)
        assert_eq!(iow::<[u64; 6]>(b'P', 9), 0x4030_5009);
        // IOCTL_PRIVCMD_UNIMPLEMENTED: _IOC(_IOC_NONE, 'P', 0xFF, 0)
        assert_eq!(io(b'P', 0xff), 0x0000_50ff);
        // IOCTL_EVTCHN_RESET: _IOC(_IOC_NONE, 'E', 5, 0)
        assert_eq!(io(b'E', 5), 0x0000_4505);
        // IOCTL_GNTALLOC_ALLOC_GREF: _IOC(_IOC_NONE, 'G', 5, 24)
        assert_eq!(ioc_none::<[u64; 3]>(b'G', 5), 0x0018_4705);
    }

    #[test]
    fn read_and_readwrite_directions() {
        assert_eq!(ior::<u32>(b'X', 1), 0x8004_5801);
        assert_eq!(iowr::<u64>(b'X', 2), 0xc008_5802);
    }

    #[test]
    #[should_panic(expected = "does not fit")]
    fn oversized_argument_is_rejected() {
        let _ = ioc(IOC_NONE, b'P', 0, 1 << 14);
    }

    #[test]
    fn real_sys_reports_errno() {
        // An ioctl on a closed descriptor fails with EBADF, as an io::Error, not a -1. FIONREAD
        // rather than a made-up number: user-mode emulators (qemu-user runs the aarch64 unit
        // tests) refuse numbers they do not know before the kernel sees the bad descriptor.
        let fionread = u32::try_from(libc::FIONREAD).unwrap();
        // SAFETY: the fd is invalid, so the kernel never looks at the null argument.
        let err = unsafe { RealSys.ioctl(-1, fionread, std::ptr::null_mut()) }.unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EBADF));
    }

    #[test]
    fn real_sys_read_write_roundtrip() {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors pipe() writes.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        let msg = b"seam";
        // SAFETY: `msg` is readable for its length.
        let n = unsafe { RealSys.write(fds[1], msg.as_ptr(), msg.len()) }.unwrap();
        assert_eq!(n, msg.len());
        let mut buf = [0u8; 8];
        // SAFETY: `buf` is writable for its length.
        let n = unsafe { RealSys.read(fds[0], buf.as_mut_ptr(), buf.len()) }.unwrap();
        assert_eq!(&buf[..n], msg);
        // SAFETY: both descriptors came from pipe() above and are not used afterwards.
        unsafe {
            libc::close(fds[0]);
            libc::close(fds[1]);
        }
    }

    #[test]
    fn real_sys_mmap_mlock_munmap() {
        let len = 4096;
        // SAFETY: an anonymous private mapping at an address of the kernel's choosing.
        let ptr = unsafe {
            RealSys.mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        }
        .unwrap();
        // mlock may be refused by RLIMIT_MEMLOCK for unprivileged users; either answer is fine,
        // as long as it is an io::Result and not a crash.
        // SAFETY: the range is the mapping made above.
        let _ = unsafe { RealSys.mlock(ptr, len) };
        // SAFETY: the mapping is ours and unused from here on.
        unsafe { RealSys.munmap(ptr, len) }.unwrap();
    }

    #[test]
    fn mock_sys_can_stand_in() {
        let mut mock = MockSys::new();
        mock.expect_ioctl()
            .withf(|fd, req, _| *fd == 3 && *req == 0x0030_5000)
            .times(1)
            .returning(|_, _, _| Err(io::Error::from_raw_os_error(libc::EPERM)));
        // SAFETY: the mock does not dereference the pointer.
        let err = unsafe { mock.ioctl(3, 0x0030_5000, std::ptr::null_mut()) }.unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPERM));
    }
}
