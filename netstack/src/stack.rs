//! The stack: a smoltcp `Interface` and `SocketSet` over one Ethernet `Device`, with the
//! bookkeeping that turns smoltcp's sockets into [`crate::api::SocketStack`] semantics
//! (listen backlog, background close, failure reasons, DHCP, DNS). Received frames pass the
//! [`crate::gate`]; whatever draws a random number goes through a [`crate::scratch`] interface.

use core::net::{Ipv4Addr, SocketAddrV4};

use managed::ManagedSlice;
use smoltcp::iface::{Config, Interface, PollResult, SocketHandle, SocketSet};
use smoltcp::phy::{Device, RxToken};
use smoltcp::socket::{dhcpv4, dns, tcp, udp};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{
    EthernetAddress, HardwareAddress, IpAddress, IpCidr, IpEndpoint, IpListenEndpoint,
    DHCP_CLIENT_PORT,
};

use crate::api::{Ipv4Config, Micros, NetError, PollOutcome, Transport};
use crate::backlog::{needs_arming, ListenPools, PoolState};
use crate::control::{is_broadcast, netmask, prefix_len, InterfaceControl};
use crate::counters::Drops;
use crate::entropy::{Secrets, Seed};
use crate::gate::{self, Neighbour, OneFrame, Route, Seen};
use crate::loopback::{
    Link, LinkDrops, LoopQueue, NoNic, LOOPBACK_ADDR, LOOPBACK_PREFIX, NO_NIC_MAC,
};
use crate::ports::{overlaps, PortHolder, PortUsage};
use crate::scratch;
use crate::storage::Parts;
use crate::tables::{DnsEntry, IdSlot, Listener, TcpEntry, TcpOptions, TcpUse, UdpEntry};

/// A connection is aborted when the peer acknowledges nothing for this long (smoltcp's user
/// timeout; it also bounds a connection attempt).
pub const TCP_TIMEOUT: Duration = Duration::from_secs(60);
/// Keep-alive interval when SO_KEEPALIVE is on.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(60);
/// How long a closed connection may take to finish its FIN handshake before it is aborted.
pub const LINGER_LIMIT: Micros = 30_000_000;
/// smoltcp's DNS client gives up on a server after this long (its `RETRANSMIT_TIMEOUT`); a
/// failure after that is a timeout, an earlier one an answer that the name does not exist.
pub const DNS_SERVER_TIMEOUT: Micros = 10_000_000;
/// Received frames processed per [`crate::api::SocketStack::poll`] before it returns (bounded work).
pub const INGRESS_BUDGET: usize = 64;
/// Egress passes per [`crate::api::SocketStack::poll`].
pub const EGRESS_BUDGET: usize = 64;

/// DHCP retransmission timing: lwIP (what MicroPython boards run) first retransmits DISCOVER and
/// REQUEST after 2 s (`dhcp.c`: `(tries < 6 ? 1 << tries : 60)` seconds, tries starting at 1);
/// smoltcp's default of 10 s would make one lost DISCOVER cost a script 10 s.
fn dhcp_retry() -> dhcpv4::RetryConfig {
    let mut retry = dhcpv4::RetryConfig::default();
    retry.discover_timeout = Duration::from_secs(2);
    retry.initial_request_timeout = Duration::from_secs(2);
    retry
}

/// How often the loopback path refreshes the neighbour cache's entries for the local addresses
/// (smoltcp keeps an entry 60 s).
pub const ANNOUNCE_INTERVAL: Micros = 20_000_000;

/// How long a closed UDP socket may take to send the datagrams it still had queued (e.g.
/// waiting for ARP) before they are discarded and counted.
pub const UDP_FLUSH_LIMIT: Micros = 3_000_000;
/// While SYNs are being dropped for a full backlog, a half-open connection (SYN-RECEIVED, its
/// handshake not finished) older than this is aborted to make room: a real client on the link
/// answers a SYN-ACK within milliseconds, a spoofed source never does.
pub const HALF_OPEN_GRACE: Micros = 250_000;
/// smoltcp's DNS server port: datagrams from it are the DNS client's, not a bound socket's.
const DNS_PORT: u16 = 53;

/// UDP sockets whose delivery of received datagrams is checked (the first ones of the pool).
const UDP_TRACKED: usize = 16;

/// Identity of the interface.
#[derive(Clone, Debug)]
pub struct StackConfig {
    /// MAC address (must be unicast).
    pub mac: [u8; 6],
    /// The secret that TCP initial sequence numbers, ephemeral ports, DNS query ids and ports
    /// and DHCP transaction ids are drawn from ([`crate::entropy`]).
    pub seed: Seed,
}

/// Work a [`Stack`]'s owner has done at the start of every [`SocketStack::poll`], whoever
/// polls (the owner's loop, or a socket call waiting for the network): e.g. watching a NIC that
/// can be unplugged and acting on the interface ([`Stack::release_address`]).
///
/// [`SocketStack::poll`]: crate::api::SocketStack::poll
pub type LinkWatch<'a, D> = fn(&mut Stack<'a, D>, Micros);

/// How the interface is addressed: what [`Stack::release_address`] remembers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Addressing {
    /// The DHCP client runs.
    Dhcp,
    /// A static configuration.
    Static(Ipv4Config),
}

/// The network stack over device `D`.
pub struct Stack<'a, D: Device> {
    pub(crate) device: D,
    /// The frames on the loopback path (see [`crate::loopback`]).
    lo: LoopQueue<'a>,
    pub(crate) iface: Interface,
    pub(crate) sockets: SocketSet<'a>,
    pub(crate) ids: ManagedSlice<'a, IdSlot>,
    pub(crate) tcp: ManagedSlice<'a, TcpEntry>,
    pub(crate) udp: ManagedSlice<'a, UdpEntry>,
    pub(crate) dns: ManagedSlice<'a, DnsEntry>,
    pub(crate) dns_handle: SocketHandle,
    /// The DHCP client's socket set: it sends through throwaway interfaces.
    dhcp_sockets: SocketSet<'a>,
    dhcp: Option<SocketHandle>,
    dhcp_lease_cap: Option<Duration>,
    /// The DHCP server of the lease.
    dhcp_server: Option<Ipv4Addr>,
    /// The next hop towards [`Self::dhcp_server`] as the interface learnt it from ARP, for the
    /// throwaway interface that sends the (unicast) renewal.
    dhcp_neighbour: Option<Neighbour>,
    pub(crate) config: Option<Ipv4Config>,
    link_up: bool,
    mac: [u8; 6],
    pub(crate) secrets: Secrets,
    arrivals: u32,
    pub(crate) now: Micros,
    pub(crate) drops: Drops,
    /// SYNs were dropped for a full backlog since the last poll found every pool listening.
    syn_pressure: bool,
    /// When the loopback path next tells the neighbour cache where the local addresses are.
    announce_due: Micros,
    /// Run at the start of every poll.
    pub(crate) watch: Option<LinkWatch<'a, D>>,
    /// The addressing to apply again when the device is back (`None`: nothing, or the user
    /// configured the interface since it was released).
    restore: Option<Addressing>,
}

/// Where a socket was seen closing, which decides the failure reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CloseCause {
    /// While processing one received frame; `rst` when that frame was a RST.
    Ingress { rst: bool },
    /// While sending and running timers.
    Egress,
}

/// The interface's loopback address and network, 127.0.0.1/8.
fn loopback_cidr() -> IpCidr {
    IpCidr::new(IpAddress::Ipv4(LOOPBACK_ADDR), LOOPBACK_PREFIX)
}

/// smoltcp's time from ours.
pub(crate) fn instant(now: Micros) -> Instant {
    Instant::from_micros(i64::try_from(now).unwrap_or(i64::MAX))
}

/// Our time from smoltcp's.
fn micros(at: Instant) -> Micros {
    u64::try_from(at.total_micros()).unwrap_or(0)
}

/// An IPv4 endpoint from smoltcp's.
pub(crate) fn v4(endpoint: IpEndpoint) -> Option<SocketAddrV4> {
    #[allow(unreachable_patterns)] // IPv6 may be enabled in smoltcp by another crate.
    match endpoint.addr {
        IpAddress::Ipv4(addr) => Some(SocketAddrV4::new(addr, endpoint.port)),
        _ => None,
    }
}

/// smoltcp's listen endpoint for a local address (unspecified = any).
pub(crate) fn listen_endpoint(local: SocketAddrV4) -> IpListenEndpoint {
    IpListenEndpoint {
        addr: (!local.ip().is_unspecified()).then_some(IpAddress::Ipv4(*local.ip())),
        port: local.port(),
    }
}

/// Applies TCP options to a smoltcp socket.
pub(crate) fn configure(socket: &mut tcp::Socket<'_>, options: TcpOptions) {
    socket.set_nagle_enabled(!options.nodelay);
    socket.set_keep_alive(options.keepalive.then_some(KEEPALIVE_INTERVAL));
    socket.set_timeout(Some(TCP_TIMEOUT));
}

/// The listener pools as the receive gate sees them.
struct PoolView<'s> {
    ids: &'s [IdSlot],
    tcp: &'s [TcpEntry],
}

impl ListenPools for PoolView<'_> {
    fn pool_state(&self, dst: SocketAddrV4, src: SocketAddrV4) -> Option<PoolState> {
        let listener = self.ids.iter().position(|slot| {
            matches!(slot, IdSlot::Listener(l)
                if l.local.port() == dst.port() && overlaps(*l.local.ip(), *dst.ip()))
        })?;
        let mut state = PoolState {
            listening: false,
            serves_source: false,
        };
        for entry in self.tcp {
            if let TcpUse::Pooled { listener: l, .. } = entry.usage {
                if usize::from(l) == listener {
                    state.listening |= entry.last_state == tcp::State::Listen;
                    state.serves_source |= entry.remote == Some(src);
                }
            }
        }
        Some(state)
    }
}

/// The ports held by the stack's sockets.
pub(crate) struct Usage<'s> {
    pub ids: &'s [IdSlot],
    pub tcp: &'s [TcpEntry],
    pub udp: &'s [UdpEntry],
}

impl Usage<'_> {
    /// The holders of local addresses for `transport`, skipping TCP entry or UDP entry `except`.
    pub fn holders(
        &self,
        transport: Transport,
        except: Option<usize>,
    ) -> impl Iterator<Item = PortHolder> + '_ {
        let tcp = self
            .tcp
            .iter()
            .enumerate()
            .filter(move |(i, e)| {
                transport == Transport::Tcp && e.usage != TcpUse::Free && Some(*i) != except
            })
            .filter_map(|(_, e)| {
                e.local.map(|local| PortHolder {
                    local,
                    reuse: e.options.reuse,
                })
            });
        let listeners = self.ids.iter().filter_map(move |slot| match slot {
            IdSlot::Listener(l) if transport == Transport::Tcp => Some(PortHolder {
                local: l.local,
                reuse: l.options.reuse,
            }),
            _ => None,
        });
        let udp = self
            .udp
            .iter()
            .enumerate()
            .filter(move |(i, e)| transport == Transport::Udp && e.in_use && Some(*i) != except)
            .filter_map(|(_, e)| {
                e.local.map(|local| PortHolder {
                    local,
                    reuse: e.reuse,
                })
            });
        tcp.chain(listeners).chain(udp)
    }
}

impl PortUsage for Usage<'_> {
    fn in_use(&self, transport: Transport, port: u16) -> bool {
        self.holders(transport, None)
            .any(|h| h.local.port() == port)
    }
}

impl<'a, D: Device> Stack<'a, D> {
    /// Builds the stack over `device` (an Ethernet device) from `parts` (see
    /// [`crate::storage`]). The link starts up and the interface without address: call
    /// [`InterfaceControl::set_static`] or [`InterfaceControl::start_dhcp`]. A multicast MAC
    /// (group bit set) is not a valid station address; the bit is cleared and a warning logged.
    pub fn new(mut device: D, config: StackConfig, parts: Parts<'a>, now: Micros) -> Self {
        let mut mac = config.mac;
        if !EthernetAddress(mac).is_unicast() {
            log::warn!("MAC {:02x?} is not unicast; clearing its group bit", mac);
            mac[0] &= !1;
        }
        let mut secrets = Secrets::new(&config.seed);
        let mut iface_config = Config::new(HardwareAddress::Ethernet(EthernetAddress(mac)));
        // Nothing this generator draws goes on the wire (sequence numbers, DNS ids and DHCP
        // transaction ids come from `crate::scratch` interfaces); it is secret all the same.
        iface_config.random_seed = secrets.next_u64();
        let mut lo = parts.loopback;
        let mut link = Link::new(&mut device, &mut lo, true, None);
        let mut iface = Interface::new(iface_config, &mut link, instant(now));
        // What the interface was given, kept: it decides how large frames are sent.
        let caps = link.capabilities();
        lo.built_with(&caps);
        iface.update_ip_addrs(|addrs| {
            // The list starts empty.
            let _ = addrs.push(loopback_cidr());
        });
        Self {
            device,
            lo,
            iface,
            sockets: parts.sockets,
            ids: parts.ids,
            tcp: parts.tcp,
            udp: parts.udp,
            dns: parts.dns,
            dns_handle: parts.dns_handle,
            dhcp_sockets: parts.dhcp,
            dhcp: None,
            dhcp_lease_cap: None,
            dhcp_server: None,
            dhcp_neighbour: None,
            config: None,
            link_up: true,
            mac,
            secrets,
            arrivals: 0,
            now,
            drops: Drops::default(),
            syn_pressure: false,
            announce_due: now,
            watch: None,
            restore: None,
        }
    }

    /// A throwaway interface like this one whose generator starts from `seed`, for one smoltcp
    /// call that draws from it ([`crate::scratch`]).
    pub(crate) fn drawing_interface(&mut self, seed: u64) -> Interface {
        scratch::like(&self.iface, &mut self.device, seed, self.now)
    }

    /// Frames the loopback path holds right now (for tests and counters).
    pub fn loopback_queued(&self) -> usize {
        self.lo.queued()
    }

    /// What the loopback path did not deliver so far.
    pub(crate) fn link_drops(&self) -> LinkDrops {
        self.lo.drops()
    }

    /// Has `watch` run at the start of every [`SocketStack::poll`](crate::api::SocketStack::poll).
    pub fn set_link_watch(&mut self, watch: LinkWatch<'a, D>) {
        self.watch = Some(watch);
    }

    /// The interface's device went away: remembers how the interface was addressed (DHCP or
    /// static) and removes the address, as lwIP's `netif_remove` does for a USB NIC; the
    /// connections bound to it abort ([`NetError::ConnectionAborted`]). Nothing is remembered
    /// when the interface had no addressing (a second release keeps the first memory).
    pub fn release_address(&mut self) {
        let current = if self.dhcp.is_some() {
            Some(Addressing::Dhcp)
        } else {
            self.config.map(Addressing::Static)
        };
        if current.is_some() {
            self.restore = current;
        }
        self.stop_dhcp();
        self.apply(None);
    }

    /// The device is back: applies what [`Self::release_address`] remembered (the DHCP client
    /// starts anew, or the static configuration is installed again), unless the interface was
    /// configured in between ([`InterfaceControl::set_static`] or `start_dhcp`), whose choice
    /// stands. Returns what it applied.
    pub fn restore_address(&mut self) -> Option<Addressing> {
        let restore = self.restore.take()?;
        match restore {
            Addressing::Dhcp => self.start_dhcp(),
            Addressing::Static(config) => {
                // It was installed before, so its netmask is contiguous.
                let _ = self.set_static(config);
            }
        }
        Some(restore)
    }

    /// The device.
    pub fn device(&self) -> &D {
        &self.device
    }

    /// The device, mutably (e.g. to feed it frames in a simulation).
    pub fn device_mut(&mut self) -> &mut D {
        &mut self.device
    }

    /// Processes received frames and timers and sends what is due; returns when to poll next.
    ///
    /// The loopback path runs whatever the link does; the NIC is used only while its link is
    /// up (frames for it are dropped and counted while it is down).
    pub(crate) fn poll_once(&mut self, now: Micros) -> PollOutcome {
        self.now = now;
        let at = instant(now);
        let mut progressed = false;
        let mut more = false;
        let own = self.config.map(|c| c.address);
        if now >= self.announce_due {
            let both = [LOOPBACK_ADDR, own.unwrap_or(LOOPBACK_ADDR)];
            let addrs = if own.is_some() { &both[..] } else { &both[..1] };
            if self.lo.announce(self.mac, addrs) {
                self.announce_due = now.saturating_add(ANNOUNCE_INTERVAL);
            }
        }
        self.iface.poll_maintenance(at);
        for round in 0..INGRESS_BUDGET {
            let queued = self.udp_recv_queues();
            let Some(seen) = self.ingress_one(at, own) else {
                break;
            };
            progressed = true;
            if let Some((sender, target)) = seen.arp {
                self.note_neighbour(sender, target);
            }
            if seen.syn_dropped {
                self.drops.syn_backlog_full += 1;
                self.syn_pressure = true;
            }
            if let Some((src_port, dst, len)) = seen.udp {
                self.count_udp_delivery(src_port, dst, len, &queued);
            }
            self.scan_tcp(CloseCause::Ingress { rst: seen.rst });
            self.relieve_backlogs();
            self.rearm_listeners();
            more = round + 1 == INGRESS_BUDGET;
        }
        for _ in 0..EGRESS_BUDGET {
            let mut link = Link::new(&mut self.device, &mut self.lo, self.link_up, own);
            match self.iface.poll_egress(at, &mut link, &mut self.sockets) {
                PollResult::None => break,
                PollResult::SocketStateChanged => progressed = true,
            }
        }
        progressed |= self.dhcp_egress(at, own);
        // Frames looped by egress are received by the next poll, at once.
        more |= self.lo.queued() > 0;
        self.scan_tcp(CloseCause::Egress);
        self.relieve_backlogs();
        self.rearm_listeners();
        self.finish_udp_drains();
        progressed |= self.handle_dhcp();
        let mut next = if more {
            Some(now)
        } else {
            let sockets = self.iface.poll_at(at, &self.sockets);
            let dhcp = self.iface.poll_at(at, &self.dhcp_sockets);
            sockets.into_iter().chain(dhcp).min().map(micros)
        };
        for entry in self.tcp.iter() {
            if let TcpUse::Lingering { deadline } = entry.usage {
                next = Some(next.map_or(deadline, |n| n.min(deadline)));
            }
        }
        for deadline in self.udp.iter().filter_map(|e| e.draining) {
            next = Some(next.map_or(deadline, |n| n.min(deadline)));
        }
        PollOutcome {
            progressed,
            next_poll: next,
        }
    }

    /// Receives one frame (from the NIC or the loopback path, [`Link`]; `own` is the NIC
    /// address) and hands it to the interface and sockets its [`Route`] names; what the frame
    /// was, or `None` when no frame waits.
    fn ingress_one(&mut self, at: Instant, own: Option<Ipv4Addr>) -> Option<Seen> {
        let Self {
            device,
            lo,
            link_up,
            iface,
            sockets,
            dhcp_sockets,
            dhcp,
            ids,
            tcp,
            secrets,
            now,
            ..
        } = self;
        let pools = PoolView {
            ids: &ids[..],
            tcp: &tcp[..],
        };
        let dhcp_client = dhcp.is_some();
        let mut link = Link::new(device, lo, *link_up, own);
        let caps = link.capabilities();
        let (rx, tx) = link.receive(at)?;
        let meta = rx.meta();
        Some(rx.consume(|frame| {
            let (seen, route) = gate::judge(frame, &pools, dhcp_client);
            let mut one = OneFrame::new(frame, meta, tx, &caps);
            match route {
                Route::Stack => {
                    iface.poll_ingress_single(at, &mut one, sockets);
                }
                Route::Dhcp => {
                    iface.poll_ingress_single(at, &mut one, dhcp_sockets);
                }
                Route::Listener { local, remote } => {
                    // The listening socket that takes the SYN draws exactly this ISN.
                    let isn = secrets.isn(local, remote, *now);
                    let seed = scratch::seed_drawing(isn, secrets.next_u64());
                    let mut drawer = scratch::like(iface, &mut one, seed, *now);
                    drawer.poll_ingress_single(at, &mut one, sockets);
                }
                Route::Drop => {}
            }
            seen
        }))
    }

    /// Lets the DHCP client send what is due through a throwaway interface with a fresh secret
    /// seed: each DISCOVER and each renewal draws its transaction id from it
    /// ([`crate::scratch`]); `own` is the NIC address. True when the client's state may have
    /// changed.
    fn dhcp_egress(&mut self, at: Instant, own: Option<Ipv4Addr>) -> bool {
        if self.dhcp.is_none()
            || self
                .iface
                .poll_at(at, &self.dhcp_sockets)
                .is_none_or(|due| due > at)
        {
            return false;
        }
        let seed = self.secrets.next_u64();
        let mut link = Link::new(&mut self.device, &mut self.lo, self.link_up, own);
        let mut drawer = scratch::like(&self.iface, &mut link, seed, self.now);
        if let (Some(neighbour), Some(config)) = (self.dhcp_neighbour, self.config) {
            let caps = link.capabilities();
            if let Some(tx) = link.transmit(at) {
                let station = (self.mac, config.address);
                scratch::teach(&mut drawer, station, neighbour, tx, &caps, self.now);
            }
        }
        matches!(
            drawer.poll_egress(at, &mut link, &mut self.dhcp_sockets),
            PollResult::SocketStateChanged
        )
    }

    /// The host the DHCP client's unicast renewal goes to first: the lease's server on the
    /// link, else the gateway.
    fn dhcp_next_hop(&self) -> Option<Ipv4Addr> {
        let config = self.config?;
        let server = self.dhcp_server?;
        let mask = u32::from(config.netmask);
        if u32::from(server) & mask == u32::from(config.address) & mask {
            Some(server)
        } else {
            Some(config.gateway).filter(|g| !g.is_unspecified())
        }
    }

    /// Keeps the DHCP client's next hop from an ARP message by `sender` for `target`, as the
    /// interface learns it (from requests and replies aimed at its address).
    fn note_neighbour(&mut self, sender: Neighbour, target: Ipv4Addr) {
        let ours = self.config.is_some_and(|c| c.address == target);
        if ours && Some(sender.ip) == self.dhcp_next_hop() {
            self.dhcp_neighbour = Some(sender);
        }
    }

    /// Notes state changes of the TCP sockets: arrivals in listener pools, failures, the end
    /// of lingering closes.
    fn scan_tcp(&mut self, cause: CloseCause) {
        let now = self.now;
        let local_ip = self.iface.ipv4_addr();
        // Runs after every frame: entries in use are looked at in place, free ones not at all.
        let Self {
            tcp,
            sockets,
            arrivals,
            ..
        } = self;
        for (index, entry) in tcp.iter_mut().enumerate() {
            if entry.usage == TcpUse::Free {
                continue;
            }
            let Some(handle) = entry.handle else { continue };
            let socket = sockets.get_mut::<tcp::Socket>(handle);
            let mut state = socket.state();
            if state != entry.last_state {
                match entry.usage {
                    TcpUse::Pooled {
                        listener,
                        arrival: None,
                    } => {
                        if matches!(state, tcp::State::Established | tcp::State::CloseWait) {
                            entry.usage = TcpUse::Pooled {
                                listener,
                                arrival: Some(*arrivals),
                            };
                            *arrivals = arrivals.wrapping_add(1);
                            entry.started = true;
                        } else if state == tcp::State::Closed {
                            // A handshake that did not complete: listen again.
                            if let Some(local) = entry.local {
                                if socket.listen(listen_endpoint(local)).is_ok() {
                                    state = tcp::State::Listen;
                                }
                            }
                        }
                    }
                    TcpUse::Owned | TcpUse::Pooled { .. } => {
                        if state == tcp::State::Closed && entry.started && !entry.failed {
                            let reason = match cause {
                                CloseCause::Ingress { rst: true }
                                    if entry.last_state == tcp::State::SynSent =>
                                {
                                    NetError::ConnectionRefused
                                }
                                CloseCause::Ingress { rst: true } => NetError::ConnectionReset,
                                CloseCause::Ingress { rst: false } => NetError::ConnectionAborted,
                                CloseCause::Egress => {
                                    let still_ours = entry.local.is_some_and(|l| {
                                        l.ip().is_unspecified()
                                            || l.ip().is_loopback()
                                            || Some(*l.ip()) == local_ip
                                    });
                                    if still_ours {
                                        NetError::TimedOut
                                    } else {
                                        NetError::ConnectionAborted
                                    }
                                }
                            };
                            log::debug!("tcp socket {index}: failed with {reason:?}");
                            entry.failure.get_or_insert(reason);
                        }
                    }
                    TcpUse::Lingering { .. } | TcpUse::Free => {}
                }
                if let Some(remote) = socket.remote_endpoint().and_then(v4) {
                    entry.remote = Some(remote);
                }
                if let Some(local) = socket.local_endpoint().and_then(v4) {
                    entry.local = Some(local);
                }
                entry.last_state = state;
                entry.changed_at = now;
            }
            if let (TcpUse::Lingering { deadline }, CloseCause::Egress) = (entry.usage, cause) {
                if state == tcp::State::Closed {
                    *entry = entry.reused(TcpUse::Free);
                } else if now >= deadline {
                    log::debug!("tcp socket {index}: close did not finish, aborting");
                    socket.abort();
                    entry.usage = TcpUse::Lingering { deadline: now };
                }
            }
        }
    }

    /// Bytes queued for reading in each UDP socket of the pool, in pool order.
    fn udp_recv_queues(&self) -> [usize; UDP_TRACKED] {
        let mut queued = [0; UDP_TRACKED];
        for (q, entry) in queued.iter_mut().zip(self.udp.iter()) {
            if let Some(handle) = entry.handle {
                *q = self.sockets.get::<udp::Socket>(handle).recv_queue();
            }
        }
        queued
    }

    /// Counts a received UDP datagram (source port, destination, payload length) that no socket
    /// took: none bound to its port, or the bound one's buffer full (its receive queue, `before`
    /// the frame, did not grow by the datagram). Datagrams of the DNS and DHCP clients are theirs, not counted.
    fn count_udp_delivery(
        &mut self,
        src_port: u16,
        dst: SocketAddrV4,
        len: usize,
        before: &[usize; UDP_TRACKED],
    ) {
        let Some(config) = self.config else { return };
        let ours = *dst.ip() == config.address || is_broadcast(*dst.ip(), Some(&config));
        if !ours || src_port == DNS_PORT || dst.port() == DHCP_CLIENT_PORT {
            return;
        }
        self.drops.udp_received += 1;
        let bound = self.udp.iter().enumerate().find(|(_, e)| {
            (e.in_use || e.draining.is_some())
                && e.local.is_some_and(|l| {
                    l.port() == dst.port()
                        && (l.ip().is_unspecified()
                            || l.ip() == dst.ip()
                            || is_broadcast(*dst.ip(), Some(&config)))
                })
        });
        let Some((u, entry)) = bound else {
            self.drops.udp_no_socket += 1;
            return;
        };
        let Some(handle) = entry.handle else { return };
        let now_queued = self.sockets.get::<udp::Socket>(handle).recv_queue();
        // A datagram taken grows the queue by its length, plus the padding smoltcp puts at the
        // ring's end first when the datagram does not fit there; a datagram dropped grows it by
        // at most that padding, which is shorter than the datagram: smoltcp pads, then may find
        // no metadata slot left (`PacketBuffer::enqueue`). Beyond the tracked sockets (or for an
        // empty datagram) delivery cannot be seen.
        if len > 0 && before.get(u).is_some_and(|b| now_queued < b + len) {
            self.drops.udp_rx_full += 1;
        }
    }

    /// While SYNs are being dropped, aborts each listener's oldest half-open member older than
    /// [`HALF_OPEN_GRACE`] so that the pool can listen again.
    fn relieve_backlogs(&mut self) {
        if !self.syn_pressure {
            return;
        }
        let now = self.now;
        let mut all_listening = true;
        for id in 0..self.ids.len() {
            let IdSlot::Listener(listener) = self.ids[id] else {
                continue;
            };
            let Ok(id16) = u16::try_from(id) else {
                continue;
            };
            let pooled =
                |e: &TcpEntry| matches!(e.usage, TcpUse::Pooled { listener: l, .. } if l == id16);
            if self
                .tcp
                .iter()
                .any(|e| pooled(e) && e.last_state == tcp::State::Listen)
            {
                continue;
            }
            all_listening = false;
            let oldest = self
                .tcp
                .iter()
                .enumerate()
                .filter(|(_, e)| {
                    pooled(e)
                        && e.last_state == tcp::State::SynReceived
                        && now.saturating_sub(e.changed_at) >= HALF_OPEN_GRACE
                })
                .min_by_key(|(_, e)| e.changed_at)
                .map(|(i, _)| i);
            let Some(index) = oldest else { continue };
            if let Some(handle) = self.tcp[index].handle {
                self.sockets.get_mut::<tcp::Socket>(handle).abort();
            }
            log::debug!("listener {id}: aborting half-open tcp socket {index} under SYN pressure");
            self.drops.half_open_evicted += 1;
            let _ = self.arm_member(index, id16, &listener);
        }
        self.syn_pressure = !all_listening;
    }

    /// Frees closed UDP sockets whose queued datagrams went out, or whose flush limit passed.
    fn finish_udp_drains(&mut self) {
        let now = self.now;
        for u in 0..self.udp.len() {
            let Some(deadline) = self.udp[u].draining else {
                continue;
            };
            let Some(handle) = self.udp[u].handle else {
                continue;
            };
            let pending = self.sockets.get::<udp::Socket>(handle).send_queue();
            if pending == 0 || now >= deadline {
                self.end_udp_drain(u);
            }
        }
    }

    /// Frees draining UDP entry `u` now, counting what it still had queued as discarded.
    pub(crate) fn end_udp_drain(&mut self, u: usize) {
        let entry = self.udp[u];
        if let Some(handle) = entry.handle {
            let socket = self.sockets.get_mut::<udp::Socket>(handle);
            let pending = socket.send_queue();
            if pending > 0 {
                log::debug!("udp socket {u}: {pending} queued bytes discarded at close");
                self.drops.udp_close_discarded_bytes += pending as u64;
            }
            socket.close();
        }
        self.udp[u] = UdpEntry {
            handle: entry.handle,
            ..UdpEntry::EMPTY
        };
    }

    /// Arms one more listening member in every listener pool that has none listening and room.
    pub(crate) fn rearm_listeners(&mut self) {
        for id in 0..self.ids.len() {
            // Looked at in place: this runs after every frame.
            let IdSlot::Listener(listener) = &self.ids[id] else {
                continue;
            };
            let Ok(id16) = u16::try_from(id) else {
                continue;
            };
            let (mut members, mut listening) = (0, 0);
            for entry in self.tcp.iter() {
                if let TcpUse::Pooled { listener: l, .. } = entry.usage {
                    if l == id16 {
                        members += 1;
                        listening += usize::from(entry.last_state == tcp::State::Listen);
                    }
                }
            }
            if !needs_arming(listening, members, usize::from(listener.backlog)) {
                continue;
            }
            let listener = *listener;
            let Some(index) = self.take_free_tcp() else {
                log::debug!("listener {id}: no free TCP socket to arm");
                continue;
            };
            let _ = self.arm_member(index, id16, &listener);
        }
    }

    /// Puts TCP entry `index` in LISTEN as a member of listener `id`.
    pub(crate) fn arm_member(
        &mut self,
        index: usize,
        id: u16,
        listener: &Listener,
    ) -> Result<(), NetError> {
        let now = self.now;
        let entry = &mut self.tcp[index];
        let handle = entry.handle.ok_or(NetError::BadSocket)?;
        let socket = self.sockets.get_mut::<tcp::Socket>(handle);
        configure(socket, listener.options);
        let listened = socket.listen(listen_endpoint(listener.local));
        let mut member = entry.reused(TcpUse::Pooled {
            listener: id,
            arrival: None,
        });
        member.local = Some(listener.local);
        member.options = listener.options;
        member.last_state = socket.state();
        member.changed_at = now;
        *entry = member;
        listened.map_err(|_| NetError::Invalid)
    }

    /// A free TCP entry, marked `Owned`. When none is free, one lingering in TIME-WAIT is
    /// reclaimed, else one in FIN-WAIT-2 (its data and FIN acknowledged: nothing it sent is
    /// lost; only the peer's close is not waited for), as lwIP's `tcp_alloc` reclaims closing
    /// connections before it refuses.
    pub(crate) fn take_free_tcp(&mut self) -> Option<usize> {
        let lingering_in = |state: tcp::State| {
            self.tcp.iter().position(|e| {
                matches!(e.usage, TcpUse::Lingering { .. })
                    && e.handle
                        .is_some_and(|h| self.sockets.get::<tcp::Socket>(h).state() == state)
            })
        };
        let index = self
            .tcp
            .iter()
            .position(|e| e.usage == TcpUse::Free)
            .or_else(|| lingering_in(tcp::State::TimeWait))
            .or_else(|| lingering_in(tcp::State::FinWait2))?;
        let entry = &mut self.tcp[index];
        let handle = entry.handle?;
        let socket = self.sockets.get_mut::<tcp::Socket>(handle);
        if socket.state() != tcp::State::Closed {
            socket.abort();
        }
        configure(socket, TcpOptions::default());
        *entry = entry.reused(TcpUse::Owned);
        Some(index)
    }

    /// A free socket id.
    pub(crate) fn free_id(&self) -> Result<usize, NetError> {
        self.ids
            .iter()
            .position(|slot| *slot == IdSlot::Free)
            .ok_or(NetError::NoMemory)
    }

    /// The port holders, for the bind rules and the ephemeral allocator.
    pub(crate) fn usage(&self) -> Usage<'_> {
        Usage {
            ids: &self.ids,
            tcp: &self.tcp,
            udp: &self.udp,
        }
    }

    /// Reads DHCP events and applies them; true when the configuration changed.
    fn handle_dhcp(&mut self) -> bool {
        let Some(handle) = self.dhcp else {
            return false;
        };
        let event = match self.dhcp_sockets.get_mut::<dhcpv4::Socket>(handle).poll() {
            None => return false,
            Some(dhcpv4::Event::Deconfigured) => {
                self.dhcp_server = None;
                None
            }
            Some(dhcpv4::Event::Configured(lease)) => {
                self.dhcp_server = Some(lease.server.address);
                Some(Ipv4Config {
                    address: lease.address.address(),
                    netmask: netmask(lease.address.prefix_len()),
                    gateway: lease.router.unwrap_or(Ipv4Addr::UNSPECIFIED),
                    dns: lease
                        .dns_servers
                        .first()
                        .copied()
                        .unwrap_or(Ipv4Addr::UNSPECIFIED),
                })
            }
        };
        match &event {
            Some(c) => log::info!(
                "dhcp: lease {}/{} gateway {} dns {}",
                c.address,
                c.netmask,
                c.gateway,
                c.dns
            ),
            None => log::info!("dhcp: lease lost"),
        }
        self.apply(event);
        true
    }

    /// Installs `config` on the interface (address, default route, DNS server).
    fn apply(&mut self, config: Option<Ipv4Config>) {
        let cidr = config.and_then(|c| {
            let len = prefix_len(c.netmask)?;
            (!c.address.is_unspecified()).then(|| IpCidr::new(IpAddress::Ipv4(c.address), len))
        });
        // smoltcp forgets its neighbours with the addresses: so does the DHCP client's copy.
        self.dhcp_neighbour = None;
        self.iface.update_ip_addrs(|addrs| {
            addrs.clear();
            // The NIC's address first: smoltcp takes the first address as the source towards
            // destinations on no address's subnet (through the gateway). Two addresses fit
            // smoltcp's list (`iface-max-addr-count`, 2 by default).
            if let Some(cidr) = cidr {
                let _ = addrs.push(cidr);
            }
            // (A NIC configured as 127.0.0.1/8, as tests do, already covers it.)
            if cidr != Some(loopback_cidr()) {
                let _ = addrs.push(loopback_cidr());
            }
        });
        // lwIP aborts the connections of an address the interface loses (`tcp_abort` from
        // `tcp_netif_ip_addr_changed`, ERR_ABRT); smoltcp would leave them to time out.
        let kept = cidr.map(|c| c.address());
        for entry in self.tcp.iter_mut() {
            let Some(handle) = entry.handle else { continue };
            let socket = self.sockets.get_mut::<tcp::Socket>(handle);
            let elsewhere = socket.local_endpoint().is_some_and(|local| {
                Some(local.addr) != kept && local.addr != IpAddress::Ipv4(LOOPBACK_ADDR)
            });
            if elsewhere && !matches!(socket.state(), tcp::State::Closed | tcp::State::Listen) {
                // No RST goes out: smoltcp sends nothing from an address it no longer has.
                socket.abort();
                if entry.started && !entry.failed {
                    entry.failure.get_or_insert(NetError::ConnectionAborted);
                }
                entry.last_state = tcp::State::Closed;
                entry.changed_at = self.now;
            }
        }
        let config = config.filter(|_| cidr.is_some());
        let routes = self.iface.routes_mut();
        routes.remove_default_ipv4_route();
        if let Some(gateway) = config.map(|c| c.gateway).filter(|g| !g.is_unspecified()) {
            // The route table holds the one default route we keep.
            let _ = routes.add_default_ipv4_route(gateway);
        }
        let servers: &[IpAddress] = match config.map(|c| c.dns).filter(|d| !d.is_unspecified()) {
            Some(dns) => &[IpAddress::Ipv4(dns)],
            None => &[],
        };
        self.sockets
            .get_mut::<dns::Socket>(self.dns_handle)
            .update_servers(servers);
        self.config = config;
        // smoltcp flushed its neighbour cache: tell it the local addresses again.
        self.announce_due = self.now;
    }

    /// Caps the lease the DHCP client uses (it renews at half of it, and drops the address when
    /// it expires unrenewed); `None` uses the server's lease time.
    pub fn set_dhcp_lease_cap(&mut self, cap: Option<Duration>) {
        self.dhcp_lease_cap = cap;
        if let Some(handle) = self.dhcp {
            self.dhcp_sockets
                .get_mut::<dhcpv4::Socket>(handle)
                .set_max_lease_duration(cap);
        }
    }

    /// Removes the DHCP client, if it runs.
    fn stop_dhcp(&mut self) {
        if let Some(handle) = self.dhcp.take() {
            self.dhcp_sockets.remove(handle);
        }
        self.dhcp_server = None;
    }
}

impl<'a> Stack<'a, NoNic> {
    /// A stack of a board without NIC: sockets work over loopback (127.0.0.1) only. Its link
    /// stays down (setting it up would hold every frame back for a NIC that never sends).
    pub fn without_nic(seed: Seed, parts: Parts<'a>, now: Micros) -> Self {
        let mut stack = Self::new(
            NoNic,
            StackConfig {
                mac: NO_NIC_MAC,
                seed,
            },
            parts,
            now,
        );
        stack.link_up = false;
        stack
    }
}

impl<D: Device> InterfaceControl for Stack<'_, D> {
    fn set_static(&mut self, config: Ipv4Config) -> Result<(), NetError> {
        prefix_len(config.netmask).ok_or(NetError::Invalid)?;
        self.restore = None;
        self.stop_dhcp();
        self.apply(Some(config));
        Ok(())
    }

    fn start_dhcp(&mut self) {
        self.restore = None;
        self.apply(None);
        match self.dhcp {
            // A running client asks anew (as lwIP's `dhcp_start`): a bound one would not say
            // its lease again before the renewal, and the address just removed stayed away.
            Some(handle) => self.dhcp_sockets.get_mut::<dhcpv4::Socket>(handle).reset(),
            None => {
                // The DHCP client's set has its one slot free (SERVICE_SOCKETS).
                let mut client = dhcpv4::Socket::new();
                client.set_max_lease_duration(self.dhcp_lease_cap);
                client.set_retry_config(dhcp_retry());
                self.dhcp = Some(self.dhcp_sockets.add(client));
            }
        }
    }

    fn dhcp_running(&self) -> bool {
        self.dhcp.is_some()
    }

    fn config(&self) -> Option<Ipv4Config> {
        self.config
    }

    fn set_link_up(&mut self, up: bool) {
        if up && !self.link_up {
            if let Some(handle) = self.dhcp {
                // A new link may be a new network: ask for a lease again.
                self.dhcp_sockets.get_mut::<dhcpv4::Socket>(handle).reset();
            }
        }
        if up != self.link_up {
            log::info!("link {}", if up { "up" } else { "down" });
        }
        self.link_up = up;
    }

    fn link_up(&self) -> bool {
        self.link_up
    }

    fn mac(&self) -> [u8; 6] {
        self.mac
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{SocketStack, TcpPhase};
    use crate::storage::{StaticBuffers, StaticStorage};
    use smoltcp::phy::{Loopback, Medium};

    type Storage = StaticStorage<'static, 2, 1, 5>;
    type Buffers = StaticBuffers<2, 1, 2048, 1024>;

    const STATIC: Ipv4Config = Ipv4Config {
        address: Ipv4Addr::new(10, 0, 0, 1),
        netmask: Ipv4Addr::new(255, 255, 255, 0),
        gateway: Ipv4Addr::new(10, 0, 0, 254),
        dns: Ipv4Addr::new(10, 0, 0, 254),
    };

    fn stack() -> Stack<'static, Loopback> {
        let storage: &'static mut Storage = Box::leak(Box::new(Storage::new()));
        let buffers: &'static mut Buffers = Box::leak(Box::new(Buffers::new()));
        let config = StackConfig {
            mac: [2, 0, 0, 0, 0, 1],
            seed: crate::Seed::reproducible(1),
        };
        Stack::new(
            Loopback::new(Medium::Ethernet),
            config,
            storage.parts(buffers),
            0,
        )
    }

    #[test]
    fn a_release_aborts_connections_and_a_restore_applies_the_static_configuration_again() {
        let mut s = stack();
        s.set_static(STATIC).unwrap();
        let tcp = s.open(Transport::Tcp).unwrap();
        s.connect(tcp, SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 80))
            .unwrap();
        s.poll(1000);
        assert_eq!(s.tcp_phase(tcp), Ok(TcpPhase::Connecting));
        s.release_address();
        assert_eq!(s.config(), None);
        assert!(!s.dhcp_running());
        assert_eq!(s.recv(tcp, &mut [0; 8]), Err(NetError::ConnectionAborted));
        s.release_address();
        assert_eq!(s.restore_address(), Some(Addressing::Static(STATIC)));
        assert_eq!(s.config(), Some(STATIC));
        assert_eq!(s.restore_address(), None, "applied once");
    }

    #[test]
    fn a_restore_restarts_dhcp_unless_the_interface_was_configured_since() {
        let mut s = stack();
        s.start_dhcp();
        s.release_address();
        assert!(!s.dhcp_running());
        assert_eq!(s.restore_address(), Some(Addressing::Dhcp));
        assert!(s.dhcp_running());

        s.release_address();
        s.set_static(STATIC).unwrap();
        assert_eq!(s.restore_address(), None, "the user's choice stands");
        assert_eq!(s.config(), Some(STATIC));
        assert!(!s.dhcp_running());

        let mut unconfigured = stack();
        unconfigured.release_address();
        assert_eq!(unconfigured.restore_address(), None);
    }

    #[test]
    fn the_link_watch_runs_at_every_poll() {
        let mut s = stack();
        s.set_link_watch(|stack, now| {
            stack.set_link_up(now % 2 == 0);
        });
        s.poll(1);
        assert!(!s.link_up());
        s.poll(2);
        assert!(s.link_up());
    }
}
