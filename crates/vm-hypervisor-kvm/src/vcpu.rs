// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! [`KvmVcpu`]: one KVM vCPU and its run loop.

use std::ops::Range;

use std::os::fd::AsRawFd;

use kvm_bindings::{
    kvm_run, KVM_EXIT_DEBUG, KVM_EXIT_FAIL_ENTRY, KVM_EXIT_HLT, KVM_EXIT_INTERNAL_ERROR,
    KVM_EXIT_INTR, KVM_EXIT_IO, KVM_EXIT_IO_IN, KVM_EXIT_MMIO, KVM_EXIT_SHUTDOWN,
    KVM_EXIT_SYSTEM_EVENT,
};
use kvm_ioctls::VcpuFd;
use vm_hypervisor::{DeviceBus, Error, IoAccess, IoSpace, Result, SystemEventKind, Vcpu, VcpuExit};
use vmm_sys_util::ioctl_io_nr;

/// A KVM vCPU.
#[derive(Debug)]
pub struct KvmVcpu {
    fd: VcpuFd,
    id: u32,
    run_size: usize,
    /// What `KVM_ARM_PREFERRED_TARGET` said for this host, which
    /// `VcpuAarch64::init` starts from.
    #[cfg(target_arch = "aarch64")]
    preferred_target: kvm_bindings::kvm_vcpu_init,
}

impl KvmVcpu {
    pub(crate) fn new(
        fd: VcpuFd,
        id: u32,
        run_size: usize,
        #[cfg(target_arch = "aarch64")] preferred_target: kvm_bindings::kvm_vcpu_init,
    ) -> Self {
        Self {
            fd,
            id,
            run_size,
            #[cfg(target_arch = "aarch64")]
            preferred_target,
        }
    }

    #[cfg(target_arch = "aarch64")]
    pub(crate) fn preferred_target(&self) -> kvm_bindings::kvm_vcpu_init {
        self.preferred_target
    }

    /// The kvm-ioctls vCPU handle, for what the traits do not cover.
    pub fn as_vcpu_fd(&self) -> &VcpuFd {
        &self.fd
    }

    /// [`Vcpu::run`] for any bus: with a concrete one the bus's lookup is inlined into the
    /// exit path.
    #[inline]
    fn serve_exit<B: DeviceBus + ?Sized>(&mut self, bus: &B) -> Result<VcpuExit> {
        // KVM_RUN is issued here and the run area decoded in place, rather than through
        // kvm-ioctls' `VcpuFd::run`: its exit value is a second decoding of the same union,
        // which the hot path (one port or MMIO access per exit) would pay on every exit.
        // SAFETY: the descriptor is this vCPU's, KVM_RUN takes no argument, and the result is
        // checked below.
        let ret = unsafe { libc::ioctl(self.fd.as_raw_fd(), KVM_RUN() as _, 0) };
        if ret < 0 {
            return run_failed();
        }
        let run: &mut kvm_run = self.fd.get_kvm_run();
        match run.exit_reason {
            KVM_EXIT_IO => self.port_io(bus),
            KVM_EXIT_MMIO => {
                // SAFETY: the exit reason is KVM_EXIT_MMIO, for which `mmio` is the member of
                // the union KVM filled in.
                let mmio = unsafe { &mut run.__bindgen_anon_1.mmio };
                serve_mmio(
                    bus,
                    mmio.phys_addr,
                    mmio.is_write != 0,
                    &mut mmio.data,
                    mmio.len,
                )
            }
            KVM_EXIT_HLT => Ok(VcpuExit::Hlt),
            KVM_EXIT_SHUTDOWN => Ok(VcpuExit::Shutdown),
            KVM_EXIT_INTR => Ok(VcpuExit::Interrupted),
            KVM_EXIT_DEBUG => Ok(VcpuExit::Debug),
            KVM_EXIT_FAIL_ENTRY => {
                // SAFETY: the exit reason says `fail_entry` is the member KVM filled in.
                let reason =
                    unsafe { run.__bindgen_anon_1.fail_entry }.hardware_entry_failure_reason;
                Ok(VcpuExit::FailEntry { reason })
            }
            KVM_EXIT_SYSTEM_EVENT => {
                // SAFETY: the exit reason says `system_event` is the member KVM filled in.
                let kind = unsafe { run.__bindgen_anon_1.system_event }.type_;
                Ok(VcpuExit::SystemEvent(match kind {
                    kvm_bindings::KVM_SYSTEM_EVENT_SHUTDOWN => SystemEventKind::Shutdown,
                    kvm_bindings::KVM_SYSTEM_EVENT_RESET => SystemEventKind::Reset,
                    kvm_bindings::KVM_SYSTEM_EVENT_CRASH => SystemEventKind::Crash,
                    other => SystemEventKind::Other(other),
                }))
            }
            KVM_EXIT_INTERNAL_ERROR => {
                // SAFETY: for KVM_EXIT_INTERNAL_ERROR the `internal` member of the union is the
                // one KVM filled in.
                let code = unsafe { run.__bindgen_anon_1.internal.suberror };
                Ok(VcpuExit::InternalError { code })
            }
            reason => Ok(VcpuExit::Unhandled { reason }),
        }
    }

    /// Serve a `KVM_EXIT_IO` from the run area.
    #[inline]
    fn port_io<B: DeviceBus + ?Sized>(&mut self, bus: &B) -> Result<VcpuExit> {
        let run_size = self.run_size;
        let run: &mut kvm_run = self.fd.get_kvm_run();
        debug_assert_eq!(run.exit_reason, KVM_EXIT_IO);
        // SAFETY: the exit reason is KVM_EXIT_IO, for which `io` is the
        // member of the union KVM filled in.
        let io = unsafe { run.__bindgen_anon_1.io };
        let range = io_data_range(io.data_offset, io.size, io.count, run_size)?;
        let base = (run as *mut kvm_run).cast::<u8>();
        // The length from the checked range's own fields rather than `Range::len`, which
        // would clamp an end below the start (io_data_range makes end > start).
        let len = range.end - range.start;
        // SAFETY: `base` is the start of the kvm_run mapping of `run_size`
        // bytes owned by `self.fd`, `range` was checked to lie inside it, and
        // `run` is not used again while the slice lives.
        let data = unsafe { std::slice::from_raw_parts_mut(base.add(range.start), len) };
        let access = IoAccess {
            space: IoSpace::Pio,
            addr: u64::from(io.port),
            size: io.size,
            write: u32::from(io.direction) != KVM_EXIT_IO_IN,
        };
        serve_port_io(bus, access, data)
    }
}

/// Where in the run area the data of a port I/O exit lies, checked
/// against the area's size (the offset and counts come from the kernel,
/// but a wrong one must not become an out-of-bounds slice).
#[inline]
fn io_data_range(offset: u64, size: u8, count: u32, run_size: usize) -> Result<Range<usize>> {
    // u8 x u32 fits a u64, so only the sum can overflow.
    let len = u64::from(size) * u64::from(count);
    match offset.checked_add(len) {
        Some(end) if len != 0 && end <= run_size as u64 => Ok(offset as usize..end as usize),
        _ => Err(bad_io_range(offset, size, count, run_size)),
    }
}

#[cold]
fn bad_io_range(offset: u64, size: u8, count: u32, run_size: usize) -> Error {
    Error::InvalidArgument {
        op: "KVM_RUN",
        reason: format!(
            "port I/O data of {count} x {size} bytes at offset {offset:#x} does not fit the \
             {run_size:#x}-byte run area"
        ),
    }
}

/// Serve one port access, or for `rep ins/outs` several in a row, of
/// `access.size` bytes each on `bus`. A failed read gives the guest all
/// ones from the failing element on.
#[inline]
fn serve_port_io<B: DeviceBus + ?Sized>(
    bus: &B,
    access: IoAccess,
    data: &mut [u8],
) -> Result<VcpuExit> {
    if data.len() == usize::from(access.size) {
        // One access, not `rep ins/outs`: the common case, without the chunk walk.
        let r = if access.write {
            bus.write(IoSpace::Pio, access.addr, data)
        } else {
            bus.read(IoSpace::Pio, access.addr, data)
        };
        return match r {
            Ok(()) => Ok(VcpuExit::Io(access)),
            Err(source) => {
                if !access.write {
                    data.fill(0xff);
                }
                Err(Error::Io { access, source })
            }
        };
    }
    let mut chunks = data.chunks_mut(usize::from(access.size));
    while let Some(chunk) = chunks.next() {
        let r = if access.write {
            bus.write(IoSpace::Pio, access.addr, chunk)
        } else {
            bus.read(IoSpace::Pio, access.addr, chunk)
        };
        if let Err(source) = r {
            if !access.write {
                chunk.fill(0xff);
                chunks.for_each(|c| c.fill(0xff));
            }
            return Err(Error::Io { access, source });
        }
    }
    Ok(VcpuExit::Io(access))
}

// KVM_RUN = _IO(KVMIO, 0x80) (include/uapi/linux/kvm.h).
ioctl_io_nr!(KVM_RUN, kvm_bindings::KVMIO, 0x80);

/// What KVM_RUN returning -1 means: a signal or `immediate_exit` interrupted it, or it failed.
/// Out of line, so that the hot path carries none of it.
#[cold]
#[inline(never)]
fn run_failed() -> Result<VcpuExit> {
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EINTR | libc::EAGAIN) => Ok(VcpuExit::Interrupted),
        _ => Err(Error::hypervisor("KVM_RUN", e)),
    }
}

/// Serve an MMIO exit: `len` bytes of `data` at `addr`. A failed read gives the guest all ones.
#[inline]
fn serve_mmio<B: DeviceBus + ?Sized>(
    bus: &B,
    addr: u64,
    write: bool,
    data: &mut [u8; 8],
    len: u32,
) -> Result<VcpuExit> {
    let Some(data) = data.get_mut(..len as usize) else {
        return Err(bad_mmio_len(addr, len));
    };
    let access = IoAccess {
        space: IoSpace::Mmio,
        addr,
        size: data.len() as u8,
        write,
    };
    let r = if write {
        bus.write(IoSpace::Mmio, addr, data)
    } else {
        bus.read(IoSpace::Mmio, addr, data)
    };
    match r {
        Ok(()) => Ok(VcpuExit::Io(access)),
        Err(source) => {
            if !write {
                data.fill(0xff);
            }
            Err(Error::Io { access, source })
        }
    }
}

/// The kernel reported an MMIO access longer than the run area's 8 data bytes.
#[cold]
fn bad_mmio_len(addr: u64, len: u32) -> Error {
    Error::InvalidArgument {
        op: "KVM_RUN",
        reason: format!("MMIO access of {len} bytes at {addr:#x} (at most 8 fit the run area)"),
    }
}

impl Vcpu for KvmVcpu {
    fn id(&self) -> u32 {
        self.id
    }

    fn run(&mut self, bus: &dyn DeviceBus) -> Result<VcpuExit> {
        self.serve_exit(bus)
    }

    #[inline]
    fn run_on<B: DeviceBus>(&mut self, bus: &B) -> Result<VcpuExit> {
        self.serve_exit(bus)
    }

    fn set_immediate_exit(&mut self, exit: bool) {
        self.fd.set_kvm_immediate_exit(exit.into());
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use vm_hypervisor::{BusError, DeviceError, IoBus, IoHandler};

    use super::*;

    #[test]
    fn kvm_run_ioctl_number() {
        // _IO(0xAE, 0x80) in include/uapi/linux/kvm.h.
        assert_eq!(KVM_RUN(), 0xae80);
    }

    #[test]
    fn mmio_exit_longer_than_the_run_area_is_an_error() {
        let bus = IoBus::new();
        let mut data = [0u8; 8];
        let err = serve_mmio(&bus, 0x1000, false, &mut data, 9).unwrap_err();
        assert!(
            matches!(err, Error::InvalidArgument { op: "KVM_RUN", .. }),
            "{err}"
        );
    }

    #[test]
    fn failed_mmio_read_gives_all_ones() {
        let bus = IoBus::new();
        let mut data = [0u8; 8];
        let err = serve_mmio(&bus, 0x1000, false, &mut data, 4).unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err}");
        assert_eq!(data, [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
    }

    #[derive(Default)]
    struct Log(Mutex<Vec<Vec<u8>>>);

    impl IoHandler for Log {
        fn read(&self, offset: u64, data: &mut [u8]) -> std::result::Result<(), DeviceError> {
            if offset == 1 {
                return Err("offset 1 is write-only".into());
            }
            data.fill(0x5a);
            Ok(())
        }
        fn write(&self, _: u64, data: &[u8]) -> std::result::Result<(), DeviceError> {
            self.0.lock().unwrap().push(data.to_vec());
            Ok(())
        }
    }

    fn bus() -> (IoBus, Arc<Log>) {
        let log = Arc::new(Log::default());
        let mut bus = IoBus::new();
        bus.insert(IoSpace::Pio, 0x60, 2, log.clone()).unwrap();
        (bus, log)
    }

    fn access(port: u64, size: u8, write: bool) -> IoAccess {
        IoAccess {
            space: IoSpace::Pio,
            addr: port,
            size,
            write,
        }
    }

    #[test]
    fn string_output_is_split_into_elements() {
        let (bus, log) = bus();
        let mut data = *b"abcdef";
        let exit = serve_port_io(&bus, access(0x60, 2, true), &mut data).unwrap();
        assert_eq!(exit, VcpuExit::Io(access(0x60, 2, true)));
        assert_eq!(
            *log.0.lock().unwrap(),
            vec![b"ab".to_vec(), b"cd".to_vec(), b"ef".to_vec()]
        );
    }

    #[test]
    fn string_input_fills_every_element() {
        let (bus, _) = bus();
        let mut data = [0u8; 3];
        serve_port_io(&bus, access(0x60, 1, false), &mut data).unwrap();
        assert_eq!(data, [0x5a; 3]);
    }

    #[test]
    fn failed_reads_give_all_ones_and_a_typed_error() {
        let (bus, _) = bus();
        let mut data = [0u8; 4];
        let err = serve_port_io(&bus, access(0x61, 1, false), &mut data).unwrap_err();
        assert!(matches!(
            err,
            Error::Io {
                source: BusError::Device { op: "read", .. },
                ..
            }
        ));
        assert_eq!(data, [0xff; 4]);
        let mut data = [0u8; 1];
        let err = serve_port_io(&bus, access(0x70, 1, false), &mut data).unwrap_err();
        assert!(matches!(
            err,
            Error::Io {
                source: BusError::NoDevice { addr: 0x70, .. },
                ..
            }
        ));
        assert_eq!(data, [0xff]);
    }

    #[test]
    fn io_data_must_lie_inside_the_run_area() {
        assert_eq!(io_data_range(0x1000, 1, 4, 0x2000).unwrap(), 0x1000..0x1004);
        assert_eq!(
            io_data_range(0x1000, 4, 0x400, 0x2000).unwrap(),
            0x1000..0x2000
        );
        for (offset, size, count) in [
            (0x1000, 4, 0x401),
            (0x2000, 1, 1),
            (u64::MAX, 1, 1),
            (0x1000, 0, 1),
            (0x1000, 1, 0),
            (0x1000, 8, u32::MAX),
        ] {
            assert!(
                matches!(
                    io_data_range(offset, size, count, 0x2000),
                    Err(Error::InvalidArgument { op: "KVM_RUN", .. })
                ),
                "{offset:#x} {size} {count}"
            );
        }
    }
}
