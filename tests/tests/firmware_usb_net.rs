//! The MicroPython firmware's network on QEMU `raspi3b`: the whole firmware (MicroPython, our
//! `socket` and `network`, the board assembly, our DWC2 and CDC-ECM drivers) against QEMU's own
//! DWC2 model and `usb-net`, joined to a TAP device in a network namespace the test makes, where
//! dnsmasq serves DHCP and Linux is the peer (10.0.2.2, the addresses of `cargo xtask sim`):
//! the board leases its address at boot, answers ping while its REPL waits at `>>>`, runs the seed
//! manual's TCP client (`tests/upy/seed_client.py`, sent by mpremote) against a Linux server,
//! and echoes 1 MiB from a Linux client byte-exact with a server script of its own.
//!
//! One boot serves the four checks (QEMU's DWC2 model is slow); each prints what it measured.
//! Needs root, `qemu-system-aarch64`, dnsmasq and the project's `.venv` (mpremote); without them
//! the test skips, unless `K230_REQUIRE_ROOT_TESTS=1` / `K230_REQUIRE_UPY=1`.

use std::io::{Read, Write};
use std::net::{SocketAddrV4, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use integration_tests::qemu_board::{self, Board, UsbNetBoard};
use integration_tests::upy_peers::{self, Running, BOARD_IP, PEER_IP};
use integration_tests::workspace_root;
use k230_testkit::require::have_root;
use rand::{RngCore, SeedableRng};

/// Where the firmware is built.
const TMP: &str = env!("CARGO_TARGET_TMPDIR");
/// The board's echo port (`tests/upy/echo_server.py`).
const ECHO_PORT: u16 = 7000;
/// Bytes echoed.
const ECHO_BYTES: usize = 1 << 20;
/// Limit for the boot to the prompt, the NIC's bring-up included.
const BOOT_TIMEOUT: Duration = Duration::from_secs(90);
/// Limit for one mpremote command.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(60);
/// Limit for the whole echo exchange.
const ECHO_TIMEOUT: Duration = Duration::from_secs(300);

#[test]
fn qemu_raspi3b_usb_net_dhcp_ping_seed_client_and_1_mib_echo() {
    let test = "raspi3b usb-net";
    if !have_root(test) || !qemu_board::available(test, Board::QemuRaspi3b) {
        return;
    }
    let Some(mpremote) = qemu_board::mpremote(test) else {
        return;
    };
    let elf = qemu_board::build(Board::QemuRaspi3b, &[], TMP.as_ref());

    let board = UsbNetBoard::boot(test, &elf, &upy_peers::dhcp_args(), BOOT_TIMEOUT);
    let (qemu, ns) = (&board.qemu, &board.ns);
    let mp = |args: &[&str], limit: Duration| {
        let out = qemu.mpremote(&mpremote, args, limit);
        let stdout = String::from_utf8_lossy(&out.stdout).replace('\r', "");
        assert!(
            out.status.success(),
            "mpremote {args:?}: {}\n{stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    };

    // DHCP: the lease dnsmasq gives, waited for on the board (its boot started the client).
    let (ifconfig, leased_at) = board.lease(&mpremote);
    assert_eq!(
        ifconfig,
        format!("('{BOARD_IP}', '255.255.255.0', '{PEER_IP}', '{PEER_IP}')")
    );
    println!("{test}: DHCP lease held {leased_at} ms after the board's boot");

    // Ping while the REPL waits at `>>>` (mpremote leaves it in the friendly REPL).
    let ping = ns
        .command("ping")
        .args(["-c", "3", "-i", "0.2", "-W", "2"])
        .arg(BOARD_IP.to_string())
        .output()
        .expect("ping");
    assert!(
        ping.status.success(),
        "ping: {}",
        String::from_utf8_lossy(&ping.stdout)
    );

    // The seed manual's client against a Linux server in the namespace: ten lines arrive.
    let server = Running::start(ns, upy_peers::seed_server);
    let script = workspace_root().join("tests/upy/seed_client.py");
    let out = mp(&["run", path_str(&script)], SCRIPT_TIMEOUT);
    let received = server.finish();
    assert_eq!(
        received,
        upy_peers::seed_client_lines(),
        "board output:\n{out}"
    );
    assert!(out.contains("结束"), "{out}");

    // 1 MiB through a server on the board, back byte-exact to a Linux client.
    let mut data = vec![0u8; ECHO_BYTES];
    rand::rngs::StdRng::seed_from_u64(0x0EC4).fill_bytes(&mut data);
    let script = workspace_root().join("tests/upy/echo_server.py");
    let (board_out, (echoed, secs)) = std::thread::scope(|s| {
        let board = s.spawn(|| mp(&["run", path_str(&script)], ECHO_TIMEOUT));
        let sent = data.clone();
        let client = ns
            .spawn(move || echo(&sent))
            .expect("client in the namespace");
        let result = client.join().expect("echo client");
        (board.join().expect("mpremote"), result)
    });
    assert_eq!(
        echoed.len(),
        ECHO_BYTES,
        "echoed length; board:\n{board_out}"
    );
    assert!(echoed == data, "echoed bytes differ");
    assert!(
        board_out.contains(&format!("echo_server done {ECHO_BYTES} {PEER_IP}")),
        "{board_out}"
    );
    println!(
        "{test}: 1 MiB echoed byte-exact in {secs:.1} s ({:.0} KiB/s each way)",
        ECHO_BYTES as f64 / 1024.0 / secs
    );
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

/// Connects to the board's echo server (retrying until its script listens), sends `data` while
/// reading the echo, shuts the sending side; returns what came back and the seconds it took.
fn echo(data: &[u8]) -> (Vec<u8>, f64) {
    let board = SocketAddrV4::new(BOARD_IP, ECHO_PORT).into();
    let deadline = Instant::now() + SCRIPT_TIMEOUT;
    let stream = loop {
        match TcpStream::connect_timeout(&board, Duration::from_secs(5)) {
            Ok(stream) => break stream,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(200)),
            Err(e) => panic!("connect to the board's echo server: {e}"),
        }
    };
    let started = Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let sent = data.to_vec();
    let send = std::thread::spawn(move || {
        writer.write_all(&sent)?;
        writer.shutdown(std::net::Shutdown::Write)
    });
    let mut echoed = Vec::with_capacity(data.len());
    let mut reader = stream;
    let mut buf = [0u8; 65536];
    while started.elapsed() < ECHO_TIMEOUT {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => echoed.extend_from_slice(&buf[..n]),
            Err(e) => panic!("echo read after {} bytes: {e}", echoed.len()),
        }
    }
    send.join().unwrap().expect("echo write");
    (echoed, started.elapsed().as_secs_f64())
}
