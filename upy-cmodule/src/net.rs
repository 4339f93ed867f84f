//! The board network behind the modules: USB host, NIC driver, netstack and socket tables, all in
//! statics sized here (no heap), brought up once by [`start`] and kept running by [`poll`].
//!
//! The bring-up and the network are the board assembly's (`k230-board`): the controller out of
//! reset with its PHY in host mode, the DWC2 core in host mode, the device on the root port
//! enumerated, its driver (RTL8152 or CDC-ECM) initialised, then the supervised stack with DHCP.
//! Unplugged, the NIC's address is released (connections abort with `ECONNABORTED`); plugged in
//! again, it is brought up with the same MAC and addressed again (DHCP, or the static
//! configuration the user set).

use core::cell::RefCell;
use core::mem::MaybeUninit;

use k230_board::bring_up::{self, bring_up, Host as BoardHost};
use k230_board::secret;
use k230_board::{Entropy, UsbNic};
use k230_hal::eth::nic;
use k230_hal::eth::supervisor::Supervisor;
use k230_hal::reg::dma::IdentityDma;
use k230_hal::usb::dwc2::Dwc2Memory;
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
/// upy-socket's table over the stack over the supervised NIC.
pub type Table = Sockets<
    Stack<'static, &'static mut Supervisor<Nic>>,
    FirmwareClock,
    { TCP_SOCKETS + UDP_SOCKETS },
>;
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
/// The running network, once started.
static TABLE: Static<Option<RefCell<Table>>> = Static::new(None);
/// What the `socket` module calls.
static SOCKETS: Static<Option<UpySockets<Shared, HANDLES>>> = Static::new(None);
/// What `network.LAN` calls.
static LAN: Static<Option<UpyLan<Shared>>> = Static::new(None);

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
    // SAFETY: single-threaded use per the caller; read only.
    if unsafe { (*TABLE.get()).is_some() } {
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
    // SAFETY: single-threaded per the caller; the statics are written once, here, and the
    // references handed to the bindings stay valid for the rest of the program.
    unsafe {
        let table: Shared = (*TABLE.get()).insert(RefCell::new(Sockets::new(stack, clock)));
        let sockets = (*SOCKETS.get()).insert(UpySockets::new(table));
        let lan = (*LAN.get()).insert(UpyLan::new(table));
        backend::set_sockets(Some(sockets));
        backend::set_lan(Some(lan));
    }
    Ok(mac)
}

/// One round of network work: the root port (unplug, replug), link state, frames, timers.
/// Does nothing before [`start`], or while a socket call is using the stack (it polls the stack
/// itself while it waits, which does the same work).
///
/// # Safety
/// On the interpreter thread.
pub unsafe fn poll() {
    // SAFETY: single-threaded per the caller; the table is only read here after `start`.
    let Some(table) = (unsafe { &*TABLE.get() }) else {
        return;
    };
    if let Ok(mut table) = table.try_borrow_mut() {
        table.poll();
    }
}

/// Bytes of static memory the network uses (driver DMA memory, socket buffers, and the table
/// with the NIC driver in it).
pub const fn static_bytes() -> usize {
    core::mem::size_of::<Dwc2Memory>()
        + core::mem::size_of::<Storage>()
        + core::mem::size_of::<Buffers>()
        + core::mem::size_of::<MaybeUninit<Supervisor<Nic>>>()
        + core::mem::size_of::<Option<RefCell<Table>>>()
        + core::mem::size_of::<Option<UpySockets<Shared, HANDLES>>>()
        + core::mem::size_of::<Option<UpyLan<Shared>>>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn before_a_start_poll_does_nothing() {
        // SAFETY: nothing is started, so poll only reads the empty table.
        unsafe { poll() };
    }

    /// k230net.h says the static state is "about 315 KiB"; keep that true.
    #[test]
    fn static_memory_is_what_the_header_says() {
        let bytes = static_bytes();
        println!(
            "k230net static memory: {bytes} bytes ({} KiB)",
            bytes / 1024
        );
        assert!((300 * 1024..330 * 1024).contains(&bytes), "{bytes}");
    }
}
