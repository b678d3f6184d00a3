// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Bodies of the vhost-user-frontend fuzz targets, in a library so `tests/replay.rs` can
//! replay the regressions directory with a plain `cargo test`. Only the crate's public API is
//! used.

use fuzz_support::Input;
use std::sync::{Arc, Mutex};

use vhost_user_frontend::mmio::{status, VIRTIO_F_VERSION_1};
use vhost_user_frontend::{Backend, BackendError, DeviceProfile, MmioTransport, QueueConfig};
use vm_device_bus::IoHandler;

/// What the mock backend was asked, and which calls fail (bit per call kind).
#[derive(Default)]
struct Log {
    fail: u8,
    features: u64,
    active: Vec<(u16, QueueConfig)>,
    notified: Vec<u16>,
    accepted: Option<u64>,
}

/// A backend whose answers and failures come from the fuzz input; it checks what the
/// transport hands it.
struct Mock {
    log: Arc<Mutex<Log>>,
    profile: DeviceProfile,
}

fn failing(log: &Log, bit: u8) -> Result<(), BackendError> {
    if log.fail & (1 << bit) != 0 {
        Err("backend gone".into())
    } else {
        Ok(())
    }
}

impl Backend for Mock {
    fn device_features(&mut self) -> Result<u64, BackendError> {
        let log = self.log.lock().unwrap();
        failing(&log, 0)?;
        Ok(log.features)
    }
    fn set_features(&mut self, features: u64) -> Result<(), BackendError> {
        let mut log = self.log.lock().unwrap();
        assert_eq!(features & !log.features, 0, "features not offered");
        assert_ne!(features & VIRTIO_F_VERSION_1, 0, "legacy negotiation");
        failing(&log, 1)?;
        log.accepted = Some(features);
        Ok(())
    }
    fn read_config(&mut self, offset: u32, data: &mut [u8]) -> Result<(), BackendError> {
        assert!(matches!(data.len(), 1 | 2 | 4 | 8));
        failing(&self.log.lock().unwrap(), 2)?;
        data.fill(offset as u8);
        Ok(())
    }
    fn write_config(&mut self, _offset: u32, data: &[u8]) -> Result<(), BackendError> {
        assert!(matches!(data.len(), 1 | 2 | 4 | 8));
        failing(&self.log.lock().unwrap(), 3)
    }
    fn activate_queue(&mut self, index: u16, q: QueueConfig) -> Result<(), BackendError> {
        let mut log = self.log.lock().unwrap();
        assert!(index < self.profile.num_queues);
        assert!(q.size.is_power_of_two() && q.size <= self.profile.max_queue_size);
        assert!(q.desc % 16 == 0 && q.driver % 2 == 0 && q.device % 4 == 0);
        let n = u64::from(q.size);
        assert!(q.desc.checked_add(16 * n).is_some());
        assert!(q.driver.checked_add(6 + 2 * n).is_some());
        assert!(q.device.checked_add(6 + 8 * n).is_some());
        failing(&log, 4)?;
        log.active.push((index, q));
        Ok(())
    }
    fn notify(&mut self, index: u16) -> Result<(), BackendError> {
        let mut log = self.log.lock().unwrap();
        assert!(index < self.profile.num_queues);
        failing(&log, 5)?;
        log.notified.push(index);
        Ok(())
    }
    fn reset(&mut self) -> Result<(), BackendError> {
        let mut log = self.log.lock().unwrap();
        log.active.clear();
        log.accepted = None;
        failing(&log, 6)
    }
    fn check(&mut self) -> Result<(), BackendError> {
        failing(&self.log.lock().unwrap(), 7)
    }
}

struct NoIrq;

impl vhost_user_frontend::Interrupt for NoIrq {
    fn trigger(&self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Offsets the driver uses, so the fuzzer reaches them often; any offset is possible too.
const REGS: [u64; 24] = [
    0x000, 0x004, 0x008, 0x00c, 0x010, 0x014, 0x020, 0x024, 0x030, 0x034, 0x038, 0x044, 0x050,
    0x060, 0x064, 0x070, 0x080, 0x084, 0x090, 0x094, 0x0a0, 0x0a4, 0x0fc, 0x100,
];

/// Drives a transport with a sequence of (offset, size, read/write, value) accesses and
/// backend failures from the input. Never a panic; reads fill exactly the access; the
/// backend sees only valid queues, offered features and existing queue indexes; Status
/// never shows FEATURES_OK for a refused negotiation, and a reset clears the state.
pub fn mmio_registers(data: &[u8]) {
    let mut input = Input::new(data);
    let profile = DeviceProfile {
        device_id: u32::from(input.u8()),
        num_queues: u16::from(input.u8() % 9),
        max_queue_size: 1 << (input.u8() % 16),
    };
    let log = Arc::new(Mutex::new(Log {
        features: u64::from(input.u32()) << 32 | u64::from(input.u32()),
        ..Log::default()
    }));
    let t = MmioTransport::new(
        profile,
        Mock {
            log: Arc::clone(&log),
            profile,
        },
    );
    for _ in 0..256 {
        if input.is_empty() {
            break;
        }
        let op = input.u8();
        let offset = match op >> 5 {
            0 => u64::from(input.u32()) << 32 | u64::from(input.u32()),
            1 => 0x100 + u64::from(input.u8()),
            _ => REGS[usize::from(input.u8()) % REGS.len()],
        };
        let size = match op & 3 {
            0 => 4,
            1 => usize::from(input.u8() % 10),
            2 => 1 << (input.u8() % 4),
            _ => 4,
        };
        match (op >> 2) & 7 {
            0 => log.lock().unwrap().fail = input.u8(),
            1 => {
                let _ = t.check_backend(&NoIrq);
            }
            2 | 3 => {
                let mut buf = [0xa5u8; 10];
                let r = t.read_register(offset, &mut buf[..size]);
                assert_eq!(buf[size], 0xa5, "read past the access");
                if r.is_ok() && offset == 0 {
                    assert_eq!(buf[..4], 0x7472_6976u32.to_le_bytes());
                }
            }
            4 => {
                let mut buf = [0u8; 9];
                let _ = IoHandler::read(&t, offset, &mut buf[..size]);
            }
            _ => {
                let value = match op & 0x80 {
                    0 => input.u8().into(),
                    _ => input.u32(),
                };
                let mut buf = [0u8; 9];
                buf[..4].copy_from_slice(&value.to_le_bytes());
                let before = t.status();
                let r = t.write_register(offset, &buf[..size]);
                let after = t.status();
                if offset == 0x70 && size == 4 {
                    if value == 0 {
                        assert_eq!(after, 0, "reset");
                        assert_eq!(t.interrupt_status(), 0);
                    } else if r.is_ok()
                        && after & status::FEATURES_OK != 0
                        && before & status::FEATURES_OK == 0
                    {
                        assert!(
                            log.lock().unwrap().accepted.is_some(),
                            "FEATURES_OK unaccepted"
                        );
                    }
                } else if offset != 0x70 {
                    // Only a Status write or a backend failure changes Status, and only by
                    // DEVICE_NEEDS_RESET.
                    assert_eq!(
                        after & !status::DEVICE_NEEDS_RESET,
                        before & !status::DEVICE_NEEDS_RESET
                    );
                }
            }
        }
    }
}
