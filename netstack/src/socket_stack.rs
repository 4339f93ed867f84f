//! [`SocketStack`] for [`Stack`]: socket ids over the TCP and UDP pools.

use core::net::{Ipv4Addr, SocketAddrV4};

use smoltcp::phy::Device;
use smoltcp::socket::dns::{GetQueryResultError, StartQueryError};
use smoltcp::socket::{dns, tcp, udp};
use smoltcp::wire::{DnsQueryType, IpAddress, IpEndpoint, IpListenEndpoint};

use crate::api::{
    Ipv4Config, Micros, NetError, PollOutcome, QueryId, Readiness, SocketId, SocketOption,
    SocketStack, TcpPhase, Transport,
};
use crate::control::{is_broadcast, routable};
use crate::loopback::LOOPBACK_ADDR;
use crate::ports::{check_bind, ephemeral_port};
use crate::scratch::seed_drawing;
use crate::stack::{
    configure, listen_endpoint, v4, Stack, DNS_SERVER_TIMEOUT, LINGER_LIMIT, UDP_FLUSH_LIMIT,
};
use crate::tables::{DnsEntry, IdSlot, Listener, TcpUse, UdpEntry};

/// The index of an id.
fn index(id: SocketId) -> usize {
    usize::from(id.0)
}

/// The id of an index (tables never exceed u16 entries in practice; larger ones are unused).
fn id_of(index: usize) -> Result<SocketId, NetError> {
    u16::try_from(index)
        .map(SocketId)
        .map_err(|_| NetError::NoMemory)
}

impl<'a, D: Device> Stack<'a, D> {
    /// What `id` names.
    fn slot(&self, id: SocketId) -> Result<IdSlot, NetError> {
        match self.ids.get(index(id)) {
            None | Some(IdSlot::Free) => Err(NetError::BadSocket),
            Some(slot) => Ok(*slot),
        }
    }

    /// The TCP socket of entry `t`.
    fn tcp_socket(&mut self, t: u16) -> Result<&mut tcp::Socket<'a>, NetError> {
        let handle = self
            .tcp
            .get(usize::from(t))
            .and_then(|e| e.handle)
            .ok_or(NetError::BadSocket)?;
        Ok(self.sockets.get_mut::<tcp::Socket>(handle))
    }

    /// The UDP socket of entry `u`.
    fn udp_socket(&mut self, u: u16) -> Result<&mut udp::Socket<'a>, NetError> {
        let handle = self
            .udp
            .get(usize::from(u))
            .and_then(|e| e.handle)
            .ok_or(NetError::BadSocket)?;
        Ok(self.sockets.get_mut::<udp::Socket>(handle))
    }

    /// Takes a pending failure of TCP entry `t`, marking it reported.
    fn take_failure(&mut self, t: u16) -> Option<NetError> {
        let entry = self.tcp.get_mut(usize::from(t))?;
        let failure = entry.failure.take()?;
        entry.failed = true;
        Some(failure)
    }

    /// Checks that `ip` is unspecified, the loopback address or the interface's address.
    fn check_local_ip(&self, ip: Ipv4Addr) -> Result<(), NetError> {
        if ip.is_unspecified()
            || ip == LOOPBACK_ADDR
            || self.config.is_some_and(|c| c.address == ip)
        {
            Ok(())
        } else {
            Err(NetError::AddrNotAvailable)
        }
    }

    /// Checks that a socket bound to `local` may send to `remote`: loopback destinations always
    /// (the loopback path needs no address), others when routable; from a loopback address only
    /// to the stack itself (`Invalid`, as Linux's EINVAL: such a frame must not reach the wire).
    fn check_route(&self, local: Option<SocketAddrV4>, remote: Ipv4Addr) -> Result<(), NetError> {
        let own = self.config.map(|c| c.address);
        let to_self = remote.is_loopback() || Some(remote) == own;
        if local.is_some_and(|l| l.ip().is_loopback()) && !to_self {
            return Err(NetError::Invalid);
        }
        if to_self || routable(remote, self.config.as_ref()) {
            Ok(())
        } else {
            Err(NetError::HostUnreachable)
        }
    }

    /// Chooses the local port for a bind: `want`, or an ephemeral one for port 0; checks the bind
    /// rules against the other holders (all but entry `except`).
    fn claim_port(
        &mut self,
        transport: Transport,
        want: SocketAddrV4,
        reuse: bool,
        except: usize,
    ) -> Result<SocketAddrV4, NetError> {
        self.check_local_ip(*want.ip())?;
        if want.port() == 0 {
            let draw = self.secrets.next_u16();
            let port = ephemeral_port(transport, &self.usage(), draw).ok_or(NetError::AddrInUse)?;
            return Ok(SocketAddrV4::new(*want.ip(), port));
        }
        check_bind(
            transport,
            want,
            reuse,
            self.usage().holders(transport, Some(except)),
        )?;
        Ok(want)
    }

    /// Binds UDP entry `u` to `local` (already checked). A closed socket still flushing on the
    /// same port gives way, so that it cannot take the new socket's datagrams.
    fn bind_udp(&mut self, u: u16, local: SocketAddrV4) -> Result<(), NetError> {
        for other in 0..self.udp.len() {
            let entry = self.udp[other];
            if entry.draining.is_some() && entry.local.is_some_and(|l| l.port() == local.port()) {
                self.end_udp_drain(other);
            }
        }
        self.udp_socket(u)?
            .bind(listen_endpoint(local))
            .map_err(|_| NetError::Invalid)?;
        if let Some(entry) = self.udp.get_mut(usize::from(u)) {
            entry.local = Some(local);
        }
        Ok(())
    }

    /// Binds UDP entry `u` to an ephemeral port if it is not bound yet.
    fn autobind_udp(&mut self, u: u16) -> Result<(), NetError> {
        let entry = self.udp.get(usize::from(u)).ok_or(NetError::BadSocket)?;
        if entry.local.is_some() {
            return Ok(());
        }
        let any = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0);
        let local = self.claim_port(Transport::Udp, any, entry.reuse, usize::from(u))?;
        self.bind_udp(u, local)
    }

    /// Gives TCP entry `t` a local port if it has none.
    fn autobind_tcp(&mut self, t: u16) -> Result<SocketAddrV4, NetError> {
        let entry = self.tcp.get(usize::from(t)).ok_or(NetError::BadSocket)?;
        if let Some(local) = entry.local {
            return Ok(local);
        }
        let any = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0);
        let local = self.claim_port(Transport::Tcp, any, entry.options.reuse, usize::from(t))?;
        if let Some(entry) = self.tcp.get_mut(usize::from(t)) {
            entry.local = Some(local);
        }
        Ok(local)
    }
    /// `recv`/`peek` of a TCP socket (UDP: the datagram without its source).
    fn read(&mut self, id: SocketId, buf: &mut [u8], take: Take) -> Result<usize, NetError> {
        let t = match self.slot(id)? {
            IdSlot::Tcp(t) => t,
            IdSlot::Udp(_) => return self.read_from(id, buf, take).map(|(n, _)| n),
            IdSlot::Listener(_) | IdSlot::Free => return Err(NetError::NotConnected),
        };
        let started = self.tcp.get(usize::from(t)).is_some_and(|e| e.started);
        let socket = self.tcp_socket(t)?;
        // smoltcp keeps the receive buffer when a RST closes the socket, so what arrived before
        // a reset is read first (as lwIP keeps its pbufs), and the reset reported after.
        if socket.can_recv() {
            return match take {
                Take::Dequeue => socket.recv_slice(buf),
                Take::Peek => socket.peek_slice(buf),
            }
            .map_err(|_| NetError::NotConnected);
        }
        let state = socket.state();
        let may_recv = socket.may_recv();
        // A peek reports a pending failure without taking it.
        let failure = match take {
            Take::Dequeue => self.take_failure(t),
            Take::Peek => self.tcp.get(usize::from(t)).and_then(|e| e.failure),
        };
        if let Some(failure) = failure {
            return Err(failure);
        }
        match state {
            _ if !started => Err(NetError::NotConnected),
            tcp::State::SynSent | tcp::State::SynReceived => Err(NetError::WouldBlock),
            _ if may_recv => Err(NetError::WouldBlock),
            _ => Ok(0),
        }
    }

    /// `recv_from`/`peek_from`: one datagram and its source (TCP: the bytes and the peer).
    fn read_from(
        &mut self,
        id: SocketId,
        buf: &mut [u8],
        take: Take,
    ) -> Result<(usize, SocketAddrV4), NetError> {
        let unknown = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0);
        let u = match self.slot(id)? {
            IdSlot::Udp(u) => u,
            IdSlot::Tcp(t) => {
                let peer = self.tcp.get(usize::from(t)).and_then(|e| e.remote);
                let n = self.read(id, buf, take)?;
                return Ok((n, peer.unwrap_or(unknown)));
            }
            IdSlot::Listener(_) | IdSlot::Free => return Err(NetError::NotConnected),
        };
        let peer = self.udp.get(usize::from(u)).and_then(|e| e.peer);
        let socket = self.udp_socket(u)?;
        // A connected socket takes datagrams from its peer only; others are discarded.
        while let Ok((payload, meta)) = socket.peek() {
            let from = v4(meta.endpoint).unwrap_or(unknown);
            if peer.is_none_or(|p| p == from) {
                let n = payload.len().min(buf.len());
                buf[..n].copy_from_slice(&payload[..n]);
                if take == Take::Dequeue {
                    let _ = socket.recv();
                }
                return Ok((n, from));
            }
            let _ = socket.recv();
        }
        Err(NetError::WouldBlock)
    }
}

/// Whether a read takes the bytes it returns or leaves them queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Take {
    /// Remove them (`recv`).
    Dequeue,
    /// Leave them (`MSG_PEEK`).
    Peek,
}

impl<D: Device> SocketStack for Stack<'_, D> {
    fn poll(&mut self, now: Micros) -> PollOutcome {
        if let Some(watch) = self.watch {
            watch(self, now);
        }
        self.poll_once(now)
    }

    fn open(&mut self, transport: Transport) -> Result<SocketId, NetError> {
        let id = self.free_id()?;
        let socket_id = id_of(id)?;
        let slot = match transport {
            Transport::Tcp => {
                let t = self.take_free_tcp().ok_or(NetError::NoMemory)?;
                IdSlot::Tcp(u16::try_from(t).map_err(|_| NetError::NoMemory)?)
            }
            Transport::Udp => {
                let free = self
                    .udp
                    .iter()
                    .position(|e| !e.in_use && e.draining.is_none());
                let u = match free {
                    Some(u) => u,
                    None => {
                        // The pool is out: a closed socket still flushing gives way.
                        let u = self
                            .udp
                            .iter()
                            .position(|e| e.draining.is_some())
                            .ok_or(NetError::NoMemory)?;
                        self.end_udp_drain(u);
                        u
                    }
                };
                let entry = &mut self.udp[u];
                *entry = UdpEntry {
                    in_use: true,
                    handle: entry.handle,
                    ..UdpEntry::EMPTY
                };
                IdSlot::Udp(u16::try_from(u).map_err(|_| NetError::NoMemory)?)
            }
        };
        self.ids[id] = slot;
        Ok(socket_id)
    }

    fn close(&mut self, id: SocketId) {
        let Ok(slot) = self.slot(id) else { return };
        let now = self.now;
        match slot {
            IdSlot::Tcp(t) => {
                let Some(entry) = self.tcp.get(usize::from(t)).copied() else {
                    return;
                };
                let Ok(socket) = self.tcp_socket(t) else {
                    return;
                };
                let usage = match socket.state() {
                    tcp::State::Closed if !entry.started => TcpUse::Free,
                    tcp::State::Closed | tcp::State::Listen | tcp::State::SynSent => {
                        socket.abort();
                        TcpUse::Lingering { deadline: now }
                    }
                    _ => {
                        socket.close();
                        TcpUse::Lingering {
                            deadline: now.saturating_add(LINGER_LIMIT),
                        }
                    }
                };
                self.tcp[usize::from(t)] = if usage == TcpUse::Free {
                    entry.reused(TcpUse::Free)
                } else {
                    crate::tables::TcpEntry { usage, ..entry }
                };
            }
            IdSlot::Listener(_) => {
                for i in 0..self.tcp.len() {
                    let entry = self.tcp[i];
                    let TcpUse::Pooled { listener, .. } = entry.usage else {
                        continue;
                    };
                    if listener != id.0 {
                        continue;
                    }
                    if let Some(handle) = entry.handle {
                        // Pending connections are reset, as Linux does on closing a listener.
                        self.sockets.get_mut::<tcp::Socket>(handle).abort();
                    }
                    self.tcp[i].usage = TcpUse::Lingering { deadline: now };
                }
            }
            IdSlot::Udp(u) => {
                let queued = self.udp_socket(u).map_or(0, |s| s.send_queue());
                match self.udp.get_mut(usize::from(u)) {
                    // Datagrams already accepted by send_to still go out, within a limit.
                    Some(entry) if queued > 0 => {
                        entry.in_use = false;
                        entry.draining = Some(now.saturating_add(UDP_FLUSH_LIMIT));
                    }
                    Some(_) => self.end_udp_drain(usize::from(u)),
                    None => {}
                }
            }
            IdSlot::Free => {}
        }
        self.ids[index(id)] = IdSlot::Free;
        self.rearm_listeners();
    }

    fn bind(&mut self, id: SocketId, local: SocketAddrV4) -> Result<(), NetError> {
        match self.slot(id)? {
            IdSlot::Tcp(t) => {
                let entry = *self.tcp.get(usize::from(t)).ok_or(NetError::BadSocket)?;
                if entry.local.is_some() || entry.started {
                    return Err(NetError::Invalid);
                }
                let local =
                    self.claim_port(Transport::Tcp, local, entry.options.reuse, usize::from(t))?;
                self.tcp[usize::from(t)].local = Some(local);
                Ok(())
            }
            IdSlot::Udp(u) => {
                let entry = *self.udp.get(usize::from(u)).ok_or(NetError::BadSocket)?;
                if entry.local.is_some() {
                    return Err(NetError::Invalid);
                }
                let local = self.claim_port(Transport::Udp, local, entry.reuse, usize::from(u))?;
                self.bind_udp(u, local)
            }
            IdSlot::Listener(_) | IdSlot::Free => Err(NetError::Invalid),
        }
    }

    fn local_addr(&self, id: SocketId) -> Result<Option<SocketAddrV4>, NetError> {
        Ok(match self.slot(id)? {
            IdSlot::Tcp(t) => self.tcp.get(usize::from(t)).and_then(|e| e.local),
            IdSlot::Listener(l) => Some(l.local),
            IdSlot::Udp(u) => self.udp.get(usize::from(u)).and_then(|e| e.local),
            IdSlot::Free => None,
        })
    }

    fn listen(&mut self, id: SocketId, backlog: usize) -> Result<(), NetError> {
        let backlog = u16::try_from(backlog.clamp(1, self.tcp.len().max(1))).unwrap_or(u16::MAX);
        match self.slot(id)? {
            IdSlot::Listener(mut listener) => {
                listener.backlog = backlog;
                self.ids[index(id)] = IdSlot::Listener(listener);
                self.rearm_listeners();
                Ok(())
            }
            IdSlot::Tcp(t) => {
                let entry = *self.tcp.get(usize::from(t)).ok_or(NetError::BadSocket)?;
                if entry.started {
                    return Err(NetError::Invalid);
                }
                let local = self.autobind_tcp(t)?;
                let taken = self.ids.iter().any(|slot| {
                    matches!(slot, IdSlot::Listener(l)
                        if l.local.port() == local.port()
                            && crate::ports::overlaps(*l.local.ip(), *local.ip()))
                });
                if taken {
                    return Err(NetError::AddrInUse);
                }
                let listener = Listener {
                    local,
                    backlog,
                    options: entry.options,
                };
                self.arm_member(usize::from(t), id.0, &listener)?;
                self.ids[index(id)] = IdSlot::Listener(listener);
                self.rearm_listeners();
                Ok(())
            }
            IdSlot::Udp(_) | IdSlot::Free => Err(NetError::Invalid),
        }
    }

    fn accept(&mut self, id: SocketId) -> Result<(SocketId, SocketAddrV4), NetError> {
        let IdSlot::Listener(_) = self.slot(id)? else {
            return Err(NetError::Invalid);
        };
        let first = self
            .tcp
            .iter()
            .enumerate()
            .filter_map(|(i, e)| match e.usage {
                TcpUse::Pooled {
                    listener,
                    arrival: Some(n),
                } if listener == id.0 => Some((n, i)),
                _ => None,
            })
            .min_by_key(|(n, _)| *n);
        let Some((_, t)) = first else {
            return Err(NetError::WouldBlock);
        };
        let new = self.free_id()?;
        let new_id = id_of(new)?;
        let entry = &mut self.tcp[t];
        entry.usage = TcpUse::Owned;
        let peer = entry
            .remote
            .unwrap_or(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0));
        self.ids[new] = IdSlot::Tcp(u16::try_from(t).map_err(|_| NetError::NoMemory)?);
        self.rearm_listeners();
        Ok((new_id, peer))
    }

    fn connect(&mut self, id: SocketId, remote: SocketAddrV4) -> Result<(), NetError> {
        if remote.ip().is_unspecified() || remote.port() == 0 {
            return Err(NetError::Invalid);
        }
        match self.slot(id)? {
            IdSlot::Tcp(t) => {
                let entry = *self.tcp.get(usize::from(t)).ok_or(NetError::BadSocket)?;
                match self.tcp_socket(t)?.state() {
                    tcp::State::Closed => {}
                    tcp::State::SynSent | tcp::State::SynReceived => {
                        return Err(NetError::InProgress)
                    }
                    _ => return Err(NetError::AlreadyConnected),
                }
                self.check_route(entry.local, *remote.ip())?;
                let local = self.autobind_tcp(t)?;
                // The source address is fixed here (as smoltcp would pick it) because the
                // sequence number depends on it.
                let source = match *local.ip() {
                    ip if ip.is_unspecified() => self
                        .iface
                        .get_source_address_ipv4(remote.ip())
                        .ok_or(NetError::HostUnreachable)?,
                    ip => ip,
                };
                let local = SocketAddrV4::new(source, local.port());
                let local_endpoint = IpListenEndpoint {
                    addr: Some(IpAddress::Ipv4(source)),
                    port: local.port(),
                };
                let remote_endpoint = IpEndpoint::new(IpAddress::Ipv4(*remote.ip()), remote.port());
                let isn = self.secrets.isn(local, remote, self.now);
                let seed = seed_drawing(isn, self.secrets.next_u64());
                let mut drawer = self.drawing_interface(seed);
                let handle = entry.handle.ok_or(NetError::BadSocket)?;
                let socket = self.sockets.get_mut::<tcp::Socket>(handle);
                configure(socket, entry.options);
                socket
                    .connect(drawer.context(), remote_endpoint, local_endpoint)
                    .map_err(|e| match e {
                        tcp::ConnectError::InvalidState => NetError::AlreadyConnected,
                        tcp::ConnectError::Unaddressable => NetError::HostUnreachable,
                    })?;
                let state = socket.state();
                let entry = &mut self.tcp[usize::from(t)];
                entry.started = true;
                entry.remote = Some(remote);
                entry.failure = None;
                entry.failed = false;
                entry.last_state = state;
                Ok(())
            }
            IdSlot::Udp(u) => {
                self.autobind_udp(u)?;
                if let Some(entry) = self.udp.get_mut(usize::from(u)) {
                    entry.peer = Some(remote);
                }
                Ok(())
            }
            IdSlot::Listener(_) | IdSlot::Free => Err(NetError::Invalid),
        }
    }

    fn peer_addr(&self, id: SocketId) -> Result<Option<SocketAddrV4>, NetError> {
        Ok(match self.slot(id)? {
            IdSlot::Tcp(t) => self
                .tcp
                .get(usize::from(t))
                .filter(|e| e.started)
                .and_then(|e| e.remote),
            IdSlot::Udp(u) => self.udp.get(usize::from(u)).and_then(|e| e.peer),
            IdSlot::Listener(_) | IdSlot::Free => None,
        })
    }

    fn tcp_phase(&mut self, id: SocketId) -> Result<TcpPhase, NetError> {
        let t = match self.slot(id)? {
            IdSlot::Tcp(t) => t,
            IdSlot::Listener(_) => return Ok(TcpPhase::Listening),
            IdSlot::Udp(_) | IdSlot::Free => return Err(NetError::Invalid),
        };
        if let Some(failure) = self.take_failure(t) {
            return Ok(TcpPhase::Failed(failure));
        }
        let entry = *self.tcp.get(usize::from(t)).ok_or(NetError::BadSocket)?;
        let state = self.tcp_socket(t)?.state();
        Ok(match state {
            _ if entry.failed => TcpPhase::Closed,
            tcp::State::Closed if !entry.started => TcpPhase::Idle,
            tcp::State::Closed => TcpPhase::Closed,
            tcp::State::Listen => TcpPhase::Listening,
            tcp::State::SynSent | tcp::State::SynReceived => TcpPhase::Connecting,
            tcp::State::Established => TcpPhase::Connected,
            tcp::State::CloseWait => TcpPhase::PeerClosed,
            tcp::State::FinWait1
            | tcp::State::FinWait2
            | tcp::State::Closing
            | tcp::State::LastAck
            | tcp::State::TimeWait => TcpPhase::Closing,
        })
    }

    fn send(&mut self, id: SocketId, data: &[u8]) -> Result<usize, NetError> {
        let t = match self.slot(id)? {
            IdSlot::Tcp(t) => t,
            IdSlot::Udp(_) => return self.send_to(id, data, None),
            IdSlot::Listener(_) | IdSlot::Free => return Err(NetError::NotConnected),
        };
        if let Some(failure) = self.take_failure(t) {
            return Err(failure);
        }
        let started = self.tcp.get(usize::from(t)).is_some_and(|e| e.started);
        let socket = self.tcp_socket(t)?;
        match socket.state() {
            tcp::State::SynSent | tcp::State::SynReceived => return Err(NetError::WouldBlock),
            _ if !started || !socket.may_send() => return Err(NetError::NotConnected),
            _ => {}
        }
        if data.is_empty() {
            return Ok(0);
        }
        match socket.send_slice(data) {
            Ok(0) => Err(NetError::WouldBlock),
            Ok(n) => Ok(n),
            Err(tcp::SendError::InvalidState) => Err(NetError::NotConnected),
        }
    }

    fn recv(&mut self, id: SocketId, buf: &mut [u8]) -> Result<usize, NetError> {
        self.read(id, buf, Take::Dequeue)
    }

    fn peek(&mut self, id: SocketId, buf: &mut [u8]) -> Result<usize, NetError> {
        self.read(id, buf, Take::Peek)
    }

    fn send_to(
        &mut self,
        id: SocketId,
        data: &[u8],
        to: Option<SocketAddrV4>,
    ) -> Result<usize, NetError> {
        let u = match self.slot(id)? {
            IdSlot::Udp(u) => u,
            IdSlot::Tcp(_) => return self.send(id, data),
            IdSlot::Listener(_) | IdSlot::Free => return Err(NetError::NotConnected),
        };
        let entry = *self.udp.get(usize::from(u)).ok_or(NetError::BadSocket)?;
        let dest = to.or(entry.peer).ok_or(NetError::NotConnected)?;
        if dest.ip().is_unspecified() || dest.port() == 0 {
            return Err(NetError::Invalid);
        }
        let broadcast = is_broadcast(*dest.ip(), self.config.as_ref());
        if broadcast && !entry.broadcast {
            return Err(NetError::NotPermitted);
        }
        self.check_route(entry.local, *dest.ip())?;
        self.autobind_udp(u)?;
        let socket = self.udp_socket(u)?;
        if data.len() > socket.payload_send_capacity() {
            return Err(NetError::MessageTooLong);
        }
        let endpoint = IpEndpoint::new(IpAddress::Ipv4(*dest.ip()), dest.port());
        match socket.send_slice(data, endpoint) {
            Ok(()) => Ok(data.len()),
            Err(udp::SendError::BufferFull) => Err(NetError::WouldBlock),
            Err(udp::SendError::Unaddressable) => Err(NetError::Invalid),
        }
    }

    fn recv_from(
        &mut self,
        id: SocketId,
        buf: &mut [u8],
    ) -> Result<(usize, SocketAddrV4), NetError> {
        self.read_from(id, buf, Take::Dequeue)
    }

    fn peek_from(
        &mut self,
        id: SocketId,
        buf: &mut [u8],
    ) -> Result<(usize, SocketAddrV4), NetError> {
        self.read_from(id, buf, Take::Peek)
    }

    fn readiness(&self, id: SocketId) -> Result<Readiness, NetError> {
        match self.slot(id)? {
            IdSlot::Tcp(t) => {
                let entry = *self.tcp.get(usize::from(t)).ok_or(NetError::BadSocket)?;
                let handle = entry.handle.ok_or(NetError::BadSocket)?;
                let socket = self.sockets.get::<tcp::Socket>(handle);
                let state = socket.state();
                let over = entry.started && state == tcp::State::Closed;
                let eof = entry.started && !socket.may_recv() && state != tcp::State::SynSent;
                Ok(Readiness {
                    readable: socket.can_recv() || eof || entry.failure.is_some(),
                    writable: socket.can_send() || over,
                    hangup: over || !entry.started,
                    error: entry.failure.is_some(),
                })
            }
            IdSlot::Listener(_) => Ok(Readiness {
                readable: self.tcp.iter().any(|e| {
                    matches!(e.usage, TcpUse::Pooled { listener, arrival: Some(_) } if listener == id.0)
                }),
                ..Readiness::default()
            }),
            IdSlot::Udp(u) => {
                let entry = self.udp.get(usize::from(u)).ok_or(NetError::BadSocket)?;
                let handle = entry.handle.ok_or(NetError::BadSocket)?;
                let socket = self.sockets.get::<udp::Socket>(handle);
                Ok(Readiness {
                    readable: socket.can_recv(),
                    writable: socket.can_send(),
                    ..Readiness::default()
                })
            }
            IdSlot::Free => Err(NetError::BadSocket),
        }
    }

    fn set_option(&mut self, id: SocketId, option: SocketOption) -> Result<(), NetError> {
        match self.slot(id)? {
            IdSlot::Tcp(t) => {
                let entry = self
                    .tcp
                    .get_mut(usize::from(t))
                    .ok_or(NetError::BadSocket)?;
                match option {
                    SocketOption::ReuseAddr(on) => entry.options.reuse = on,
                    SocketOption::NoDelay(on) => entry.options.nodelay = on,
                    SocketOption::KeepAlive(on) => entry.options.keepalive = on,
                    // Meaningless on TCP; accepted like Linux does.
                    SocketOption::Broadcast(_) => {}
                }
                let options = entry.options;
                configure(self.tcp_socket(t)?, options);
                Ok(())
            }
            IdSlot::Listener(mut listener) => {
                match option {
                    SocketOption::ReuseAddr(on) => listener.options.reuse = on,
                    SocketOption::NoDelay(on) => listener.options.nodelay = on,
                    SocketOption::KeepAlive(on) => listener.options.keepalive = on,
                    SocketOption::Broadcast(_) => {}
                }
                self.ids[index(id)] = IdSlot::Listener(listener);
                for i in 0..self.tcp.len() {
                    let entry = self.tcp[i];
                    if matches!(entry.usage, TcpUse::Pooled { listener, .. } if listener == id.0) {
                        self.tcp[i].options = listener.options;
                        if let Some(handle) = entry.handle {
                            configure(
                                self.sockets.get_mut::<tcp::Socket>(handle),
                                listener.options,
                            );
                        }
                    }
                }
                Ok(())
            }
            IdSlot::Udp(u) => {
                let entry = self
                    .udp
                    .get_mut(usize::from(u))
                    .ok_or(NetError::BadSocket)?;
                match option {
                    SocketOption::ReuseAddr(on) => entry.reuse = on,
                    SocketOption::Broadcast(on) => entry.broadcast = on,
                    SocketOption::NoDelay(_) | SocketOption::KeepAlive(_) => {
                        return Err(NetError::Invalid)
                    }
                }
                Ok(())
            }
            IdSlot::Free => Err(NetError::BadSocket),
        }
    }

    fn resolve_start(&mut self, name: &str) -> Result<QueryId, NetError> {
        let slot = self
            .dns
            .iter()
            .position(|e| matches!(e, DnsEntry::Free))
            .ok_or(NetError::NoMemory)?;
        let query = QueryId(u16::try_from(slot).map_err(|_| NetError::NoMemory)?);
        // lwIP with a loopback interface answers "localhost" itself (`dns_gethostbyname`).
        let numeric = match name {
            "localhost" => Ok(LOOPBACK_ADDR),
            _ => name.parse::<Ipv4Addr>(),
        };
        if let Ok(addr) = numeric {
            self.dns[slot] = DnsEntry::Numeric(addr);
            return Ok(query);
        }
        if self.config.is_none_or(|c| c.dns.is_unspecified()) {
            return Err(NetError::HostUnreachable);
        }
        // The query id and source port are drawn from a fresh secret seed.
        let seed = self.secrets.next_u64();
        let mut drawer = self.drawing_interface(seed);
        let socket = self.sockets.get_mut::<dns::Socket>(self.dns_handle);
        let handle = socket
            .start_query(drawer.context(), name, DnsQueryType::A)
            .map_err(|e| match e {
                StartQueryError::NoFreeSlot => NetError::NoMemory,
                StartQueryError::InvalidName | StartQueryError::NameTooLong => NetError::Invalid,
            })?;
        self.dns[slot] = DnsEntry::Pending {
            handle,
            started: self.now,
        };
        Ok(query)
    }

    fn resolve_poll(&mut self, query: QueryId) -> Result<Ipv4Addr, NetError> {
        let slot = usize::from(query.0);
        let entry = *self.dns.get(slot).ok_or(NetError::Invalid)?;
        let result = match entry {
            DnsEntry::Free => return Err(NetError::Invalid),
            DnsEntry::Numeric(addr) => Ok(addr),
            DnsEntry::Pending { handle, started } => {
                let socket = self.sockets.get_mut::<dns::Socket>(self.dns_handle);
                match socket.get_query_result(handle) {
                    Err(GetQueryResultError::Pending) => return Err(NetError::WouldBlock),
                    Err(GetQueryResultError::Failed) => {
                        if self.now.saturating_sub(started) >= DNS_SERVER_TIMEOUT {
                            Err(NetError::TimedOut)
                        } else {
                            Err(NetError::NameNotFound)
                        }
                    }
                    Ok(addrs) => addrs
                        .iter()
                        .find_map(|a| {
                            #[allow(unreachable_patterns)]
                            match a {
                                IpAddress::Ipv4(v4) => Some(*v4),
                                _ => None,
                            }
                        })
                        .ok_or(NetError::NameNotFound),
                }
            }
        };
        self.dns[slot] = DnsEntry::Free;
        result
    }

    fn ipv4_config(&self) -> Option<Ipv4Config> {
        self.config
    }
}
