//! The board network behind the modules: USB host, NIC driver, netstack and socket tables, all in
//! statics sized here (no heap), brought up once by [`start`] and kept running by [`poll`].
//!
//! The bring-up follows the firmware's (`firmware/src/bringup.rs`): the controller out of reset
//! with its PHY in host mode, the DWC2 core in host mode, the device on the root port enumerated
//! at address 1, its driver (RTL8152 or CDC-ECM) initialised, then `netstack` with DHCP. The NIC
//! runs under the hot-plug supervisor ([`crate::supervised`]): unplugged, its address is released
//! (connections abort with `ECONNABORTED`); plugged in again, it is brought up with the same MAC
//! and addressed again (DHCP, or the static configuration the user set).

use core::cell::RefCell;
use core::mem::MaybeUninit;

use k230_hal::eth::cdc_ecm::{self, CdcEcm};
use k230_hal::eth::probe::{self, identify};
use k230_hal::eth::rtl8152::Rtl8152;
use k230_hal::eth::supervisor::{HotPlug, Supervisor};
use k230_hal::reg::dma::IdentityDma;
use k230_hal::reg::Mmio;
use k230_hal::sysctl::{k230, Sysctl};
use k230_hal::trng::{self, HealthError, Trng};
use k230_hal::usb::dwc2::{Dwc2Host, Dwc2Memory};
use k230_hal::usb::{DeviceAddress, PortEvent};
use netstack::{InterfaceControl, Seed, Stack, StackConfig, StaticBuffers, StaticStorage};
use smoltcp::phy::{Device, DeviceCapabilities};
use smoltcp::time::Instant;
use upy_bindings::backend::{self, UpyLan, UpySockets};
use upy_bindings::statics::Static;
use upy_socket::{Clock, Sockets};

use crate::clock::{FirmwareClock, FirmwareDelay};
use crate::config::{CacheHooks, Config, Status};
use crate::nic::{self, BringUpError};
use crate::supervised::Supervised;

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

type Host = Dwc2Host<Mmio, IdentityDma<CacheHooks>, FirmwareDelay>;
/// The NIC driver.
pub type Nic = nic::Nic<Host>;
type Storage = StaticStorage<'static, TCP_SOCKETS, UDP_SOCKETS, { TCP_SOCKETS + UDP_SOCKETS + 2 }>;
type Buffers = StaticBuffers<TCP_SOCKETS, UDP_SOCKETS, TCP_BUFFER, UDP_BUFFER>;
/// upy-socket's table over the stack over the supervised NIC.
pub type Table = Sockets<Supervised<'static, NicRef>, FirmwareClock, { TCP_SOCKETS + UDP_SOCKETS }>;
type Shared = &'static RefCell<Table>;

/// The DWC2 driver's DMA memory.
static DWC2_MEMORY: Static<Dwc2Memory> = Static::new(Dwc2Memory::new());
/// The NIC driver (its frame buffers are most of its size), kept out of the stack's value so that
/// building the stack moves only small values; written once by [`start`]. (Uninitialised rather
/// than `None`, which would put its 32 KiB into .data.)
static NIC: Static<MaybeUninit<Nic>> = Static::new(MaybeUninit::uninit());
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

/// Brings the network up as `config` says and installs it behind the modules; returns the MAC.
///
/// # Safety
/// On the interpreter thread, while no binding function runs; the K230's USB, reset and PHY
/// control registers must be mapped at their physical addresses and used by nothing else.
pub unsafe fn start(config: &Config) -> Result<[u8; 6], Status> {
    // SAFETY: single-threaded use per the caller; read only.
    if unsafe { (*TABLE.get()).is_some() } {
        return Err(Status::AlreadyStarted);
    }
    let port = config.port()?;
    // The secret first: without a healthy TRNG the network does not start.
    let seed = secret().map_err(|e| {
        log::error!("k230net: TRNG health test failed ({e:?}); network not started");
        Status::Entropy
    })?;
    let mut delay = FirmwareDelay;
    // SAFETY: the reset and USB PHY control blocks, per the caller used only here.
    let mut sysctl = unsafe {
        Sysctl::new(
            Mmio::new(k230::SYSCTL_RST_BASE, k230::SYSCTL_RST_LEN),
            Mmio::new(k230::USB_PHY_CTL_BASE, k230::USB_PHY_CTL_LEN),
        )
    };
    sysctl
        .usb_host_init(port, &mut delay)
        .map_err(|_| Status::UsbReset)?;
    // SAFETY: the controller's register window, per the caller used only by this driver.
    let regs = unsafe { Mmio::new(port.base(), k230::USB_REG_LEN) };
    // SAFETY: the network is not running (checked above), so no driver holds the memory: a
    // failed earlier start dropped its driver before returning.
    let memory = unsafe { &mut *DWC2_MEMORY.get() };
    let mut host: Host = Dwc2Host::new(regs, IdentityDma::new(config.cache()), delay, memory);
    host.init().map_err(|_| Status::Dwc2Init)?;
    let address = DeviceAddress::new(1).ok_or(Status::NoDevice)?;
    let device = host
        .connect(address, config.connect_timeout_ms)
        .map_err(|_| Status::NoDevice)?;
    let nic = match identify(&device) {
        Some(probe::Nic::Rtl8152) => {
            Nic::Rtl8152(Rtl8152::probe(host, &device).map_err(|_| Status::NicInit)?)
        }
        Some(probe::Nic::CdcEcm) => {
            let function = cdc_ecm::probe(&mut host, &device).map_err(|_| Status::NicInit)?;
            Nic::CdcEcm(CdcEcm::new(host, function))
        }
        None => return Err(Status::UnsupportedNic),
    };
    // SAFETY: the network is not running (checked above) and nothing after this point fails, so
    // the NIC static is written once, here, and from now on reached only through the stack.
    let nic = NicRef(unsafe { (*NIC.get()).write(nic) });
    let mac = nic.0.mac();
    let clock = FirmwareClock::new();
    let now = clock.now();
    // SAFETY: the storage and buffers are handed out once: only a successful start gets here,
    // and a second start returns at the check above.
    let parts = unsafe { (*STORAGE.get()).parts(&mut *BUFFERS.get()) };
    let mut stack = Stack::new(Supervisor::new(nic), StackConfig { mac, seed }, parts, now);
    stack.start_dhcp();
    let stack = Supervised::new(stack);
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

/// The stack's secret from the K230's TRNG, after its start-up health test.
fn secret() -> Result<Seed, HealthError> {
    // SAFETY: the PUFrt block's registers (through `cfg`); nothing else in this library uses
    // them, and the firmware must not use them while the network starts.
    let regs = unsafe { Mmio::new(trng::BASE, trng::LEN) };
    let mut bytes = [0u8; 32];
    Trng::new(regs)?.fill(&mut bytes)?;
    Ok(Seed::from_bytes(bytes))
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

/// The NIC driver in its static, as the stack's device.
pub struct NicRef(&'static mut Nic);

impl Device for NicRef {
    type RxToken<'a> = <Nic as Device>::RxToken<'a>;
    type TxToken<'a> = <Nic as Device>::TxToken<'a>;

    fn receive(&mut self, now: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        self.0.receive(now)
    }

    fn transmit(&mut self, now: Instant) -> Option<Self::TxToken<'_>> {
        self.0.transmit(now)
    }

    fn capabilities(&self) -> DeviceCapabilities {
        self.0.capabilities()
    }
}

impl HotPlug for NicRef {
    type Error = BringUpError;

    fn poll_port(&mut self) -> Option<PortEvent> {
        self.0.poll_port()
    }

    fn detached(&mut self) {
        self.0.detached()
    }

    fn reattach(&mut self) -> Result<(), BringUpError> {
        self.0.reattach()
    }

    fn link_up(&self) -> bool {
        self.0.link_up()
    }

    fn maintain(&mut self) {
        self.0.maintain()
    }
}

/// Bytes of static memory the network uses (driver DMA memory, socket buffers, and the table
/// with the NIC driver in it).
pub const fn static_bytes() -> usize {
    core::mem::size_of::<Dwc2Memory>()
        + core::mem::size_of::<Storage>()
        + core::mem::size_of::<Buffers>()
        + core::mem::size_of::<MaybeUninit<Nic>>()
        + core::mem::size_of::<Option<RefCell<Table>>>()
        + core::mem::size_of::<Option<UpySockets<Shared, HANDLES>>>()
        + core::mem::size_of::<Option<UpyLan<Shared>>>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn before_a_start_poll_does_nothing_and_a_bad_port_touches_no_register() {
        // SAFETY: nothing is started, so poll only reads the empty table.
        unsafe { poll() };
        let config = Config {
            usb_port: 2,
            connect_timeout_ms: 0,
            seed: 0,
            cache_clean: None,
            cache_invalidate: None,
        };
        // SAFETY: the port is checked before any register is touched (this would fault on the
        // host otherwise).
        assert_eq!(unsafe { start(&config) }, Err(Status::BadConfig));
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
