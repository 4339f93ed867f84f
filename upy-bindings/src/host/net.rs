//! The board's network as the host runs it: a netstack [`Stack`] over a smoltcp device, upy-socket's
//! [`Sockets`] table over it, and a poller thread that keeps the stack running while the script
//! does something else (e.g. `time.sleep`). Over the simulated board ([`HostNet::start_board`])
//! the stack is the board assembly's (`k230-board`), the one the firmware runs: the hot-plug
//! supervisor watches the NIC at every poll, an unplug releases the address and a replug restores
//! it; the script can unplug and replug through the `simboard` module.
//!
//! Waiting (the script's blocking calls and the poller alike) ends on events, not on a polling
//! quantum ([`HostClock`]): a frame on the device's descriptor ([`HostNet::wake_on`]), the
//! notice the script's side raises after every call into the table (data queued, buffer space
//! freed: the poller then sends it or the window update at once), or the stack's next timer.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use k230_hal::eth::supervisor::Supervised;
use k230_hal::sim::board::SimBoard;
use netstack::api::{Ipv4Config, Micros};
use netstack::{HeapStorage, InterfaceControl, Seed, Stack, StackConfig};
use smoltcp::phy::Device;
use upy_socket::{Clock, Sockets};

use crate::backend::{Lock, UpyLan, UpySockets};
use crate::host::clock::{HostClock, Wake};
use crate::host::simboard::BoardApi;
use crate::host::Backends;

/// Sockets the table holds at once.
pub const SOCKETS: usize = 16;
/// Python socket objects open at once.
pub const HANDLES: usize = 64;
/// Shortest pause of the poller after a poll that made no progress (so that a stack that asks
/// for a poll now and does nothing does not spin).
const MIN_POLL_PAUSE: Micros = 50;
/// How often [`HostNet::drain`] looks at what is left.
const DRAIN_CHECK: Duration = Duration::from_millis(5);

/// The socket table over the stack over device `D`.
pub type Table<D> = Sockets<Stack<'static, D>, HostClock, SOCKETS>;

/// A running network: the table, shared with its poller thread.
pub struct HostNet<D: Device + Send + 'static> {
    table: Arc<Mutex<Table<D>>>,
    wake: Arc<Wake>,
    stop: Arc<AtomicBool>,
    poller: Option<JoinHandle<()>>,
}

impl<D: Device + Send + 'static> HostNet<D> {
    /// Starts a plain stack with MAC `mac` on `device`, statically configured with `config` (or
    /// unconfigured, for `network.LAN().ifconfig(...)` to set up), and its poller.
    pub fn start(device: D, mac: [u8; 6], config: Option<Ipv4Config>) -> Result<Self, String> {
        let clock = new_clock()?;
        let seed = Seed::from_os().map_err(|e| format!("no entropy from the OS: {e}"))?;
        let stack = Stack::new(
            device,
            StackConfig { mac, seed },
            HeapStorage::default().parts(),
            clock.now(),
        );
        Self::run(stack, clock, config)
    }

    /// Configures `stack` and starts its poller.
    fn run(
        mut stack: Stack<'static, D>,
        clock: HostClock,
        config: Option<Ipv4Config>,
    ) -> Result<Self, String> {
        if let Some(config) = config {
            stack
                .set_static(config)
                .map_err(|e| format!("static configuration {config:?}: {e:?}"))?;
        }
        let wake = Arc::clone(clock.wake());
        let table = Arc::new(Mutex::new(Sockets::new(stack, clock.clone())));
        let stop = Arc::new(AtomicBool::new(false));
        let poller = {
            let (table, stop) = (Arc::clone(&table), Arc::clone(&stop));
            std::thread::Builder::new()
                .name("netstack-poller".into())
                .spawn(move || poll_until(&table, clock, &stop))
                .map_err(|e| format!("cannot spawn the poller: {e}"))?
        };
        Ok(Self {
            table,
            wake,
            stop,
            poller: Some(poller),
        })
    }

    /// From now on waits end when `fd` becomes readable: the descriptor on which the device's
    /// frames arrive (a TAP's). Without it they poll every [`upy_socket::wait::MAX_IDLE_SLEEP`].
    /// The descriptor must stay open as long as this network runs (the device owns it).
    pub fn wake_on(&self, fd: std::os::fd::RawFd) {
        self.wake.set_input(fd);
        self.wake.notify();
    }

    /// The table as the script's side uses it: every call wakes the poller afterwards.
    fn shared(&self) -> Notifying<Table<D>> {
        Notifying {
            table: Arc::clone(&self.table),
            wake: Arc::clone(&self.wake),
        }
    }

    /// Backends for [`crate::host::Interpreter::run_with`] over this network.
    pub fn backends(&self) -> Backends {
        Backends {
            sockets: Some(Box::new(UpySockets::<_, HANDLES>::new(self.shared()))),
            lan: Some(Box::new(UpyLan::new(self.shared()))),
            board: None,
        }
    }

    /// Runs `f` on the table (e.g. to read the device's counters), then wakes the poller.
    pub fn with_table<R>(&self, f: impl FnOnce(&mut Table<D>) -> R) -> R {
        self.shared().with(f)
    }

    /// The end of a script on a process that is about to exit: closes every socket still open
    /// (as the end of a process closes its descriptors) and waits, at most `limit`, until the
    /// peers have acknowledged every byte and FIN of the closed TCP connections and closed UDP
    /// sockets have sent their queued datagrams. The poller keeps the stack running meanwhile.
    pub fn drain(&self, limit: Duration) -> Drain {
        self.with_table(|t| t.close_all());
        let start = Instant::now();
        loop {
            let usage = self.table.with(|t| t.stack().pool_usage());
            if usage.tcp_unacked == 0 && usage.udp_draining == 0 {
                return Drain::Done;
            }
            if start.elapsed() >= limit {
                return Drain::GaveUp {
                    connections: usage.tcp_unacked,
                    bytes: usage.tcp_unacked_bytes,
                    datagram_sockets: usage.udp_draining,
                };
            }
            std::thread::sleep(DRAIN_CHECK);
        }
    }
}

/// How [`HostNet::drain`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drain {
    /// Everything closed sockets had to send was delivered.
    Done,
    /// The limit ran out first; what was still on its way.
    GaveUp {
        /// TCP connections whose data or FIN the peer had not acknowledged.
        connections: usize,
        /// Their unacknowledged bytes.
        bytes: usize,
        /// UDP sockets still holding datagrams (e.g. waiting for ARP).
        datagram_sockets: usize,
    },
}

impl core::fmt::Display for Drain {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Drain::Done => write!(f, "everything sent"),
            Drain::GaveUp {
                connections,
                bytes,
                datagram_sockets,
            } => write!(
                f,
                "{connections} TCP connection(s) with {bytes} byte(s) and their FIN not \
                 acknowledged, {datagram_sockets} UDP socket(s) with datagrams queued"
            ),
        }
    }
}

impl<D: Device + Supervised + Send + 'static> HostNet<D> {
    /// Starts the network of `board` as the board runs it: the board assembly's supervised stack
    /// (its MAC, its seed, the one address policy), configured with `config` as
    /// [`Self::start`] does, and its poller.
    pub fn start_board(board: D, config: Option<Ipv4Config>) -> Result<Self, String> {
        let clock = new_clock()?;
        let parts = HeapStorage::default().parts();
        let seed = Seed::from_os().map_err(|e| format!("no entropy from the OS: {e}"))?;
        let stack = k230_board::supervised(board, seed, parts, clock.now());
        Self::run(stack, clock, config)
    }
}

impl HostNet<SimBoard> {
    /// [`Self::backends`], and the simulated board for the `simboard` module.
    pub fn sim_backends(&self) -> Backends {
        Backends {
            board: Some(Box::new(SimBoardHands(self.shared()))),
            ..self.backends()
        }
    }
}

/// The simulated board's USB port, reached through the table the poller shares.
struct SimBoardHands(Notifying<Table<SimBoard>>);

impl BoardApi for SimBoardHands {
    fn unplug_usb(&mut self) -> bool {
        self.0.with(|t| t.stack_mut().device_mut().unplug_usb())
    }

    fn replug_usb(&mut self) -> bool {
        self.0.with(|t| t.stack_mut().device_mut().replug_usb())
    }
}

/// A clock of its own [`Wake`].
fn new_clock() -> Result<HostClock, String> {
    let wake = Wake::new().map_err(|e| format!("cannot make the poller's eventfd: {e}"))?;
    Ok(HostClock::new(Arc::new(wake)))
}

/// The table shared with the poller, as the script's side holds it: after every call the
/// poller wakes, to send what the call queued or the window update for what it read.
struct Notifying<T> {
    table: Arc<Mutex<T>>,
    wake: Arc<Wake>,
}

impl<T> Lock for Notifying<T> {
    type Target = T;

    fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let result = self.table.with(f);
        self.wake.notify();
        result
    }
}

/// The poller: polls whenever the script's side does not hold the table, sleeping between
/// polls that made no progress until a frame, a notice or the stack's next timer.
fn poll_until<D: Device>(table: &Mutex<Table<D>>, mut clock: HostClock, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let outcome = table.lock().unwrap_or_else(PoisonError::into_inner).poll();
        if outcome.progressed {
            continue;
        }
        let now = clock.now();
        let wake = outcome
            .next_poll
            .unwrap_or(Micros::MAX)
            .min(
                clock
                    .max_idle()
                    .map_or(Micros::MAX, |idle| now.saturating_add(idle)),
            )
            .max(now + MIN_POLL_PAUSE);
        clock.sleep_until(wake);
    }
}

impl<D: Device + Send + 'static> Drop for HostNet<D> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.wake.notify();
        if let Some(poller) = self.poller.take() {
            if poller.join().is_err() {
                log::error!("the netstack poller panicked");
            }
        }
    }
}
