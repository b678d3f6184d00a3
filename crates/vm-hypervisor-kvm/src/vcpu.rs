// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! [`KvmVcpu`]: one KVM vCPU and its run loop.

use std::ops::Range;

use kvm_bindings::{kvm_run, KVM_EXIT_IO, KVM_EXIT_IO_IN};
use kvm_ioctls::{VcpuExit as KvmExit, VcpuFd};
use vm_hypervisor::{DeviceBus, Error, IoAccess, IoSpace, Result, SystemEventKind, Vcpu, VcpuExit};

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

/// What the kvm-ioctls exit said, without its borrow of the run area.
enum Next {
    Done(VcpuExit),
    Io,
    Mmio(IoAccess),
    Error(Error),
    Other,
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

    /// Serve a `KVM_EXIT_IO` from the run area.
    fn port_io(&mut self, bus: &dyn DeviceBus) -> Result<VcpuExit> {
        let run_size = self.run_size;
        let run: &mut kvm_run = self.fd.get_kvm_run();
        debug_assert_eq!(run.exit_reason, KVM_EXIT_IO);
        // SAFETY: the exit reason is KVM_EXIT_IO, for which `io` is the
        // member of the union KVM filled in.
        let io = unsafe { run.__bindgen_anon_1.io };
        let range = io_data_range(io.data_offset, io.size, io.count, run_size)?;
        let base = (run as *mut kvm_run).cast::<u8>();
        // SAFETY: `base` is the start of the kvm_run mapping of `run_size`
        // bytes owned by `self.fd`, `range` was checked to lie inside it, and
        // `run` is not used again while the slice lives.
        let data = unsafe { std::slice::from_raw_parts_mut(base.add(range.start), range.len()) };
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
fn io_data_range(offset: u64, size: u8, count: u32, run_size: usize) -> Result<Range<usize>> {
    let invalid = || Error::InvalidArgument {
        op: "KVM_RUN",
        reason: format!(
            "port I/O data of {count} x {size} bytes at offset {offset:#x} does not fit the \
             {run_size:#x}-byte run area"
        ),
    };
    let start = usize::try_from(offset).map_err(|_| invalid())?;
    let len = usize::from(size)
        .checked_mul(usize::try_from(count).map_err(|_| invalid())?)
        .ok_or_else(invalid)?;
    let end = start.checked_add(len).ok_or_else(invalid)?;
    if size == 0 || count == 0 || end > run_size {
        return Err(invalid());
    }
    Ok(start..end)
}

/// Serve one port access, or for `rep ins/outs` several in a row, of
/// `access.size` bytes each on `bus`. A failed read gives the guest all
/// ones from the failing element on.
fn serve_port_io(bus: &dyn DeviceBus, access: IoAccess, data: &mut [u8]) -> Result<VcpuExit> {
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

impl Vcpu for KvmVcpu {
    fn id(&self) -> u32 {
        self.id
    }

    fn run(&mut self, bus: &dyn DeviceBus) -> Result<VcpuExit> {
        let next = match self.fd.run() {
            Ok(exit) => match exit {
                KvmExit::IoIn(..) | KvmExit::IoOut(..) => Next::Io,
                KvmExit::MmioRead(addr, data) => {
                    let access = IoAccess {
                        space: IoSpace::Mmio,
                        addr,
                        size: data.len() as u8,
                        write: false,
                    };
                    match bus.read(IoSpace::Mmio, addr, data) {
                        Ok(()) => Next::Mmio(access),
                        Err(source) => {
                            data.fill(0xff);
                            Next::Error(Error::Io { access, source })
                        }
                    }
                }
                KvmExit::MmioWrite(addr, data) => {
                    let access = IoAccess {
                        space: IoSpace::Mmio,
                        addr,
                        size: data.len() as u8,
                        write: true,
                    };
                    match bus.write(IoSpace::Mmio, addr, data) {
                        Ok(()) => Next::Mmio(access),
                        Err(source) => Next::Error(Error::Io { access, source }),
                    }
                }
                KvmExit::Hlt => Next::Done(VcpuExit::Hlt),
                KvmExit::Shutdown => Next::Done(VcpuExit::Shutdown),
                KvmExit::Intr => Next::Done(VcpuExit::Interrupted),
                KvmExit::Debug(_) => Next::Done(VcpuExit::Debug),
                KvmExit::FailEntry(reason, _) => Next::Done(VcpuExit::FailEntry { reason }),
                KvmExit::SystemEvent(kind, _) => Next::Done(VcpuExit::SystemEvent(match kind {
                    kvm_bindings::KVM_SYSTEM_EVENT_SHUTDOWN => SystemEventKind::Shutdown,
                    kvm_bindings::KVM_SYSTEM_EVENT_RESET => SystemEventKind::Reset,
                    kvm_bindings::KVM_SYSTEM_EVENT_CRASH => SystemEventKind::Crash,
                    other => SystemEventKind::Other(other),
                })),
                KvmExit::InternalError => {
                    let run = self.fd.get_kvm_run();
                    // SAFETY: for KVM_EXIT_INTERNAL_ERROR the `internal`
                    // member of the union is the one KVM filled in.
                    let code = unsafe { run.__bindgen_anon_1.internal.suberror };
                    Next::Done(VcpuExit::InternalError { code })
                }
                _ => Next::Other,
            },
            Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => {
                Next::Done(VcpuExit::Interrupted)
            }
            Err(e) => Next::Error(Error::hypervisor("KVM_RUN", e)),
        };
        match next {
            Next::Done(exit) => Ok(exit),
            Next::Mmio(access) => Ok(VcpuExit::Io(access)),
            Next::Io => self.port_io(bus),
            Next::Error(e) => Err(e),
            Next::Other => Ok(VcpuExit::Unhandled {
                reason: self.fd.get_kvm_run().exit_reason,
            }),
        }
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
