// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! SET_MEM_TABLE for daemons built with Xen support (protocol feature
//! XEN_MMAP).
//!
//! A daemon built with the `vhost` crate's `xen` feature reads memory-table
//! entries of 40 bytes: the usual guest address, size, frontend address and
//! mmap offset, then two 32-bit words, `xen_mmap_flags` and
//! `xen_mmap_data`. The `vhost` crate lays out the entries of its own
//! frontend by the same build-wide feature, and Cargo unifies features, so
//! one process using it could serve either Xen daemons or ordinary ones,
//! never both. This module therefore encodes the one message whose layout
//! differs itself, and the relay sends it in place of the crate's when the
//! daemon offered XEN_MMAP (see the `vhost_user` module). Everything else on
//! the connection is the same in both builds.

use std::io::{self, Read};
use std::os::fd::RawFd;
use std::os::unix::net::UnixStream;

use vmm_sys_util::sock_ctrl_msg::ScmSocket;

use crate::memory::{Mapping, SharedMemory};

/// `VHOST_USER_SET_MEM_TABLE`.
const SET_MEM_TABLE: u32 = 5;
/// Header flags: protocol version 1.
const VERSION_1: u32 = 0x1;
/// Header flags: this is a reply.
const REPLY: u32 = 0x4;
/// Header flags: the sender wants a REPLY_ACK.
const NEED_REPLY: u32 = 0x8;
/// Bytes of a message header: request, flags, payload size.
const HEADER: usize = 12;
/// Bytes of one Xen memory-table entry.
pub const XEN_REGION: usize = 40;

/// `xen_mmap_flags`: map the domain's frames through privcmd, up front.
pub const XEN_MMAP_FOREIGN: u32 = 0x1;
/// `xen_mmap_flags`: map grant references through gntdev.
pub const XEN_MMAP_GRANT: u32 = 0x2;
/// `xen_mmap_flags`: map grants when used, not when the table arrives.
pub const XEN_MMAP_NO_ADVANCE_MAP: u32 = 0x8;

/// One entry of a Xen memory table. The frontend address is the guest address (the
/// frontend does not map Xen guests), so vring addresses are guest addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XenRegion {
    /// Guest address of the first byte (for grants: bit 63 and the reference's frame).
    pub guest_addr: u64,
    /// Size in bytes.
    pub size: u64,
    /// `xen_mmap_flags`.
    pub flags: u32,
    /// `xen_mmap_data`: the guest's domain id.
    pub data: u32,
}

/// The two Xen words of a region's entry.
fn xen_words(mapping: Mapping) -> (u32, u32) {
    match mapping {
        Mapping::XenForeign { domid } => (XEN_MMAP_FOREIGN, u32::from(domid)),
        Mapping::XenGrant { domid } => (XEN_MMAP_GRANT | XEN_MMAP_NO_ADVANCE_MAP, u32::from(domid)),
        // Not reached for a Xen table (SharedMemory keeps a table all Xen or none);
        // flags 0 is the daemon's "ordinary file", which it would refuse for mmap offset 0
        // on privcmd anyway.
        Mapping::File { .. } => (0, 0),
    }
}

/// The entries of `memory`, one per region, grants mapped on use.
pub fn entries(memory: &SharedMemory) -> Vec<XenRegion> {
    memory
        .regions()
        .iter()
        .map(|r| {
            let (flags, data) = xen_words(r.mapping);
            XenRegion {
                guest_addr: r.guest_addr,
                size: r.size,
                flags,
                data,
            }
        })
        .collect()
}

const PAGE: u64 = 4096;

/// The entries of `memory` with the page ranges `rings` (start, end: the vrings' areas) cut
/// out of its grant regions and mapped up front (GRANT without NO_ADVANCE_MAP).
///
/// A daemon's vhost-user stack reaches a vring through a pointer into its mapping, which a
/// region mapped on use does not give it; buffers it reaches through vm-memory's accessors,
/// which map grants when used. Adjacent or overlapping ranges merge (a guest allocates each
/// vring as one run of pages, so each queue costs about one entry).
pub fn entries_with_rings(memory: &SharedMemory, rings: &[(u64, u64)]) -> Vec<XenRegion> {
    let mut ranges: Vec<(u64, u64)> = rings
        .iter()
        .filter(|(s, e)| s < e)
        .map(|&(s, e)| (s & !(PAGE - 1), e.saturating_add(PAGE - 1) & !(PAGE - 1)))
        .collect();
    ranges.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::new();
    for (s, e) in ranges {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    let mut out = Vec::new();
    for r in entries(memory) {
        if r.flags & XEN_MMAP_GRANT == 0 {
            out.push(r);
            continue;
        }
        let end = r.guest_addr + r.size;
        let mut at = r.guest_addr;
        let ahead = r.flags & !XEN_MMAP_NO_ADVANCE_MAP;
        for &(s, e) in &merged {
            let (s, e) = (s.max(r.guest_addr), e.min(end));
            if s >= e {
                continue;
            }
            if at < s {
                out.push(XenRegion {
                    guest_addr: at,
                    size: s - at,
                    ..r
                });
            }
            out.push(XenRegion {
                guest_addr: s,
                size: e - s,
                flags: ahead,
                ..r
            });
            at = e;
        }
        if at < end {
            out.push(XenRegion {
                guest_addr: at,
                size: end - at,
                ..r
            });
        }
    }
    out
}

/// The whole SET_MEM_TABLE message (header and payload) for `memory`, with
/// NEED_REPLY set when `need_reply`.
pub fn encode(memory: &SharedMemory, need_reply: bool) -> Vec<u8> {
    encode_entries(&entries(memory), need_reply)
}

/// The whole SET_MEM_TABLE message for `regions`.
pub fn encode_entries(regions: &[XenRegion], need_reply: bool) -> Vec<u8> {
    let payload = 8 + XEN_REGION * regions.len();
    let mut m = Vec::with_capacity(HEADER + payload);
    let flags = VERSION_1 | if need_reply { NEED_REPLY } else { 0 };
    m.extend_from_slice(&SET_MEM_TABLE.to_le_bytes());
    m.extend_from_slice(&flags.to_le_bytes());
    // At most MAX_REGIONS entries: the size fits in u32.
    m.extend_from_slice(&(payload as u32).to_le_bytes());
    m.extend_from_slice(&(regions.len() as u32).to_le_bytes());
    m.extend_from_slice(&0u32.to_le_bytes()); // padding
    for r in regions {
        for v in [r.guest_addr, r.size, r.guest_addr, 0] {
            m.extend_from_slice(&v.to_le_bytes());
        }
        m.extend_from_slice(&r.flags.to_le_bytes());
        m.extend_from_slice(&r.data.to_le_bytes());
    }
    m
}

/// Why the daemon did not take the table.
#[derive(Debug)]
pub(crate) enum SendError {
    Io(io::Error),
    /// The reply was not a REPLY_ACK of SET_MEM_TABLE.
    BadReply,
    /// The daemon answered with a nonzero status.
    Refused(u64),
    /// More entries than one message carries.
    TooMany(usize),
}

/// Sends `regions` on `sock`, each with the fd of the `memory` region it lies in; with
/// `need_reply`, waits for the daemon's acknowledgement.
pub(crate) fn send(
    sock: &UnixStream,
    memory: &SharedMemory,
    regions: &[XenRegion],
    need_reply: bool,
) -> Result<(), SendError> {
    if regions.is_empty() || regions.len() > crate::memory::MAX_REGIONS {
        return Err(SendError::TooMany(regions.len()));
    }
    let fds: Vec<RawFd> = regions
        .iter()
        .map(|e| {
            memory
                .regions()
                .iter()
                .zip(memory.raw_fds())
                .find(|(r, _)| r.guest_addr <= e.guest_addr && e.guest_addr < r.guest_addr + r.size)
                .map(|(_, fd)| fd)
                .ok_or(SendError::BadReply)
        })
        .collect::<Result<_, _>>()?;
    let msg = encode_entries(regions, need_reply);
    let sent = sock
        .send_with_fds(&[&msg[..]], &fds)
        .map_err(|e| SendError::Io(io::Error::from_raw_os_error(e.errno())))?;
    if sent != msg.len() {
        // The fds rode with the first bytes; the rest follows as plain data.
        let mut s = sock;
        io::Write::write_all(&mut s, &msg[sent..]).map_err(SendError::Io)?;
    }
    if !need_reply {
        return Ok(());
    }
    let mut reply = [0u8; HEADER + 8];
    let mut s = sock;
    s.read_exact(&mut reply).map_err(SendError::Io)?;
    check_reply(&reply)
}

fn check_reply(reply: &[u8; HEADER + 8]) -> Result<(), SendError> {
    let word = |i: usize| u32::from_le_bytes([reply[i], reply[i + 1], reply[i + 2], reply[i + 3]]);
    if word(0) != SET_MEM_TABLE || word(4) & REPLY == 0 || word(8) != 8 {
        return Err(SendError::BadReply);
    }
    let mut v = [0u8; 8];
    v.copy_from_slice(&reply[HEADER..]);
    match u64::from_le_bytes(v) {
        0 => Ok(()),
        status => Err(SendError::Refused(status)),
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::OwnedFd;

    use vmm_sys_util::sock_ctrl_msg::ScmSocket;

    use super::*;
    use crate::memory::SharedRegion;

    fn xen_memory(domid: u16, grant: bool) -> SharedMemory {
        let fd: OwnedFd = std::fs::File::open("/dev/null").unwrap().into();
        SharedMemory::new(vec![SharedRegion {
            guest_addr: 0x4000_0000,
            size: 0x800_0000,
            frontend_addr: 0x4000_0000,
            fd,
            mapping: if grant {
                Mapping::XenGrant { domid }
            } else {
                Mapping::XenForeign { domid }
            },
        }])
        .unwrap()
    }

    /// The layout the `vhost` crate's `xen` build reads (`VhostUserMemoryRegion`,
    /// `repr(C, packed)`: four u64 then two u32), and the flag values of vm-memory's
    /// `MmapXenFlags`.
    #[test]
    fn foreign_table_bytes() {
        let m = encode(&xen_memory(7, false), true);
        assert_eq!(m.len(), HEADER + 8 + XEN_REGION);
        assert_eq!(m, encode_entries(&entries(&xen_memory(7, false)), true));
        assert_eq!(&m[0..4], &5u32.to_le_bytes(), "SET_MEM_TABLE");
        assert_eq!(&m[4..8], &9u32.to_le_bytes(), "version 1 | NEED_REPLY");
        assert_eq!(&m[8..12], &48u32.to_le_bytes(), "payload size");
        assert_eq!(&m[12..16], &1u32.to_le_bytes(), "one region");
        let e = &m[20..];
        assert_eq!(&e[0..8], &0x4000_0000u64.to_le_bytes(), "guest address");
        assert_eq!(&e[8..16], &0x800_0000u64.to_le_bytes(), "size");
        assert_eq!(
            &e[16..24],
            &0x4000_0000u64.to_le_bytes(),
            "frontend address"
        );
        assert_eq!(&e[24..32], &0u64.to_le_bytes(), "mmap offset must be 0");
        assert_eq!(&e[32..36], &1u32.to_le_bytes(), "FOREIGN");
        assert_eq!(&e[36..40], &7u32.to_le_bytes(), "domid");
        let g = encode(&xen_memory(7, true), false);
        assert_eq!(&g[4..8], &1u32.to_le_bytes(), "version 1");
        assert_eq!(
            &g[20 + 32..20 + 36],
            &0xau32.to_le_bytes(),
            "GRANT | NO_ADVANCE_MAP"
        );
    }

    #[test]
    fn vrings_of_a_grant_space_are_mapped_up_front_and_the_rest_on_use() {
        let m = xen_memory(7, true);
        let base = 0x4000_0000;
        let (ahead, lazy) = (XEN_MMAP_GRANT, XEN_MMAP_GRANT | XEN_MMAP_NO_ADVANCE_MAP);
        let e = entries_with_rings(&m, &[]);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].flags, lazy);
        // Two areas of one queue in adjacent pages merge; another queue stands alone.
        let e = entries_with_rings(
            &m,
            &[
                (base + 0x1000, base + 0x1100),
                (base + 0x1f00, base + 0x2010),
                (base + 0x5000, base + 0x5008),
            ],
        );
        let got: Vec<(u64, u64, u32)> = e.iter().map(|r| (r.guest_addr, r.size, r.flags)).collect();
        assert_eq!(
            got,
            [
                (base, 0x1000, lazy),
                (base + 0x1000, 0x2000, ahead),
                (base + 0x3000, 0x2000, lazy),
                (base + 0x5000, 0x1000, ahead),
                (base + 0x6000, 0x800_0000 - 0x6000, lazy),
            ]
        );
        assert!(e.iter().all(|r| r.data == 7));
        // A ring at the very start, and one outside the space, which is ignored.
        let e = entries_with_rings(&m, &[(base, base + 1), (0x10, 0x20)]);
        assert_eq!(
            e[0],
            XenRegion {
                guest_addr: base,
                size: 0x1000,
                flags: ahead,
                data: 7
            }
        );
        assert_eq!(e.len(), 2);
        // Foreign memory is left as it is.
        let f = xen_memory(7, false);
        assert_eq!(entries_with_rings(&f, &[(base, base + 1)]), entries(&f));
    }

    #[test]
    fn replies_are_checked() {
        let mut r = [0u8; HEADER + 8];
        r[0..4].copy_from_slice(&5u32.to_le_bytes());
        r[4..8].copy_from_slice(&5u32.to_le_bytes());
        r[8..12].copy_from_slice(&8u32.to_le_bytes());
        assert!(check_reply(&r).is_ok());
        r[12] = 1;
        assert!(matches!(check_reply(&r), Err(SendError::Refused(1))));
        r[12] = 0;
        r[0] = 6;
        assert!(matches!(check_reply(&r), Err(SendError::BadReply)));
        r[0] = 5;
        r[4] = 1;
        assert!(matches!(check_reply(&r), Err(SendError::BadReply)));
    }

    /// The message and its fd reach a peer as one SCM_RIGHTS send, and the ack is read.
    #[test]
    fn send_passes_the_fd_and_reads_the_ack() {
        let (a, b) = UnixStream::pair().unwrap();
        let memory = xen_memory(3, false);
        let peer = std::thread::spawn(move || {
            let mut buf = [0u8; 256];
            let (n, fd) = b.recv_with_fd(&mut buf).unwrap();
            assert_eq!(n, HEADER + 8 + XEN_REGION);
            assert!(fd.is_some(), "the region's fd came with the message");
            assert_eq!(&buf[..n], &encode(&xen_memory(3, false), true)[..]);
            let mut ack = [0u8; HEADER + 8];
            ack[0..4].copy_from_slice(&5u32.to_le_bytes());
            ack[4..8].copy_from_slice(&5u32.to_le_bytes());
            ack[8..12].copy_from_slice(&8u32.to_le_bytes());
            let mut b = b;
            io::Write::write_all(&mut b, &ack).unwrap();
        });
        send(&a, &memory, &entries(&memory), true).unwrap();
        peer.join().unwrap();
    }
}
