//! The K230 network bring-up service: USB1 out of reset in host mode, the DWC2 host, the NIC on
//! its root port (RTL8152, or CDC-ECM for e.g. an LTE modem), `netstack` with DHCP, ping answered
//! by the stack, TCP echo on port 7 only in builds with feature `echo`, and link, address and
//! counters on the console. The
//! stack's secret comes from the TRNG; if its health test fails the network does not start.
//!
//! DMA: the big core runs with its caches as the reset left them (this firmware does not enable
//! them), so the DWC2's view of memory is coherent ([`Coherent`]). Enabling caches needs a
//! [`k230_hal::reg::dma::CacheMaintenance`] with the C908's cache instructions here.

use crate::boot::{now_us, ClintDelay};
use core::fmt::Write as _;
use firmware::console::ConsoleRegs;
use firmware::echo::ECHO_PORT;
use firmware::net::LinkEventLine;
use firmware::service::{Addressing, Echo, NetDevice, Service, ECHO};
use k230_hal::eth::cdc_ecm::{self, CdcEcm};
use k230_hal::eth::probe::{identify, Nic};
use k230_hal::eth::rtl8152::Rtl8152;
use k230_hal::eth::supervisor::{HotPlug, LinkEvent, Supervisor};
use k230_hal::reg::dma::{Coherent, IdentityDma};
use k230_hal::reg::Mmio;
use k230_hal::sysctl::{k230, Sysctl, UsbPort};
use k230_hal::trng::{self, HealthError, Trng};
use k230_hal::uart::Uart;
use k230_hal::usb::dwc2::{Dwc2Host, Dwc2Memory};
use k230_hal::usb::DeviceAddress;
use netstack::{HeapStorage, InterfaceControl, Seed};

/// How long one look for a device on the root port lasts.
const CONNECT_TIMEOUT_MS: u32 = 3_000;

/// Socket pool, allocated from the heap: four TCP sockets (the echo listener and connections,
/// when built with it) of 16 KiB per direction, two UDP sockets.
const STORAGE: HeapStorage = HeapStorage {
    tcp_sockets: 4,
    tcp_buffer: 16 * 1024,
    udp_sockets: 2,
    udp_buffer: 1536,
};
/// The DWC2 driver's DMA memory.
static mut DWC2_MEMORY: Dwc2Memory = Dwc2Memory::new();

type Host = Dwc2Host<Mmio, IdentityDma<Coherent>, ClintDelay>;

/// Brings the network up and serves forever; on a failure it says why and stops there.
pub fn run(con: &mut Uart<ConsoleRegs>) -> ! {
    let mut delay = ClintDelay;
    // SAFETY: the K230's reset and USB PHY control blocks, used only here.
    let mut sysctl = unsafe {
        Sysctl::new(
            Mmio::new(k230::SYSCTL_RST_BASE, k230::SYSCTL_RST_LEN),
            Mmio::new(k230::USB_PHY_CTL_BASE, k230::USB_PHY_CTL_LEN),
        )
    };
    if let Err(e) = sysctl.usb_host_init(UsbPort::Usb1, &mut delay) {
        stop(con, format_args!("USB1 reset: {e:?}"));
    }
    // SAFETY: USB1's register window, used only by this driver.
    let regs = unsafe { Mmio::new(UsbPort::Usb1.base(), k230::USB_REG_LEN) };
    // SAFETY: the only reference ever made to DWC2_MEMORY; `run` never returns.
    let memory = unsafe { &mut *core::ptr::addr_of_mut!(DWC2_MEMORY) };
    let mut host: Host = Dwc2Host::new(regs, IdentityDma::new(Coherent), delay, memory);
    if let Err(e) = host.init() {
        stop(con, format_args!("DWC2 init: {e:?}"));
    }
    let _ = writeln!(con, "net: USB1 host up, waiting for a device");
    let address = DeviceAddress::new(1).unwrap_or(DeviceAddress::DEFAULT);
    let dev = loop {
        match host.connect(address, CONNECT_TIMEOUT_MS) {
            Ok(dev) => break dev,
            Err(e) => log_retry(con, e),
        }
    };
    let _ = writeln!(
        con,
        "net: USB device {:04x}:{:04x} ({:?} speed)",
        dev.vendor_id(),
        dev.product_id(),
        dev.speed
    );
    match identify(&dev) {
        Some(Nic::Rtl8152) => match Rtl8152::probe(host, &dev) {
            Ok(nic) => serve_supervised(con, "RTL8152", Supervisor::new(nic)),
            Err(e) => stop(con, format_args!("RTL8152: {e:?}")),
        },
        Some(Nic::CdcEcm) => match cdc_ecm::probe(&mut host, &dev) {
            Ok(ecm) => serve_supervised(con, "CDC-ECM", Supervisor::new(CdcEcm::new(host, ecm))),
            Err(e) => stop(con, format_args!("CDC-ECM: {e:?}")),
        },
        None => stop(con, format_args!("no driver for this device")),
    }
}

fn log_retry(con: &mut Uart<ConsoleRegs>, e: impl core::fmt::Debug) {
    let _ = writeln!(con, "net: no device yet ({e:?}), retrying");
}

fn stop(con: &mut Uart<ConsoleRegs>, why: core::fmt::Arguments<'_>) -> ! {
    let _ = writeln!(con, "net: bring-up stopped: {why}");
    crate::rt::halt(Err(4))
}

/// Serves over a NIC that may be unplugged and plugged again: each round the supervisor
/// watches the root port and brings a replugged NIC back. The address goes with the device
/// (as lwIP's `netif_remove` takes it) and DHCP asks for one again once the device is back.
fn serve_supervised<N: HotPlug + NetDevice>(
    con: &mut Uart<ConsoleRegs>,
    kind: &str,
    nic: Supervisor<N>,
) -> ! {
    let mut service = start(con, kind, nic);
    loop {
        let now = now_us();
        if let Some(event) = service.stack_mut().device_mut().poll(now / 1000) {
            let _ = writeln!(con, "net: {}", LinkEventLine(event));
            if matches!(event, LinkEvent::DeviceLost | LinkEvent::DeviceBack) {
                service.stack_mut().start_dhcp();
            }
        }
        let _ = service.step(now, con);
    }
}

/// The stack's secret from the TRNG, after its start-up health test.
fn secret() -> Result<Seed, HealthError> {
    // SAFETY: the PUFrt block's registers (through `cfg`), used only here.
    let regs = unsafe { Mmio::new(trng::BASE, trng::LEN) };
    let mut bytes = [0u8; 32];
    Trng::new(regs)?.fill(&mut bytes)?;
    Ok(Seed::from_bytes(bytes))
}

/// The network service over `nic`, started (or the bring-up stopped with the reason).
fn start<D: NetDevice>(con: &mut Uart<ConsoleRegs>, kind: &str, nic: D) -> Service<'static, D> {
    let mac = nic.mac();
    let _ = writeln!(con, "net: {kind} MAC {mac:02x?}");
    let seed = match secret() {
        Ok(seed) => seed,
        Err(e) => stop(
            con,
            format_args!("TRNG: {e:?}; not starting the network with a guessable seed"),
        ),
    };
    let service = match Service::start(nic, STORAGE.parts(), Addressing::Dhcp, seed, ECHO, now_us())
    {
        Ok(service) => service,
        Err(e) => stop(con, format_args!("network service: {e:?}")),
    };
    let _ = match ECHO {
        Echo::Tcp => writeln!(con, "net: DHCP started; echo on TCP port {ECHO_PORT}"),
        Echo::Off => writeln!(con, "net: DHCP started; no listening service"),
    };
    service
}
