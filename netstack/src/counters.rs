//! Counters: how the stack's fixed pools are used right now ([`PoolUsage`]), and what it dropped
//! on purpose since it was built ([`Drops`]). Tests use them to prove that churn leaks nothing
//! and that floods are dropped by count, not silently; firmware can report them.

use smoltcp::socket::{tcp, udp};

use crate::loopback::LinkDrops;
use crate::stack::Stack;
use crate::tables::{DnsEntry, IdSlot, TcpUse};
use smoltcp::phy::Device;

/// A snapshot of the pools. Every count is exact at the time of the call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolUsage {
    /// Socket ids in the table.
    pub ids_total: usize,
    /// Socket ids naming an open socket (TCP, listener or UDP).
    pub ids_in_use: usize,
    /// TCP sockets in the pool.
    pub tcp_total: usize,
    /// TCP sockets free for a new use.
    pub tcp_free: usize,
    /// TCP sockets named by an id (open, connecting, connected).
    pub tcp_owned: usize,
    /// TCP sockets serving a listener (listening, handshaking or waiting for `accept`).
    pub tcp_pooled: usize,
    /// TCP sockets closed by their owner and still finishing their close in the background
    /// (FIN handshake or TIME-WAIT); freed when done or at the linger limit.
    pub tcp_lingering: usize,
    /// Of the lingering ones, those in TIME-WAIT (reclaimed first when the pool runs out).
    pub tcp_time_wait: usize,
    /// Of the lingering ones, those whose data or FIN the peer has not acknowledged yet
    /// (FIN-WAIT-1, CLOSING, LAST-ACK): what is still on its way after a program closed it.
    pub tcp_unacked: usize,
    /// The bytes those connections still have to get acknowledged (their send queues).
    pub tcp_unacked_bytes: usize,
    /// UDP sockets in the pool.
    pub udp_total: usize,
    /// UDP sockets named by an id.
    pub udp_in_use: usize,
    /// UDP sockets closed with datagrams still queued for sending, flushing them.
    pub udp_draining: usize,
    /// DNS queries running or with an unread answer.
    pub dns_in_use: usize,
    /// Bytes held in the buffers of the TCP and UDP sockets in use (both directions, queued or
    /// unread). A free TCP socket may still hold what its last connection left unread; nobody
    /// can read it, and its next use clears it.
    pub bytes_buffered: usize,
}

/// Received frames and queued data the stack dropped on purpose, by reason, since it was built.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Drops {
    /// Connection-opening SYNs dropped because the listener's backlog had no socket listening.
    pub syn_backlog_full: u64,
    /// Half-open connections (SYN-RECEIVED) aborted to make room while SYNs were being dropped.
    pub half_open_evicted: u64,
    /// UDP datagrams for the interface received (not a drop: the total that `udp_no_socket` and
    /// `udp_rx_full` are part of; the DNS and DHCP clients' own are not counted).
    pub udp_received: u64,
    /// UDP datagrams for the interface that no socket was bound to take.
    pub udp_no_socket: u64,
    /// UDP datagrams a bound socket could not take because its receive buffer was full.
    pub udp_rx_full: u64,
    /// Bytes of datagrams still queued when a closed UDP socket's flush limit ran out or its
    /// port was needed again.
    pub udp_close_discarded_bytes: u64,
    /// Frames the link did not deliver: martians and frames with a wrong TCP or UDP checksum
    /// from the NIC, frames from a loopback source to elsewhere, frames for the NIC while its
    /// link is down.
    pub link: LinkDrops,
}

impl<D: Device> Stack<'_, D> {
    /// How the pools are used now.
    pub fn pool_usage(&self) -> PoolUsage {
        let mut usage = PoolUsage {
            ids_total: self.ids.len(),
            ids_in_use: self.ids.iter().filter(|s| **s != IdSlot::Free).count(),
            tcp_total: self.tcp.len(),
            udp_total: self.udp.len(),
            dns_in_use: self
                .dns
                .iter()
                .filter(|e| !matches!(e, DnsEntry::Free))
                .count(),
            ..PoolUsage::default()
        };
        for entry in self.tcp.iter() {
            match entry.usage {
                TcpUse::Free => usage.tcp_free += 1,
                TcpUse::Owned => usage.tcp_owned += 1,
                TcpUse::Pooled { .. } => usage.tcp_pooled += 1,
                TcpUse::Lingering { .. } => usage.tcp_lingering += 1,
            }
            if let Some(handle) = entry.handle {
                let socket = self.sockets.get::<tcp::Socket>(handle);
                if entry.usage != TcpUse::Free {
                    usage.bytes_buffered += socket.send_queue() + socket.recv_queue();
                }
                if matches!(entry.usage, TcpUse::Lingering { .. }) {
                    match socket.state() {
                        tcp::State::TimeWait => usage.tcp_time_wait += 1,
                        tcp::State::FinWait1 | tcp::State::Closing | tcp::State::LastAck => {
                            usage.tcp_unacked += 1;
                            usage.tcp_unacked_bytes += socket.send_queue();
                        }
                        _ => {}
                    }
                }
            }
        }
        for entry in self.udp.iter() {
            usage.udp_in_use += usize::from(entry.in_use);
            usage.udp_draining += usize::from(entry.draining.is_some());
            if let Some(handle) = entry.handle {
                let socket = self.sockets.get::<udp::Socket>(handle);
                usage.bytes_buffered += socket.send_queue() + socket.recv_queue();
            }
        }
        usage
    }

    /// What was dropped on purpose so far.
    pub fn drops(&self) -> Drops {
        Drops {
            link: self.link_drops(),
            ..self.drops
        }
    }
}
