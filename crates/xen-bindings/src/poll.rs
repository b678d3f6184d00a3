// Copyright 2026 The xen-rust-vmm authors.
// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Bounded waits on the devices' descriptors.
//!
//! An event loop registers the descriptors ([`crate::evtchn::EventChannel`],
//! [`crate::xenstore::Xenstore::fd`]) with epoll. A caller that only needs to wait a bounded
//! time for one or two of them (a console reader, a watchdog, a test) uses [`readable`], which
//! is `poll(2)` without the bookkeeping.
//!
//! ```no_run
//! use std::os::fd::AsFd;
//! use std::time::Duration;
//! use xen_bindings::evtchn::EventChannel;
//! use xen_bindings::xenstore::Xenstore;
//!
//! let evtchn = EventChannel::open()?;
//! let xs = Xenstore::open()?;
//! let [port_ready, watch_ready] =
//!     xen_bindings::poll::readable([Some(evtchn.as_fd()), xs.fd()], Some(Duration::from_secs(1)))?;
//! # let _ = (port_ready, watch_ready);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::{Duration, Instant};

/// Waits until at least one of `fds` is readable or hung up, at most `timeout` (`None`: no
/// limit), and says which are. A `None` entry is not watched; all `false` means the time ran out.
///
/// The limit is rounded up to whole milliseconds, so a wait never ends before it (a caller
/// looping until a deadline does not spin), and a wait interrupted by a signal goes on with the
/// time that is left.
pub fn readable<const N: usize>(
    fds: [Option<BorrowedFd<'_>>; N],
    timeout: Option<Duration>,
) -> io::Result<[bool; N]> {
    let deadline = timeout.map(|t| Instant::now().checked_add(t));
    // poll(2) ignores an entry with a negative descriptor.
    let mut pfds = fds.map(|fd| libc::pollfd {
        fd: fd.map_or(-1, |f| f.as_raw_fd()),
        events: libc::POLLIN,
        revents: 0,
    });
    loop {
        let ms = match deadline {
            // No limit, or one too far away for an Instant: wait without one.
            None | Some(None) => -1,
            Some(Some(d)) => {
                let left = d.saturating_duration_since(Instant::now());
                i32::try_from(left.as_micros().div_ceil(1000)).unwrap_or(i32::MAX)
            }
        };
        // SAFETY: `pfds` is an array of N initialised pollfd structures that outlives the call,
        // and N is passed as its length. Each descriptor was borrowed (`BorrowedFd`) for at
        // least the whole call, so it is open.
        let ret = unsafe { libc::poll(pfds.as_mut_ptr(), N as libc::nfds_t, ms) };
        if ret >= 0 {
            return Ok(pfds.map(|p| p.revents != 0));
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn says_which_descriptor_is_readable() {
        let (mut a_tx, a_rx) = UnixStream::pair().unwrap();
        let (_b_tx, b_rx) = UnixStream::pair().unwrap();
        a_tx.write_all(b"x").unwrap();
        let ready = readable(
            [Some(a_rx.as_fd()), Some(b_rx.as_fd())],
            Some(Duration::from_secs(5)),
        )
        .unwrap();
        assert_eq!(ready, [true, false]);
    }

    #[test]
    fn a_hang_up_counts_as_readable() {
        let (tx, rx) = UnixStream::pair().unwrap();
        drop(tx);
        assert_eq!(readable([Some(rx.as_fd())], None).unwrap(), [true]);
    }

    #[test]
    fn times_out_no_earlier_than_asked_with_nothing_ready() {
        let (_tx, rx) = UnixStream::pair().unwrap();
        let wait = Duration::from_micros(2500);
        let start = Instant::now();
        assert_eq!(readable([Some(rx.as_fd())], Some(wait)).unwrap(), [false]);
        assert!(
            start.elapsed() >= wait,
            "returned after {:?}",
            start.elapsed()
        );
    }

    #[test]
    fn unwatched_entries_are_never_ready() {
        let (mut tx, rx) = UnixStream::pair().unwrap();
        tx.write_all(b"x").unwrap();
        let ready = readable([None, Some(rx.as_fd()), None], Some(Duration::ZERO)).unwrap();
        assert_eq!(ready, [false, true, false]);
        assert_eq!(readable([None], Some(Duration::ZERO)).unwrap(), [false]);
    }
}
