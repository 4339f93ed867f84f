//! The NIC on the root port, whichever of the supported drivers runs it, as one smoltcp
//! [`Device`]: the boards' RTL8152, or a CDC-ECM function (e.g. an LTE modem), as the firmware's
//! bring-up supports.

use k230_hal::eth::cdc_ecm::{CdcEcm, LinkState};
use k230_hal::eth::rtl8152::Rtl8152;
use k230_hal::usb::UsbHost;
use smoltcp::phy::{self, Device, DeviceCapabilities, PacketMeta};
use smoltcp::time::Instant;

/// A NIC driver over USB host `H`.
// It lives in one static (`net::NIC`), so the RTL8152's frame buffers are no waste for the
// smaller CDC-ECM driver, and boxing would need a heap the library does not have.
#[allow(clippy::large_enum_variant)]
pub enum Nic<H: UsbHost> {
    /// Realtek RTL8152.
    Rtl8152(Rtl8152<H>),
    /// USB CDC Ethernet Control Model.
    CdcEcm(CdcEcm<H>),
}

impl<H: UsbHost> Nic<H> {
    /// The station address.
    pub fn mac(&self) -> [u8; 6] {
        match self {
            Nic::Rtl8152(nic) => nic.mac_address(),
            Nic::CdcEcm(nic) => nic.mac(),
        }
    }

    /// Whether the link has carrier (a CDC-ECM function that never reported is taken as up).
    pub fn link_up(&self) -> bool {
        match self {
            Nic::Rtl8152(nic) => nic.link_up(),
            Nic::CdcEcm(nic) => nic.link() != LinkState::Down,
        }
    }
}

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
