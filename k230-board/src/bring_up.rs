//! A board's NIC brought up from its [`UsbNic`] description: VBUS off (where the board
//! switches it), the controller out of reset with its PHY in host mode, the DWC2 core in host
//! mode, VBUS on 100 ms later, then the device on the root port and its driver
//! ([`Nic::attach`]).

use embedded_hal::delay::DelayNs;
use k230_hal::eth::nic::{self, Nic};
use k230_hal::gpio::{self, Gpio};
use k230_hal::reg::dma::Dma;
use k230_hal::reg::Mmio;
use k230_hal::sysctl::{k230, Sysctl, SysctlError};
use k230_hal::usb::dwc2::{Dwc2Host, Dwc2Memory, InitError};

use crate::description::{UsbNic, UsbReset};

/// The DWC2 host driver on a board's registers, with DMA `D` and delays `T`.
pub type Host<D, T> = Dwc2Host<Mmio, D, T>;

/// Why a board's NIC did not come up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The controller's reset did not report done.
    UsbReset(SysctlError),
    /// The DWC2 core did not initialise in host mode.
    Dwc2Init(InitError),
    /// No NIC on the root port: no device enumerated, none supported, or its driver failed.
    Nic(nic::Error),
}

/// The board's USB host controller, out of reset and initialised in host mode, nothing
/// enumerated yet. Where the board switches the NIC's VBUS, the controller starts with VBUS off
/// and VBUS comes on 100 ms after, as the vendor does at boot
/// ([`k230_hal::variant::Vbus::around`]): a NIC still powered from before a reset keeps its old
/// USB address and does not enumerate.
///
/// # Safety
/// The registers `usb` names (and, for [`UsbReset::K230`], the K230's reset and USB PHY control
/// blocks; with a [`UsbNic::vbus`], the K230's GPIO controllers and IOMUX) must be mapped at their
/// physical addresses and used by nothing else.
pub unsafe fn host<D: Dma, T: DelayNs + Clone>(
    usb: &UsbNic,
    dma: D,
    delay: T,
    memory: &'static mut Dwc2Memory,
) -> Result<Host<D, T>, Error> {
    let Some(vbus) = usb.vbus else {
        // SAFETY: per the caller.
        return unsafe { start(usb, dma, delay, memory) };
    };
    // SAFETY: the K230's GPIO controllers and IOMUX, per the caller used only here.
    let mut gpio = unsafe {
        Gpio::new(
            Mmio::new(gpio::k230::GPIO0_BASE, gpio::k230::GPIO_LEN),
            Mmio::new(gpio::k230::GPIO1_BASE, gpio::k230::GPIO_LEN),
            Mmio::new(gpio::k230::IOMUX_BASE, gpio::k230::IOMUX_LEN),
        )
    };
    let mut wait = delay.clone();
    // SAFETY: per the caller.
    let host = vbus.around(&mut gpio, &mut wait, || unsafe {
        start(usb, dma, delay, memory)
    });
    log::info!("board: NIC VBUS power-cycled on GPIO{}", vbus.pin.number());
    host
}

/// The controller out of reset with its PHY in host mode, then the DWC2 core in host mode.
///
/// # Safety
/// As for [`host`].
unsafe fn start<D: Dma, T: DelayNs + Clone>(
    usb: &UsbNic,
    dma: D,
    delay: T,
    memory: &'static mut Dwc2Memory,
) -> Result<Host<D, T>, Error> {
    if let UsbReset::K230(port) = usb.reset {
        // SAFETY: the K230's reset and USB PHY control blocks, per the caller used only here.
        let mut sysctl = unsafe {
            Sysctl::new(
                Mmio::new(k230::SYSCTL_RST_BASE, k230::SYSCTL_RST_LEN),
                Mmio::new(k230::USB_PHY_CTL_BASE, k230::USB_PHY_CTL_LEN),
            )
        };
        sysctl
            .usb_host_init(port, &mut delay.clone())
            .map_err(Error::UsbReset)?;
    }
    // SAFETY: the controller's register window, per the caller used only by this driver.
    let regs = unsafe { Mmio::new(usb.dwc2_base, usb.dwc2_len) };
    let mut host = Dwc2Host::new(regs, dma, delay, memory);
    host.init().map_err(Error::Dwc2Init)?;
    Ok(host)
}

/// The board's NIC: [`host`], then the device on the root port (waiting up to the description's
/// connect timeout) with the driver that applies to it.
///
/// # Safety
/// As for [`host`].
pub unsafe fn bring_up<D: Dma, T: DelayNs + Clone>(
    usb: &UsbNic,
    dma: D,
    delay: T,
    memory: &'static mut Dwc2Memory,
) -> Result<Nic<Host<D, T>>, Error> {
    // SAFETY: per the caller.
    let host = unsafe { host(usb, dma, delay, memory) }?;
    Nic::attach(host, usb.connect_timeout_ms).map_err(Error::Nic)
}
