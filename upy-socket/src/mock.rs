//! Test doubles: a mockall mock of the stack, a mockall clock running on virtual time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use core::net::{Ipv4Addr, SocketAddrV4};
use netstack::api::{
    Ipv4Config, Micros, NetError, PollOutcome, QueryId, Readiness, SocketId, SocketOption,
    SocketStack, TcpPhase, Transport,
};

use crate::clock::Clock;
use crate::sockets::Sockets;

mockall::mock! {
    /// The stack below the socket layer.
    pub Stack {}
    impl SocketStack for Stack {
        fn poll(&mut self, now: Micros) -> PollOutcome;
        fn open(&mut self, transport: Transport) -> Result<SocketId, NetError>;
        fn close(&mut self, id: SocketId);
        fn bind(&mut self, id: SocketId, local: SocketAddrV4) -> Result<(), NetError>;
        fn local_addr(&self, id: SocketId) -> Result<Option<SocketAddrV4>, NetError>;
        fn listen(&mut self, id: SocketId, backlog: usize) -> Result<(), NetError>;
        fn accept(&mut self, id: SocketId) -> Result<(SocketId, SocketAddrV4), NetError>;
        fn connect(&mut self, id: SocketId, remote: SocketAddrV4) -> Result<(), NetError>;
        fn peer_addr(&self, id: SocketId) -> Result<Option<SocketAddrV4>, NetError>;
        fn tcp_phase(&mut self, id: SocketId) -> Result<TcpPhase, NetError>;
        fn send(&mut self, id: SocketId, data: &[u8]) -> Result<usize, NetError>;
        fn recv(&mut self, id: SocketId, buf: &mut [u8]) -> Result<usize, NetError>;
        fn peek(&mut self, id: SocketId, buf: &mut [u8]) -> Result<usize, NetError>;
        fn send_to(&mut self, id: SocketId, data: &[u8], to: Option<SocketAddrV4>) -> Result<usize, NetError>;
        fn recv_from(&mut self, id: SocketId, buf: &mut [u8]) -> Result<(usize, SocketAddrV4), NetError>;
        fn peek_from(&mut self, id: SocketId, buf: &mut [u8]) -> Result<(usize, SocketAddrV4), NetError>;
        fn readiness(&self, id: SocketId) -> Result<Readiness, NetError>;
        fn set_option(&mut self, id: SocketId, option: SocketOption) -> Result<(), NetError>;
        fn resolve_start(&mut self, name: &str) -> Result<QueryId, NetError>;
        fn resolve_poll(&mut self, query: QueryId) -> Result<Ipv4Addr, NetError>;
        fn ipv4_config(&self) -> Option<Ipv4Config>;
    }
}

mockall::mock! {
    /// The clock.
    pub Clock {}
    impl Clock for Clock {
        fn now(&self) -> Micros;
        fn sleep_until(&mut self, deadline: Micros);
    }
}

/// The socket table the unit tests use: 4 slots over mocks.
pub type Table = Sockets<MockStack, MockClock, 4>;

/// Virtual time shared with a [`MockClock`]: sleeps advance it, tests can read and move it.
#[derive(Clone, Default)]
pub struct VirtualTime {
    now: Arc<AtomicU64>,
    sleeps: Arc<AtomicU64>,
    longest_sleep: Arc<AtomicU64>,
}

impl VirtualTime {
    /// The current virtual time.
    pub fn now(&self) -> Micros {
        self.now.load(Ordering::SeqCst)
    }

    /// How many times the code under test slept.
    pub fn sleeps(&self) -> u64 {
        self.sleeps.load(Ordering::SeqCst)
    }

    /// The longest single sleep.
    pub fn longest_sleep(&self) -> Micros {
        self.longest_sleep.load(Ordering::SeqCst)
    }

    /// A mock clock on this time; a sleep jumps to its deadline.
    pub fn clock(&self) -> MockClock {
        let mut clock = MockClock::new();
        let now = self.now.clone();
        clock
            .expect_now()
            .returning(move || now.load(Ordering::SeqCst));
        let (now, sleeps, longest) = (
            self.now.clone(),
            self.sleeps.clone(),
            self.longest_sleep.clone(),
        );
        clock.expect_sleep_until().returning(move |deadline| {
            let before = now.load(Ordering::SeqCst);
            assert!(deadline > before, "sleep to a deadline not in the future");
            sleeps.fetch_add(1, Ordering::SeqCst);
            longest.fetch_max(deadline - before, Ordering::SeqCst);
            now.store(deadline, Ordering::SeqCst);
        });
        clock
    }
}

/// An idle poll result: nothing happened, no timer.
pub fn idle(_now: Micros) -> PollOutcome {
    PollOutcome {
        progressed: false,
        next_poll: None,
    }
}

/// A table over `stack` (which gets an idle `poll` expectation, and accepts the broadcast
/// permission `socket` gives every UDP socket) and a fresh virtual clock.
pub fn fixture(stack: MockStack) -> Table {
    fixture_with_time(stack).0
}

/// Like [`fixture`], also returning the virtual time.
pub fn fixture_with_time(mut stack: MockStack) -> (Table, VirtualTime) {
    stack.expect_poll().returning(idle);
    stack
        .expect_set_option()
        .withf(|_, option| *option == SocketOption::Broadcast(true))
        .returning(|_, _| Ok(()));
    let time = VirtualTime::default();
    (Sockets::new(stack, time.clock()), time)
}
