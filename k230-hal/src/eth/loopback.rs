//! A NIC whose frames loop back (smoltcp's `Loopback`), with a root port and an Ethernet cable
//! that a [`LoopbackControl`] handle unplugs, replugs and pulls while the NIC is inside a
//! supervisor and a stack (feature `loopback`). It is the firmware's self-test NIC and the one
//! hot-pluggable NIC the tests of the layers above use.

use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};

use smoltcp::phy::{Device, DeviceCapabilities, Loopback, Medium};
use smoltcp::time::Instant;

use super::driver::{Counters, Driver, LinkState};
use super::supervisor::HotPlug;
use crate::usb::PortEvent;

/// No port event pending.
const PORT_QUIET: u8 = 0;
/// [`PortEvent::Disconnected`] pending.
const PORT_DISCONNECTED: u8 = 1;
/// [`PortEvent::Connected`] pending.
const PORT_CONNECTED: u8 = 2;

/// What the handle controls and the NIC counts.
#[derive(Debug)]
struct Shared {
    port: AtomicU8,
    carrier: AtomicBool,
    fail_reattach: AtomicBool,
    rx_frames: AtomicU64,
    tx_frames: AtomicU64,
}

/// The handle on a [`LoopbackNic`].
#[derive(Clone, Debug)]
pub struct LoopbackControl(Arc<Shared>);

impl LoopbackControl {
    /// The root port reports a disconnect at its next look.
    pub fn unplug(&self) {
        self.0.port.store(PORT_DISCONNECTED, Ordering::Relaxed);
    }

    /// The root port reports a new device at its next look.
    pub fn replug(&self) {
        self.0.port.store(PORT_CONNECTED, Ordering::Relaxed);
    }

    /// Pulls (`false`) or plugs (`true`) the Ethernet cable.
    pub fn set_carrier(&self, carrier: bool) {
        self.0.carrier.store(carrier, Ordering::Relaxed);
    }

    /// Makes the bring-ups fail (`true`) or succeed from now on.
    pub fn fail_reattach(&self, fail: bool) {
        self.0.fail_reattach.store(fail, Ordering::Relaxed);
    }
}

/// Why the loopback NIC's bring-up failed ([`LoopbackControl::fail_reattach`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReattachRefused;

/// A NIC whose frames loop back; it counts the frames it hands out (`rx_frames`, `tx_frames`).
pub struct LoopbackNic {
    mac: [u8; 6],
    lo: Loopback,
    shared: Arc<Shared>,
}

impl LoopbackNic {
    /// A plugged-in NIC with MAC `mac` and its cable in, and the handle on it.
    pub fn new(mac: [u8; 6]) -> (Self, LoopbackControl) {
        let shared = Arc::new(Shared {
            port: AtomicU8::new(PORT_QUIET),
            carrier: AtomicBool::new(true),
            fail_reattach: AtomicBool::new(false),
            rx_frames: AtomicU64::new(0),
            tx_frames: AtomicU64::new(0),
        });
        let nic = Self {
            mac,
            lo: Loopback::new(Medium::Ethernet),
            shared: Arc::clone(&shared),
        };
        (nic, LoopbackControl(shared))
    }
}

impl Device for LoopbackNic {
    type RxToken<'a> = <Loopback as Device>::RxToken<'a>;
    type TxToken<'a> = <Loopback as Device>::TxToken<'a>;

    fn receive(&mut self, now: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let got = self.lo.receive(now)?;
        self.shared.rx_frames.fetch_add(1, Ordering::Relaxed);
        Some(got)
    }

    fn transmit(&mut self, now: Instant) -> Option<Self::TxToken<'_>> {
        let token = self.lo.transmit(now)?;
        self.shared.tx_frames.fetch_add(1, Ordering::Relaxed);
        Some(token)
    }

    fn capabilities(&self) -> DeviceCapabilities {
        self.lo.capabilities()
    }
}

impl Driver for LoopbackNic {
    fn mac(&self) -> [u8; 6] {
        self.mac
    }

    fn link_state(&self) -> LinkState {
        LinkState::from_up(self.shared.carrier.load(Ordering::Relaxed))
    }

    fn counters(&self) -> Counters {
        Counters {
            rx_frames: self.shared.rx_frames.load(Ordering::Relaxed),
            tx_frames: self.shared.tx_frames.load(Ordering::Relaxed),
            ..Counters::default()
        }
    }
}

impl HotPlug for LoopbackNic {
    type Error = ReattachRefused;

    fn poll_port(&mut self) -> Option<PortEvent> {
        match self.shared.port.swap(PORT_QUIET, Ordering::Relaxed) {
            PORT_DISCONNECTED => Some(PortEvent::Disconnected),
            PORT_CONNECTED => Some(PortEvent::Connected),
            _ => None,
        }
    }

    /// Frames in the loop are lost with the device.
    fn detached(&mut self) {
        self.lo = Loopback::new(Medium::Ethernet);
    }

    fn reattach(&mut self) -> Result<(), ReattachRefused> {
        if self.shared.fail_reattach.load(Ordering::Relaxed) {
            Err(ReattachRefused)
        } else {
            Ok(())
        }
    }

    fn maintain(&mut self) {}
}
