//! What Linux peers in the tests do beyond the standard library's sockets.

use std::net::TcpStream;
use std::os::fd::AsRawFd;

/// Closes `stream` with an RST instead of a FIN (`SO_LINGER` on with a zero timeout, then
/// close): the peer resets the connection, dropping anything it had not sent yet.
pub fn reset(stream: TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt reads a `linger` of the given size from a live local; the descriptor
    // is the stream's, open until the drop below.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "SO_LINGER: {}", std::io::Error::last_os_error());
    drop(stream);
}
