// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! [`KvmVcpu`]: one KVM vCPU and its run loop.

use std::os::fd::AsRawFd;

use kvm_bindings::{
    kvm_run, KVM_EXIT_DEBUG, KVM_EXIT_FAIL_ENTRY, KVM_EXIT_HLT, KVM_EXIT_INTERNAL_ERROR,
    KVM_EXIT_INTR, KVM_EXIT_IO, KVM_EXIT_IO_IN, KVM_EXIT_MMIO, KVM_EXIT_SHUTDOWN,
    KVM_EXIT_SYSTEM_EVENT,
};
use kvm_ioctls::VcpuFd;
use vm_hypervisor::{
    BusError, DeviceBus, Error, IoAccess, IoSpace, Result, SystemEventKind, Vcpu, VcpuExit,
};
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
    ///
    /// Shaped for the instructions per exit (see `benches/exit-instructions.sh`):
    /// - the two exit reasons a VMM sees most, port I/O and MMIO, are tested first and served
    ///   inline; every other reason, `rep ins/outs` and every error are out of line, so that
    ///   the hot path carries neither their code nor the registers they would need;
    /// - this and the functions of the hot path are always inlined, so that the exit is built
    ///   in the caller's registers and the caller's `match` on it is resolved where the exit
    ///   is made, not tested again on a copy in memory. For that, no out-of-line function
    ///   returns a `Result<VcpuExit>`: it would write the caller's result in place and pin it
    ///   in memory. They return the part they make (an `Error`, a `VcpuExit`, an `IoAccess`)
    ///   and take the access's fields rather than an `IoAccess`, which would be passed through
    ///   memory.
    #[inline(always)]
    fn serve_exit<B: DeviceBus + ?Sized>(&mut self, bus: &B) -> Result<VcpuExit> {
        // KVM_RUN is issued here and the run area decoded in place, rather than through
        // kvm-ioctls' `VcpuFd::run`: its exit value is a second decoding of the same union,
        // which the hot path (one port or MMIO access per exit) would pay on every exit.
        // SAFETY: the descriptor is this vCPU's, KVM_RUN takes no argument, and the result is
        // checked below.
        let ret = unsafe { libc::ioctl(self.fd.as_raw_fd(), KVM_RUN() as _, 0) };
        if ret < 0 {
            return match run_failed() {
                None => Ok(VcpuExit::Interrupted),
                Some(e) => Err(e),
            };
        }
        let run_size = self.run_size;
        let run: &mut kvm_run = self.fd.get_kvm_run();
        match run.exit_reason {
            KVM_EXIT_IO => port_io(bus, run, run_size),
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
            _ => Ok(other_exit(run)),
        }
    }
}

/// Every exit but port I/O and MMIO: none of them calls the bus.
#[inline(never)]
fn other_exit(run: &kvm_run) -> VcpuExit {
    match run.exit_reason {
        KVM_EXIT_HLT => VcpuExit::Hlt,
        KVM_EXIT_SHUTDOWN => VcpuExit::Shutdown,
        KVM_EXIT_INTR => VcpuExit::Interrupted,
        KVM_EXIT_DEBUG => VcpuExit::Debug,
        KVM_EXIT_FAIL_ENTRY => {
            // SAFETY: the exit reason says `fail_entry` is the member KVM filled in.
            let reason = unsafe { run.__bindgen_anon_1.fail_entry }.hardware_entry_failure_reason;
            VcpuExit::FailEntry { reason }
        }
        KVM_EXIT_SYSTEM_EVENT => {
            // SAFETY: the exit reason says `system_event` is the member KVM filled in.
            let kind = unsafe { run.__bindgen_anon_1.system_event }.type_;
            VcpuExit::SystemEvent(match kind {
                kvm_bindings::KVM_SYSTEM_EVENT_SHUTDOWN => SystemEventKind::Shutdown,
                kvm_bindings::KVM_SYSTEM_EVENT_RESET => SystemEventKind::Reset,
                kvm_bindings::KVM_SYSTEM_EVENT_CRASH => SystemEventKind::Crash,
                other => SystemEventKind::Other(other),
            })
        }
        KVM_EXIT_INTERNAL_ERROR => {
            // SAFETY: for KVM_EXIT_INTERNAL_ERROR the `internal` member of the union is the
            // one KVM filled in.
            let code = unsafe { run.__bindgen_anon_1.internal.suberror };
            VcpuExit::InternalError { code }
        }
        reason => VcpuExit::Unhandled { reason },
    }
}

/// Serve a `KVM_EXIT_IO` from `run`, the run area of `run_size` bytes.
#[inline(always)]
fn port_io<B: DeviceBus + ?Sized>(bus: &B, run: &mut kvm_run, run_size: usize) -> Result<VcpuExit> {
    debug_assert_eq!(run.exit_reason, KVM_EXIT_IO);
    // SAFETY: the exit reason is KVM_EXIT_IO, for which `io` is the
    // member of the union KVM filled in.
    let io = unsafe { run.__bindgen_anon_1.io };
    if io.count != 1 {
        // `rep ins/outs`, or a count of zero that the range check refuses.
        // The string path returns the access rather than the exit, so that it does not write
        // the caller's result in place, which would keep the hot path's result in memory.
        return port_io_string(bus, run, run_size).map(VcpuExit::Io);
    }
    let data = port_io_data(run, run_size, io.data_offset, io.size, 1)?;
    serve_access(bus, port_access(&io), data)
}

/// Serve a `KVM_EXIT_IO` of `count` elements other than one (see [`port_io`]). Out of line:
/// string I/O is rare, and its loop would cost the single access registers.
#[inline(never)]
fn port_io_string<B: DeviceBus + ?Sized>(
    bus: &B,
    run: &mut kvm_run,
    run_size: usize,
) -> Result<IoAccess> {
    // SAFETY: the caller found the exit reason KVM_EXIT_IO, for which `io` is the member of
    // the union KVM filled in.
    let io = unsafe { run.__bindgen_anon_1.io };
    let data = port_io_data(run, run_size, io.data_offset, io.size, io.count)?;
    serve_port_string(bus, port_access(&io), data)
}

/// The access a port I/O exit describes (one element of it, for `rep ins/outs`).
#[inline]
fn port_access(io: &kvm_bindings::kvm_run__bindgen_ty_1__bindgen_ty_4) -> IoAccess {
    IoAccess {
        space: IoSpace::Pio,
        addr: u64::from(io.port),
        size: io.size,
        write: u32::from(io.direction) != KVM_EXIT_IO_IN,
    }
}

/// The data of a port I/O exit: `count` elements of `size` bytes at `offset` in `run`, the
/// run area of `run_size` bytes, checked to lie inside it.
#[inline(always)]
fn port_io_data(
    run: &mut kvm_run,
    run_size: usize,
    offset: u64,
    size: u8,
    count: u32,
) -> Result<&mut [u8]> {
    let (start, len) = io_data_range(offset, size, count, run_size)?;
    let base = (run as *mut kvm_run).cast::<u8>();
    // SAFETY: `base` is the start of the kvm_run mapping of `run_size` bytes owned by the
    // vCPU's descriptor, `start..start + len` was checked to lie inside it, and the slice
    // borrows `run` mutably for its lifetime, so nothing else reads or writes the run area
    // meanwhile.
    Ok(unsafe { std::slice::from_raw_parts_mut(base.add(start), len) })
}

/// Where in the run area the data of a port I/O exit lies, as its offset and its length
/// (not zero), checked against the area's size (the offset and counts come from the kernel,
/// but a wrong one must not become an out-of-bounds slice).
#[inline(always)]
fn io_data_range(offset: u64, size: u8, count: u32, run_size: usize) -> Result<(usize, usize)> {
    // u8 x u32 fits a u64, so only the sum can overflow.
    let len = u64::from(size) * u64::from(count);
    match offset.checked_add(len) {
        // end <= run_size, so neither offset nor len truncates.
        Some(end) if len != 0 && end <= run_size as u64 => Ok((offset as usize, len as usize)),
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

/// Serve one PIO or MMIO access of `data.len()` bytes on `bus`. A failed read gives the guest
/// all ones.
///
/// The two directions are apart down to the error, so that a write's error path keeps
/// nothing of `data` alive across the device call. Always inlined: PIO and MMIO each want
/// their copy in the exit path, with the bus's lookup inlined into it.
#[inline(always)]
fn serve_access<B: DeviceBus + ?Sized>(
    bus: &B,
    access: IoAccess,
    data: &mut [u8],
) -> Result<VcpuExit> {
    // The error paths take the access's fields rather than the access: passed by value (it is
    // 16 bytes, not a pair of scalars) it would be built in memory before the device call.
    let IoAccess {
        space,
        addr,
        size,
        write,
    } = access;
    if write {
        match bus.write(space, addr, data) {
            Ok(()) => Ok(VcpuExit::Io(access)),
            Err(source) => Err(io_failed(space, addr, size, true, source)),
        }
    } else {
        match bus.read(space, addr, data) {
            Ok(()) => Ok(VcpuExit::Io(access)),
            Err(source) => Err(read_failed(space, addr, size, source, data)),
        }
    }
}

/// A bus failure as the exit's error.
#[cold]
#[inline(never)]
fn io_failed(space: IoSpace, addr: u64, size: u8, write: bool, source: BusError) -> Error {
    let access = IoAccess {
        space,
        addr,
        size,
        write,
    };
    Error::Io { access, source }
}

/// A failed read: the guest reads all ones.
#[cold]
#[inline(never)]
fn read_failed(space: IoSpace, addr: u64, size: u8, source: BusError, data: &mut [u8]) -> Error {
    data.fill(0xff);
    io_failed(space, addr, size, false, source)
}

/// Serve `rep ins/outs`: several port accesses in a row, of `access.size` bytes each, on
/// `bus`. A failed read gives the guest all ones from the failing element on.
fn serve_port_string<B: DeviceBus + ?Sized>(
    bus: &B,
    access: IoAccess,
    data: &mut [u8],
) -> Result<IoAccess> {
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
    Ok(access)
}

/// Serve port I/O of `data.len()` bytes: one access, or `rep ins/outs` when `data` holds
/// several elements of `access.size` bytes.
#[cfg(test)]
fn serve_port_io<B: DeviceBus + ?Sized>(
    bus: &B,
    access: IoAccess,
    data: &mut [u8],
) -> Result<VcpuExit> {
    if data.len() == usize::from(access.size) {
        serve_access(bus, access, data)
    } else {
        serve_port_string(bus, access, data).map(VcpuExit::Io)
    }
}

// KVM_RUN = _IO(KVMIO, 0x80) (include/uapi/linux/kvm.h).
ioctl_io_nr!(KVM_RUN, kvm_bindings::KVMIO, 0x80);

/// What KVM_RUN returning -1 means: `None` when a signal or `immediate_exit` interrupted it,
/// else why it failed. Out of line, so that the hot path carries none of it.
#[cold]
#[inline(never)]
fn run_failed() -> Option<Error> {
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EINTR | libc::EAGAIN) => None,
        _ => Some(Error::hypervisor("KVM_RUN", e)),
    }
}

/// Serve an MMIO exit: `len` bytes of `data` at `addr`. A failed read gives the guest all ones.
#[inline(always)]
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
    serve_access(bus, access, data)
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

    /// Always inlined, with the exit path (see `KvmVcpu::serve_exit`): the caller's handling
    /// of the exit is compiled together with the exit's decoding.
    #[inline(always)]
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
        assert_eq!(io_data_range(0x1000, 1, 4, 0x2000).unwrap(), (0x1000, 4));
        assert_eq!(
            io_data_range(0x1000, 4, 0x400, 0x2000).unwrap(),
            (0x1000, 0x1000)
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
