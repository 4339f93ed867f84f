//! `smoltcp::phy::Device` for [`CdcEcm`].
//!
//! Backpressure instead of drops (as embassy-net's drivers do): a transmit token exists only
//! while the transmit slot is free and the link is neither down nor gone, and a receive token is handed out
//! only together with such a transmit token. A frame given to a transmit token is either handed
//! to the controller or counted in [`Counters::tx_dropped`] with a log line.

use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

use super::{CdcEcm, LinkState, TxSlot, MAX_FRAME};
use crate::eth::driver::Counters;
use crate::usb::{Pipe, UsbHost};

/// Receive token: the frame taken out of the receive slot (counted as handed up).
pub struct RxToken<'a> {
    frame: &'a [u8],
}

/// Transmit token: room in the transmit slot.
pub struct TxToken<'a, H: UsbHost> {
    host: &'a mut H,
    pipe: &'a Pipe,
    slot: &'a mut TxSlot,
    stats: &'a mut Counters,
    link: &'a mut LinkState,
}

impl phy::RxToken for RxToken<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.frame)
    }
}

impl<H: UsbHost> phy::TxToken for TxToken<'_, H> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        // smoltcp asks for at most capabilities().max_transmission_unit == MAX_FRAME bytes.
        let fits = len <= MAX_FRAME;
        let r = f(&mut self.slot.buf[..len.min(MAX_FRAME)]);
        if fits {
            self.slot.pending = len;
            if self.slot.flush(self.host, self.pipe, self.stats).is_err() {
                self.link.set_gone();
            }
        } else {
            log::error!("cdc-ecm: frame of {len} bytes exceeds the MTU; not sent");
            self.stats.tx_dropped += 1;
        }
        r
    }
}

impl<H: UsbHost> phy::Device for CdcEcm<H> {
    type RxToken<'a>
        = RxToken<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = TxToken<'a, H>
    where
        Self: 'a;

    fn receive(&mut self, _timestamp: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        self.poll_notify();
        if !self.tx_ready() || !self.fill_rx() {
            return None;
        }
        let rx = RxToken {
            frame: self.rx.take(&mut self.stats),
        };
        let tx = TxToken {
            host: &mut self.host,
            pipe: &self.bulk_out,
            slot: &mut self.tx,
            stats: &mut self.stats,
            link: &mut self.link,
        };
        Some((rx, tx))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<Self::TxToken<'_>> {
        if !self.tx_ready() {
            return None;
        }
        Some(TxToken {
            host: &mut self.host,
            pipe: &self.bulk_out,
            slot: &mut self.tx,
            stats: &mut self.stats,
            link: &mut self.link,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = MAX_FRAME;
        // No burst limit: smoltcp uses it only to clamp the TCP window it advertises to
        // `max_burst_size` segments, and one receive slot would make that one segment, so peers
        // would send one segment per round trip. The device holds the frames it receives until
        // the host reads them (USB bulk IN is flow-controlled by NAK), as Linux `cdc_ether`
        // relies on; what overflows the device's buffer is lost as on any NIC, and TCP recovers.
        caps.max_burst_size = None;
        caps
    }
}
