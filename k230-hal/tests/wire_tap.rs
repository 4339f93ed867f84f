//! The TAP backend against the Linux kernel, inside a network namespace this test creates and
//! removes: an ARP request written to our end is answered by Linux.
//!
//! Needs root (network namespaces, TAP). Without root it prints "SKIPPED (needs root)", unless
//! K230_REQUIRE_ROOT_TESTS=1, which makes it fail instead.
#![cfg(feature = "sim")]

use k230_hal::sim::wire::tap::Tap;
use k230_hal::sim::wire::Wire;
use k230_testkit::netns::{unique_name, Netns};
use k230_testkit::require::have_root;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

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
    if !have_root("linux_answers_an_arp_request_sent_through_tap") {
        return;
    }
    let ns = Netns::new().expect("netns");
    let name = unique_name("k230t");
    let mut tap = Tap::open_in_netns(&name, &ns.path()).expect("TAP in netns");
    ns.address(&name, Ipv4Addr::from(LINUX_IP), 24)
        .expect("the peer's address");
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
