//! The TAP backend against the Linux kernel, inside a network namespace this test creates and
//! removes: an ARP request written to our end is answered by Linux.
//!
//! Needs root (network namespaces, TAP). Without root it prints "SKIPPED (needs root)", unless
//! K230_REQUIRE_ROOT_TESTS=1, which makes it fail instead.
#![cfg(feature = "sim")]

use k230_hal::sim::wire::tap::Tap;
use k230_hal::sim::wire::Wire;
use std::process::Command;
use std::time::{Duration, Instant};

/// A network namespace that is deleted on drop (with the interfaces inside it).
struct Netns {
    name: String,
}

impl Netns {
    fn create(tag: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!("k230-{tag}-{}-{nanos}", std::process::id());
        run("ip", &["netns", "add", &name]);
        Self { name }
    }

    fn exec(&self, args: &[&str]) {
        let mut full = vec!["netns", "exec", &self.name];
        full.extend_from_slice(args);
        run("ip", &full);
    }

    fn path(&self) -> std::path::PathBuf {
        std::path::Path::new("/run/netns").join(&self.name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

fn run(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd).args(args).output().expect(cmd);
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// False (after printing SKIPPED) when the test cannot run here.
fn root_or_skip() -> bool {
    if is_root() {
        return true;
    }
    assert!(
        std::env::var("K230_REQUIRE_ROOT_TESTS").as_deref() != Ok("1"),
        "K230_REQUIRE_ROOT_TESTS=1 but not root"
    );
    println!("SKIPPED (needs root)");
    false
}

const OUR_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x02];
const OUR_IP: [u8; 4] = [192, 0, 2, 2];
const LINUX_IP: [u8; 4] = [192, 0, 2, 1];

fn arp_request() -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend(OUR_MAC);
    f.extend([0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 1]);
    f.extend(OUR_MAC);
    f.extend(OUR_IP);
    f.extend([0; 6]);
    f.extend(LINUX_IP);
    f
}

#[test]
fn linux_answers_an_arp_request_sent_through_tap() {
    if !root_or_skip() {
        return;
    }
    let ns = Netns::create("tap");
    let name = format!("k230t{}", std::process::id() % 100_000);
    let mut tap = Tap::open_in_netns(&name, &ns.path()).expect("TAP in netns");
    ns.exec(&["ip", "link", "set", &name, "up"]);
    ns.exec(&["ip", "addr", "add", "192.0.2.1/24", "dev", &name]);
    tap.send(&arp_request()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut reply = None;
    while reply.is_none() && Instant::now() < deadline {
        match tap.recv().unwrap() {
            Some(f) if f.len() >= 42 && f[12..14] == [0x08, 0x06] && f[20..22] == [0, 2] => {
                reply = Some(f)
            }
            Some(_) => {}
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    let f = reply.expect("ARP reply from Linux");
    assert_eq!(f[..6], OUR_MAC, "to us");
    assert_eq!(f[28..32], LINUX_IP, "sender IP");
    assert_eq!(f[32..38], OUR_MAC, "target MAC");
    assert_eq!(f[38..42], OUR_IP, "target IP");
}
