//! `socket.getaddrinfo`, as modlwip answers it.

use core::net::SocketAddrV4;

use netstack::api::{NetError, SocketStack};

use crate::addr::parse_ipv4;
use crate::clock::Clock;
use crate::consts::{AF_INET, SOCK_STREAM};
use crate::errno::{Errno, SocketError};
use crate::sockets::Sockets;
use crate::timeout::Timeout;
use crate::wait::{Expired, Step};

/// lwIP's `DNS_MAX_NAME_LENGTH`: names this long or longer are refused before any query.
const MAX_NAME_LEN: usize = 256;

/// The optional constraints of `getaddrinfo(host, port, af=0, type=0, proto=0, flags=0)`.
///
/// modlwip does not filter by them: it warns (`RuntimeWarning: unsupported getaddrinfo
/// constraints`) when they ask for anything but IPv4 TCP, and answers the same either way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Hints {
    /// `af`.
    pub family: i64,
    /// `type`.
    pub socktype: i64,
    /// `proto`.
    pub proto: i64,
    /// `flags`.
    pub flags: i64,
}

impl Hints {
    /// Whether modlwip accepts these constraints without its `RuntimeWarning`.
    pub fn is_supported(&self) -> bool {
        (self.family == 0 || self.family == i64::from(AF_INET))
            && (self.socktype == 0 || self.socktype == i64::from(SOCK_STREAM))
            && self.proto == 0
            && self.flags == 0
    }
}

/// One entry of `getaddrinfo`'s list: `(family, type, proto, canonname, (ip, port))`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddrInfo {
    /// Always `AF_INET`.
    pub family: i32,
    /// Always `SOCK_STREAM`, whatever was asked (as modlwip).
    pub socktype: i32,
    /// Always 0.
    pub proto: i32,
    /// Always `""`.
    pub canonname: &'static str,
    /// The address and the given port; the bindings format it as `('a.b.c.d', port)`.
    pub addr: SocketAddrV4,
}

impl<S: SocketStack, C: Clock, const N: usize> Sockets<S, C, N> {
    /// `socket.getaddrinfo(host, port, ...)`: a one-entry list in MicroPython (the bindings
    /// build the list and raise the `RuntimeWarning` when `!hints.is_supported()`).
    ///
    /// A numeric `host` (anything lwIP's `ipaddr_aton` reads) needs no DNS. A name is resolved
    /// by the stack, waiting at most the DNS timeout ([`Sockets::set_dns_timeout`]). Failures
    /// raise modlwip's raw lwIP numbers: `OSError(-2)` when the lookup fails or times out,
    /// `-16` for an empty or over-long name, `-1` when no query slot is free.
    pub fn getaddrinfo(
        &mut self,
        host: &str,
        port: u16,
        hints: &Hints,
    ) -> Result<AddrInfo, SocketError> {
        if !hints.is_supported() {
            log::warn!("getaddrinfo: unsupported constraints {hints:?}");
        }
        let ip = if host.is_empty() || host.len() >= MAX_NAME_LEN {
            return Err(Errno::DnsBadName.into());
        } else if let Some(ip) = parse_ipv4(host) {
            ip
        } else {
            self.resolve(host)?
        };
        Ok(AddrInfo {
            family: AF_INET,
            socktype: SOCK_STREAM,
            proto: 0,
            canonname: "",
            addr: SocketAddrV4::new(ip, port),
        })
    }

    fn resolve(&mut self, name: &str) -> Result<core::net::Ipv4Addr, SocketError> {
        let query = self.stack.resolve_start(name).map_err(|e| match e {
            NetError::Invalid => Errno::DnsBadName,
            NetError::NoMemory => Errno::DnsNoMemory,
            _ => Errno::DnsFailed,
        })?;
        let outcome = self.wait_for(Timeout::After(self.dns_timeout), |s| {
            match s.stack.resolve_poll(query) {
                Err(NetError::WouldBlock) => Step::Pending,
                Ok(ip) => Step::Done(Ok(ip)),
                Err(e) => {
                    log::debug!("getaddrinfo {name:?}: {e:?}");
                    Step::Done(Err(Errno::DnsFailed.into()))
                }
            }
        });
        outcome.unwrap_or_else(|e| {
            log::debug!("getaddrinfo {name:?}: {e:?}");
            self.abandon_query(query);
            Err(match e {
                Expired::Interrupted => SocketError::Interrupted,
                Expired::NonBlocking | Expired::Timeout => Errno::DnsFailed.into(),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::{fixture, fixture_with_time, MockSocketStack};
    use core::net::Ipv4Addr;
    use mockall::predicate::eq;
    use netstack::api::QueryId;

    fn info(ip: [u8; 4], port: u16) -> AddrInfo {
        AddrInfo {
            family: 2,
            socktype: 1,
            proto: 0,
            canonname: "",
            addr: SocketAddrV4::new(ip.into(), port),
        }
    }

    #[test]
    fn numeric_hosts_need_no_dns() {
        // No resolve expectations: a query would fail the test.
        let mut t = fixture(MockSocketStack::new());
        assert_eq!(
            t.getaddrinfo("10.100.228.5", 60000, &Hints::default()),
            Ok(info([10, 100, 228, 5], 60000))
        );
        assert_eq!(
            t.getaddrinfo("127.1", 80, &Hints::default()),
            Ok(info([127, 0, 0, 1], 80))
        );
    }

    #[test]
    fn answer_ignores_constraints_but_flags_unsupported_ones() {
        let mut t = fixture(MockSocketStack::new());
        let udp = Hints {
            family: 2,
            socktype: 2,
            proto: 0,
            flags: 0,
        };
        assert!(!udp.is_supported());
        assert!(Hints {
            family: 2,
            socktype: 1,
            ..Hints::default()
        }
        .is_supported());
        assert!(!Hints {
            proto: 17,
            ..Hints::default()
        }
        .is_supported());
        assert!(!Hints {
            family: 10,
            ..Hints::default()
        }
        .is_supported());
        assert_eq!(
            t.getaddrinfo("1.2.3.4", 53, &udp),
            Ok(info([1, 2, 3, 4], 53))
        );
    }

    #[test]
    fn names_resolve_through_the_stack() {
        let mut stack = MockSocketStack::new();
        stack
            .expect_resolve_start()
            .withf(|n| n == "example.com")
            .times(1)
            .returning(|_| Ok(QueryId(4)));
        let mut polls = 0;
        stack
            .expect_resolve_poll()
            .with(eq(QueryId(4)))
            .times(3)
            .returning(move |_| {
                polls += 1;
                if polls < 3 {
                    Err(NetError::WouldBlock)
                } else {
                    Ok(Ipv4Addr::new(93, 184, 216, 34))
                }
            });
        let mut t = fixture(stack);
        assert_eq!(
            t.getaddrinfo("example.com", 443, &Hints::default()),
            Ok(info([93, 184, 216, 34], 443))
        );
    }

    #[test]
    fn dns_failures_are_lwip_codes() {
        let mut stack = MockSocketStack::new();
        stack
            .expect_resolve_start()
            .withf(|n| n == "nx.invalid")
            .returning(|_| Ok(QueryId(1)));
        stack
            .expect_resolve_poll()
            .returning(|_| Err(NetError::NameNotFound));
        stack
            .expect_resolve_start()
            .withf(|n| n == "busy.example")
            .returning(|_| Err(NetError::NoMemory));
        stack
            .expect_resolve_start()
            .withf(|n| n == "bad..name")
            .returning(|_| Err(NetError::Invalid));
        let mut t = fixture(stack);
        let h = Hints::default();
        let code = |r: Result<AddrInfo, SocketError>| match r {
            Err(SocketError::Os(e)) => e.code(),
            other => panic!("{other:?}"),
        };
        assert_eq!(code(t.getaddrinfo("nx.invalid", 1, &h)), -2);
        assert_eq!(code(t.getaddrinfo("busy.example", 1, &h)), -1);
        assert_eq!(code(t.getaddrinfo("bad..name", 1, &h)), -16);
        assert_eq!(code(t.getaddrinfo("", 1, &h)), -16);
        assert_eq!(code(t.getaddrinfo(&"a".repeat(256), 1, &h)), -16);
    }

    #[test]
    fn dns_timeout_gives_up_and_keeps_polling_the_query_until_freed() {
        let mut stack = MockSocketStack::new();
        stack.expect_resolve_start().returning(|_| Ok(QueryId(8)));
        let polls = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let p = polls.clone();
        stack
            .expect_resolve_poll()
            .with(eq(QueryId(8)))
            .returning(move |_| {
                p.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Err(NetError::WouldBlock)
            });
        let (mut t, time) = fixture_with_time(stack);
        t.set_dns_timeout(50_000);
        let r = t.getaddrinfo("slow.example", 80, &Hints::default());
        assert_eq!(r, Err(SocketError::Os(Errno::DnsFailed)));
        assert_eq!(time.now(), 50_000);
        // The abandoned query is polled on later stack polls until the stack frees it.
        let before = polls.load(std::sync::atomic::Ordering::SeqCst);
        t.poll();
        assert_eq!(polls.load(std::sync::atomic::Ordering::SeqCst), before + 1);
        t.stack_mut().checkpoint();
        t.stack_mut().expect_poll().returning(crate::mock::idle);
        t.stack_mut()
            .expect_resolve_poll()
            .times(1)
            .returning(|_| Err(NetError::TimedOut));
        t.poll();
        t.poll();
    }
}
