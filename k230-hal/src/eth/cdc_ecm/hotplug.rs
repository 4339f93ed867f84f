//! Unplug and replug of a CDC-ECM function, for the [`Supervisor`](crate::eth::supervisor).
//!
//! The station address stays the one the first device reported. A CDC-ECM function's address
//! comes from its iMACAddress string and the host cannot change it: ECM 1.2 §6.2 defines no
//! request to set it (only the multicast, power-management and packet filters and the
//! statistics), unlike the RTL8152 whose PLA_IDR is writable. When a device reporting another
//! address is plugged in, the driver keeps ours (the network stack sends and answers ARP with
//! it, and its leases and neighbours' caches name it) and turns on the function's promiscuous
//! packet filter (ECM 1.2 Table 8, bit 0, as Linux `usbnet_cdc_update_filter` does for
//! IFF_PROMISC), so frames addressed to us still come up; the stack drops the others. A
//! function that stalls the filter request gets no such help (logged): most ECM functions
//! (USB gadgets, modems routing to their host) forward by ARP, not by their own address.

use super::{probe, set_packet_filter, CdcEcm, Error};
use super::{FILTER_ALL_MULTICAST, FILTER_BROADCAST, FILTER_DIRECTED, FILTER_PROMISCUOUS};
use crate::eth::probe::{identify, NicKind};
use crate::eth::supervisor::{HotPlug, REATTACH_TIMEOUT_MS};
use crate::usb::{PortEvent, RootPort, UsbDevice, UsbHost};

impl<H: UsbHost> CdcEcm<H> {
    /// The device went away: the frame waiting to be sent and the one in flight are dropped
    /// (counted in [`Counters::tx_dropped`](crate::eth::driver::Counters)), a received one not
    /// handed up yet is dropped (counted in `rx_dropped`), and nothing is polled until
    /// [`Self::restart`].
    pub fn forget_device(&mut self) {
        self.link.set_gone();
        for len in [self.tx.pending, self.tx.in_flight] {
            if len != 0 {
                log::warn!("cdc-ecm: frame of {len} bytes dropped: device gone");
                self.stats.tx_dropped += 1;
            }
        }
        self.tx.pending = 0;
        self.tx.in_flight = 0;
        self.rx.discard(&mut self.stats);
    }

    /// Brings the function up again after it was unplugged and re-enumerated as `device`:
    /// the same steps as [`probe`], keeping this driver's MAC address (see the
    /// [module docs](self) for a device that reports another one).
    pub fn restart(&mut self, device: &UsbDevice) -> Result<(), Error> {
        self.forget_device();
        if identify(device) != Some(NicKind::CdcEcm) {
            return Err(Error::NotEcm);
        }
        let mut function = probe(&mut self.host, device)?;
        if function.mac != self.mac {
            log::warn!(
                "cdc-ecm: device reports MAC {:02x?}, keeping {:02x?} (promiscuous filter)",
                function.mac,
                self.mac
            );
            set_packet_filter(
                &mut self.host,
                function.address,
                &function.function,
                FILTER_PROMISCUOUS | FILTER_DIRECTED | FILTER_BROADCAST | FILTER_ALL_MULTICAST,
            )?;
            function.mac = self.mac;
        }
        self.rebind(function);
        Ok(())
    }
}

/// Unplug and replug: the root port of the host the driver runs on, a fresh probe of the
/// re-enumerated device at the same address.
impl<H: UsbHost + RootPort> HotPlug for CdcEcm<H> {
    type Error = Error;

    /// A bulk-IN transfer the controller completed since the last receive holds a frame the
    /// device sent; if the port now shows the device gone, the host's abort would discard it
    /// uncounted. So a transfer in flight is collected first: its frame is handed up if the
    /// device stays, counted as dropped by [`HotPlug::detached`] if it went.
    fn poll_port(&mut self) -> Option<PortEvent> {
        if self.rx.waiting {
            self.fill_rx();
        }
        self.host.poll_port()
    }

    fn detached(&mut self) {
        self.forget_device();
    }

    fn reattach(&mut self) -> Result<(), Error> {
        let device = self
            .host
            .connect(self.bulk_in.device, REATTACH_TIMEOUT_MS)?;
        self.restart(&device)
    }

    fn maintain(&mut self) {
        self.poll();
    }
}
