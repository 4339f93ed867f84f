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

use k230_board::bring_up;
use k230_board::description::QEMU_RASPI3B;
use k230_hal::eth::driver::Driver;
use k230_hal::eth::nic::{Nic, NIC_ADDRESS};
use k230_hal::eth::probe::{self, NicKind};
use k230_hal::reg::dma::{Coherent, IdentityDma};
use k230_hal::usb::dwc2::Dwc2Memory;
use k230_hal::usb::{UsbDevice, UsbError};

/// The image's address on the test's TAP network (TEST-NET-1, inside the test's namespace).
pub const ADDRESS: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
/// TCP echo port.
pub const ECHO_PORT: u16 = 7;
/// idVendor and idProduct of QEMU's `usb-storage` (`hw/usb/dev-storage.c`).
const QEMU_USB_STORAGE: (u16, u16) = (0x46f4, 0x0001);

/// Our DWC2 driver on raspi3b (the board assembly's description [`QEMU_RASPI3B`]): MMIO
/// registers, identity DMA without cache maintenance.
pub type Host = bring_up::Host<IdentityDma<Coherent>, timer::Delay>;

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

    // SAFETY: the only reference ever made to DWC2_MEMORY; main never returns.
    let memory = unsafe { &mut *core::ptr::addr_of_mut!(DWC2_MEMORY) };
    // SAFETY: the DWC2 window of raspi3b, used only by this driver.
    let host = unsafe {
        bring_up::host(
            &QEMU_RASPI3B,
            IdentityDma::new(Coherent),
            timer::Delay,
            memory,
        )
    };
    let mut host = match host {
        Ok(host) => host,
        Err(e) => fail(format_args!("dwc2 init: {e:?}")),
    };
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
        Some(NicKind::CdcEcm) => println!("qemu-usb-test: nic CdcEcm"),
        other => fail(format_args!("no CDC-ECM NIC: {other:?}")),
    }
    if let Err(e) = checks::rndis_control_and_interrupt(&mut host, dev.address) {
        fail(format_args!("driver check: {e}"));
    }
    // The board assembly's driver choice and bring-up (cdc-ecm logs the configuration picked).
    let nic = match Nic::probe(host, &dev) {
        Ok(nic) => nic,
        Err(e) => fail(format_args!("cdc-ecm probe: {e:?}")),
    };
    if let Nic::CdcEcm(ecm) = &nic {
        let f = ecm.function();
        println!(
            "qemu-usb-test: cdc-ecm configuration {} data interface {} alt {} mac {:02x?}",
            f.configuration,
            f.data_interface,
            f.data_alt_setting,
            ecm.mac()
        );
    }
    echo::serve(nic)
}

/// Resets the port and enumerates the device on it, printing its descriptors.
fn enumerate(host: &mut Host) -> Result<UsbDevice, UsbError> {
    let dev = host.connect(NIC_ADDRESS, QEMU_RASPI3B.connect_timeout_ms)?;
    print_device(&dev);
    Ok(dev)
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
