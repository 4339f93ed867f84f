//! The NIC on a root port, whichever of this crate's drivers runs it: the boards' RTL8152, or a
//! CDC-ECM function (e.g. an LTE modem, QEMU's `usb-net`).
//!
//! [`Nic::probe`] is the one place that turns an enumerated device into a running driver
//! ([`identify`], then the driver's probe); every board (firmware, the MicroPython module, the
//! QEMU test image, the simulated board) brings its NIC up through it. [`Nic`] is a [`Driver`], a
//! [`HotPlug`] NIC for the [`Supervisor`](super::supervisor::Supervisor), and with feature
//! `smoltcp` one `smoltcp::phy::Device`.

use super::cdc_ecm::{self, CdcEcm};
use super::driver::{Counters, Driver, LinkState};
use super::probe::{identify, NicKind};
use super::rtl8152::{self, Rtl8152};
use super::supervisor::HotPlug;
use crate::usb::{DeviceAddress, PortEvent, RootPort, UsbDevice, UsbError, UsbHost};

/// The bus address a board gives its NIC (the only device on its root port).
pub const NIC_ADDRESS: DeviceAddress = match DeviceAddress::new(1) {
    Some(address) => address,
    None => DeviceAddress::DEFAULT,
};

/// A NIC driver over USB host `H`.
// A board keeps one in a static, so the RTL8152's frame buffers are no waste for the smaller
// CDC-ECM driver, and boxing would need a heap the firmware does not have.
#[allow(clippy::large_enum_variant)]
pub enum Nic<H: UsbHost> {
    /// Realtek RTL8152.
    Rtl8152(Rtl8152<H>),
    /// USB CDC Ethernet Control Model.
    CdcEcm(CdcEcm<H>),
}

/// Why a device did not come up as a NIC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// No device enumerated on the root port (within the timeout, or enumeration failed).
    NoDevice(UsbError),
    /// No driver of this crate applies to the device ([`identify`]).
    Unsupported,
    /// The RTL8152 driver's probe or restart failed.
    Rtl8152(rtl8152::Error),
    /// The CDC-ECM driver's probe or restart failed.
    CdcEcm(cdc_ecm::Error),
}

impl<H: UsbHost + RootPort> Nic<H> {
    /// The NIC on `host`'s root port: waits up to `timeout_ms` for a device, enumerates it at
    /// [`NIC_ADDRESS`] and starts the driver [`identify`] picks ([`Self::probe`]).
    pub fn attach(mut host: H, timeout_ms: u32) -> Result<Self, Error> {
        let device = host
            .connect(NIC_ADDRESS, timeout_ms)
            .map_err(Error::NoDevice)?;
        Self::probe(host, &device)
    }
}

impl<H: UsbHost> Nic<H> {
    /// Takes over the enumerated `device` on `host` with the driver [`identify`] picks.
    pub fn probe(mut host: H, device: &UsbDevice) -> Result<Self, Error> {
        match identify(device) {
            Some(NicKind::Rtl8152) => Rtl8152::probe(host, device)
                .map(Nic::Rtl8152)
                .map_err(Error::Rtl8152),
            Some(NicKind::CdcEcm) => {
                let function = cdc_ecm::probe(&mut host, device).map_err(Error::CdcEcm)?;
                Ok(Nic::CdcEcm(CdcEcm::new(host, function)))
            }
            None => Err(Error::Unsupported),
        }
    }

    /// Which driver runs.
    pub fn kind(&self) -> NicKind {
        match self {
            Nic::Rtl8152(_) => NicKind::Rtl8152,
            Nic::CdcEcm(_) => NicKind::CdcEcm,
        }
    }
}

impl<H: UsbHost> Driver for Nic<H> {
    fn mac(&self) -> [u8; 6] {
        match self {
            Nic::Rtl8152(nic) => nic.mac(),
            Nic::CdcEcm(nic) => nic.mac(),
        }
    }

    fn link_state(&self) -> LinkState {
        match self {
            Nic::Rtl8152(nic) => nic.link_state(),
            Nic::CdcEcm(nic) => nic.link_state(),
        }
    }

    fn counters(&self) -> Counters {
        match self {
            Nic::Rtl8152(nic) => nic.counters(),
            Nic::CdcEcm(nic) => nic.counters(),
        }
    }
}

/// Unplug and replug, by the driver that runs: a replugged device is brought up by the same
/// driver (a device of the other kind fails the bring-up; the supervisor then waits for the
/// next plug).
impl<H: UsbHost + RootPort> HotPlug for Nic<H> {
    type Error = Error;

    fn poll_port(&mut self) -> Option<PortEvent> {
        match self {
            Nic::Rtl8152(nic) => nic.poll_port(),
            Nic::CdcEcm(nic) => nic.poll_port(),
        }
    }

    fn detached(&mut self) {
        match self {
            Nic::Rtl8152(nic) => nic.detached(),
            Nic::CdcEcm(nic) => nic.detached(),
        }
    }

    fn reattach(&mut self) -> Result<(), Error> {
        match self {
            Nic::Rtl8152(nic) => nic.reattach().map_err(Error::Rtl8152),
            Nic::CdcEcm(nic) => nic.reattach().map_err(Error::CdcEcm),
        }
    }

    fn maintain(&mut self) {
        match self {
            Nic::Rtl8152(nic) => nic.maintain(),
            Nic::CdcEcm(nic) => nic.maintain(),
        }
    }
}

#[cfg(feature = "smoltcp")]
mod device {
    use super::{CdcEcm, Nic, Rtl8152};
    use crate::usb::UsbHost;
    use smoltcp::phy::{self, Device, DeviceCapabilities, PacketMeta};
    use smoltcp::time::Instant;

    /// A received frame of either driver.
    pub enum RxToken<'a, H: UsbHost + 'a> {
        /// From the RTL8152.
        Rtl8152(<Rtl8152<H> as Device>::RxToken<'a>),
        /// From the CDC-ECM function.
        CdcEcm(<CdcEcm<H> as Device>::RxToken<'a>),
    }

    /// Room for a frame to send with either driver.
    pub enum TxToken<'a, H: UsbHost + 'a> {
        /// To the RTL8152.
        Rtl8152(<Rtl8152<H> as Device>::TxToken<'a>),
        /// To the CDC-ECM function.
        CdcEcm(<CdcEcm<H> as Device>::TxToken<'a>),
    }

    impl<H: UsbHost> phy::RxToken for RxToken<'_, H> {
        fn consume<R, F>(self, f: F) -> R
        where
            F: FnOnce(&[u8]) -> R,
        {
            match self {
                RxToken::Rtl8152(token) => token.consume(f),
                RxToken::CdcEcm(token) => token.consume(f),
            }
        }

        fn meta(&self) -> PacketMeta {
            match self {
                RxToken::Rtl8152(token) => token.meta(),
                RxToken::CdcEcm(token) => token.meta(),
            }
        }
    }

    impl<H: UsbHost> phy::TxToken for TxToken<'_, H> {
        fn consume<R, F>(self, len: usize, f: F) -> R
        where
            F: FnOnce(&mut [u8]) -> R,
        {
            match self {
                TxToken::Rtl8152(token) => token.consume(len, f),
                TxToken::CdcEcm(token) => token.consume(len, f),
            }
        }

        fn set_meta(&mut self, meta: PacketMeta) {
            match self {
                TxToken::Rtl8152(token) => token.set_meta(meta),
                TxToken::CdcEcm(token) => token.set_meta(meta),
            }
        }
    }

    impl<H: UsbHost> Device for Nic<H> {
        type RxToken<'a>
            = RxToken<'a, H>
        where
            Self: 'a;
        type TxToken<'a>
            = TxToken<'a, H>
        where
            Self: 'a;

        fn receive(&mut self, now: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
            match self {
                Nic::Rtl8152(nic) => nic
                    .receive(now)
                    .map(|(rx, tx)| (RxToken::Rtl8152(rx), TxToken::Rtl8152(tx))),
                Nic::CdcEcm(nic) => nic
                    .receive(now)
                    .map(|(rx, tx)| (RxToken::CdcEcm(rx), TxToken::CdcEcm(tx))),
            }
        }

        fn transmit(&mut self, now: Instant) -> Option<Self::TxToken<'_>> {
            match self {
                Nic::Rtl8152(nic) => nic.transmit(now).map(TxToken::Rtl8152),
                Nic::CdcEcm(nic) => nic.transmit(now).map(TxToken::CdcEcm),
            }
        }

        fn capabilities(&self) -> DeviceCapabilities {
            match self {
                Nic::Rtl8152(nic) => nic.capabilities(),
                Nic::CdcEcm(nic) => nic.capabilities(),
            }
        }
    }
}

#[cfg(feature = "smoltcp")]
pub use device::{RxToken, TxToken};
