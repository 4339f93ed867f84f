//! The bring-up service's echo server: TCP on port 7 (RFC 862), over any [`SocketStack`]. One
//! connection is served at a time; more wait in the listen backlog. There is no UDP echo: a
//! UDP echo answers spoofed sources and makes the board a reflector. The service runs it only
//! when asked ([`crate::service::Echo`]).

use core::net::{Ipv4Addr, SocketAddrV4};
use netstack::api::{NetError, SocketId, SocketStack, Transport};

/// The echo port (RFC 862).
pub const ECHO_PORT: u16 = 7;
/// TCP connections that may wait while one is served.
const BACKLOG: usize = 2;
/// Bytes moved per read.
const CHUNK: usize = 1536;

/// Something the console reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A TCP connection was accepted.
    Accepted(SocketAddrV4),
    /// A TCP connection ended after echoing `bytes`.
    Closed {
        /// The peer.
        peer: SocketAddrV4,
        /// Bytes echoed.
        bytes: u64,
    },
    /// A socket operation failed (the connection is dropped).
    Failed(NetError),
}

/// Totals since start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// TCP connections accepted.
    pub tcp_connections: u64,
    /// TCP bytes echoed.
    pub tcp_bytes: u64,
}

/// The TCP connection being served: bytes read but not yet sent back.
struct Connection {
    id: SocketId,
    peer: SocketAddrV4,
    buf: [u8; CHUNK],
    pending: core::ops::Range<usize>,
    bytes: u64,
    eof: bool,
}

/// TCP echo on one port.
pub struct EchoServer {
    listener: SocketId,
    conn: Option<Connection>,
    counters: Counters,
}

impl EchoServer {
    /// Opens, binds and listens on TCP `port`.
    pub fn start<S: SocketStack>(stack: &mut S, port: u16) -> Result<Self, NetError> {
        let any = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port);
        let listener = stack.open(Transport::Tcp)?;
        if let Err(e) = stack
            .bind(listener, any)
            .and_then(|()| stack.listen(listener, BACKLOG))
        {
            stack.close(listener);
            return Err(e);
        }
        Ok(Self {
            listener,
            conn: None,
            counters: Counters::default(),
        })
    }

    /// The totals so far.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Moves whatever can move now; call after each stack poll. Reports events to `report`.
    pub fn serve<S: SocketStack>(&mut self, stack: &mut S, mut report: impl FnMut(Event)) {
        if self.conn.is_none() {
            if let Ok((id, peer)) = stack.accept(self.listener) {
                self.counters.tcp_connections += 1;
                report(Event::Accepted(peer));
                self.conn = Some(Connection {
                    id,
                    peer,
                    buf: [0; CHUNK],
                    pending: 0..0,
                    bytes: 0,
                    eof: false,
                });
            }
        }
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        match pump(stack, conn) {
            Ok(false) => {}
            Ok(true) => {
                report(Event::Closed {
                    peer: conn.peer,
                    bytes: conn.bytes,
                });
                self.finish(stack);
            }
            Err(e) => {
                report(Event::Failed(e));
                self.finish(stack);
            }
        }
    }

    fn finish<S: SocketStack>(&mut self, stack: &mut S) {
        if let Some(conn) = self.conn.take() {
            self.counters.tcp_bytes += conn.bytes;
            stack.close(conn.id);
        }
    }
}

/// Sends back what was read, reads more; `Ok(true)` once the peer has closed and everything was
/// sent back.
fn pump<S: SocketStack>(stack: &mut S, conn: &mut Connection) -> Result<bool, NetError> {
    loop {
        if !conn.pending.is_empty() {
            match stack.send(conn.id, &conn.buf[conn.pending.clone()]) {
                Ok(n) => {
                    conn.pending.start += n;
                    conn.bytes += n as u64;
                    continue;
                }
                Err(NetError::WouldBlock) => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        if conn.eof {
            return Ok(true);
        }
        match stack.recv(conn.id, &mut conn.buf) {
            Ok(0) => conn.eof = true,
            Ok(n) => conn.pending = 0..n,
            Err(NetError::WouldBlock) => return Ok(false),
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netstack::api::{Ipv4Config, TcpPhase};
    use netstack::{InterfaceControl, Seed, Stack, StackConfig, StaticBuffers, StaticStorage};
    use smoltcp::phy::{Loopback, Medium};

    type Storage = StaticStorage<'static, 4, 2, 8>;
    type Buffers = StaticBuffers<4, 2, 8192, 2048>;

    /// A real stack on smoltcp's loopback device, addressed 127.0.0.1/8.
    fn stack() -> Stack<'static, Loopback> {
        let storage: &'static mut Storage = Box::leak(Box::new(Storage::new()));
        let buffers: &'static mut Buffers = Box::leak(Box::new(Buffers::new()));
        let config = StackConfig {
            mac: [0x02, 0, 0, 0, 0, 1],
            seed: Seed::reproducible(7),
        };
        let mut stack = Stack::new(
            Loopback::new(Medium::Ethernet),
            config,
            storage.parts(buffers),
            0,
        );
        stack
            .set_static(Ipv4Config {
                address: Ipv4Addr::LOCALHOST,
                netmask: Ipv4Addr::new(255, 0, 0, 0),
                gateway: Ipv4Addr::UNSPECIFIED,
                dns: Ipv4Addr::UNSPECIFIED,
            })
            .unwrap();
        stack
    }

    /// Polls the stack and the server `rounds` times, 1 ms apart, from `*now`.
    fn run(
        stack: &mut Stack<'static, Loopback>,
        server: &mut EchoServer,
        now: &mut u64,
        rounds: usize,
        events: &mut Vec<Event>,
    ) {
        for _ in 0..rounds {
            *now += 1_000;
            stack.poll(*now);
            server.serve(stack, |e| events.push(e));
        }
    }

    #[test]
    fn tcp_bytes_come_back_and_the_close_is_reported() {
        let mut stack = stack();
        let mut server = EchoServer::start(&mut stack, ECHO_PORT).unwrap();
        let mut events = Vec::new();
        let mut now = 0;
        let client = stack.open(Transport::Tcp).unwrap();
        let remote = SocketAddrV4::new(Ipv4Addr::LOCALHOST, ECHO_PORT);
        stack.connect(client, remote).unwrap();
        let payload: Vec<u8> = (0..20_000u32).map(|i| (i * 7) as u8).collect();
        let (mut sent, mut got) = (0, Vec::new());
        for _ in 0..2_000 {
            run(&mut stack, &mut server, &mut now, 1, &mut events);
            if stack.tcp_phase(client) != Ok(TcpPhase::Connected) {
                continue;
            }
            if sent < payload.len() {
                if let Ok(n) = stack.send(client, &payload[sent..]) {
                    sent += n;
                }
            }
            let mut buf = [0u8; 4096];
            while let Ok(n) = stack.recv(client, &mut buf) {
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            if got.len() == payload.len() {
                break;
            }
        }
        assert_eq!(got, payload, "echoed bytes");
        stack.close(client);
        run(&mut stack, &mut server, &mut now, 200, &mut events);
        assert!(matches!(events[0], Event::Accepted(p) if *p.ip() == Ipv4Addr::LOCALHOST));
        assert!(
            events.iter().any(
                |e| matches!(e, Event::Closed { bytes, .. } if *bytes == payload.len() as u64)
            ),
            "{events:?}"
        );
        let c = server.counters();
        assert_eq!((c.tcp_connections, c.tcp_bytes), (1, payload.len() as u64));
    }

    #[test]
    fn a_taken_port_is_an_error_and_leaks_no_socket() {
        let mut stack = stack();
        let _first = EchoServer::start(&mut stack, ECHO_PORT).unwrap();
        assert_eq!(
            EchoServer::start(&mut stack, ECHO_PORT).err(),
            Some(NetError::AddrInUse)
        );
        // The failed start gave its listener back: of 4 TCP slots the first server holds one,
        // of 2 UDP slots none.
        let free = |stack: &mut Stack<'static, Loopback>, t| {
            let mut n = 0;
            while stack.open(t).is_ok() {
                n += 1;
            }
            n
        };
        assert_eq!(free(&mut stack, Transport::Tcp), 3);
        assert_eq!(free(&mut stack, Transport::Udp), 2);
    }
}
