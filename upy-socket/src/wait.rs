//! Blocking: poll the stack, try, sleep, until done or out of time.

use netstack::api::{Micros, SocketStack};

use crate::clock::Clock;
use crate::sockets::Sockets;
use crate::timeout::Timeout;

/// The longest single sleep while waiting, unless the clock says otherwise
/// ([`Clock::max_idle`]). Frame arrival is not a timer the stack can announce,
/// so waits wake at least this often to poll (modlwip's `poll_sockets` waits 1 ms).
pub const MAX_IDLE_SLEEP: Micros = 1_000;

/// One try of a waiting operation.
pub(crate) enum Step<T> {
    /// Finished, with this result.
    Done(T),
    /// Not yet: poll and try again.
    Pending,
}

/// The operation's time ran out (for a non-blocking socket: the one try did not finish), or
/// the user interrupted it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Expired {
    /// The socket is non-blocking.
    NonBlocking,
    /// A `settimeout` timeout or the DNS timeout passed.
    Timeout,
    /// [`Clock::interrupted`] said stop (Ctrl-C on the board).
    Interrupted,
}

impl<S: SocketStack, C: Clock, const N: usize> Sockets<S, C, N> {
    /// Polls the stack and runs `attempt` until it is done or the time `timeout` allows from
    /// now has passed. A non-blocking timeout gets exactly one poll and one try.
    ///
    /// Between tries it sleeps until the stack's next timer, the deadline, or the clock's
    /// [`Clock::max_idle`] (by default [`MAX_IDLE_SLEEP`]), whichever is first; it does not sleep after a poll that made progress.
    /// It stops when the clock reports an interrupt.
    pub(crate) fn wait_for<T>(
        &mut self,
        timeout: Timeout,
        mut attempt: impl FnMut(&mut Self) -> Step<T>,
    ) -> Result<T, Expired> {
        let deadline = timeout.deadline(self.clock.now());
        loop {
            let outcome = self.poll();
            if let Step::Done(value) = attempt(self) {
                return Ok(value);
            }
            if self.clock.interrupted() {
                return Err(Expired::Interrupted);
            }
            let now = self.clock.now();
            if deadline.is_some_and(|d| now >= d) {
                return Err(match timeout {
                    Timeout::NonBlocking => Expired::NonBlocking,
                    Timeout::Blocking | Timeout::After(_) => Expired::Timeout,
                });
            }
            if outcome.progressed {
                continue;
            }
            let wake = [
                self.clock.max_idle().map(|idle| now.saturating_add(idle)),
                outcome.next_poll,
                deadline,
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(Micros::MAX);
            if wake > now {
                self.clock.sleep_until(wake);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::{fixture_with_time, MockSocketStack};
    use netstack::api::PollOutcome;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    #[test]
    fn non_blocking_tries_once() {
        let (mut t, time) = fixture_with_time(MockSocketStack::new());
        let mut tries = 0;
        let r: Result<(), _> = t.wait_for(Timeout::NonBlocking, |_| {
            tries += 1;
            Step::Pending
        });
        assert_eq!(r, Err(Expired::NonBlocking));
        assert_eq!(tries, 1);
        assert_eq!(time.sleeps(), 0);
    }

    #[test]
    fn timeout_expires_at_the_deadline_with_bounded_sleeps() {
        let (mut t, time) = fixture_with_time(MockSocketStack::new());
        let mut tries = 0;
        let r: Result<(), _> = t.wait_for(Timeout::After(10_500), |_| {
            tries += 1;
            Step::Pending
        });
        assert_eq!(r, Err(Expired::Timeout));
        assert_eq!(time.now(), 10_500);
        assert!(time.longest_sleep() <= MAX_IDLE_SLEEP);
        // 10 full sleeps, one of 500 us, one try per wake-up plus the first.
        assert_eq!(time.sleeps(), 11);
        assert_eq!(tries, 12);
    }

    /// A clock whose interrupt goes off after `after` checks.
    struct Interrupting {
        checks: std::cell::Cell<u32>,
        after: u32,
    }

    impl Clock for Interrupting {
        fn now(&self) -> Micros {
            0
        }
        fn sleep_until(&mut self, _: Micros) {}
        fn interrupted(&self) -> bool {
            self.checks.set(self.checks.get() + 1);
            self.checks.get() > self.after
        }
    }

    #[test]
    fn an_interrupt_ends_a_blocking_wait_after_the_try_that_saw_it() {
        let mut stack = MockSocketStack::new();
        stack.expect_poll().returning(|_| PollOutcome {
            progressed: false,
            next_poll: None,
        });
        let clock = Interrupting {
            checks: std::cell::Cell::new(0),
            after: 3,
        };
        let mut t = crate::sockets::Sockets::<_, _, 1>::new(stack, clock);
        let mut tries = 0;
        let r: Result<(), _> = t.wait_for(Timeout::Blocking, |_| {
            tries += 1;
            Step::Pending
        });
        assert_eq!(r, Err(Expired::Interrupted));
        assert_eq!(tries, 4);
        // Finished work wins over an interrupt that came with it.
        let r = t.wait_for(Timeout::Blocking, |_| Step::Done(7));
        assert_eq!(r, Ok(7));
    }

    /// A clock whose sleeps need no bound (it would return when a frame arrives).
    struct Unbounded {
        now: Micros,
        sleeps: Vec<Micros>,
    }

    impl Clock for Unbounded {
        fn now(&self) -> Micros {
            self.now
        }
        fn sleep_until(&mut self, deadline: Micros) {
            self.now = deadline;
            self.sleeps.push(deadline);
        }
        fn max_idle(&self) -> Option<Micros> {
            None
        }
    }

    #[test]
    fn a_clock_without_an_idle_bound_sleeps_to_the_next_timer_or_the_deadline() {
        let mut stack = MockSocketStack::new();
        stack.expect_poll().returning(|now| PollOutcome {
            progressed: false,
            next_poll: (now < 3_000).then_some(3_000),
        });
        let clock = Unbounded {
            now: 0,
            sleeps: Vec::new(),
        };
        let mut t = crate::sockets::Sockets::<_, _, 1>::new(stack, clock);
        let r: Result<(), _> = t.wait_for(Timeout::After(10_000), |_| Step::Pending);
        assert_eq!(r, Err(Expired::Timeout));
        assert_eq!(t.clock.sleeps, [3_000, 10_000]);
    }

    #[test]
    fn blocking_waits_until_done() {
        let (mut t, time) = fixture_with_time(MockSocketStack::new());
        let r = t.wait_for(Timeout::Blocking, |s| {
            if s.clock.now() >= 5_000 {
                Step::Done(42)
            } else {
                Step::Pending
            }
        });
        assert_eq!(r, Ok(42));
        assert_eq!(time.now(), 5_000);
    }

    #[test]
    fn sleeps_only_until_the_stacks_next_timer_and_not_after_progress() {
        let mut stack = MockSocketStack::new();
        let polls = Arc::new(AtomicU64::new(0));
        let p = polls.clone();
        stack.expect_poll().returning(move |now| {
            let n = p.fetch_add(1, Ordering::SeqCst);
            // First poll: a timer 300 us ahead; second: progress; then idle.
            match n {
                0 => PollOutcome {
                    progressed: false,
                    next_poll: Some(now + 300),
                },
                1 => PollOutcome {
                    progressed: true,
                    next_poll: None,
                },
                _ => PollOutcome {
                    progressed: false,
                    next_poll: None,
                },
            }
        });
        let time = crate::mock::VirtualTime::default();
        let mut t = crate::sockets::Sockets::<_, _, 1>::new(stack, time.clock());
        let r = t.wait_for(Timeout::Blocking, |_| {
            if polls.load(Ordering::SeqCst) == 3 {
                Step::Done(())
            } else {
                Step::Pending
            }
        });
        assert_eq!(r, Ok(()));
        // Slept to the timer (300 us), then polled again at once after progress.
        assert_eq!(time.sleeps(), 1);
        assert_eq!(time.now(), 300);
    }
}
