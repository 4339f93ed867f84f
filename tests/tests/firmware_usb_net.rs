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
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use integration_tests::qemu_board::{self, Board, Console, Load, Qemu};
use integration_tests::workspace_root;
use k230_testkit::netns::{self, accept_within, unique_name, Netns};
use k230_testkit::require::have_root;
use rand::{RngCore, SeedableRng};

/// Where the firmware is built.
const TMP: &str = env!("CARGO_TARGET_TMPDIR");
/// The Linux peer: the TAP's kernel side, DHCP server, gateway.
const PEER: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 2);
/// The one address dnsmasq leases.
const BOARD: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 15);
/// The seed manual's server port (`tests/upy/seed_client.py`).
const SEED_PORT: u16 = 60000;
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

    let ns = Netns::new().expect("namespace");
    let tap = unique_name("k230fw");
    ns.add_tap(&tap).expect("TAP for QEMU");
    ns.address(&tap, PEER, 24).expect("the peer's address");
    let range = format!("--dhcp-range={BOARD},{BOARD},255.255.255.0,1h");
    let _dhcp = netns::dnsmasq(&ns, &tap, &[&range]).expect("dnsmasq");
    let usb_net = qemu_board::usb_net_args(&tap);
    let usb_net: Vec<&str> = usb_net.iter().map(String::as_str).collect();
    let mut qemu = Qemu::boot_in(
        Some(&ns),
        Board::QemuRaspi3b,
        Load::Elf(&elf),
        Console::Pty,
        &usb_net,
    );
    let nic = qemu.expect("DHCP started", BOOT_TIMEOUT);
    assert!(nic.contains("net: NIC up"), "{nic}");
    qemu.expect(">>> ", BOOT_TIMEOUT);
    println!(
        "{test}: QEMU start to the first prompt: {} ms",
        qemu.started.elapsed().as_millis()
    );
    qemu.release_pty();
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
    let lease = mp(
        &[
            "exec",
            "import network, time\nlan = network.LAN()\nt = time.ticks_ms()\n\
             while not lan.isconnected() and time.ticks_diff(time.ticks_ms(), t) < 30000:\n    \
             time.sleep_ms(20)\nprint(lan.ifconfig(), time.ticks_ms())",
        ],
        SCRIPT_TIMEOUT,
    );
    assert!(
        lease.contains(&format!("('{BOARD}', '255.255.255.0', '{PEER}', '{PEER}')")),
        "{lease}"
    );
    let leased_at: u64 = lease
        .trim()
        .rsplit(' ')
        .next()
        .and_then(|ms| ms.parse().ok())
        .unwrap_or_else(|| panic!("no time in {lease:?}"));
    println!("{test}: DHCP lease held {leased_at} ms after the board's boot");

    // Ping while the REPL waits at `>>>` (mpremote leaves it in the friendly REPL).
    let ping = ns
        .command("ping")
        .args(["-c", "3", "-i", "0.2", "-W", "2"])
        .arg(BOARD.to_string())
        .output()
        .expect("ping");
    assert!(
        ping.status.success(),
        "ping: {}",
        String::from_utf8_lossy(&ping.stdout)
    );

    // The seed manual's client against a Linux server in the namespace: ten lines arrive.
    let server = ns
        .serve(SocketAddrV4::new(PEER, SEED_PORT), |listener| {
            let mut received = String::new();
            accept_within(&listener, SCRIPT_TIMEOUT)?.read_to_string(&mut received)?;
            std::io::Result::Ok(received)
        })
        .expect("server in the namespace");
    let script = workspace_root().join("tests/upy/seed_client.py");
    let out = mp(&["run", path_str(&script)], SCRIPT_TIMEOUT);
    let received = server.join().unwrap().expect("the board's ten lines");
    let want: String = (0..10)
        .map(|i| format!("K230 TCP 客户端发送测试 {i} \r\n"))
        .collect();
    assert_eq!(received, want, "board output:\n{out}");
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
        board_out.contains(&format!("echo_server done {ECHO_BYTES} {PEER}")),
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
    let board = SocketAddrV4::new(BOARD, ECHO_PORT).into();
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
