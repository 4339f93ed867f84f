//! The TCP listen backlog: a pool of smoltcp sockets listening on one port, and the rule for
//! SYNs that arrive while the pool is full.
//!
//! smoltcp has no accept queue: a socket in LISTEN turns into the connection itself. A listener
//! with backlog `n` therefore owns up to `n` sockets (its *members*): the ones that left LISTEN
//! are pending connections in order of arrival, and one more is armed in LISTEN as soon as none
//! is listening and fewer than `n` are pending. When `n` connections are pending (or no socket is
//! free), a SYN for the port finds no socket in LISTEN and smoltcp would answer it with RST,
//! which the client reports as "connection refused". Like Linux with a full accept queue, the
//! stack instead drops such a SYN before smoltcp sees it ([`crate::gate`]); the client
//! retransmits it and gets in once `accept` made room.

use core::net::SocketAddrV4;

/// What the gate needs to know about the listener pool serving a destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolState {
    /// A member is in LISTEN and can take a new connection.
    pub listening: bool,
    /// A member already serves this source (a retransmitted SYN of a connection in progress).
    pub serves_source: bool,
}

/// The listener pools, as the gate sees them.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
pub trait ListenPools {
    /// The pool listening on `dst`, with respect to a SYN from `src`; `None` when no listener.
    fn pool_state(&self, dst: SocketAddrV4, src: SocketAddrV4) -> Option<PoolState>;
}

/// What becomes of a connection-opening SYN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SynFate {
    /// No listener: smoltcp answers RST (connection refused).
    Refused,
    /// A member of the listener's pool takes it (or already serves its source).
    Admitted,
    /// The pool is full: the SYN is dropped silently so that the client retries.
    Dropped,
}

/// What becomes of a connection-opening SYN from `src` to `dst`.
///
/// Without a listener it reaches smoltcp, which refuses it. With a listener it is admitted only
/// if a member can take it; otherwise it is dropped.
pub fn admit_syn(pools: &impl ListenPools, dst: SocketAddrV4, src: SocketAddrV4) -> SynFate {
    match pools.pool_state(dst, src) {
        None => SynFate::Refused,
        Some(pool) if pool.listening || pool.serves_source => SynFate::Admitted,
        Some(_) => SynFate::Dropped,
    }
}

/// Whether a listener must arm one more member: none is listening and the pool is below its
/// backlog.
pub fn needs_arming(listening: usize, members: usize, backlog: usize) -> bool {
    listening == 0 && members < backlog
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    fn dst() -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 80)
    }
    fn src() -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 40000)
    }

    fn pools(state: Option<PoolState>) -> MockListenPools {
        let mut pools = MockListenPools::new();
        pools
            .expect_pool_state()
            .withf(|d, s| *d == dst() && *s == src())
            .times(1)
            .return_const(state);
        pools
    }

    #[test]
    fn syn_without_listener_passes_so_smoltcp_refuses_it() {
        assert_eq!(admit_syn(&pools(None), dst(), src()), SynFate::Refused);
    }

    #[test]
    fn syn_to_a_full_pool_is_dropped() {
        let full = PoolState {
            listening: false,
            serves_source: false,
        };
        assert_eq!(
            admit_syn(&pools(Some(full)), dst(), src()),
            SynFate::Dropped
        );
    }

    #[test]
    fn syn_to_a_listening_member_or_retransmitted_passes() {
        let listening = PoolState {
            listening: true,
            serves_source: false,
        };
        assert_eq!(
            admit_syn(&pools(Some(listening)), dst(), src()),
            SynFate::Admitted
        );
        let retransmit = PoolState {
            listening: false,
            serves_source: true,
        };
        assert_eq!(
            admit_syn(&pools(Some(retransmit)), dst(), src()),
            SynFate::Admitted
        );
    }

    #[test]
    fn arming_stops_at_the_backlog() {
        assert!(needs_arming(0, 0, 1));
        assert!(needs_arming(0, 7, 8));
        assert!(!needs_arming(0, 8, 8));
        assert!(!needs_arming(1, 3, 8));
    }
}
