//! MicroPython scripts (tests/upy) on the real interpreter, through the bindings, upy-socket and
//! netstack, against a peer stack on the other end of an in-memory Ethernet wire. No root needed.
#![cfg(feature = "host")]

mod support;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use netstack::phy::WireEnd;
use upy_bindings::host::net::HostNet;
use upy_bindings::host::{have_library, Interpreter, ScriptError};
use upy_socket::consts::{AF_INET, SOCK_DGRAM, SOCK_STREAM};
use upy_socket::{RecvFlags, Timeout};

const BOARD_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 3, 15);
const PEER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 3, 2);
const PEER_TIMEOUT: Timeout = Timeout::After(10_000_000);

fn interpreter() -> &'static Interpreter {
    Interpreter::shared(&upy_bindings::MODULES).unwrap_or_else(|e| panic!("interpreter: {e}"))
}

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/upy")
        .join(name)
}

/// The board's network and the peer's, cabled together.
fn rig() -> (HostNet<WireEnd>, HostNet<WireEnd>) {
    support::cabled(BOARD_IP, PEER_IP)
}

fn run(board: &HostNet<WireEnd>, name: &str, args: &[String]) -> Result<(), ScriptError> {
    let (result, _) = interpreter().run_file_with(board.backends(), &script(name), args);
    result
}

/// A TCP echo server on the peer for one connection; tells `ready` when it listens; returns
/// the bytes it echoed.
fn echo_once(peer: &HostNet<WireEnd>, port: u16, ready: mpsc::Sender<()>) -> Vec<u8> {
    let s = peer.with_table(|t| {
        let s = t.socket(AF_INET, SOCK_STREAM, 0).expect("socket");
        t.bind(s, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port))
            .expect("bind");
        t.listen(s, Some(1)).expect("listen");
        t.set_timeout(s, PEER_TIMEOUT);
        s
    });
    ready.send(()).expect("test waits");
    peer.with_table(|t| {
        let (conn, _) = t.accept(s).expect("accept");
        t.set_timeout(conn, PEER_TIMEOUT);
        let mut echoed = Vec::new();
        let mut buf = [0u8; 512];
        loop {
            match t.recv(conn, &mut buf, RecvFlags::NONE) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    t.sendall(conn, &buf[..n]).expect("sendall");
                    echoed.extend_from_slice(&buf[..n]);
                }
            }
        }
        t.close(conn);
        t.close(s);
        echoed
    })
}

#[test]
fn tcp_client_talks_to_an_echo_server() {
    if !have_library("tcp_client_talks_to_an_echo_server") {
        return;
    }
    let (board, peer) = rig();
    std::thread::scope(|scope| {
        let (ready, listening) = mpsc::channel();
        let server = scope.spawn(|| echo_once(&peer, 7007, ready));
        listening.recv().expect("server listens");
        let result = run(
            &board,
            "tcp_echo_client.py",
            &[PEER_IP.to_string(), "7007".into()],
        );
        let echoed = server.join().expect("server thread");
        assert_eq!(result, Ok(()));
        let expected: Vec<u8> = (0..5)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .chain(b"bye\n".iter().copied())
            .collect();
        assert_eq!(echoed, expected);
    });
}

#[test]
fn asyncio_streams_work_over_the_socket() {
    if !have_library("asyncio_streams_work_over_the_socket") {
        return;
    }
    let (board, peer) = rig();
    std::thread::scope(|scope| {
        let (ready, listening) = mpsc::channel();
        let server = scope.spawn(|| echo_once(&peer, 7008, ready));
        listening.recv().expect("server listens");
        let result = run(
            &board,
            "asyncio_client.py",
            &[PEER_IP.to_string(), "7008".into()],
        );
        let echoed = server.join().expect("server thread");
        assert_eq!(result, Ok(()));
        assert_eq!(echoed, b"async hello\n");
    });
}

#[test]
fn udp_round_trip() {
    if !have_library("udp_round_trip") {
        return;
    }
    let (board, peer) = rig();
    std::thread::scope(|scope| {
        let (ready, bound) = mpsc::channel();
        let server = scope.spawn(move || {
            let s = peer.with_table(|t| {
                let s = t.socket(AF_INET, SOCK_DGRAM, 0).expect("socket");
                t.bind(s, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 7009))
                    .expect("bind");
                t.set_timeout(s, PEER_TIMEOUT);
                s
            });
            ready.send(()).expect("test waits");
            peer.with_table(|t| {
                let mut buf = [0u8; 64];
                let (n, from) = t.recvfrom(s, &mut buf, RecvFlags::NONE).expect("recvfrom");
                t.sendto(s, b"pong", from).expect("sendto");
                // Closing a UDP socket drops a datagram still queued (the stack sends on its
                // next poll, lwIP at once): let it go out first.
                for _ in 0..50 {
                    t.poll();
                    std::thread::sleep(Duration::from_millis(2));
                }
                t.close(s);
                (buf[..n].to_vec(), from)
            })
        });
        bound.recv().expect("server bound");
        let result = run(
            &board,
            "udp_client.py",
            &[PEER_IP.to_string(), "7009".into()],
        );
        let (got, from) = server.join().expect("server thread");
        assert_eq!(result, Ok(()), "peer received {got:?} from {from}");
        assert_eq!(got, b"ping");
        assert_eq!(*from.ip(), BOARD_IP);
    });
}

#[test]
fn board_serves_a_tcp_client() {
    if !have_library("board_serves_a_tcp_client") {
        return;
    }
    let (board, peer) = rig();
    std::thread::scope(|scope| {
        let client = scope.spawn(|| {
            peer.with_table(|t| {
                let s = t.socket(AF_INET, SOCK_STREAM, 0).expect("socket");
                t.set_timeout(s, PEER_TIMEOUT);
                // The board may not listen yet: `retry` retries refused connects.
                retry(
                    t,
                    s,
                    SocketAddrV4::new(BOARD_IP, 7010),
                    std::time::Instant::now(),
                )
            })
        });
        let result = run(&board, "tcp_server.py", &["7010".into()]);
        let reply = client.join().expect("client thread");
        assert_eq!(result, Ok(()));
        assert_eq!(reply, b"HELLO BOARD");
    });
}

type PeerTable = upy_bindings::host::net::Table<WireEnd>;

fn retry(
    t: &mut PeerTable,
    mut s: upy_socket::Socket,
    target: SocketAddrV4,
    start: std::time::Instant,
) -> Vec<u8> {
    loop {
        match t.connect(s, target) {
            Ok(()) => return exchange(t, s),
            Err(_) if start.elapsed() < Duration::from_secs(10) => {
                t.close(s);
                std::thread::sleep(Duration::from_millis(50));
                s = t.socket(AF_INET, SOCK_STREAM, 0).expect("socket");
                t.set_timeout(s, PEER_TIMEOUT);
            }
            Err(e) => panic!("connect: {e:?}"),
        }
    }
}

fn exchange(t: &mut PeerTable, s: upy_socket::Socket) -> Vec<u8> {
    t.sendall(s, b"hello board").expect("sendall");
    let mut reply = Vec::new();
    let mut buf = [0u8; 64];
    loop {
        match t.recv(s, &mut buf, RecvFlags::NONE) {
            Ok(0) | Err(_) => break,
            Ok(n) => reply.extend_from_slice(&buf[..n]),
        }
    }
    t.close(s);
    reply
}

#[test]
fn timeouts_and_nonblocking_raise_like_micropython() {
    if !have_library("timeouts_and_nonblocking_raise_like_micropython") {
        return;
    }
    let (board, _peer) = rig();
    let result = run(&board, "timeouts.py", &[PEER_IP.to_string(), "7011".into()]);
    assert_eq!(result, Ok(()));
}

#[test]
fn lan_shows_the_static_configuration() {
    if !have_library("lan_shows_the_static_configuration") {
        return;
    }
    let (board, _peer) = rig();
    let (result, _) = interpreter().run_with(
        board.backends(),
        "lan.py",
        "import network\n\
         lan = network.LAN()\n\
         assert lan.isconnected()\n\
         assert lan.ifconfig() == ('10.0.3.15', '255.255.255.0', '10.0.3.2', '10.0.3.2'), lan.ifconfig()\n\
         assert len(lan.config('mac')) == 6\n",
        &[],
    );
    assert_eq!(result, Ok(()));
}

#[test]
fn stack_errors_reach_python_as_micropython_errnos() {
    if !have_library("stack_errors_reach_python_as_micropython_errnos") {
        return;
    }
    let (board, _peer) = rig();
    // Nothing listens on the peer's port 7012: its stack answers the SYN with RST.
    let result = run(&board, "errors.py", &[PEER_IP.to_string(), "7012".into()]);
    assert_eq!(result, Ok(()));
}

#[test]
fn garbage_collected_sockets_are_closed() {
    if !have_library("garbage_collected_sockets_are_closed") {
        return;
    }
    let (board, _peer) = rig();
    let result = run(&board, "gc_finaliser.py", &[]);
    assert_eq!(result, Ok(()));
}

/// A script blocked in `recv` (Ctrl-C: [`Interpreter::interrupt`], as `cargo xtask sim`'s SIGINT
/// does) gets `KeyboardInterrupt` there, and its connection still carries data both ways.
#[test]
fn an_interrupt_ends_a_blocking_recv_and_the_socket_still_works() {
    if !have_library("an_interrupt_ends_a_blocking_recv_and_the_socket_still_works") {
        return;
    }
    // The 20 s timeout bounds the test: without the interrupt, recv raises ETIMEDOUT.
    const SCRIPT: &str = "\
import socket, sys
s = socket.socket()
s.settimeout(20)
s.connect((sys.argv[1], int(sys.argv[2])))
s.send(b'ready')
try:
    s.recv(10)
    raise Exception('recv returned without an interrupt')
except KeyboardInterrupt:
    pass
s.send(b'after')
assert s.recv(10) == b'back'
s.close()
";
    let (board, peer) = rig();
    std::thread::scope(|scope| {
        let listener = peer.with_table(|t| {
            let s = t.socket(AF_INET, SOCK_STREAM, 0).expect("socket");
            t.bind(s, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 7011))
                .expect("bind");
            t.listen(s, Some(1)).expect("listen");
            t.set_timeout(s, PEER_TIMEOUT);
            s
        });
        let peer = &peer;
        let server = scope.spawn(move || {
            let conn = peer.with_table(|t| {
                let (conn, _) = t.accept(listener).expect("accept");
                t.set_timeout(conn, PEER_TIMEOUT);
                let mut ready = [0u8; 5];
                assert_eq!(t.recv(conn, &mut ready, RecvFlags::NONE), Ok(5));
                conn
            });
            // The script is in `recv` (or a few bytecodes from it) once `ready` arrived.
            std::thread::sleep(Duration::from_millis(200));
            interpreter().interrupt();
            peer.with_table(|t| {
                let mut after = [0u8; 5];
                assert_eq!(t.recv(conn, &mut after, RecvFlags::NONE), Ok(5));
                assert_eq!(&after, b"after");
                t.sendall(conn, b"back").expect("sendall");
                let mut end = [0u8; 1];
                assert_eq!(t.recv(conn, &mut end, RecvFlags::NONE), Ok(0));
                t.close(conn);
                t.close(listener);
            });
        });
        let (result, _) = interpreter().run_with(
            board.backends(),
            "interrupt_recv.py",
            SCRIPT,
            &[PEER_IP.to_string(), "7011".into()],
        );
        server.join().expect("server thread");
        assert_eq!(result, Ok(()));
    });
}
