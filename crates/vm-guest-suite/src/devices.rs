// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Devices the test guests talk to, recording what they saw so the host
//! can check it.

use std::sync::Mutex;

use vm_hypervisor::{DeviceError, IoHandler};

use crate::layout::READ_VALUE;

/// One access a [`Recorder`] saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// Offset inside the device.
    pub offset: u64,
    /// `true` for a guest write.
    pub write: bool,
    /// Bytes written, or bytes returned to the guest.
    pub data: Vec<u8>,
}

impl Access {
    /// A write of `data` at `offset`.
    pub fn write(offset: u64, data: &[u8]) -> Self {
        Self {
            offset,
            write: true,
            data: data.to_vec(),
        }
    }

    /// A read of `size` bytes at `offset` (answered with [`READ_VALUE`]).
    pub fn read(offset: u64, size: usize) -> Self {
        Self {
            offset,
            write: false,
            data: READ_VALUE.to_le_bytes()[..size].to_vec(),
        }
    }
}

/// Records every access; reads return the low bytes of [`READ_VALUE`].
#[derive(Debug, Default)]
pub struct Recorder {
    log: Mutex<Vec<Access>>,
}

impl Recorder {
    /// Everything seen so far, oldest first.
    pub fn log(&self) -> Vec<Access> {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The writes seen so far, oldest first.
    pub fn writes(&self) -> Vec<Access> {
        self.log().into_iter().filter(|a| a.write).collect()
    }

    fn push(&self, a: Access) {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).push(a);
    }
}

impl IoHandler for Recorder {
    fn read(&self, offset: u64, data: &mut [u8]) -> Result<(), DeviceError> {
        let value = READ_VALUE.to_le_bytes();
        let n = data.len().min(value.len());
        data[..n].copy_from_slice(&value[..n]);
        self.push(Access {
            offset,
            write: false,
            data: data.to_vec(),
        });
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), DeviceError> {
        self.push(Access::write(offset, data));
        Ok(())
    }
}

/// A device that fails every access, as a broken or hostile device model
/// might.
#[derive(Debug, Default)]
pub struct Failing;

impl IoHandler for Failing {
    fn read(&self, offset: u64, _: &mut [u8]) -> Result<(), DeviceError> {
        Err(format!("read at offset {offset:#x} refused").into())
    }

    fn write(&self, offset: u64, _: &[u8]) -> Result<(), DeviceError> {
        Err(format!("write at offset {offset:#x} refused").into())
    }
}
