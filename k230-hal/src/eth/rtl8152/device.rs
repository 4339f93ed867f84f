//! `smoltcp::phy::Device` for the RTL8152.
//!
//! As in embassy-net's drivers, an RX token is only handed out together with a TX token that is
//! sure to have room, and `transmit` returns `None` while the TX batch is full and the bulk-OUT
//! pipe is busy: the stack sees backpressure instead of silent drops. With feature `large-send`,
//! a TX token the stack gives a segmentation size (`PacketMeta::segmentation_offload_size`)
//! sends its frame as the chip's large send ([`super::offload::large_send_request`]).

use super::tx::{self, Sending};
use super::Rtl8152;
use crate::eth::driver::Counters;
use crate::usb::{Pipe, UsbHost};
use smoltcp::phy::{Checksum, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

/// A received frame, borrowed from the driver's receive buffer.
pub struct RxToken<'a> {
    frame: &'a [u8],
}

impl smoltcp::phy::RxToken for RxToken<'_> {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        f(self.frame)
    }
}

/// Room for one frame in the TX batch.
pub struct TxToken<'a, H: UsbHost> {
    host: &'a mut H,
    pipe: &'a Pipe,
    queue: &'a mut tx::TxQueue,
    stats: &'a mut Counters,
    sending: Sending,
}

impl<'a, H: UsbHost> TxToken<'a, H> {
    fn new(
        host: &'a mut H,
        pipe: &'a Pipe,
        queue: &'a mut tx::TxQueue,
        stats: &'a mut Counters,
    ) -> Self {
        Self {
            host,
            pipe,
            queue,
            stats,
            sending: Sending::Whole,
        }
    }
}

impl<H: UsbHost> smoltcp::phy::TxToken for TxToken<'_, H> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        // The token was only made with room for the largest frame; a longer one (smoltcp keeps
        // frames within the MTU and segmentation size we report) is built in scratch space and
        // counted as dropped.
        let mut slot = match self.queue.reserve(len, self.sending) {
            Ok(slot) => slot,
            Err(e) => {
                log::warn!("rtl8152: {len}-byte frame not sent: {e:?}");
                self.stats.tx_dropped += 1;
                let mut scratch = [0u8; tx::MAX_FRAME];
                return f(&mut scratch[..len.min(tx::MAX_FRAME)]);
            }
        };
        let r = f(slot.frame());
        if slot.commit().is_err() {
            log::warn!("rtl8152: {len}-byte large send is no IPv4 TCP frame to segment: dropped");
            self.stats.tx_dropped += 1;
        }
        self.queue.flush(self.host, self.pipe, self.stats);
        r
    }

    /// A segmentation size asks for the chip's large send.
    #[cfg(feature = "large-send")]
    fn set_meta(&mut self, meta: smoltcp::phy::PacketMeta) {
        self.sending = match meta.segmentation_offload_size {
            Some(mss) => Sending::LargeSend(mss.get()),
            None => Sending::Whole,
        };
    }
}

impl<H: UsbHost> Device for Rtl8152<H> {
    type RxToken<'a>
        = RxToken<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = TxToken<'a, H>
    where
        Self: 'a;

    fn receive(&mut self, _timestamp: Instant) -> Option<(RxToken<'_>, TxToken<'_, H>)> {
        self.poll();
        if !self.tx.has_room() {
            return None;
        }
        let range = self.next_rx()?;
        let Rtl8152 {
            host,
            pipes,
            rx,
            tx,
            stats,
            ..
        } = self;
        Some((
            RxToken {
                frame: &rx.buf[range],
            },
            TxToken::new(host, &pipes.bulk_out, tx, stats),
        ))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<TxToken<'_, H>> {
        self.tx
            .flush(&mut self.host, &self.pipes.bulk_out, &mut self.stats);
        if !self.tx.has_room() {
            return None;
        }
        Some(TxToken::new(
            &mut self.host,
            &self.pipes.bulk_out,
            &mut self.tx,
            &mut self.stats,
        ))
    }

    /// TCP and UDP checksums are the chip's ([`super::offload`]): computed on the way out,
    /// checked on the way in (by the driver where the chip did not). With feature `large-send`,
    /// IPv4 TCP frames up to [`tx::MAX_LARGE_SEND`] bytes are the chip's to segment.
    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.checksum.tcp = Checksum::None;
        caps.checksum.udp = Checksum::None;
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = tx::MAX_FRAME;
        caps.max_burst_size = Some(tx::MAX_BURST);
        #[cfg(feature = "large-send")]
        {
            caps.segmentation.tcpv4 = core::num::NonZeroUsize::new(tx::MAX_LARGE_SEND);
        }
        caps
    }
}
