//! The board's network as the host runs it: a netstack [`Stack`] over a smoltcp device, upy-socket's
//! [`Sockets`] table over it, and a poller thread that keeps the stack running while the script
//! does something else (e.g. `time.sleep`). Over the simulated board ([`HostNet::start_board`])
//! the stack is the board assembly's (`k230-board`), the one the firmware runs: the hot-plug
//! supervisor watches the NIC at every poll, an unplug releases the address and a replug restores
//! it; the script can unplug and replug through the `simboard` module.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use k230_hal::eth::supervisor::Supervised;
use k230_hal::sim::board::SimBoard;
use netstack::api::{Ipv4Config, Micros};
use netstack::{HeapStorage, InterfaceControl, Seed, Stack, StackConfig};
use smoltcp::phy::Device;
use upy_socket::{Clock, Sockets, StdClock};

use crate::backend::{Lock, UpyLan, UpySockets};
use crate::host::simboard::BoardApi;
use crate::host::Backends;

/// Sockets the table holds at once.
pub const SOCKETS: usize = 16;
/// Python socket objects open at once.
pub const HANDLES: usize = 64;
/// Longest pause of the poller between two polls.
const MAX_POLL_PAUSE: Micros = 1_000;
/// How often [`HostNet::drain`] looks at what is left.
const DRAIN_CHECK: Duration = Duration::from_millis(5);

/// The socket table over the stack over device `D`.
pub type Table<D> = Sockets<Stack<'static, D>, StdClock, SOCKETS>;

/// A running network: the table, shared with its poller thread.
pub struct HostNet<D: Device + Send + 'static> {
    table: Arc<Mutex<Table<D>>>,
    stop: Arc<AtomicBool>,
    poller: Option<JoinHandle<()>>,
}

impl<D: Device + Send + 'static> HostNet<D> {
    /// Starts a plain stack with MAC `mac` on `device`, statically configured with `config` (or
    /// unconfigured, for `network.LAN().ifconfig(...)` to set up), and its poller.
    pub fn start(device: D, mac: [u8; 6], config: Option<Ipv4Config>) -> Result<Self, String> {
        let clock = StdClock::new();
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
        clock: StdClock,
        config: Option<Ipv4Config>,
    ) -> Result<Self, String> {
        if let Some(config) = config {
            stack
                .set_static(config)
                .map_err(|e| format!("static configuration {config:?}: {e:?}"))?;
        }
        let table = Arc::new(Mutex::new(Sockets::new(stack, clock)));
        let stop = Arc::new(AtomicBool::new(false));
        let poller = {
            let (table, stop) = (Arc::clone(&table), Arc::clone(&stop));
            std::thread::Builder::new()
                .name("netstack-poller".into())
                .spawn(move || poll_until(&table, &stop))
                .map_err(|e| format!("cannot spawn the poller: {e}"))?
        };
        Ok(Self {
            table,
            stop,
            poller: Some(poller),
        })
    }

    /// Backends for [`crate::host::Interpreter::run_with`] over this network.
    pub fn backends(&self) -> Backends {
        Backends {
            sockets: Some(Box::new(UpySockets::<_, HANDLES>::new(Arc::clone(
                &self.table,
            )))),
            lan: Some(Box::new(UpyLan::new(Arc::clone(&self.table)))),
            board: None,
        }
    }

    /// Runs `f` on the table (e.g. to read the device's counters).
    pub fn with_table<R>(&self, f: impl FnOnce(&mut Table<D>) -> R) -> R {
        self.table.with(f)
    }

    /// The end of a script on a process that is about to exit: closes every socket still open
    /// (as the end of a process closes its descriptors) and waits, at most `limit`, until the
    /// peers have acknowledged every byte and FIN of the closed TCP connections and closed UDP
    /// sockets have sent their queued datagrams. The poller keeps the stack running meanwhile.
    pub fn drain(&self, limit: Duration) -> Drain {
        self.table.with(|t| t.close_all());
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
        let clock = StdClock::new();
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
            board: Some(Box::new(SimBoardHands(Arc::clone(&self.table)))),
            ..self.backends()
        }
    }
}

/// The simulated board's USB port, reached through the table the poller shares.
struct SimBoardHands(Arc<Mutex<Table<SimBoard>>>);

impl BoardApi for SimBoardHands {
    fn unplug_usb(&mut self) -> bool {
        self.0.with(|t| t.stack_mut().device_mut().unplug_usb())
    }

    fn replug_usb(&mut self) -> bool {
        self.0.with(|t| t.stack_mut().device_mut().replug_usb())
    }
}

fn poll_until<D: Device>(table: &Mutex<Table<D>>, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let (outcome, now) = {
            let mut table = table.lock().unwrap_or_else(PoisonError::into_inner);
            let outcome = table.poll();
            let now = table.clock_mut().now();
            (outcome, now)
        };
        if outcome.progressed {
            continue;
        }
        let pause = outcome
            .next_poll
            .map_or(MAX_POLL_PAUSE, |at| at.saturating_sub(now))
            .min(MAX_POLL_PAUSE);
        std::thread::sleep(Duration::from_micros(pause.max(50)));
    }
}

impl<D: Device + Send + 'static> Drop for HostNet<D> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(poller) = self.poller.take() {
            if poller.join().is_err() {
                log::error!("the netstack poller panicked");
            }
        }
    }
}
