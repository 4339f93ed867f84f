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

#[cfg(test)]
mod tests {
    use super::*;
    use k230_hal::sim::dwc2_model::Dwc2Model;
    use k230_hal::sim::rtl8152::Rtl8152Model;
    use k230_hal::sim::wire::pair::pair;
    use k230_hal::sim::wire::Wire;
    use k230_hal::sim::SimHost;
    use smoltcp::phy::{RxToken as _, TxToken as _};

    const MAC: [u8; 6] = [0x02, 0x4b, 0x32, 0x33, 0x30, 0x01];
    /// Bounded number of polls for a frame to cross the simulated bus.
    const POLLS: usize = 200;

    fn frame(tag: u8) -> Vec<u8> {
        let mut frame = vec![0xff; 6];
        frame.extend_from_slice(&MAC);
        frame.extend_from_slice(&[0x88, 0xb5]);
        frame.extend((0..50).map(|i| i ^ tag));
        frame
    }

    /// The RTL8152 driver behind `Nic`, on the simulated controller, and the far end of its cable.
    fn rtl8152() -> (Nic<SimHost>, impl Wire) {
        let (board, peer) = pair(16);
        let controller = Dwc2Model::new();
        controller.attach(Box::new(Rtl8152Model::new(board, MAC)));
        let (host, device) = controller.connect_host().unwrap();
        let nic = Rtl8152::probe(host, &device).unwrap();
        // The model lives as long as its controller, which the host keeps alive.
        (Nic::Rtl8152(nic), peer)
    }

    #[test]
    fn frames_cross_the_rtl8152_through_the_enum() {
        let (mut nic, mut peer) = rtl8152();
        assert_eq!(nic.mac(), MAC);
        assert!(nic.link_up(), "the model starts cabled");
        assert!(nic.capabilities().max_transmission_unit >= 1514);
        let now = Instant::from_millis(0);

        let sent = frame(1);
        let token = nic.transmit(now).expect("room to send");
        token.consume(sent.len(), |buf| buf.copy_from_slice(&sent));
        let mut on_wire = None;
        for _ in 0..POLLS {
            if let Some(frame) = peer.recv().unwrap() {
                on_wire = Some(frame);
                break;
            }
            let _ = nic.receive(now);
        }
        assert_eq!(
            on_wire.as_deref().map(|f| &f[..sent.len()]),
            Some(&sent[..])
        );

        let back = frame(2);
        peer.send(&back).unwrap();
        let mut received = None;
        for _ in 0..POLLS {
            if let Some((rx, _tx)) = nic.receive(now) {
                received = Some(rx.consume(|data| data.to_vec()));
                break;
            }
        }
        assert_eq!(received, Some(back));
    }
}
