//! Waiting for input on descriptors, with a microsecond timeout.

use std::io;
use std::os::fd::RawFd;

use netstack::api::Micros;

/// Waits until one of `fds` is readable (or hung up) or `timeout` microseconds passed (`None`:
/// no limit). Returns which descriptors are readable.
pub fn readable<const N: usize>(fds: [RawFd; N], timeout: Option<Micros>) -> io::Result<[bool; N]> {
    let mut polled = fds.map(|fd| libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    });
    let limit = timeout.map(|us| libc::timespec {
        tv_sec: libc::time_t::try_from(us / 1_000_000).unwrap_or(libc::time_t::MAX),
        // Below 10^9, so it fits.
        tv_nsec: ((us % 1_000_000) * 1_000) as libc::c_long,
    });
    let limit_ptr = limit
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `polled` is an array of N valid pollfd and `limit_ptr` null or a valid timespec,
    // both alive for the call; no signal mask is passed.
    let rc = unsafe {
        libc::ppoll(
            polled.as_mut_ptr(),
            N as libc::nfds_t,
            limit_ptr,
            std::ptr::null(),
        )
    };
    if rc < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok([false; N]);
        }
        return Err(e);
    }
    Ok(polled.map(|p| p.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0))
}
