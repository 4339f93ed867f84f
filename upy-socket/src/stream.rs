//! The stream methods MicroPython's generic stream layer (`py/stream.c`) builds on the socket:
//! `read`, `readinto`, `readline`, `write`.
//!
//! `Ok(None)` is Python's `None`: a non-blocking socket had nothing at all to give or take. A
//! would-block after some progress returns the progress. Other errors are raised, and bytes
//! already read by that call are lost, exactly as `mp_stream_rw` does. Reading reports a
//! connection failure as `recv` does (once, after the bytes received before it); `write`
//! raises it on every call (the stream path does not close the socket).

use netstack::api::SocketStack;

use crate::clock::Clock;
use crate::errno::{Errno, SocketError};
use crate::recv_flags::RecvFlags;
use crate::sockets::{Kind, Report, Socket, Sockets};

/// MicroPython's `DEFAULT_BUFFER_SIZE`: the chunk `read()` without a size grows by.
const READ_ALL_CHUNK: usize = 256;

/// Whether an error is MicroPython's "non-blocking error" (`mp_is_nonblocking_error`).
fn would_block(e: &SocketError) -> bool {
    *e == SocketError::Os(Errno::EAGAIN)
}

impl<S: SocketStack, C: Clock, const N: usize> Sockets<S, C, N> {
    /// The stream `read` function of the socket: one step, at most `buf.len()` bytes.
    fn read_once(&mut self, socket: Socket, buf: &mut [u8]) -> Result<usize, SocketError> {
        match self.entry(socket)?.kind {
            Kind::Tcp(_) => self.tcp_recv_once(socket, buf, RecvFlags::NONE),
            Kind::Udp => self.udp_recv(socket, buf, RecvFlags::NONE).map(|(n, _)| n),
        }
    }

    /// The stream `write` function of the socket: one step.
    fn write_once(&mut self, socket: Socket, data: &[u8]) -> Result<usize, SocketError> {
        match self.entry(socket)?.kind {
            Kind::Tcp(_) => self.tcp_send_once(socket, data, Report::Always),
            Kind::Udp => self.udp_send(socket, data, None),
        }
    }

    /// `socket.read(size)` into `buf` (`size == buf.len()`): reads until `buf` is full or end of
    /// stream; on UDP each step takes one datagram.
    pub fn read(&mut self, socket: Socket, buf: &mut [u8]) -> Result<Option<usize>, SocketError> {
        let mut done = 0;
        while done < buf.len() {
            match self.read_once(socket, &mut buf[done..]) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if would_block(&e) => return Ok((done > 0).then_some(done)),
                Err(e) => return Err(e),
            }
        }
        Ok(Some(done))
    }

    /// `socket.readinto(buf[, nbytes])`: [`Sockets::read`] into at most `nbytes` bytes of `buf`
    /// (a negative or too large `nbytes` means all of `buf`, as MicroPython's unsigned compare).
    pub fn readinto(
        &mut self,
        socket: Socket,
        buf: &mut [u8],
        nbytes: Option<i64>,
    ) -> Result<Option<usize>, SocketError> {
        let len = match nbytes.map(usize::try_from) {
            Some(Ok(n)) => n.min(buf.len()),
            Some(Err(_)) | None => buf.len(),
        };
        self.read(socket, &mut buf[..len])
    }

    /// `socket.read()` without a size: everything up to end of stream, handed to `sink` in
    /// pieces; returns the total. Non-blocking, it returns what was there (`None` if nothing).
    pub fn read_all(
        &mut self,
        socket: Socket,
        mut sink: impl FnMut(&[u8]),
    ) -> Result<Option<usize>, SocketError> {
        let mut chunk = [0u8; READ_ALL_CHUNK];
        // Like stream_readall, each step asks only for the rest of the current chunk.
        let mut used = 0;
        let mut total = 0;
        loop {
            match self.read_once(socket, &mut chunk[used..]) {
                Ok(0) => break,
                Ok(n) => {
                    sink(&chunk[used..used + n]);
                    total += n;
                    used = if used + n < READ_ALL_CHUNK {
                        used + n
                    } else {
                        0
                    };
                }
                Err(e) if would_block(&e) => {
                    if total == 0 {
                        return Ok(None);
                    }
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(Some(total))
    }

    /// `socket.readline([size])`: bytes up to and including `\n`, end of stream, or `max`
    /// bytes, handed to `sink` one by one (MicroPython's unbuffered readline, so lines may span
    /// any number of segments and nothing past the newline is consumed). Returns the count;
    /// `None` when non-blocking and not one byte was there.
    pub fn readline(
        &mut self,
        socket: Socket,
        max: Option<usize>,
        mut sink: impl FnMut(u8),
    ) -> Result<Option<usize>, SocketError> {
        let mut count = 0;
        while max != Some(count) {
            let mut byte = [0u8];
            match self.read_once(socket, &mut byte) {
                Ok(0) => break,
                Ok(_) => {
                    sink(byte[0]);
                    count += 1;
                    if byte[0] == b'\n' {
                        break;
                    }
                }
                Err(e) if would_block(&e) => {
                    if count == 0 {
                        return Ok(None);
                    }
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(Some(count))
    }

    /// `socket.write(buf)`: writes all of `buf` (blocking), or as much as fits without waiting
    /// (non-blocking; `None` if nothing fit). Returns the count.
    pub fn write(&mut self, socket: Socket, data: &[u8]) -> Result<Option<usize>, SocketError> {
        let mut done = 0;
        while done < data.len() {
            match self.write_once(socket, &data[done..]) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if would_block(&e) => return Ok((done > 0).then_some(done)),
                Err(e) => return Err(e),
            }
        }
        Ok(Some(done))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consts::{AF_INET, SOCK_DGRAM, SOCK_STREAM};
    use crate::mock::{fixture, MockSocketStack, Table};
    use crate::sockets::TcpState;
    use crate::timeout::Timeout;
    use core::net::{Ipv4Addr, SocketAddrV4};
    use netstack::api::{NetError, SocketId, TcpPhase};
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};

    type Script = Arc<Mutex<VecDeque<Result<Vec<u8>, NetError>>>>;

    /// A connected TCP socket whose `recv` serves `segments` in order (as the stack would, never
    /// more than one segment per call), then `tail` forever.
    fn reader(t: &mut Table, segments: &[&[u8]], tail: Result<Vec<u8>, NetError>) -> Socket {
        t.stack_mut().expect_open().returning(|_| Ok(SocketId(1)));
        let s = t.socket(AF_INET, SOCK_STREAM, 0).unwrap();
        t.set_tcp_state(s.index(), TcpState::Connected);
        let phase = if tail == Ok(vec![]) {
            TcpPhase::PeerClosed
        } else {
            TcpPhase::Connected
        };
        t.stack_mut()
            .expect_tcp_phase()
            .returning(move |_| Ok(phase));
        let script: Script = Arc::new(Mutex::new(
            segments.iter().map(|s| Ok(s.to_vec())).collect(),
        ));
        t.stack_mut().expect_recv().returning(move |_, buf| {
            let mut q = script.lock().unwrap();
            let front = q.pop_front().unwrap_or_else(|| tail.clone());
            let seg = front?;
            let n = seg.len().min(buf.len());
            buf[..n].copy_from_slice(&seg[..n]);
            if n < seg.len() {
                q.push_front(Ok(seg[n..].to_vec()));
            }
            Ok(n)
        });
        s
    }

    #[test]
    fn read_fills_the_buffer_across_segments_then_stops_at_eof() {
        let mut t = fixture(MockSocketStack::new());
        let s = reader(&mut t, &[b"ab", b"cde", b"f"], Ok(vec![]));
        let mut buf = [0; 4];
        assert_eq!(t.read(s, &mut buf), Ok(Some(4)));
        assert_eq!(&buf, b"abcd");
        assert_eq!(t.read(s, &mut buf), Ok(Some(2)));
        assert_eq!(&buf[..2], b"ef");
        assert_eq!(t.read(s, &mut buf), Ok(Some(0)));
    }

    #[test]
    fn non_blocking_read_returns_partial_data_or_none() {
        let mut t = fixture(MockSocketStack::new());
        let s = reader(&mut t, &[b"xy"], Err(NetError::WouldBlock));
        t.set_timeout(s, Timeout::NonBlocking);
        let mut buf = [0; 8];
        assert_eq!(t.read(s, &mut buf), Ok(Some(2)));
        assert_eq!(t.read(s, &mut buf), Ok(None));
    }

    #[test]
    fn readinto_honours_nbytes() {
        let mut t = fixture(MockSocketStack::new());
        let s = reader(&mut t, &[b"0123456789"], Ok(vec![]));
        let mut buf = [0; 8];
        assert_eq!(t.readinto(s, &mut buf, Some(3)), Ok(Some(3)));
        assert_eq!(&buf[..3], b"012");
        assert_eq!(t.readinto(s, &mut buf, Some(-1)), Ok(Some(7)));
        assert_eq!(&buf[..7], b"3456789");
        assert_eq!(t.readinto(s, &mut buf, Some(100)), Ok(Some(0)));
        assert_eq!(t.readinto(s, &mut buf, None), Ok(Some(0)));
    }

    #[test]
    fn read_all_reads_to_eof() {
        let mut t = fixture(MockSocketStack::new());
        let big = vec![7u8; 600];
        let s = reader(&mut t, &[b"head", &big, b"tail"], Ok(vec![]));
        let mut out = Vec::new();
        assert_eq!(t.read_all(s, |b| out.extend_from_slice(b)), Ok(Some(608)));
        assert_eq!(&out[..4], b"head");
        assert_eq!(&out[604..], b"tail");
        assert_eq!(out.len(), 608);
    }

    #[test]
    fn read_all_non_blocking_returns_what_is_there() {
        let mut t = fixture(MockSocketStack::new());
        let s = reader(&mut t, &[b"abc"], Err(NetError::WouldBlock));
        t.set_timeout(s, Timeout::NonBlocking);
        let mut out = Vec::new();
        assert_eq!(t.read_all(s, |b| out.extend_from_slice(b)), Ok(Some(3)));
        assert_eq!(t.read_all(s, |b| out.extend_from_slice(b)), Ok(None));
        assert_eq!(out, b"abc");
    }

    #[test]
    fn readline_spans_segment_boundaries_and_leaves_the_rest() {
        let mut t = fixture(MockSocketStack::new());
        let s = reader(
            &mut t,
            &[b"GET / HT", b"TP/1.0\r", b"\nHost: x\n", b"tail"],
            Ok(vec![]),
        );
        let mut line = Vec::new();
        assert_eq!(t.readline(s, None, |b| line.push(b)), Ok(Some(16)));
        assert_eq!(line, b"GET / HTTP/1.0\r\n");
        line.clear();
        assert_eq!(t.readline(s, None, |b| line.push(b)), Ok(Some(8)));
        assert_eq!(line, b"Host: x\n");
        line.clear();
        // The last line has no newline: it ends at EOF.
        assert_eq!(t.readline(s, None, |b| line.push(b)), Ok(Some(4)));
        assert_eq!(line, b"tail");
        assert_eq!(t.readline(s, None, |_| ()), Ok(Some(0)));
    }

    #[test]
    fn readline_size_limit_and_non_blocking() {
        let mut t = fixture(MockSocketStack::new());
        let s = reader(&mut t, &[b"abcdef"], Err(NetError::WouldBlock));
        t.set_timeout(s, Timeout::NonBlocking);
        let mut line = Vec::new();
        assert_eq!(t.readline(s, Some(4), |b| line.push(b)), Ok(Some(4)));
        assert_eq!(line, b"abcd");
        assert_eq!(t.readline(s, Some(0), |b| line.push(b)), Ok(Some(0)));
        // Partial line, then would-block: the partial line is returned.
        assert_eq!(t.readline(s, None, |b| line.push(b)), Ok(Some(2)));
        assert_eq!(t.readline(s, None, |b| line.push(b)), Ok(None));
        assert_eq!(line, b"abcdef");
    }

    #[test]
    fn errors_other_than_eagain_are_raised_and_repeat_on_streams() {
        let mut t = fixture(MockSocketStack::new());
        let s = reader(&mut t, &[b"ab"], Err(NetError::ConnectionReset));
        let mut buf = [0; 8];
        // mp_stream_rw: the 2 bytes read before the error are lost with it.
        assert_eq!(t.read(s, &mut buf), Err(SocketError::Os(Errno::ECONNRESET)));
        assert_eq!(t.read(s, &mut buf), Err(SocketError::Os(Errno::ECONNRESET)));
    }

    #[test]
    fn write_loops_until_done_blocking_and_is_partial_non_blocking() {
        let mut t = fixture(MockSocketStack::new());
        t.stack_mut().expect_open().returning(|_| Ok(SocketId(1)));
        let s = t.socket(AF_INET, SOCK_STREAM, 0).unwrap();
        t.set_tcp_state(s.index(), TcpState::Connected);
        t.stack_mut()
            .expect_tcp_phase()
            .returning(|_| Ok(TcpPhase::Connected));
        let room = Arc::new(Mutex::new(5usize));
        let r = room.clone();
        t.stack_mut().expect_send().returning(move |_, d| {
            let mut room = r.lock().unwrap();
            if *room == 0 {
                return Err(NetError::WouldBlock);
            }
            let n = d.len().min(*room).min(2);
            *room -= n;
            Ok(n)
        });
        t.set_timeout(s, Timeout::NonBlocking);
        assert_eq!(t.write(s, b"0123456789"), Ok(Some(5)));
        assert_eq!(t.write(s, b"more"), Ok(None));
        assert_eq!(t.write(s, b""), Ok(Some(0)));
        *room.lock().unwrap() = 100;
        t.set_timeout(s, Timeout::Blocking);
        assert_eq!(t.write(s, b"0123456789"), Ok(Some(10)));
    }

    #[test]
    fn udp_streams_use_datagrams() {
        let mut t = fixture(MockSocketStack::new());
        t.stack_mut().expect_open().returning(|_| Ok(SocketId(2)));
        let u = t.socket(AF_INET, SOCK_DGRAM, 0).unwrap();
        t.stack_mut()
            .expect_send_to()
            .withf(|_, _, to| to.is_none())
            .returning(|_, d, _| Ok(d.len()));
        assert_eq!(t.write(u, b"dgram"), Ok(Some(5)));
        let from = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9);
        t.stack_mut().expect_recv_from().returning(move |_, b| {
            b[..3].copy_from_slice(b"one");
            Ok((3, from))
        });
        let mut buf = [0; 3];
        assert_eq!(t.read(u, &mut buf), Ok(Some(3)));
    }

    #[test]
    fn closed_socket_streams_are_ebadf_except_empty_transfers() {
        let mut t = fixture(MockSocketStack::new());
        let s = reader(&mut t, &[], Ok(vec![]));
        t.stack_mut().expect_close().return_const(());
        t.close(s);
        let ebadf = Err(SocketError::Os(Errno::EBADF));
        assert_eq!(t.read(s, &mut [0; 2]), ebadf);
        assert_eq!(t.write(s, b"x"), ebadf);
        assert_eq!(t.readline(s, None, |_| ()), ebadf);
        assert_eq!(t.read_all(s, |_| ()), ebadf);
        // mp_stream_rw never calls the socket for zero bytes.
        assert_eq!(t.read(s, &mut []), Ok(Some(0)));
        assert_eq!(t.write(s, b""), Ok(Some(0)));
    }
}
