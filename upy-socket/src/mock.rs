//! Test fixtures (feature `mock`): a socket table over netstack's mock of the stack
//! ([`MockSocketStack`]) and the clock's mock ([`MockClock`]) running on virtual time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub use crate::clock::MockClock;
pub use netstack::api::MockSocketStack;
use netstack::api::{Micros, PollOutcome, SocketOption};

use crate::sockets::Sockets;

/// The socket table the unit tests use: 4 slots over mocks.
pub type Table = Sockets<MockSocketStack, MockClock, 4>;

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
        // Never interrupted, as the trait's default (tests of interrupts use a clock of their own).
        clock.expect_interrupted().return_const(false);
        // Sleeps bounded as the trait's default (frames may arrive meanwhile).
        clock
            .expect_max_idle()
            .return_const(Some(crate::wait::MAX_IDLE_SLEEP));
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
pub fn fixture(stack: MockSocketStack) -> Table {
    fixture_with_time(stack).0
}

/// Like [`fixture`], also returning the virtual time.
pub fn fixture_with_time(mut stack: MockSocketStack) -> (Table, VirtualTime) {
    stack.expect_poll().returning(idle);
    stack
        .expect_set_option()
        .withf(|_, option| *option == SocketOption::Broadcast(true))
        .returning(|_, _| Ok(()));
    let time = VirtualTime::default();
    (Sockets::new(stack, time.clock()), time)
}
