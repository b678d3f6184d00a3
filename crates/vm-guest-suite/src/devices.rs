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

/// What a [`Recorder`] runs on a write at one offset.
type Hook = Box<dyn Fn() + Send + Sync>;

/// Records every access; reads return the low bytes of [`READ_VALUE`].
/// A hook can act on a write at one offset while the guest waits for it
/// (a guest's "ready" to take an interrupt), on backends whose `run`
/// returns per access and on those that serve accesses inside `run` alike.
#[derive(Default)]
pub struct Recorder {
    log: Mutex<Vec<Access>>,
    hook: Mutex<Option<(u64, Hook)>>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("log", &self.log())
            .finish_non_exhaustive()
    }
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

    /// Run `hook` on every write at `offset` from now on (replacing any
    /// earlier hook), after the write is recorded.
    pub fn on_write(&self, offset: u64, hook: impl Fn() + Send + Sync + 'static) {
        *self.hook.lock().unwrap_or_else(|p| p.into_inner()) = Some((offset, Box::new(hook)));
    }

    /// Remove the hook, dropping what it holds.
    pub fn clear_hook(&self) {
        self.hook.lock().unwrap_or_else(|p| p.into_inner()).take();
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
        let hook = self.hook.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, run)) = hook.as_ref() {
            if *at == offset {
                run();
            }
        }
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
