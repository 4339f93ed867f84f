//! The host's [`Clock`]: `std`'s monotonic time, and sleeps that end when a frame arrives on the
//! device's descriptor or another thread says the socket table changed, instead of a fixed
//! polling quantum.
//!
//! The board network ([`crate::host::net::HostNet`]) is polled by two threads in turn: the
//! script's (inside a blocking socket call, holding the table) and a poller (between the
//! script's calls). Both sleep on the same [`Wake`]: the device's descriptor (a TAP: readable
//! when the kernel sent a frame), the notice a thread raises after it changed the table (data
//! queued, buffer space freed, a socket closed), and the stack's next timer as the timeout.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::time::Instant;

use netstack::api::Micros;
use upy_socket::wait::MAX_IDLE_SLEEP;
use upy_socket::Clock;

/// The longest sleep between two polls when frames wake the sleeper: what no timer announces
/// (the NIC's hot-plug and link state, which every poll looks at) is seen at least this often.
pub const UNANNOUNCED_IDLE: Micros = 10_000;

/// What ends a sleep: a frame on the device's descriptor, or a notice.
#[derive(Debug)]
pub struct Wake {
    /// The device's descriptor (readable when a frame arrived), or -1 when frames arrive
    /// unannounced (an in-memory wire).
    input: AtomicI32,
    /// An eventfd: readable after [`Wake::notify`] until a sleeper wakes on it.
    notice: OwnedFd,
}

impl Wake {
    /// Nothing to wake on but notices, until [`Wake::set_input`].
    pub fn new() -> io::Result<Self> {
        // SAFETY: eventfd takes an initial value and flags; it returns a new descriptor or -1.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor owned by nothing else.
        let notice = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Self {
            input: AtomicI32::new(-1),
            notice,
        })
    }

    /// From now on sleeps also end when `fd` becomes readable. The descriptor must stay open
    /// while this `Wake` is used (the device that owns it outlives the network).
    pub fn set_input(&self, fd: RawFd) {
        self.input.store(fd, Ordering::Relaxed);
    }

    /// Whether frames wake the sleepers.
    pub fn has_input(&self) -> bool {
        self.input.load(Ordering::Relaxed) >= 0
    }

    /// Ends the current or next sleep of the other thread.
    pub fn notify(&self) {
        let one = 1u64.to_ne_bytes();
        // SAFETY: writes 8 bytes from a live buffer to the eventfd. It fails only when the
        // counter would overflow (it is then readable anyway), so the result is not needed.
        unsafe { libc::write(self.notice.as_raw_fd(), one.as_ptr().cast(), one.len()) };
    }

    /// Sleeps at most `timeout` microseconds (`None`: no limit) or until a frame or a notice
    /// arrives; consumes the notice.
    fn sleep(&self, timeout: Option<Micros>) {
        let notice = self.notice.as_raw_fd();
        let [_, noticed] = readable([self.input.load(Ordering::Relaxed), notice], timeout)
            .unwrap_or([false, false]);
        if noticed {
            let mut count = [0u8; 8];
            // SAFETY: reads 8 bytes into a live buffer from the non-blocking eventfd.
            unsafe { libc::read(notice, count.as_mut_ptr().cast(), count.len()) };
        }
    }
}

/// [`Clock`] of the host's board network; clones share the [`Wake`].
#[derive(Clone, Debug)]
pub struct HostClock {
    origin: Instant,
    wake: Arc<Wake>,
}

impl HostClock {
    /// A clock whose zero is now and whose sleeps end on `wake`.
    pub fn new(wake: Arc<Wake>) -> Self {
        Self {
            origin: Instant::now(),
            wake,
        }
    }

    /// What ends its sleeps.
    pub fn wake(&self) -> &Arc<Wake> {
        &self.wake
    }
}

impl Clock for HostClock {
    fn now(&self) -> Micros {
        u64::try_from(self.origin.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    fn sleep_until(&mut self, deadline: Micros) {
        let now = self.now();
        if deadline > now {
            self.wake
                .sleep((deadline != Micros::MAX).then(|| deadline - now));
        }
    }

    /// The interpreter's pending exception (Ctrl-C), seen within one [`Clock::max_idle`] by a
    /// wait on the interpreter's thread.
    fn interrupted(&self) -> bool {
        crate::host::pending::is_pending()
    }

    /// [`UNANNOUNCED_IDLE`] when frames end sleeps, else [`MAX_IDLE_SLEEP`].
    fn max_idle(&self) -> Option<Micros> {
        Some(if self.wake.has_input() {
            UNANNOUNCED_IDLE
        } else {
            MAX_IDLE_SLEEP
        })
    }
}

/// Waits until one of `fds` is readable (or hung up, or in error) or `timeout` microseconds
/// passed (`None`: no limit); which ones are. Negative descriptors are ignored (as `ppoll` does);
/// an interrupted wait returns none.
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_sleep_ends_at_its_deadline_without_input() {
        let mut clock = HostClock::new(Arc::new(Wake::new().unwrap()));
        assert_eq!(clock.max_idle(), Some(MAX_IDLE_SLEEP));
        let start = clock.now();
        clock.sleep_until(start + 3_000);
        assert!(clock.now() >= start + 3_000);
        // A deadline in the past returns at once.
        clock.sleep_until(start);
    }

    #[test]
    fn a_notice_ends_a_sleep_once() {
        let wake = Arc::new(Wake::new().unwrap());
        let mut clock = HostClock::new(Arc::clone(&wake));
        let other = Arc::clone(&wake);
        let notifier = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            other.notify();
        });
        let start = Instant::now();
        clock.sleep_until(Micros::MAX);
        let woke = start.elapsed();
        notifier.join().unwrap();
        assert!(woke >= Duration::from_millis(20) && woke < Duration::from_secs(10));
        // Consumed: the next sleep runs to its deadline.
        let start = clock.now();
        clock.sleep_until(start + 5_000);
        assert!(clock.now() >= start + 5_000);
    }

    #[test]
    fn readable_input_ends_a_sleep_and_lengthens_the_idle_limit() {
        let (mut ours, mut theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        let wake = Arc::new(Wake::new().unwrap());
        wake.set_input(ours.as_raw_fd());
        let mut clock = HostClock::new(Arc::clone(&wake));
        assert_eq!(clock.max_idle(), Some(UNANNOUNCED_IDLE));
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            std::io::Write::write_all(&mut theirs, b"frame").unwrap();
            theirs
        });
        let start = Instant::now();
        clock.sleep_until(clock.now() + 10_000_000);
        assert!(start.elapsed() < Duration::from_secs(5));
        let mut got = [0u8; 5];
        std::io::Read::read_exact(&mut ours, &mut got).unwrap();
        drop(writer.join().unwrap());
    }
}
