//! Bare-metal test image for QEMU's raspi3b machine.
//!
//! It runs our unmodified DWC2 host driver (`k230_hal::usb::dwc2`) against QEMU's independent
//! DWC2 model (`hw/usb/hcd-dwc2.c`), our CDC-ECM driver against QEMU's `usb-net`
//! (`hw/usb/dev-network.c`), after [`checks`] of driver paths CDC-ECM does not use, and the
//! `netstack` stack over it: static address [`ADDRESS`],
//! answering ping and echoing TCP on port [`ECHO_PORT`]. Given QEMU's `usb-storage` instead, it
//! runs the high-speed [`storage`] check. It reports on the PL011 console in
//! `qemu-usb-test:` lines that `tests/tests/qemu_usb.rs` checks.
#![no_std]
#![no_main]

mod boot;
mod checks;
mod console;
mod echo;
mod storage;
mod timer;

use core::net::Ipv4Addr;
use core::panic::PanicInfo;

use k230_hal::eth::cdc_ecm::{self, CdcEcm, EcmDevice};
use k230_hal::eth::probe::{self, Nic};
use k230_hal::reg::dma::{Coherent, IdentityDma};
use k230_hal::reg::Mmio;
use k230_hal::usb::dwc2::{Dwc2Host, Dwc2Memory};
use k230_hal::usb::{DeviceAddress, UsbDevice, UsbError};

/// The DWC2 core of the BCM2837 (QEMU `hw/arm/bcm2835_peripherals.c`: USB_OTG_OFFSET 0x980000
/// from the 0x3F00_0000 peripheral base), with its 0x11000-byte window (`hcd-dwc2.h`).
const DWC2_BASE: usize = 0x3F98_0000;
const DWC2_LEN: usize = 0x1_1000;
/// The image's address on the test's TAP network (TEST-NET-1, inside the test's namespace).
pub const ADDRESS: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
/// TCP echo port.
pub const ECHO_PORT: u16 = 7;
/// How long to wait for the device on the root port.
const CONNECT_TIMEOUT_MS: u32 = 2_000;
/// idVendor and idProduct of QEMU's `usb-storage` (`hw/usb/dev-storage.c`).
const QEMU_USB_STORAGE: (u16, u16) = (0x46f4, 0x0001);
/// The device's bus address.
const ADDRESS_ON_BUS: u8 = 1;

/// Our DWC2 driver on raspi3b: MMIO registers, identity DMA without cache maintenance.
pub type Host = Dwc2Host<Mmio, IdentityDma<Coherent>, timer::Delay>;

static LOGGER: console::Logger = console::Logger;

/// DMA memory of the DWC2 driver. With the MMU off, all memory is Device-nGnRnE, so the CPU and
/// QEMU's DMA agree without cache maintenance ([`Coherent`]).
static mut DWC2_MEMORY: Dwc2Memory = Dwc2Memory::new();

/// Prints the enumerated device's descriptors.
fn print_device(dev: &UsbDevice) {
    println!(
        "qemu-usb-test: device {:04x}:{:04x} at address {} ({:?} speed), {} configuration(s)",
        dev.vendor_id(),
        dev.product_id(),
        dev.address.get(),
        dev.speed,
        dev.device_descriptor[17]
    );
    println!(
        "qemu-usb-test: device descriptor {:02x?}",
        dev.device_descriptor
    );
    for chunk in dev.config().chunks(32) {
        println!("qemu-usb-test: config {chunk:02x?}");
    }
}

#[no_mangle]
extern "C" fn main() -> ! {
    // SAFETY: one core, no interrupts: nothing else touches the logger while it is set.
    unsafe { log::set_logger_racy(&LOGGER) }.ok();
    log::set_max_level(log::LevelFilter::Info);
    println!(
        "qemu-usb-test: boot at EL{}, t={} us",
        boot::current_el(),
        timer::now_us()
    );

    // SAFETY: the DWC2 window of raspi3b, used only by this driver.
    let regs = unsafe { Mmio::new(DWC2_BASE, DWC2_LEN) };
    // SAFETY: the only reference ever made to DWC2_MEMORY; main never returns.
    let memory = unsafe { &mut *core::ptr::addr_of_mut!(DWC2_MEMORY) };
    let mut host = Dwc2Host::new(regs, IdentityDma::new(Coherent), timer::Delay, memory);
    if let Err(e) = host.init() {
        fail(format_args!("dwc2 init: {e:?}"));
    }
    println!("qemu-usb-test: dwc2 init ok");
    let dev = match enumerate(&mut host) {
        Ok(dev) => dev,
        Err(e) => fail(format_args!("enumeration: {e:?}")),
    };
    if (dev.vendor_id(), dev.product_id()) == QEMU_USB_STORAGE {
        match storage::run(&mut host, &dev) {
            Ok(()) => println!("qemu-usb-test: DONE"),
            Err(e) => fail(format_args!("storage: {e}")),
        }
        halt()
    }
    match probe::identify(&dev) {
        Some(Nic::CdcEcm) => println!("qemu-usb-test: nic CdcEcm"),
        other => fail(format_args!("no CDC-ECM NIC: {other:?}")),
    }
    if let Err(e) = checks::rndis_control_and_interrupt(&mut host, dev.address) {
        fail(format_args!("driver check: {e}"));
    }
    let ecm = match bring_up(&mut host, &dev) {
        Ok(ecm) => ecm,
        Err(e) => fail(format_args!("cdc-ecm probe: {e:?}")),
    };
    echo::serve(CdcEcm::new(host, ecm))
}

/// Resets the port and enumerates the device on it, printing its descriptors.
fn enumerate(host: &mut Host) -> Result<UsbDevice, UsbError> {
    let address = DeviceAddress::new(ADDRESS_ON_BUS).unwrap_or(DeviceAddress::DEFAULT);
    let dev = host.connect(address, CONNECT_TIMEOUT_MS)?;
    print_device(&dev);
    Ok(dev)
}

/// Sets up the device's CDC-ECM function, printing what was chosen.
fn bring_up(host: &mut Host, dev: &UsbDevice) -> Result<EcmDevice, cdc_ecm::Error> {
    let ecm = cdc_ecm::probe(host, dev)?;
    println!(
        "qemu-usb-test: cdc-ecm configuration {} data interface {} alt {} mac {:02x?}",
        ecm.function.configuration,
        ecm.function.data_interface,
        ecm.function.data_alt_setting,
        ecm.mac
    );
    Ok(ecm)
}

/// Reports a failure on the console and stops.
fn fail(args: core::fmt::Arguments<'_>) -> ! {
    println!("qemu-usb-test: FAIL {args}");
    halt()
}

fn halt() -> ! {
    loop {
        // SAFETY: waiting for an event has no memory effects.
        unsafe { core::arch::asm!("wfe", options(nomem, nostack)) };
    }
}

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    println!("qemu-usb-test: PANIC {info}");
    halt()
}
