//! The board network behind the modules: USB host, NIC driver, netstack and socket tables, all in
//! statics sized here (no heap), brought up once by [`start`] (a board with a NIC) or
//! [`start_without_nic`] (a board without: loopback only) and kept running by [`poll`].
//!
//! The bring-up and the network are the board assembly's (`k230-board`): the controller out of
//! reset with its PHY in host mode, the DWC2 core in host mode, the device on the root port
//! enumerated, its driver (RTL8152 or CDC-ECM) initialised, then the supervised stack with DHCP.
//! Unplugged, the NIC's address is released (connections abort with `ECONNABORTED`); plugged in
//! again, it is brought up with the same MAC and addressed again (DHCP, or the static
//! configuration the user set). Without a NIC, the stack is `k230_board::loopback_only`: the
//! `socket` module works over 127.0.0.0/8 and `network.LAN` raises `OSError(ENODEV)`, as there
//! is no LAN.

use core::cell::RefCell;
use core::mem::MaybeUninit;

use k230_board::bring_up::{self, bring_up, Host as BoardHost};
use k230_board::secret;
use k230_board::{loopback_only, Entropy, UsbNic};
use k230_hal::eth::nic;
use k230_hal::eth::supervisor::Supervisor;
use k230_hal::reg::dma::IdentityDma;
use k230_hal::usb::dwc2::Dwc2Memory;
use netstack::api::SocketStack;
use netstack::loopback::NoNic;
use netstack::{InterfaceControl, Stack, StaticBuffers, StaticStorage};
use upy_bindings::backend::{self, UpyLan, UpySockets};
use upy_bindings::statics::Static;
use upy_socket::{Clock, Sockets};

use crate::clock::{FirmwareClock, FirmwareDelay};
use crate::config::{CacheHooks, Status};

/// TCP sockets in the stack's pool.
pub const TCP_SOCKETS: usize = 6;
/// Bytes per TCP buffer, each direction.
pub const TCP_BUFFER: usize = 16 * 1024;
/// UDP sockets in the stack's pool.
pub const UDP_SOCKETS: usize = 4;
/// Payload bytes per UDP buffer, each direction.
pub const UDP_BUFFER: usize = 2 * 1024;
/// Python socket objects open at once.
pub const HANDLES: usize = 16;

type Host = BoardHost<IdentityDma<CacheHooks>, FirmwareDelay>;
/// The NIC driver.
pub type Nic = nic::Nic<Host>;
type Storage = StaticStorage<'static, TCP_SOCKETS, UDP_SOCKETS, { TCP_SOCKETS + UDP_SOCKETS + 2 }>;
type Buffers = StaticBuffers<TCP_SOCKETS, UDP_SOCKETS, TCP_BUFFER, UDP_BUFFER>;
/// upy-socket's table over the stack over device `D`.
pub type TableOver<D> = Sockets<Stack<'static, D>, FirmwareClock, { TCP_SOCKETS + UDP_SOCKETS }>;
/// upy-socket's table over the stack over the supervised NIC.
pub type Table = TableOver<&'static mut Supervisor<Nic>>;
/// upy-socket's table over the stack of a board without NIC (loopback only).
pub type LoopbackTable = TableOver<NoNic>;
type Shared = &'static RefCell<Table>;

/// The DWC2 driver's DMA memory.
static DWC2_MEMORY: Static<Dwc2Memory> = Static::new(Dwc2Memory::new());
/// The supervised NIC driver (its frame buffers are most of its size), kept out of the stack's
/// value so that building the stack moves only small values; written once by [`start`].
/// (Uninitialised rather than `None`, which would put its 32 KiB into .data.)
static NIC: Static<MaybeUninit<Supervisor<Nic>>> = Static::new(MaybeUninit::uninit());
/// The stack's sockets and tables. `Storage::new()` is not all zero bytes, so this static is in
/// .data (in the firmware image), but small: the buffers are apart, in [`BUFFERS`].
static STORAGE: Static<Storage> = Static::new(Storage::new());
/// The stack's socket buffers, all zero bytes (.bss). Both statics are built at compile time:
/// built at run time, the storage was built on the stack first (measured: a 314 KiB frame in
/// `start`), which a firmware's stack cannot hold.
static BUFFERS: Static<Buffers> = Static::new(Buffers::new());
/// The network over a NIC, once started.
static NIC_NET: Network<Table> = Network::new();
/// The network of a board without NIC, once started.
static LOOPBACK_NET: Network<LoopbackTable> = Network::new();
/// What `network.LAN` calls (boards with a NIC only).
static LAN: Static<Option<UpyLan<Shared>>> = Static::new(None);
/// The table [`poll`] polls: the one network started, either kind.
static RUNNING: Static<Option<&'static dyn Poll>> = Static::new(None);

/// One kind of network: its socket table `T` and the `socket` module's adapter over it, empty
/// until installed.
struct Network<T: 'static> {
    table: Static<Option<RefCell<T>>>,
    sockets: Static<Option<UpySockets<&'static RefCell<T>, HANDLES>>>,
}

impl<T> Network<T> {
    const fn new() -> Self {
        Self {
            table: Static::new(None),
            sockets: Static::new(None),
        }
    }
}

impl<S: SocketStack + 'static, const N: usize> Network<Sockets<S, FirmwareClock, N>> {
    /// Installs `stack` behind the `socket` module and [`poll`]; returns its table.
    ///
    /// # Safety
    /// On the interpreter thread, while no binding function runs, once: no network runs yet.
    unsafe fn install(
        &'static self,
        stack: S,
        clock: FirmwareClock,
    ) -> &'static RefCell<Sockets<S, FirmwareClock, N>> {
        // SAFETY: single-threaded per the caller; the statics are written once, here, and the
        // references handed to the bindings stay valid for the rest of the program.
        unsafe {
            let table = (*self.table.get()).insert(RefCell::new(Sockets::new(stack, clock)));
            let sockets = (*self.sockets.get()).insert(UpySockets::new(&*table));
            backend::set_sockets(Some(sockets));
            *RUNNING.get() = Some(&*table);
            table
        }
    }
}

/// A socket table [`poll`] can poll.
trait Poll {
    /// One round of network work, unless a socket call is using the table.
    fn poll(&self);
}

impl<S: SocketStack, const N: usize> Poll for RefCell<Sockets<S, FirmwareClock, N>> {
    fn poll(&self) {
        if let Ok(mut table) = self.try_borrow_mut() {
            table.poll();
        }
    }
}

/// Whether a network runs.
///
/// # Safety
/// On the interpreter thread.
unsafe fn running() -> bool {
    // SAFETY: single-threaded per the caller; read only.
    unsafe { (*RUNNING.get()).is_some() }
}

/// The `k230net.h` code for a failed bring-up.
fn status(e: bring_up::Error) -> Status {
    match e {
        bring_up::Error::UsbReset(_) => Status::UsbReset,
        bring_up::Error::Dwc2Init(_) => Status::Dwc2Init,
        bring_up::Error::Nic(nic::Error::NoDevice(_)) => Status::NoDevice,
        bring_up::Error::Nic(nic::Error::Unsupported) => Status::UnsupportedNic,
        bring_up::Error::Nic(nic::Error::Rtl8152(_) | nic::Error::CdcEcm(_)) => Status::NicInit,
    }
}

/// Brings the network up on the board's USB NIC `usb` (a `k230-board` description: the firmware
/// passes its board's, `k230net_start` builds one from `k230net_config_t`) with the firmware's
/// cache maintenance `cache`, and installs it behind the modules; returns the MAC.
///
/// The stack's secret comes from the board's noise source `entropy` first ([`secret::seed`]): if
/// its health test fails the network does not start ([`Status::Entropy`]).
///
/// # Safety
/// On the interpreter thread, while no binding function runs; the registers `usb` names (and for
/// a K230 reset, the K230's reset and USB PHY control blocks) and those of `entropy` must be
/// mapped at their physical addresses and used by nothing else.
pub unsafe fn start(usb: &UsbNic, entropy: Entropy, cache: CacheHooks) -> Result<[u8; 6], Status> {
    // SAFETY: on the interpreter thread per the caller.
    if unsafe { running() } {
        return Err(Status::AlreadyStarted);
    }
    // The secret first: without a healthy noise source the network does not start.
    // SAFETY: the source's registers, used by nothing else in this library; per the caller the
    // firmware does not use them while the network starts.
    let seed = unsafe { secret::seed(entropy) }.map_err(|e| {
        log::error!("k230net: entropy health test failed ({e:?}); network not started");
        Status::Entropy
    })?;
    // SAFETY: the network is not running (checked above), so no driver holds the memory: a
    // failed earlier start dropped its driver before returning.
    let memory = unsafe { &mut *DWC2_MEMORY.get() };
    // SAFETY: the controller, reset and PHY blocks the description names, per the caller used
    // only by this network.
    let nic =
        unsafe { bring_up(usb, IdentityDma::new(cache), FirmwareDelay, memory) }.map_err(status)?;
    // SAFETY: the network is not running (checked above) and nothing after this point fails, so
    // the NIC static is written once, here, and from now on reached only through the stack.
    let nic = unsafe { (*NIC.get()).write(Supervisor::new(nic)) };
    let clock = FirmwareClock::new();
    // SAFETY: the storage and buffers are handed out once: only a successful start gets here,
    // and a second start returns at the check above.
    let parts = unsafe { (*STORAGE.get()).parts(&mut *BUFFERS.get()) };
    let mut stack = k230_board::supervised(nic, seed, parts, clock.now());
    let mac = stack.mac();
    stack.start_dhcp();
    // SAFETY: on the interpreter thread while no binding runs, per the caller; no network
    // runs (checked above). The LAN static is written once, here, as the table.
    unsafe {
        let table: Shared = NIC_NET.install(stack, clock);
        let lan = (*LAN.get()).insert(UpyLan::new(table));
        backend::set_lan(Some(lan));
    }
    Ok(mac)
}

/// Starts the network of a board without NIC (`k230_board::loopback_only`, whose secret is a
/// constant: nothing the stack sends leaves the board) and installs it behind the `socket`
/// module: sockets work over 127.0.0.0/8; `network.LAN` stays absent (`OSError(ENODEV)`).
///
/// # Safety
/// On the interpreter thread, while no binding function runs.
pub unsafe fn start_without_nic() -> Result<(), Status> {
    // SAFETY: on the interpreter thread per the caller.
    if unsafe { running() } {
        return Err(Status::AlreadyStarted);
    }
    let clock = FirmwareClock::new();
    // SAFETY: the storage and buffers are handed out once: no network runs (checked above), and
    // a network that starts never stops.
    let parts = unsafe { (*STORAGE.get()).parts(&mut *BUFFERS.get()) };
    let stack = loopback_only(parts, clock.now());
    // SAFETY: on the interpreter thread while no binding runs, per the caller; no network runs.
    unsafe { LOOPBACK_NET.install(stack, clock) };
    Ok(())
}

/// One round of network work: the root port (unplug, replug), link state, frames (looped ones
/// too), timers. Does nothing before a start, or while a socket call is using the stack (it
/// polls the stack itself while it waits, which does the same work).
///
/// # Safety
/// On the interpreter thread.
pub unsafe fn poll() {
    // SAFETY: single-threaded per the caller; the table is only read here after a start.
    if let Some(table) = unsafe { *RUNNING.get() } {
        table.poll();
    }
}

/// Bytes of static memory the network uses (driver DMA memory, socket buffers, the NIC driver,
/// both kinds of table and their adapters).
pub const fn static_bytes() -> usize {
    core::mem::size_of::<Dwc2Memory>()
        + core::mem::size_of::<Storage>()
        + core::mem::size_of::<Buffers>()
        + core::mem::size_of::<MaybeUninit<Supervisor<Nic>>>()
        + core::mem::size_of::<Network<Table>>()
        + core::mem::size_of::<Network<LoopbackTable>>()
        + core::mem::size_of::<Option<UpyLan<Shared>>>()
        + core::mem::size_of::<Option<&'static dyn Poll>>()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one test that starts a network (the statics are the process's): before the start
    /// `poll` does nothing; after `start_without_nic` a datagram to 127.0.0.1 reaches its socket
    /// only when the event hook's `poll` runs (nothing else polls here); no second start.
    #[test]
    fn poll_drives_the_loopback_stack_once_started() {
        use core::net::{Ipv4Addr, SocketAddrV4};
        use netstack::api::Transport;

        // SAFETY: on the test's thread, the only one using the network's statics; the clock's
        // hooks are the fakes of `clock::tests`.
        unsafe {
            poll();
            assert_eq!(start_without_nic(), Ok(()));
            assert_eq!(start_without_nic(), Err(Status::AlreadyStarted));
        }
        // SAFETY: started above; nothing else borrows the table.
        let table = unsafe { (*LOOPBACK_NET.table.get()).as_ref() }.expect("installed");
        let here = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 7);
        let id = {
            let mut table = table.borrow_mut();
            let stack = table.stack_mut();
            let id = stack.open(Transport::Udp).expect("a UDP socket");
            stack.bind(id, here).expect("bind");
            assert_eq!(stack.send_to(id, b"hook", Some(here)), Ok(4));
            assert!(!stack.readiness(id).expect("readiness").readable);
            id
        };
        // Out through the loop queue in one poll, in through it in the next.
        for _ in 0..2 {
            // SAFETY: on the test's thread, no borrow of the table held.
            unsafe { poll() };
        }
        let mut table = table.borrow_mut();
        let stack = table.stack_mut();
        assert!(stack.readiness(id).expect("readiness").readable);
        let mut buf = [0; 8];
        assert_eq!(stack.recv_from(id, &mut buf), Ok((4, here)));
        assert_eq!(&buf[..4], b"hook");
    }

    /// k230net.h says the static state is "about 350 KiB" (as the boards build the netstack:
    /// without `large-send`, which the workspace's tests turn on); keep that true.
    #[test]
    fn static_memory_is_what_the_header_says() {
        let bytes = static_bytes() - netstack::storage::LARGE_SEND_BYTES;
        println!(
            "k230net static memory: {bytes} bytes ({} KiB)",
            bytes / 1024
        );
        assert!((340 * 1024..360 * 1024).contains(&bytes), "{bytes}");
    }
}
