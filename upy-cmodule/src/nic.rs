//! The NIC on the root port, whichever of the supported drivers runs it, as one smoltcp
//! [`Device`]: the boards' RTL8152, or a CDC-ECM function (e.g. an LTE modem), as the firmware's
//! bring-up supports.

use k230_hal::eth::cdc_ecm::{self, CdcEcm};
use k230_hal::eth::rtl8152::{self, Rtl8152};
use k230_hal::eth::supervisor::HotPlug;
use k230_hal::usb::{PortEvent, RootPort, UsbHost};
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
}

/// Why a replugged device did not come up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BringUpError {
    /// The RTL8152 driver's restart failed.
    Rtl8152(rtl8152::Error),
    /// The CDC-ECM driver's restart failed.
    CdcEcm(cdc_ecm::Error),
}

/// Unplug and replug, by the driver that runs: a replugged device is brought up by the same
/// driver (a device of the other kind fails the bring-up; the supervisor then waits for the
/// next plug).
impl<H: UsbHost + RootPort> HotPlug for Nic<H> {
    type Error = BringUpError;

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

    fn reattach(&mut self) -> Result<(), BringUpError> {
        match self {
            Nic::Rtl8152(nic) => nic.reattach().map_err(BringUpError::Rtl8152),
            Nic::CdcEcm(nic) => nic.reattach().map_err(BringUpError::CdcEcm),
        }
    }

    /// Carrier (a CDC-ECM function that never reported is taken as up).
    fn link_up(&self) -> bool {
        match self {
            Nic::Rtl8152(nic) => HotPlug::link_up(nic),
            Nic::CdcEcm(nic) => HotPlug::link_up(nic),
        }
    }

    fn maintain(&mut self) {
        match self {
            Nic::Rtl8152(nic) => nic.maintain(),
            Nic::CdcEcm(nic) => nic.maintain(),
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
    use k230_hal::eth::supervisor::{LinkEvent, State, Supervisor};
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

    /// The RTL8152 driver behind `Nic`, on the simulated controller (kept to unplug the NIC),
    /// and the far end of its cable.
    fn rtl8152() -> (Nic<SimHost>, impl Wire, Dwc2Model) {
        let (board, peer) = pair(16);
        let controller = Dwc2Model::new();
        controller.attach(Box::new(Rtl8152Model::new(board, MAC)));
        let (host, device) = controller.connect_host().unwrap();
        let nic = Rtl8152::probe(host, &device).unwrap();
        (Nic::Rtl8152(nic), peer, controller)
    }

    /// Sends a frame out through `nic` and back in from `peer`, both compared.
    fn frames_cross(nic: &mut impl Device, peer: &mut impl Wire, tag: u8) {
        let now = Instant::from_millis(0);
        let sent = frame(tag);
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

        let back = frame(tag.wrapping_add(1));
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

    #[test]
    fn frames_cross_the_rtl8152_through_the_enum() {
        let (mut nic, mut peer, _controller) = rtl8152();
        assert_eq!(nic.mac(), MAC);
        assert!(HotPlug::link_up(&nic), "the model starts cabled");
        assert!(nic.capabilities().max_transmission_unit >= 1514);
        frames_cross(&mut nic, &mut peer, 1);
    }

    /// Polls the supervisor (a bounded number of rounds, 1 ms apart) until it reports.
    fn next_event(s: &mut Supervisor<Nic<SimHost>>, now_ms: &mut u64) -> Option<LinkEvent> {
        for _ in 0..POLLS {
            *now_ms += 1;
            if let Some(event) = s.poll(*now_ms) {
                return Some(event);
            }
        }
        None
    }

    #[test]
    fn an_unplugged_and_replugged_rtl8152_comes_back_with_its_mac_and_frames_flow() {
        let (nic, mut peer, controller) = rtl8152();
        let mut s = Supervisor::new(nic);
        let mut now_ms = 0;
        frames_cross(&mut s, &mut peer, 1);

        let model = controller.detach().expect("the NIC was plugged in");
        assert_eq!(next_event(&mut s, &mut now_ms), Some(LinkEvent::DeviceLost));
        assert_eq!(s.state(), State::Detached);
        assert!(!s.carrier());
        let t = Instant::from_millis(0);
        assert!(
            s.transmit(t).is_none(),
            "no tokens while the device is gone"
        );
        assert!(s.receive(t).is_none());
        assert_eq!(next_event(&mut s, &mut now_ms), None, "reported once");

        controller.attach(model);
        assert_eq!(next_event(&mut s, &mut now_ms), Some(LinkEvent::DeviceBack));
        assert_eq!(s.state(), State::Running);
        assert_eq!(s.nic().mac(), MAC);
        assert!(s.carrier());
        assert_eq!(s.losses(), 1);
        frames_cross(&mut s, &mut peer, 3);
    }
}
