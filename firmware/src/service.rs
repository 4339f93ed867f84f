//! The network bring-up service once a NIC is up: `netstack` over the NIC, addressing (DHCP on
//! the board), ping answered by the stack, and console lines for link changes, address changes
//! and periodic counters. It listens on nothing unless asked: [`EchoServer`] (TCP port 7) runs
//! only with [`Echo::Tcp`], which the firmware picks with cargo feature `echo` ([`ECHO`]).

use crate::echo::{EchoServer, Event, ECHO_PORT};
use crate::net::AddressLine;
use core::fmt::{self, Write};
use k230_hal::eth::cdc_ecm::{CdcEcm, LinkState};
use k230_hal::eth::rtl8152::Rtl8152;
use k230_hal::usb::UsbHost;
use netstack::api::{Ipv4Config, Micros, NetError, SocketStack};
use netstack::{InterfaceControl, Parts, Seed, Stack, StackConfig};

/// Interval of the counters line.
pub const COUNTERS_EVERY_US: Micros = 10_000_000;

/// A NIC driver as the service needs it.
pub trait NetDevice: smoltcp::phy::Device {
    /// The station address.
    fn mac(&self) -> [u8; 6];
    /// Whether the link has carrier.
    fn carrier(&self) -> bool;
    /// Frames received and sent, and failed transfers each way.
    fn counters(&self) -> [u64; 4];
    /// Whether the device is there at all (a USB NIC can be unplugged).
    fn present(&self) -> bool {
        true
    }
}

impl<H: UsbHost> NetDevice for Rtl8152<H> {
    fn mac(&self) -> [u8; 6] {
        self.mac_address()
    }
    fn carrier(&self) -> bool {
        self.link_up()
    }
    fn counters(&self) -> [u64; 4] {
        let s = self.stats();
        [s.rx_frames, s.tx_frames, s.rx_errors, s.tx_errors]
    }
}

impl<H: UsbHost> NetDevice for CdcEcm<H> {
    fn mac(&self) -> [u8; 6] {
        CdcEcm::mac(self)
    }
    fn carrier(&self) -> bool {
        self.link() != LinkState::Down
    }
    fn counters(&self) -> [u64; 4] {
        let s = self.stats();
        [s.rx_frames, s.tx_frames, s.rx_errors, s.tx_errors].map(u64::from)
    }
}

/// Whether the service runs the TCP echo server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Echo {
    /// No listening socket at all (what a user flashes by default).
    Off,
    /// TCP echo on port 7.
    Tcp,
}

/// What this firmware build runs: [`Echo::Tcp`] with cargo feature `echo`
/// (`cargo xtask build --features echo`), else [`Echo::Off`].
pub const ECHO: Echo = if cfg!(feature = "echo") {
    Echo::Tcp
} else {
    Echo::Off
};

/// How the interface gets its address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Addressing {
    /// A DHCP lease.
    Dhcp,
    /// A fixed configuration.
    Static(Ipv4Config),
}

/// The running service.
pub struct Service<'a, D: NetDevice> {
    stack: Stack<'a, D>,
    echo: Option<EchoServer>,
    link: Option<bool>,
    config: Option<Ipv4Config>,
    next_counters: Micros,
}

impl<'a, D: NetDevice> Service<'a, D> {
    /// Builds the stack over `nic` from `parts`, applies `addressing` and starts the echo
    /// server if `echo` says so. `seed` is the stack's secret ([`netstack::entropy`]).
    pub fn start(
        nic: D,
        parts: Parts<'a>,
        addressing: Addressing,
        seed: Seed,
        echo: Echo,
        now: Micros,
    ) -> Result<Self, NetError> {
        let mac = nic.mac();
        let mut stack = Stack::new(nic, StackConfig { mac, seed }, parts, now);
        match addressing {
            Addressing::Dhcp => stack.start_dhcp(),
            Addressing::Static(config) => stack.set_static(config)?,
        }
        let echo = match echo {
            Echo::Off => None,
            Echo::Tcp => Some(EchoServer::start(&mut stack, ECHO_PORT)?),
        };
        Ok(Self {
            stack,
            echo,
            link: None,
            config: None,
            next_counters: now + COUNTERS_EVERY_US,
        })
    }

    /// The stack (for the board's other users of the network).
    pub fn stack_mut(&mut self) -> &mut Stack<'a, D> {
        &mut self.stack
    }

    /// One round: carrier, stack poll, echo, and whatever is news on the console.
    pub fn step(&mut self, now: Micros, out: &mut impl Write) -> fmt::Result {
        let carrier = self.stack.device().carrier();
        if self.link != Some(carrier) {
            self.link = Some(carrier);
            writeln!(out, "net: link {}", if carrier { "up" } else { "down" })?;
        }
        // Without its device the stack keeps running its timers (as lwIP's do), so connections
        // time out instead of hanging until the NIC is back; nothing can be sent meanwhile.
        self.stack
            .set_link_up(carrier || !self.stack.device().present());
        self.stack.poll(now);
        let config = self.stack.config();
        if config != self.config {
            self.config = config;
            writeln!(out, "net: {}", AddressLine(config))?;
        }
        let mut result = Ok(());
        let Self { echo, stack, .. } = self;
        if let Some(echo) = echo {
            echo.serve(stack, |e| {
                let r = match e {
                    Event::Accepted(peer) => writeln!(out, "echo: connection from {peer}"),
                    Event::Closed { peer, bytes } => {
                        writeln!(out, "echo: {peer} closed after {bytes} bytes")
                    }
                    Event::Failed(err) => writeln!(out, "echo: {err:?}"),
                };
                result = result.and(r);
            });
        }
        result?;
        if now >= self.next_counters {
            self.next_counters = now + COUNTERS_EVERY_US;
            let [rx, tx, rx_err, tx_err] = self.stack.device().counters();
            write!(
                out,
                "net: frames rx {rx} tx {tx} errors rx {rx_err} tx {tx_err}"
            )?;
            match &self.echo {
                Some(echo) => {
                    let c = echo.counters();
                    writeln!(
                        out,
                        "; echo {} conns {} bytes",
                        c.tcp_connections, c.tcp_bytes
                    )?;
                }
                None => writeln!(out)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, SocketAddrV4};
    use netstack::api::{TcpPhase, Transport};
    use netstack::{StaticBuffers, StaticStorage};
    use smoltcp::phy::{DeviceCapabilities, Loopback, Medium};
    use smoltcp::time::Instant;

    /// smoltcp's loopback with a carrier switch and frame counters.
    struct Wire {
        inner: Loopback,
        carrier: bool,
        frames: [u64; 4],
    }

    impl smoltcp::phy::Device for Wire {
        type RxToken<'a> = <Loopback as smoltcp::phy::Device>::RxToken<'a>;
        type TxToken<'a> = <Loopback as smoltcp::phy::Device>::TxToken<'a>;
        fn receive(&mut self, t: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
            let got = self.inner.receive(t);
            if got.is_some() {
                self.frames[0] += 1;
            }
            got
        }
        fn transmit(&mut self, t: Instant) -> Option<Self::TxToken<'_>> {
            self.frames[1] += 1;
            self.inner.transmit(t)
        }
        fn capabilities(&self) -> DeviceCapabilities {
            self.inner.capabilities()
        }
    }

    impl NetDevice for Wire {
        fn mac(&self) -> [u8; 6] {
            [0x02, 0, 0, 0, 0, 2]
        }
        fn carrier(&self) -> bool {
            self.carrier
        }
        fn counters(&self) -> [u64; 4] {
            self.frames
        }
    }

    type Storage = StaticStorage<'static, 4, 2, 8>;
    type Buffers = StaticBuffers<4, 2, 4096, 1536>;

    fn service(echo: Echo) -> Service<'static, Wire> {
        let storage: &'static mut Storage = Box::leak(Box::new(Storage::new()));
        let buffers: &'static mut Buffers = Box::leak(Box::new(Buffers::new()));
        let wire = Wire {
            inner: Loopback::new(Medium::Ethernet),
            carrier: true,
            frames: [0; 4],
        };
        let config = Ipv4Config {
            address: Ipv4Addr::LOCALHOST,
            netmask: Ipv4Addr::new(255, 0, 0, 0),
            gateway: Ipv4Addr::UNSPECIFIED,
            dns: Ipv4Addr::UNSPECIFIED,
        };
        Service::start(
            wire,
            storage.parts(buffers),
            Addressing::Static(config),
            Seed::reproducible(1),
            echo,
            0,
        )
        .unwrap()
    }

    #[test]
    fn reports_link_address_echo_and_counters() {
        let mut svc = service(Echo::Tcp);
        let mut out = String::new();
        svc.step(1_000, &mut out).unwrap();
        assert_eq!(
            out,
            "net: link up\nnet: address 127.0.0.1/8 gw 0.0.0.0 dns 0.0.0.0\n"
        );

        // A TCP client on the same stack talks to the echo port.
        out.clear();
        let client = svc.stack_mut().open(Transport::Tcp).unwrap();
        let echo = SocketAddrV4::new(Ipv4Addr::LOCALHOST, ECHO_PORT);
        svc.stack_mut().connect(client, echo).unwrap();
        let mut now = 1_000;
        let mut sent = false;
        let mut back = Vec::new();
        for _ in 0..500 {
            now += 1_000;
            svc.step(now, &mut out).unwrap();
            let stack = svc.stack_mut();
            if !sent && stack.tcp_phase(client) == Ok(TcpPhase::Connected) {
                sent = stack.send(client, b"ping?").is_ok();
            }
            let mut buf = [0u8; 16];
            if let Ok(n) = stack.recv(client, &mut buf) {
                back.extend_from_slice(&buf[..n]);
            }
            if back.len() == 5 {
                break;
            }
        }
        assert_eq!(back, b"ping?");
        svc.stack_mut().close(client);
        for _ in 0..100 {
            now += 1_000;
            svc.step(now, &mut out).unwrap();
        }
        assert!(out.starts_with("echo: connection from 127.0.0.1:"), "{out}");
        assert!(out.contains(" closed after 5 bytes\n"), "{out}");

        // Carrier loss is news once; counters come every COUNTERS_EVERY_US.
        out.clear();
        svc.stack_mut().device_mut().carrier = false;
        svc.step(now + 1, &mut out).unwrap();
        svc.step(now + 2, &mut out).unwrap();
        assert_eq!(out, "net: link down\n");
        svc.step(COUNTERS_EVERY_US + 1_000, &mut out).unwrap();
        let counters = out.lines().last().unwrap();
        assert!(
            counters.starts_with("net: frames rx ") && counters.ends_with("; echo 1 conns 5 bytes"),
            "{counters}"
        );
    }

    #[test]
    fn a_bad_static_configuration_is_an_error() {
        let storage: &'static mut Storage = Box::leak(Box::new(Storage::new()));
        let buffers: &'static mut Buffers = Box::leak(Box::new(Buffers::new()));
        let wire = Wire {
            inner: Loopback::new(Medium::Ethernet),
            carrier: true,
            frames: [0; 4],
        };
        let holes = Ipv4Config {
            address: Ipv4Addr::new(10, 0, 0, 2),
            netmask: Ipv4Addr::new(255, 0, 255, 0),
            gateway: Ipv4Addr::UNSPECIFIED,
            dns: Ipv4Addr::UNSPECIFIED,
        };
        let r = Service::start(
            wire,
            storage.parts(buffers),
            Addressing::Static(holes),
            Seed::reproducible(1),
            Echo::Tcp,
            0,
        );
        assert_eq!(r.err(), Some(NetError::Invalid));
    }

    /// Sends a datagram to UDP port 7 and a SYN to TCP port 7 from a client on the same stack;
    /// true when the datagram was echoed.
    fn port_7_answers(svc: &mut Service<'static, Wire>) -> (bool, Result<TcpPhase, NetError>) {
        let mut out = String::new();
        let echo = SocketAddrV4::new(Ipv4Addr::LOCALHOST, ECHO_PORT);
        let stack = svc.stack_mut();
        let udp = stack.open(Transport::Udp).unwrap();
        stack.send_to(udp, b"reflect me", Some(echo)).unwrap();
        let tcp = stack.open(Transport::Tcp).unwrap();
        stack.connect(tcp, echo).unwrap();
        let mut echoed = false;
        let mut phase = Ok(TcpPhase::Connecting);
        for round in 1..=200 {
            svc.step(round * 1_000, &mut out).unwrap();
            let stack = svc.stack_mut();
            let mut buf = [0u8; 64];
            echoed |= stack.recv_from(udp, &mut buf).is_ok();
            phase = stack.tcp_phase(tcp);
        }
        (echoed, phase)
    }

    #[test]
    fn by_default_nothing_listens_not_even_udp_echo() {
        // What `cargo xtask build` builds (no `echo` feature in this test build).
        assert_eq!(ECHO, Echo::Off);
        let mut svc = service(ECHO);
        let before = svc.stack_mut().drops().udp_no_socket;
        let (echoed, phase) = port_7_answers(&mut svc);
        assert!(!echoed, "UDP port 7 answered");
        // The datagram did arrive, and no socket took it.
        assert_eq!(svc.stack_mut().drops().udp_no_socket, before + 1);
        // The SYN was refused.
        assert_eq!(phase, Ok(TcpPhase::Closed));
    }

    #[test]
    fn with_echo_asked_for_tcp_answers_and_udp_still_does_not() {
        let mut svc = service(Echo::Tcp);
        let (echoed, phase) = port_7_answers(&mut svc);
        assert!(!echoed, "UDP port 7 answered");
        assert_eq!(phase, Ok(TcpPhase::Connected));
    }
}
