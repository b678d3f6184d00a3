// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The virtio-mmio register file (virtio 1.2, section 4.2.2, version 2).
//!
//! Everything in here is written by the guest, so every access is checked:
//! registers are 32 bits wide and 4-byte aligned, config space (offset
//! 0x100 on) takes 1, 2, 4 or 8 bytes, queue sizes must be powers of two no
//! larger than QueueNumMax and queue areas must be aligned as section 2.7
//! asks. A refused access returns an [`Error`]; nothing panics.
//!
//! A backend that fails (a daemon that died, a socket that closed) sets
//! DEVICE_NEEDS_RESET and the config-change interrupt bit: queues stay
//! stopped until the driver resets the device (Status 0), after which the
//! backend may serve again.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use vm_device_bus::{DeviceError, IoHandler};

use crate::backend::{Backend, BackendError, QueueConfig};
use crate::devices::DeviceProfile;
use crate::error::Error;
use crate::interrupt::Interrupt;

/// "virt" in little endian.
pub const MAGIC_VALUE: u32 = 0x7472_6976;
/// The virtio-mmio version this transport speaks (non-legacy).
pub const VERSION: u32 = 2;
/// Where the device's config space starts.
pub const CONFIG_OFFSET: u64 = 0x100;
/// VIRTIO_F_VERSION_1: a driver that does not accept it is refused.
pub const VIRTIO_F_VERSION_1: u64 = 1 << 32;

/// Device status bits (virtio 1.2, section 2.1).
pub mod status {
    /// The guest found the device.
    pub const ACKNOWLEDGE: u32 = 1;
    /// The guest has a driver for it.
    pub const DRIVER: u32 = 2;
    /// The driver is ready.
    pub const DRIVER_OK: u32 = 4;
    /// Feature negotiation is complete.
    pub const FEATURES_OK: u32 = 8;
    /// The device hit an error it cannot recover from without a reset.
    pub const DEVICE_NEEDS_RESET: u32 = 64;
    /// The driver gave up on the device.
    pub const FAILED: u32 = 128;
}

/// InterruptStatus bits.
pub mod interrupt {
    /// The device used a buffer of some queue.
    pub const USED_BUFFER: u32 = 1;
    /// The configuration (or DEVICE_NEEDS_RESET) changed.
    pub const CONFIG_CHANGE: u32 = 2;
}

#[derive(Clone, Copy, Debug, Default)]
struct Queue {
    size: u32,
    ready: bool,
    desc: u64,
    driver: u64,
    device: u64,
}

#[derive(Debug)]
struct State {
    device_features_sel: u32,
    driver_features_sel: u32,
    driver_features: u64,
    queue_sel: u32,
    queues: Vec<Queue>,
    interrupt_status: u32,
    status: u32,
    config_generation: u32,
}

impl State {
    fn new(num_queues: u16) -> Self {
        State {
            device_features_sel: 0,
            driver_features_sel: 0,
            driver_features: 0,
            queue_sel: 0,
            queues: vec![Queue::default(); usize::from(num_queues)],
            interrupt_status: 0,
            status: 0,
            config_generation: 0,
        }
    }
}

/// A virtio-mmio device whose work is done by a [`Backend`].
///
/// It implements [`IoHandler`], so a KVM vCPU loop and a Xen IOREQ server
/// serve it alike: insert it in an `IoBus` over a 0x200-byte window.
#[derive(Debug)]
pub struct MmioTransport<B> {
    profile: DeviceProfile,
    vendor_id: u32,
    inner: Mutex<(State, B)>,
    /// The backend's used-buffer notifications reach the guest without this process.
    direct_used_buffer: AtomicBool,
}

impl<B: Backend> MmioTransport<B> {
    /// A transport showing `profile` to the driver, backed by `backend`.
    pub fn new(profile: DeviceProfile, backend: B) -> Self {
        MmioTransport {
            profile,
            vendor_id: 0,
            inner: Mutex::new((State::new(profile.num_queues), backend)),
            direct_used_buffer: AtomicBool::new(false),
        }
    }

    /// Says that the backend's used-buffer notifications raise the guest's interrupt without
    /// this process (its call eventfds are irqfds in the hypervisor or kernel), so that
    /// [`MmioTransport::used_buffer_interrupt`] is never called and cannot set InterruptStatus
    /// first. InterruptStatus then shows the used-buffer bit whenever the driver is running
    /// (DRIVER_OK): a driver reads it only in its interrupt handler, and every interrupt but a
    /// configuration change is then a used-buffer one. A driver that finds no used buffer
    /// treats it as spurious, which virtio allows (a device may notify when nothing is new).
    pub fn set_direct_used_buffer_interrupts(&self, direct: bool) {
        self.direct_used_buffer.store(direct, Ordering::Release);
    }

    fn lock(&self) -> MutexGuard<'_, (State, B)> {
        // A panic elsewhere under the lock leaves state we can still serve.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current Status register.
    pub fn status(&self) -> u32 {
        self.lock().0.status
    }

    /// The current InterruptStatus register.
    pub fn interrupt_status(&self) -> u32 {
        self.lock().0.interrupt_status
    }

    /// The device used buffers: set the used-buffer interrupt bit.
    pub fn signal_used(&self) {
        self.lock().0.interrupt_status |= interrupt::USED_BUFFER;
    }

    /// The device's config space changed: bump ConfigGeneration and set the
    /// config-change interrupt bit.
    pub fn signal_config_change(&self) {
        let mut g = self.lock();
        g.0.config_generation = g.0.config_generation.wrapping_add(1);
        g.0.interrupt_status |= interrupt::CONFIG_CHANGE;
    }

    /// The backend is gone or broken: set DEVICE_NEEDS_RESET and the
    /// config-change interrupt bit (virtio 1.2, section 2.1.2).
    pub fn set_needs_reset(&self) {
        needs_reset(&mut self.lock().0);
    }

    /// The backend used buffers (its call eventfd fired): set the
    /// used-buffer bit of InterruptStatus, then inject through `irq`. A
    /// VMM's event loop calls this for every call eventfd it sees fire
    /// (read the eventfd first, so that it can fire again).
    pub fn used_buffer_interrupt(&self, irq: &dyn Interrupt) -> std::io::Result<()> {
        // The bit is set before the injection, so the guest's handler sees it.
        self.signal_used();
        irq.trigger()
    }

    /// Ask the backend whether it is still there; if not, set
    /// DEVICE_NEEDS_RESET, inject the config-change interrupt through `irq`
    /// and return the backend's error.
    pub fn check_backend(&self, irq: &dyn Interrupt) -> Result<(), Error> {
        let result = {
            let mut g = self.lock();
            let (st, be) = &mut *g;
            be.check()
                .map_err(|source| backend_failed(st, "check the backend", source))
        };
        if result.is_err() {
            if let Err(e) = irq.trigger() {
                log::warn!("virtio-mmio: cannot inject the config-change interrupt: {e}");
            }
        }
        result
    }

    /// Run `f` on the backend, under the transport's lock.
    pub fn with_backend<R>(&self, f: impl FnOnce(&mut B) -> R) -> R {
        f(&mut self.lock().1)
    }

    /// Read a register or config space at `offset`.
    pub fn read_register(&self, offset: u64, data: &mut [u8]) -> Result<(), Error> {
        if offset >= CONFIG_OFFSET {
            let off = config_offset(offset, data.len())?;
            let mut g = self.lock();
            let (st, be) = &mut *g;
            return be
                .read_config(off, data)
                .map_err(|source| backend_failed(st, "read config space", source));
        }
        check_register(offset, data.len())?;
        let mut g = self.lock();
        let (st, be) = &mut *g;
        let sel_queue = st.queues.get(st.queue_sel as usize).copied();
        let value = match offset {
            0x000 => MAGIC_VALUE,
            0x004 => VERSION,
            0x008 => self.profile.device_id,
            0x00c => self.vendor_id,
            0x010 => match (st.device_features_sel, be.device_features()) {
                (0, Ok(f)) => f as u32,
                (1, Ok(f)) => (f >> 32) as u32,
                (_, Ok(_)) => 0,
                (_, Err(source)) => {
                    let e = backend_failed(st, "read the device features", source);
                    log::warn!("virtio-mmio: {e}");
                    0
                }
            },
            0x034 => sel_queue.map_or(0, |_| u32::from(self.profile.max_queue_size)),
            0x044 => u32::from(sel_queue.is_some_and(|q| q.ready)),
            0x060 => {
                let running = st.status & status::DRIVER_OK != 0;
                if running && self.direct_used_buffer.load(Ordering::Acquire) {
                    st.interrupt_status | interrupt::USED_BUFFER
                } else {
                    st.interrupt_status
                }
            }
            0x070 => st.status,
            0x0fc => st.config_generation,
            _ => {
                return Err(match register_name(offset) {
                    Some(name) => Error::WriteOnly { name, offset },
                    None => Error::NoRegister { offset },
                })
            }
        };
        data.copy_from_slice(&value.to_le_bytes());
        Ok(())
    }

    /// Write a register or config space at `offset`.
    pub fn write_register(&self, offset: u64, data: &[u8]) -> Result<(), Error> {
        if offset >= CONFIG_OFFSET {
            let off = config_offset(offset, data.len())?;
            let mut g = self.lock();
            let (st, be) = &mut *g;
            return be
                .write_config(off, data)
                .map_err(|source| backend_failed(st, "write config space", source));
        }
        check_register(offset, data.len())?;
        let value = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
        let mut g = self.lock();
        let (st, be) = &mut *g;
        match offset {
            0x014 => st.device_features_sel = value,
            0x020 => match st.driver_features_sel {
                0 => st.driver_features = (st.driver_features & !0xffff_ffff) | u64::from(value),
                1 => {
                    st.driver_features =
                        (st.driver_features & 0xffff_ffff) | (u64::from(value) << 32)
                }
                // Feature bits past 63 do not exist; the spec has them read as 0.
                _ => {}
            },
            0x024 => st.driver_features_sel = value,
            0x030 => st.queue_sel = value,
            0x038 | 0x080 | 0x084 | 0x090 | 0x094 | 0x0a0 | 0x0a4 => {
                let q = self.selected_queue(st, offset)?;
                let (lo, hi) = (u64::from(value), u64::from(value) << 32);
                match offset {
                    0x038 => q.size = value,
                    0x080 => q.desc = (q.desc & !0xffff_ffff) | lo,
                    0x084 => q.desc = (q.desc & 0xffff_ffff) | hi,
                    0x090 => q.driver = (q.driver & !0xffff_ffff) | lo,
                    0x094 => q.driver = (q.driver & 0xffff_ffff) | hi,
                    0x0a0 => q.device = (q.device & !0xffff_ffff) | lo,
                    _ => q.device = (q.device & 0xffff_ffff) | hi,
                }
            }
            0x044 => {
                let index = st.queue_sel;
                let needs_reset = st.status & status::DEVICE_NEEDS_RESET != 0;
                let max = u32::from(self.profile.max_queue_size);
                let num_queues = self.profile.num_queues;
                let q = st
                    .queues
                    .get_mut(index as usize)
                    .ok_or(Error::NoQueue { index, num_queues })?;
                // The index fits in u16: it indexes a table of at most u16::MAX queues.
                let index = index as u16;
                if value == 0 {
                    // Stopping one queue: vhost-user stops queues only as a
                    // whole-device reset, which the driver asks for with Status 0.
                    q.ready = false;
                    return Ok(());
                }
                if q.ready {
                    return Ok(());
                }
                if needs_reset {
                    return Err(Error::NeedsReset);
                }
                validate_queue(index, q, max)?;
                let cfg = QueueConfig {
                    // Checked against max (a u16) by validate_queue.
                    size: q.size as u16,
                    desc: q.desc,
                    driver: q.driver,
                    device: q.device,
                };
                if let Err(source) = be.activate_queue(index, cfg) {
                    return Err(backend_failed(st, "activate a queue", source));
                }
                if let Some(q) = st.queues.get_mut(usize::from(index)) {
                    q.ready = true;
                }
            }
            0x050 => {
                if st.status & status::DEVICE_NEEDS_RESET != 0 {
                    return Err(Error::NeedsReset);
                }
                let num_queues = self.profile.num_queues;
                if value >= u32::from(num_queues) {
                    return Err(Error::NoQueue {
                        index: value,
                        num_queues,
                    });
                }
                if let Err(source) = be.notify(value as u16) {
                    return Err(backend_failed(st, "notify a queue", source));
                }
            }
            0x064 => st.interrupt_status &= !value,
            0x070 => return self.write_status(st, be, value),
            _ => {
                return Err(match register_name(offset) {
                    Some(name) => Error::ReadOnly {
                        name,
                        offset,
                        value,
                    },
                    None => Error::NoRegister { offset },
                })
            }
        }
        Ok(())
    }

    fn selected_queue<'s>(&self, st: &'s mut State, offset: u64) -> Result<&'s mut Queue, Error> {
        let index = st.queue_sel;
        let num_queues = self.profile.num_queues;
        let q = st
            .queues
            .get_mut(index as usize)
            .ok_or(Error::NoQueue { index, num_queues })?;
        if q.ready {
            return Err(Error::QueueReady {
                index: index as u16,
                name: register_name(offset).unwrap_or("queue"),
            });
        }
        Ok(q)
    }

    fn write_status(&self, st: &mut State, be: &mut B, value: u32) -> Result<(), Error> {
        if value == 0 {
            let result = be.reset();
            *st = State::new(self.profile.num_queues);
            return result.map_err(|source| Error::Backend {
                op: "reset",
                source,
            });
        }
        // DEVICE_NEEDS_RESET belongs to the device; the driver's copy is ignored.
        let driver_bits = st.status & !status::DEVICE_NEEDS_RESET;
        let value = value & !status::DEVICE_NEEDS_RESET;
        if value & driver_bits != driver_bits {
            return Err(Error::StatusCleared {
                current: st.status,
                value,
            });
        }
        let mut new = value;
        if value & status::FEATURES_OK != 0 && driver_bits & status::FEATURES_OK == 0 {
            let wanted = st.driver_features;
            let accepted = be.device_features().and_then(|offered| {
                if wanted & !offered != 0 || wanted & VIRTIO_F_VERSION_1 == 0 {
                    return Ok(false);
                }
                be.set_features(wanted).map(|()| true)
            });
            // A refused negotiation leaves FEATURES_OK clear for the driver to see.
            match accepted {
                Ok(true) => {}
                Ok(false) => new &= !status::FEATURES_OK,
                Err(source) => {
                    new &= !status::FEATURES_OK;
                    let e = backend_failed(st, "negotiate features", source);
                    log::warn!("virtio-mmio: {e}");
                }
            }
        }
        st.status = new | (st.status & status::DEVICE_NEEDS_RESET);
        Ok(())
    }
}

fn needs_reset(st: &mut State) {
    st.status |= status::DEVICE_NEEDS_RESET;
    st.interrupt_status |= interrupt::CONFIG_CHANGE;
}

/// The backend failed `op`: the device needs a reset.
fn backend_failed(st: &mut State, op: &'static str, source: BackendError) -> Error {
    needs_reset(st);
    Error::Backend { op, source }
}

fn check_register(offset: u64, size: usize) -> Result<(), Error> {
    if size != 4 || offset % 4 != 0 {
        return Err(Error::InvalidRegisterAccess { offset, size });
    }
    Ok(())
}

fn config_offset(offset: u64, size: usize) -> Result<u32, Error> {
    if !matches!(size, 1 | 2 | 4 | 8) {
        return Err(Error::InvalidConfigAccess { offset, size });
    }
    u32::try_from(offset - CONFIG_OFFSET).map_err(|_| Error::NoRegister { offset })
}

fn validate_queue(index: u16, q: &Queue, max: u32) -> Result<(), Error> {
    let fail = |reason| Error::InvalidQueue {
        index,
        reason,
        size: q.size,
        desc: q.desc,
        driver: q.driver,
        device: q.device,
    };
    if q.size == 0 || q.size > max || !q.size.is_power_of_two() {
        return Err(fail(
            "QueueNum must be a power of two from 1 to QueueNumMax",
        ));
    }
    if q.desc % 16 != 0 || q.driver % 2 != 0 || q.device % 4 != 0 {
        return Err(fail("queue areas must be aligned to 16, 2 and 4 bytes"));
    }
    let n = u64::from(q.size);
    // Split ring sizes (virtio 1.2, section 2.7): with event fields.
    let areas = [
        (q.desc, 16 * n),
        (q.driver, 6 + 2 * n),
        (q.device, 6 + 8 * n),
    ];
    if areas.iter().any(|(a, len)| a.checked_add(*len).is_none()) {
        return Err(fail("a queue area runs past the end of the address space"));
    }
    Ok(())
}

fn register_name(offset: u64) -> Option<&'static str> {
    Some(match offset {
        0x000 => "MagicValue",
        0x004 => "Version",
        0x008 => "DeviceID",
        0x00c => "VendorID",
        0x010 => "DeviceFeatures",
        0x014 => "DeviceFeaturesSel",
        0x020 => "DriverFeatures",
        0x024 => "DriverFeaturesSel",
        0x030 => "QueueSel",
        0x034 => "QueueNumMax",
        0x038 => "QueueNum",
        0x044 => "QueueReady",
        0x050 => "QueueNotify",
        0x060 => "InterruptStatus",
        0x064 => "InterruptACK",
        0x070 => "Status",
        0x080 => "QueueDescLow",
        0x084 => "QueueDescHigh",
        0x090 => "QueueDriverLow",
        0x094 => "QueueDriverHigh",
        0x0a0 => "QueueDeviceLow",
        0x0a4 => "QueueDeviceHigh",
        0x0fc => "ConfigGeneration",
        _ => return None,
    })
}

impl<B: Backend> IoHandler for MmioTransport<B> {
    fn read(&self, offset: u64, data: &mut [u8]) -> Result<(), DeviceError> {
        Ok(self.read_register(offset, data)?)
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), DeviceError> {
        Ok(self.write_register(offset, data)?)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::backend::BackendError;
    use crate::devices::DeviceType;

    #[derive(Debug, PartialEq, Eq, Clone)]
    enum Call {
        SetFeatures(u64),
        Activate(u16, QueueConfig),
        Notify(u16),
        Reset,
        WriteConfig(u32, Vec<u8>),
    }

    #[derive(Clone, Default)]
    struct Mock {
        calls: Arc<Mutex<Vec<Call>>>,
        fail_activate: bool,
        gone: bool,
    }

    const FEATURES: u64 = VIRTIO_F_VERSION_1 | 1 << 3;

    impl Backend for Mock {
        fn device_features(&mut self) -> Result<u64, BackendError> {
            if self.gone {
                return Err("daemon gone".into());
            }
            Ok(FEATURES)
        }
        fn check(&mut self) -> Result<(), BackendError> {
            if self.gone {
                return Err("daemon gone".into());
            }
            Ok(())
        }
        fn set_features(&mut self, f: u64) -> Result<(), BackendError> {
            self.calls.lock().unwrap().push(Call::SetFeatures(f));
            Ok(())
        }
        fn read_config(&mut self, offset: u32, data: &mut [u8]) -> Result<(), BackendError> {
            for (i, b) in data.iter_mut().enumerate() {
                *b = (offset as usize + i) as u8;
            }
            Ok(())
        }
        fn write_config(&mut self, offset: u32, data: &[u8]) -> Result<(), BackendError> {
            self.calls
                .lock()
                .unwrap()
                .push(Call::WriteConfig(offset, data.to_vec()));
            Ok(())
        }
        fn activate_queue(&mut self, i: u16, q: QueueConfig) -> Result<(), BackendError> {
            if self.fail_activate {
                return Err("backend gone".into());
            }
            self.calls.lock().unwrap().push(Call::Activate(i, q));
            Ok(())
        }
        fn notify(&mut self, i: u16) -> Result<(), BackendError> {
            self.calls.lock().unwrap().push(Call::Notify(i));
            Ok(())
        }
        fn reset(&mut self) -> Result<(), BackendError> {
            self.calls.lock().unwrap().push(Call::Reset);
            Ok(())
        }
    }

    fn rng() -> (MmioTransport<Mock>, Arc<Mutex<Vec<Call>>>) {
        let mock = Mock::default();
        let calls = mock.calls.clone();
        (MmioTransport::new(DeviceType::Rng.profile(), mock), calls)
    }

    fn r(t: &MmioTransport<Mock>, off: u64) -> u32 {
        let mut b = [0; 4];
        t.read_register(off, &mut b).unwrap();
        u32::from_le_bytes(b)
    }

    fn w(t: &MmioTransport<Mock>, off: u64, v: u32) -> Result<(), Error> {
        t.write_register(off, &v.to_le_bytes())
    }

    fn negotiate(t: &MmioTransport<Mock>) {
        w(t, 0x070, status::ACKNOWLEDGE | status::DRIVER).unwrap();
        w(t, 0x024, 1).unwrap();
        w(t, 0x020, 1).unwrap();
        w(
            t,
            0x070,
            status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK,
        )
        .unwrap();
    }

    fn setup_queue(t: &MmioTransport<Mock>, size: u32, desc: u64, drv: u64, dev: u64) {
        w(t, 0x030, 0).unwrap();
        w(t, 0x038, size).unwrap();
        for (off, v) in [(0x080, desc), (0x090, drv), (0x0a0, dev)] {
            w(t, off, v as u32).unwrap();
            w(t, off + 4, (v >> 32) as u32).unwrap();
        }
    }

    #[test]
    fn identification_registers_follow_the_spec() {
        let (t, _) = rng();
        assert_eq!(r(&t, 0x000), 0x7472_6976);
        assert_eq!(r(&t, 0x004), 2);
        assert_eq!(r(&t, 0x008), 4);
        assert_eq!(r(&t, 0x00c), 0);
        assert_eq!(r(&t, 0x034), 256);
        assert_eq!(r(&t, 0x044), 0);
        assert_eq!(r(&t, 0x060), 0);
        assert_eq!(r(&t, 0x070), 0);
        assert_eq!(r(&t, 0x0fc), 0);
    }

    #[test]
    fn device_features_are_shown_32_bits_at_a_time() {
        let (t, _) = rng();
        assert_eq!(r(&t, 0x010), FEATURES as u32);
        w(&t, 0x014, 1).unwrap();
        assert_eq!(r(&t, 0x010), 1);
        w(&t, 0x014, 7).unwrap();
        assert_eq!(r(&t, 0x010), 0);
    }

    #[test]
    fn features_ok_sticks_when_the_driver_accepts_a_subset_with_version_1() {
        let (t, calls) = rng();
        negotiate(&t);
        assert_eq!(r(&t, 0x070) & status::FEATURES_OK, status::FEATURES_OK);
        assert_eq!(
            *calls.lock().unwrap(),
            [Call::SetFeatures(VIRTIO_F_VERSION_1)]
        );
    }

    #[test]
    fn features_ok_stays_clear_for_unoffered_features_or_without_version_1() {
        let (t, calls) = rng();
        w(&t, 0x020, 1 << 5).unwrap(); // not offered
        w(&t, 0x024, 1).unwrap();
        w(&t, 0x020, 1).unwrap();
        w(&t, 0x070, 3 | status::FEATURES_OK).unwrap();
        assert_eq!(r(&t, 0x070), 3);
        w(&t, 0x070, 0).unwrap();
        w(&t, 0x070, 3 | status::FEATURES_OK).unwrap(); // no VERSION_1
        assert_eq!(r(&t, 0x070), 3);
        assert!(!calls
            .lock()
            .unwrap()
            .iter()
            .any(|c| matches!(c, Call::SetFeatures(_))));
    }

    #[test]
    fn queue_ready_hands_the_queue_to_the_backend() {
        let (t, calls) = rng();
        negotiate(&t);
        setup_queue(&t, 128, 0x1_0000_0000, 0x2002, 0x3004);
        w(&t, 0x044, 1).unwrap();
        assert_eq!(r(&t, 0x044), 1);
        let expected = QueueConfig {
            size: 128,
            desc: 0x1_0000_0000,
            driver: 0x2002,
            device: 0x3004,
        };
        assert_eq!(
            calls.lock().unwrap().last(),
            Some(&Call::Activate(0, expected))
        );
        // A ready queue's registers are frozen.
        assert!(matches!(
            w(&t, 0x038, 64),
            Err(Error::QueueReady {
                index: 0,
                name: "QueueNum"
            })
        ));
        assert!(matches!(w(&t, 0x080, 0), Err(Error::QueueReady { .. })));
        w(&t, 0x050, 0).unwrap();
        assert_eq!(calls.lock().unwrap().last(), Some(&Call::Notify(0)));
    }

    #[test]
    fn hostile_queue_sizes_and_addresses_are_refused() {
        let cases: [(u32, u64, u64, u64); 7] = [
            (0, 0, 0, 0),
            (3, 0, 0, 0),
            (512, 0, 0, 0),
            (u32::MAX, 0, 0, 0),
            (16, 8, 0, 0),
            (16, 0, 1, 2),
            (256, !15u64, 0, 0),
        ];
        for (size, desc, drv, dev) in cases {
            let (t, calls) = rng();
            negotiate(&t);
            setup_queue(&t, size, desc, drv, dev);
            let err = w(&t, 0x044, 1).unwrap_err();
            assert!(
                matches!(err, Error::InvalidQueue { .. }),
                "{size} {desc:#x}: {err}"
            );
            assert_eq!(r(&t, 0x044), 0);
            assert!(!calls
                .lock()
                .unwrap()
                .iter()
                .any(|c| matches!(c, Call::Activate(..))));
        }
        let (t, _) = rng();
        setup_queue(&t, 16, !15u64, 0, 0);
        assert!(w(&t, 0x044, 1).is_err(), "desc table wraps around");
    }

    #[test]
    fn queue_registers_of_a_missing_queue_are_refused() {
        let (t, calls) = rng();
        w(&t, 0x030, 1).unwrap();
        assert_eq!(r(&t, 0x034), 0, "QueueNumMax of a missing queue");
        assert_eq!(r(&t, 0x044), 0);
        for off in [0x038, 0x044, 0x080, 0x084, 0x090, 0x094, 0x0a0, 0x0a4] {
            assert!(matches!(
                w(&t, off, 1),
                Err(Error::NoQueue {
                    index: 1,
                    num_queues: 1
                })
            ));
        }
        assert!(matches!(w(&t, 0x050, 1), Err(Error::NoQueue { .. })));
        assert!(matches!(w(&t, 0x050, u32::MAX), Err(Error::NoQueue { .. })));
        assert!(calls.lock().unwrap().is_empty());
    }

    #[test]
    fn a_backend_failure_leaves_the_queue_not_ready() {
        let mock = Mock {
            fail_activate: true,
            ..Mock::default()
        };
        let t = MmioTransport::new(DeviceType::Rng.profile(), mock);
        setup_queue(&t, 16, 0, 0, 0);
        assert!(matches!(w(&t, 0x044, 1), Err(Error::Backend { .. })));
        assert_eq!(r(&t, 0x044), 0);
        assert_eq!(r(&t, 0x070), status::DEVICE_NEEDS_RESET);
        assert_eq!(r(&t, 0x060), interrupt::CONFIG_CHANGE);
    }

    #[test]
    fn a_backend_gone_at_feature_time_shows_no_features_and_needs_reset() {
        let mock = Mock {
            gone: true,
            ..Mock::default()
        };
        let t = MmioTransport::new(DeviceType::Rng.profile(), mock);
        assert_eq!(r(&t, 0x010), 0);
        assert_eq!(r(&t, 0x070), status::DEVICE_NEEDS_RESET);
        w(&t, 0x070, 0).unwrap();
        w(&t, 0x020, 0).unwrap();
        w(&t, 0x024, 1).unwrap();
        w(&t, 0x020, 1).unwrap();
        w(&t, 0x070, 3 | status::FEATURES_OK).unwrap();
        assert_eq!(
            r(&t, 0x070),
            3 | status::DEVICE_NEEDS_RESET,
            "no FEATURES_OK"
        );
    }

    struct Irq<'a> {
        t: &'a MmioTransport<Mock>,
        seen: Mutex<Vec<u32>>,
    }
    impl Interrupt for Irq<'_> {
        fn trigger(&self) -> std::io::Result<()> {
            self.seen.lock().unwrap().push(self.t.interrupt_status());
            Ok(())
        }
    }

    #[test]
    fn the_used_buffer_bit_is_set_before_the_interrupt_is_injected() {
        let (t, _) = rng();
        let irq = Irq {
            t: &t,
            seen: Mutex::default(),
        };
        t.used_buffer_interrupt(&irq).unwrap();
        assert_eq!(*irq.seen.lock().unwrap(), [interrupt::USED_BUFFER]);
        assert_eq!(r(&t, 0x060), interrupt::USED_BUFFER);
    }

    #[test]
    fn check_backend_sets_needs_reset_and_injects_when_the_backend_is_gone() {
        let (t, _) = rng();
        let irq = Irq {
            t: &t,
            seen: Mutex::default(),
        };
        t.check_backend(&irq).unwrap();
        assert!(irq.seen.lock().unwrap().is_empty());
        let t = MmioTransport::new(
            DeviceType::Rng.profile(),
            Mock {
                gone: true,
                ..Mock::default()
            },
        );
        let irq = Irq {
            t: &t,
            seen: Mutex::default(),
        };
        assert!(matches!(
            t.check_backend(&irq),
            Err(Error::Backend {
                op: "check the backend",
                ..
            })
        ));
        assert_eq!(*irq.seen.lock().unwrap(), [interrupt::CONFIG_CHANGE]);
        assert_eq!(t.status(), status::DEVICE_NEEDS_RESET);
    }

    #[test]
    fn writing_status_0_resets_everything() {
        let (t, calls) = rng();
        negotiate(&t);
        setup_queue(&t, 16, 0x1000, 0x2000, 0x3000);
        w(&t, 0x044, 1).unwrap();
        w(&t, 0x014, 1).unwrap();
        w(&t, 0x030, 5).unwrap();
        t.signal_used();
        t.set_needs_reset();
        w(&t, 0x070, 0).unwrap();
        assert_eq!(calls.lock().unwrap().last(), Some(&Call::Reset));
        assert_eq!(r(&t, 0x070), 0);
        assert_eq!(r(&t, 0x060), 0);
        assert_eq!(r(&t, 0x010), FEATURES as u32, "DeviceFeaturesSel back to 0");
        assert_eq!(r(&t, 0x034), 256, "QueueSel back to 0");
        assert_eq!(r(&t, 0x044), 0, "queue not ready");
    }

    #[test]
    fn direct_used_buffer_interrupts_show_the_bit_while_the_driver_runs() {
        let (t, _) = rng();
        t.set_direct_used_buffer_interrupts(true);
        assert_eq!(r(&t, 0x060), 0, "no driver yet");
        negotiate(&t);
        assert_eq!(r(&t, 0x060), 0, "FEATURES_OK is not DRIVER_OK");
        w(&t, 0x070, r(&t, 0x070) | status::DRIVER_OK).unwrap();
        assert_eq!(r(&t, 0x060), interrupt::USED_BUFFER);
        t.signal_config_change();
        assert_eq!(
            r(&t, 0x060),
            interrupt::USED_BUFFER | interrupt::CONFIG_CHANGE
        );
        w(&t, 0x064, interrupt::USED_BUFFER | interrupt::CONFIG_CHANGE).unwrap();
        assert_eq!(r(&t, 0x060), interrupt::USED_BUFFER, "still running");
        t.set_direct_used_buffer_interrupts(false);
        assert_eq!(r(&t, 0x060), 0, "acknowledged, and not direct");
        w(&t, 0x070, 0).unwrap();
        t.set_direct_used_buffer_interrupts(true);
        assert_eq!(r(&t, 0x060), 0, "reset: no driver");
    }

    #[test]
    fn status_bits_cannot_be_cleared_except_by_reset() {
        let (t, _) = rng();
        w(&t, 0x070, 3).unwrap();
        assert!(matches!(
            w(&t, 0x070, 1),
            Err(Error::StatusCleared {
                current: 3,
                value: 1
            })
        ));
        assert_eq!(r(&t, 0x070), 3);
        w(&t, 0x070, 3 | status::FAILED).unwrap();
        assert_eq!(r(&t, 0x070), 3 | status::FAILED);
    }

    #[test]
    fn device_needs_reset_is_set_by_the_device_and_blocks_queues() {
        let (t, calls) = rng();
        negotiate(&t);
        t.set_needs_reset();
        let st = r(&t, 0x070);
        assert_ne!(st & status::DEVICE_NEEDS_RESET, 0);
        assert_eq!(r(&t, 0x060), interrupt::CONFIG_CHANGE);
        // The driver writing its own bits back keeps the device's bit.
        w(&t, 0x070, st | status::DRIVER_OK).unwrap();
        assert_ne!(r(&t, 0x070) & status::DEVICE_NEEDS_RESET, 0);
        setup_queue(&t, 16, 0, 0, 0);
        assert!(matches!(w(&t, 0x044, 1), Err(Error::NeedsReset)));
        assert!(matches!(w(&t, 0x050, 0), Err(Error::NeedsReset)));
        assert!(!calls
            .lock()
            .unwrap()
            .iter()
            .any(|c| matches!(c, Call::Activate(..) | Call::Notify(_))));
    }

    #[test]
    fn interrupt_ack_clears_only_the_acknowledged_bits() {
        let (t, _) = rng();
        t.signal_used();
        t.signal_config_change();
        assert_eq!(r(&t, 0x060), 3);
        assert_eq!(r(&t, 0x0fc), 1, "ConfigGeneration counts config changes");
        w(&t, 0x064, interrupt::USED_BUFFER).unwrap();
        assert_eq!(r(&t, 0x060), interrupt::CONFIG_CHANGE);
        w(&t, 0x064, u32::MAX).unwrap();
        assert_eq!(r(&t, 0x060), 0);
    }

    #[test]
    fn registers_take_aligned_32_bit_accesses_only() {
        let (t, _) = rng();
        for size in [1, 2, 3, 8] {
            let mut b = vec![0; size];
            assert!(matches!(
                t.read_register(0x000, &mut b),
                Err(Error::InvalidRegisterAccess { offset: 0, .. })
            ));
            assert!(matches!(
                t.write_register(0x070, &b),
                Err(Error::InvalidRegisterAccess { offset: 0x70, .. })
            ));
        }
        assert!(matches!(
            t.read_register(0x002, &mut [0; 4]),
            Err(Error::InvalidRegisterAccess { .. })
        ));
    }

    #[test]
    fn read_only_write_only_and_missing_registers_are_refused() {
        let (t, _) = rng();
        for off in [0x000, 0x004, 0x008, 0x00c, 0x010, 0x034, 0x060, 0x0fc] {
            assert!(
                matches!(w(&t, off, 1), Err(Error::ReadOnly { .. })),
                "{off:#x}"
            );
        }
        for off in [
            0x014, 0x020, 0x024, 0x030, 0x038, 0x050, 0x064, 0x080, 0x0a4,
        ] {
            let mut b = [0; 4];
            assert!(
                matches!(t.read_register(off, &mut b), Err(Error::WriteOnly { .. })),
                "{off:#x}"
            );
        }
        for off in [0x018, 0x040, 0x0b0, 0x0f8] {
            assert!(
                matches!(w(&t, off, 1), Err(Error::NoRegister { .. })),
                "{off:#x}"
            );
            assert!(matches!(
                t.read_register(off, &mut [0; 4]),
                Err(Error::NoRegister { .. })
            ));
        }
        assert_eq!(r(&t, 0x070), 0, "no refused write changed Status");
    }

    #[test]
    fn config_space_takes_1_2_4_and_8_byte_accesses() {
        let (t, calls) = rng();
        for size in [1, 2, 4, 8] {
            let mut b = vec![0xff; size];
            t.read_register(0x104, &mut b).unwrap();
            let want: Vec<u8> = (4..4 + size as u8).collect();
            assert_eq!(b, want);
        }
        t.write_register(0x102, &[9, 8]).unwrap();
        assert_eq!(*calls.lock().unwrap(), [Call::WriteConfig(2, vec![9, 8])]);
        for size in [0, 3, 5, 16] {
            let mut b = vec![0; size];
            assert!(matches!(
                t.read_register(0x100, &mut b),
                Err(Error::InvalidConfigAccess { .. })
            ));
        }
        assert!(matches!(
            t.read_register(u64::MAX, &mut [0; 1]),
            Err(Error::NoRegister { .. })
        ));
    }

    #[test]
    fn it_serves_a_device_bus() {
        use vm_device_bus::{DeviceBus, IoBus, IoSpace};
        let (t, _) = rng();
        let mut bus = IoBus::new();
        bus.insert(IoSpace::Mmio, 0xa000_0000, 0x200, Arc::new(t))
            .unwrap();
        let mut b = [0; 4];
        bus.read(IoSpace::Mmio, 0xa000_0000, &mut b).unwrap();
        assert_eq!(u32::from_le_bytes(b), MAGIC_VALUE);
        let err = bus
            .read(IoSpace::Mmio, 0xa000_0001, &mut [0; 1])
            .unwrap_err();
        assert!(err.to_string().contains("offset 0x1"), "{err}");
    }
}
