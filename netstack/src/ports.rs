//! Local port bookkeeping: ephemeral port allocation and the bind rules (`EADDRINUSE` unless
//! `SO_REUSEADDR` allows sharing).

use core::net::{Ipv4Addr, SocketAddrV4};

use crate::api::{NetError, Transport};

/// First port of the ephemeral range (IANA dynamic ports, RFC 6335).
pub const EPHEMERAL_FIRST: u16 = 49152;
/// Last port of the ephemeral range.
pub const EPHEMERAL_LAST: u16 = 65535;

/// Answers whether a local port is taken; implemented by the stack over its socket tables.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
pub trait PortUsage {
    /// Whether any socket of `transport` holds local port `port`.
    fn in_use(&self, transport: Transport, port: u16) -> bool;
}

/// A free ephemeral port for `transport`, or `None` when the whole range is in use: RFC 6056
/// §3.3.1 (simple port randomization), the search starting at a point given by `draw` (fresh,
/// unpredictable bits for each allocation) and going up, wrapping, past ports in use.
pub fn ephemeral_port(transport: Transport, usage: &impl PortUsage, draw: u16) -> Option<u16> {
    let span = EPHEMERAL_LAST - EPHEMERAL_FIRST + 1;
    let start = draw % span;
    (0..span)
        .map(|i| EPHEMERAL_FIRST + (start + i) % span)
        .find(|&port| !usage.in_use(transport, port))
}

/// One existing holder of a local address, as the bind rules see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortHolder {
    /// Its local address (unspecified = all addresses).
    pub local: SocketAddrV4,
    /// Whether it was bound with `SO_REUSEADDR`.
    pub reuse: bool,
}

/// Whether binding `want` (with `reuse` = `SO_REUSEADDR`) conflicts with `holders` of the same
/// transport.
///
/// Like Linux: two bindings conflict when their ports are equal and their addresses overlap
/// (equal, or either unspecified). TCP: `SO_REUSEADDR` on the new socket allows sharing with a
/// socket in TIME-WAIT, connected or listening (listen itself then refuses a second listener).
/// UDP: sharing needs `SO_REUSEADDR` on both.
pub fn check_bind(
    transport: Transport,
    want: SocketAddrV4,
    reuse: bool,
    holders: impl IntoIterator<Item = PortHolder>,
) -> Result<(), NetError> {
    for holder in holders {
        if holder.local.port() != want.port() || !overlaps(*holder.local.ip(), *want.ip()) {
            continue;
        }
        let shared = match transport {
            Transport::Tcp => reuse,
            Transport::Udp => reuse && holder.reuse,
        };
        if !shared {
            return Err(NetError::AddrInUse);
        }
    }
    Ok(())
}

/// Whether two local addresses overlap (equal, or either is the wildcard).
pub fn overlaps(a: Ipv4Addr, b: Ipv4Addr) -> bool {
    a.is_unspecified() || b.is_unspecified() || a == b
}

#[cfg(test)]
mod tests {
    use super::*;
    use mockall::predicate::eq;

    fn at(ip: [u8; 4], port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::from(ip), port)
    }

    #[test]
    fn allocation_skips_ports_in_use() {
        let mut usage = MockPortUsage::new();
        usage
            .expect_in_use()
            .with(eq(Transport::Tcp), eq(EPHEMERAL_FIRST))
            .times(1)
            .return_const(true);
        usage
            .expect_in_use()
            .with(eq(Transport::Tcp), eq(EPHEMERAL_FIRST + 1))
            .times(1)
            .return_const(false);
        assert_eq!(
            ephemeral_port(Transport::Tcp, &usage, 0),
            Some(EPHEMERAL_FIRST + 1)
        );
    }

    #[test]
    fn allocation_wraps_at_the_end_of_the_range() {
        let mut usage = MockPortUsage::new();
        usage
            .expect_in_use()
            .with(eq(Transport::Udp), eq(EPHEMERAL_LAST))
            .times(1)
            .return_const(true);
        usage
            .expect_in_use()
            .with(eq(Transport::Udp), eq(EPHEMERAL_FIRST))
            .times(1)
            .return_const(false);
        // The draw is reduced into the range: span - 1 starts at the last port.
        let last = EPHEMERAL_LAST - EPHEMERAL_FIRST;
        assert_eq!(
            ephemeral_port(
                Transport::Udp,
                &usage,
                last + (EPHEMERAL_LAST - EPHEMERAL_FIRST + 1)
            ),
            Some(EPHEMERAL_FIRST)
        );
    }

    #[test]
    fn allocation_fails_when_every_port_is_taken() {
        let mut usage = MockPortUsage::new();
        usage
            .expect_in_use()
            .times(usize::from(EPHEMERAL_LAST - EPHEMERAL_FIRST) + 1)
            .return_const(true);
        assert_eq!(ephemeral_port(Transport::Tcp, &usage, 7), None);
    }

    #[test]
    fn bind_conflicts_on_overlapping_addresses_only() {
        let holder = PortHolder {
            local: at([10, 0, 0, 2], 80),
            reuse: false,
        };
        assert_eq!(
            check_bind(Transport::Tcp, at([0, 0, 0, 0], 80), false, [holder]),
            Err(NetError::AddrInUse)
        );
        assert_eq!(
            check_bind(Transport::Tcp, at([10, 0, 0, 2], 80), false, [holder]),
            Err(NetError::AddrInUse)
        );
        assert_eq!(
            check_bind(Transport::Tcp, at([10, 0, 0, 3], 80), false, [holder]),
            Ok(())
        );
        assert_eq!(
            check_bind(Transport::Tcp, at([10, 0, 0, 2], 81), false, [holder]),
            Ok(())
        );
    }

    #[test]
    fn reuse_rules_differ_for_tcp_and_udp() {
        let plain = PortHolder {
            local: at([0, 0, 0, 0], 5000),
            reuse: false,
        };
        let shared = PortHolder {
            reuse: true,
            ..plain
        };
        let want = at([0, 0, 0, 0], 5000);
        assert_eq!(check_bind(Transport::Tcp, want, true, [plain]), Ok(()));
        assert_eq!(
            check_bind(Transport::Udp, want, true, [plain]),
            Err(NetError::AddrInUse)
        );
        assert_eq!(check_bind(Transport::Udp, want, true, [shared]), Ok(()));
        assert_eq!(
            check_bind(Transport::Udp, want, false, [shared]),
            Err(NetError::AddrInUse)
        );
    }
}
