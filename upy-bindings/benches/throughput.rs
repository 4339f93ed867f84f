//! TCP send throughput of a MicroPython script through the bindings, against the same transfer
//! made from Rust directly on upy-socket, over the same in-memory wire to the same peer. Prints
//! both rates and their ratio (the cost of the interpreter and the bindings).
//!
//! `cargo bench -p upy-bindings --features host --bench throughput`

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Instant;

use netstack::api::Ipv4Config;
use netstack::phy::{wire, WireEnd};
use upy_bindings::host::net::HostNet;
use upy_bindings::host::{have_library, Interpreter};
use upy_socket::consts::{AF_INET, SOCK_STREAM};
use upy_socket::{RecvFlags, Timeout};

const BOARD_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 4, 15);
const PEER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 4, 2);
const TOTAL: usize = 4 << 20;
const CHUNK: usize = 1024;
const LIMIT: Timeout = Timeout::After(60_000_000);

fn config(address: Ipv4Addr, gateway: Ipv4Addr) -> Ipv4Config {
    Ipv4Config {
        address,
        netmask: Ipv4Addr::new(255, 255, 255, 0),
        gateway,
        dns: gateway,
    }
}

fn rig() -> (HostNet<WireEnd>, HostNet<WireEnd>) {
    let (a, b) = wire();
    let board =
        HostNet::start(a, [2, 0, 0, 0, 4, 15], Some(config(BOARD_IP, PEER_IP))).expect("board");
    let peer =
        HostNet::start(b, [2, 0, 0, 0, 4, 2], Some(config(PEER_IP, BOARD_IP))).expect("peer");
    (board, peer)
}

/// Accepts one connection on `port` of the peer and counts bytes until EOF.
fn sink(peer: &HostNet<WireEnd>, port: u16, ready: mpsc::Sender<()>) -> usize {
    let s = peer.with_table(|t| {
        let s = t.socket(AF_INET, SOCK_STREAM, 0).expect("socket");
        t.bind(s, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port))
            .expect("bind");
        t.listen(s, Some(1)).expect("listen");
        t.set_timeout(s, LIMIT);
        s
    });
    ready.send(()).expect("bench waits");
    let conn = peer.with_table(|t| t.accept(s).expect("accept").0);
    let mut total = 0;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        // Short lock holds, so the peer's poller keeps the stack running between reads.
        let n = peer.with_table(|t| {
            t.set_timeout(conn, LIMIT);
            t.recv(conn, &mut buf, RecvFlags::NONE)
        });
        match n {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n,
        }
    }
    peer.with_table(|t| {
        t.close(conn);
        t.close(s);
    });
    total
}

/// Runs `send` against a fresh sink; returns (bytes received, seconds).
fn measure(port: u16, send: impl FnOnce(&HostNet<WireEnd>) + Send) -> (usize, f64) {
    let (board, peer) = rig();
    std::thread::scope(|scope| {
        let (ready, listening) = mpsc::channel();
        let server = scope.spawn(|| sink(&peer, port, ready));
        listening.recv().expect("sink listens");
        let start = Instant::now();
        send(&board);
        let received = server.join().expect("sink");
        (received, start.elapsed().as_secs_f64())
    })
}

fn main() {
    if !have_library("throughput") {
        return;
    }
    let interpreter = Interpreter::shared(&upy_bindings::MODULES).expect("interpreter");
    let (rust_bytes, rust_secs) = measure(7201, |board| {
        board.with_table(|t| {
            let s = t.socket(AF_INET, SOCK_STREAM, 0).expect("socket");
            t.set_timeout(s, LIMIT);
            t.connect(s, SocketAddrV4::new(PEER_IP, 7201))
                .expect("connect");
            let chunk = vec![0u8; CHUNK];
            for _ in 0..TOTAL / CHUNK {
                t.sendall(s, &chunk).expect("sendall");
            }
            t.close(s);
        });
    });
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/upy/bench_send.py");
    let (py_bytes, py_secs) = measure(7202, |board| {
        let args = [
            PEER_IP.to_string(),
            "7202".to_owned(),
            TOTAL.to_string(),
            CHUNK.to_string(),
        ];
        let (result, _) = interpreter.run_file_with(board.backends(), &script, &args);
        result.expect("bench script");
    });
    assert_eq!(rust_bytes, TOTAL, "Rust sender");
    assert_eq!(py_bytes, TOTAL, "MicroPython sender");
    let rate = |bytes: usize, secs: f64| bytes as f64 / secs / 1e6;
    let (rust_rate, py_rate) = (rate(rust_bytes, rust_secs), rate(py_bytes, py_secs));
    println!(
        "TCP send {} MiB in {CHUNK}-byte sendall calls over the in-memory wire:",
        TOTAL >> 20
    );
    println!("  Rust on upy-socket:         {rust_rate:8.1} MB/s ({rust_secs:.3} s)");
    println!("  MicroPython via bindings:   {py_rate:8.1} MB/s ({py_secs:.3} s)");
    println!("  ratio MicroPython / Rust:   {:8.3}", py_rate / rust_rate);
}
