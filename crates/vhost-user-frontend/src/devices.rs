// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! What each virtio device type needs from the transport.
//!
//! vhost-user has no message that tells the frontend how many queues a
//! device has or how large they may be, so the transport keeps a table per
//! virtio device ID (virtio 1.2, section 5). A caller with other needs
//! builds its own [`DeviceProfile`].

/// Virtio device IDs (virtio 1.2, section 5) the table knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DeviceType {
    /// Network device (ID 1).
    Net,
    /// Block device (ID 2).
    Block,
    /// Console (ID 3).
    Console,
    /// Entropy source (ID 4).
    Rng,
    /// SCSI host (ID 8).
    Scsi,
    /// File system (ID 26).
    Fs,
    /// Socket device (ID 19).
    Vsock,
    /// Sound device (ID 25).
    Sound,
    /// I2C adapter (ID 34).
    I2c,
    /// GPIO device (ID 41).
    Gpio,
}

impl DeviceType {
    /// The virtio device ID.
    pub const fn id(self) -> u32 {
        match self {
            DeviceType::Net => 1,
            DeviceType::Block => 2,
            DeviceType::Console => 3,
            DeviceType::Rng => 4,
            DeviceType::Scsi => 8,
            DeviceType::Vsock => 19,
            DeviceType::Sound => 25,
            DeviceType::Fs => 26,
            DeviceType::I2c => 34,
            DeviceType::Gpio => 41,
        }
    }

    /// The type of a virtio device ID, if the table knows it.
    pub const fn from_id(id: u32) -> Option<Self> {
        Some(match id {
            1 => DeviceType::Net,
            2 => DeviceType::Block,
            3 => DeviceType::Console,
            4 => DeviceType::Rng,
            8 => DeviceType::Scsi,
            19 => DeviceType::Vsock,
            25 => DeviceType::Sound,
            26 => DeviceType::Fs,
            34 => DeviceType::I2c,
            41 => DeviceType::Gpio,
            _ => return None,
        })
    }

    /// The default profile: queue count and maximum queue size.
    pub const fn profile(self) -> DeviceProfile {
        let (num_queues, max_queue_size) = match self {
            // One receive and one transmit queue (no MQ, no control queue).
            DeviceType::Net => (2, 256),
            DeviceType::Block => (1, 256),
            // Receive and transmit of port 0 (no MULTIPORT).
            DeviceType::Console => (2, 128),
            DeviceType::Rng => (1, 256),
            // Control, event and one request queue.
            DeviceType::Scsi => (3, 256),
            // Receive, transmit and event.
            DeviceType::Vsock => (3, 256),
            // Control, event, tx and rx.
            DeviceType::Sound => (4, 64),
            // One high-priority and one request queue.
            DeviceType::Fs => (2, 1024),
            DeviceType::I2c => (1, 1024),
            // Request and event.
            DeviceType::Gpio => (2, 256),
        };
        DeviceProfile {
            device_id: self.id(),
            num_queues,
            max_queue_size,
        }
    }
}

/// What the transport tells the driver about a device's queues.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceProfile {
    /// The virtio device ID (the DeviceID register).
    pub device_id: u32,
    /// How many virtqueues the device has.
    pub num_queues: u16,
    /// The largest queue size (QueueNumMax), a power of two.
    pub max_queue_size: u16,
}

impl DeviceProfile {
    /// The table's profile for a virtio device ID, if it knows the ID.
    pub const fn for_device_id(id: u32) -> Option<Self> {
        match DeviceType::from_id(id) {
            Some(t) => Some(t.profile()),
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [DeviceType; 10] = [
        DeviceType::Net,
        DeviceType::Block,
        DeviceType::Console,
        DeviceType::Rng,
        DeviceType::Scsi,
        DeviceType::Vsock,
        DeviceType::Sound,
        DeviceType::Fs,
        DeviceType::I2c,
        DeviceType::Gpio,
    ];

    #[test]
    fn ids_follow_the_virtio_spec_and_round_trip() {
        let ids: Vec<u32> = ALL.iter().map(|t| t.id()).collect();
        assert_eq!(ids, [1, 2, 3, 4, 8, 19, 25, 26, 34, 41]);
        for t in ALL {
            assert_eq!(DeviceType::from_id(t.id()), Some(t));
        }
        assert_eq!(DeviceType::from_id(0), None);
        assert_eq!(DeviceProfile::for_device_id(9999), None);
    }

    #[test]
    fn every_profile_has_queues_of_a_power_of_two_size() {
        for t in ALL {
            let p = t.profile();
            assert_eq!(p.device_id, t.id());
            assert!(p.num_queues >= 1, "{t:?}");
            assert!(p.max_queue_size.is_power_of_two(), "{t:?}");
        }
        assert_eq!(DeviceProfile::for_device_id(4).unwrap().num_queues, 1);
        assert_eq!(DeviceProfile::for_device_id(19).unwrap().num_queues, 3);
    }
}
