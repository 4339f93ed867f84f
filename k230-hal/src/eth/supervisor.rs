//! Keeps a USB NIC alive across unplug and replug.
//!
//! The K230's only Ethernet port is a USB device, so "the interface went away" is a USB
//! disconnect: the root port drops its connect status (DWC2 HPRT0.PRTCONNSTS, with a connect
//! status change). [`Supervisor`] watches the port through the driver ([`HotPlug`]), fails
//! the NIC while the device is gone (its `smoltcp::phy::Device` hands out no tokens, so the
//! stack sees an interface without carrier instead of transfer errors), and when a device is
//! plugged in again it re-runs enumeration and the driver's bring-up, keeping the MAC address.
//! A bring-up that fails is retried a few times with growing pauses; after that the supervisor
//! waits for the next plug.
//!
//! The supervisor reports what happened ([`LinkEvent`]) to whoever owns the network stack:
//! on [`LinkEvent::DeviceLost`] the interface's addresses should be removed, as lwIP does
//! with `netif_remove` when a USB NIC goes away (CherryUSB's lwIP glue,
//! `usbh_rtl8152_stop`), which aborts the connections bound to them; on
//! [`LinkEvent::DeviceBack`] the addresses are configured again (static or DHCP).
//!
//! A pulled Ethernet cable is not a device loss: the NIC stays, only its carrier drops, and
//! TCP connections survive a short flap.

/// How long a driver's [`HotPlug::reattach`] waits for a replugged device to appear after its plug
/// was seen (the port debounce and reset come on top).
pub const REATTACH_TIMEOUT_MS: u32 = 500;
/// Failed bring-ups after a plug before the supervisor waits for the next plug.
pub const MAX_ATTEMPTS: u8 = 4;
/// Pause before the first retry of a failed bring-up; doubled for each further one.
pub const RETRY_PAUSE_MS: u64 = 500;

use crate::eth::driver::{Counters, Driver, LinkState};

/// What the supervisor needs of a NIC driver and the host controller under it (the driver's
/// link state says whether its PHY has carrier).
pub trait HotPlug: Driver {
    /// Why a bring-up failed.
    type Error: core::fmt::Debug;

    /// Looks at the root port (cheap: one register read on the DWC2).
    fn poll_port(&mut self) -> Option<crate::usb::PortEvent>;

    /// The device went away: forget its transfers and queued frames.
    fn detached(&mut self);

    /// A device was plugged in: enumerate it and bring the driver up on it again.
    fn reattach(&mut self) -> Result<(), Self::Error>;

    /// Work the NIC needs even while the stack does not poll it (a stack without carrier
    /// does not): link status, queued transfers.
    fn maintain(&mut self);
}

/// Where the supervised NIC is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// The device is enumerated and its driver runs.
    Running,
    /// The device is gone; waiting for a plug.
    Detached,
    /// A device is plugged in and waits for a bring-up: it failed `attempts` times so far
    /// (0: a new device was seen while the old one still ran); the next try is due at
    /// `retry_at_ms`.
    Retrying {
        /// Failed bring-ups since the plug.
        attempts: u8,
        /// When the next try is due.
        retry_at_ms: u64,
    },
}

/// A change the stack's owner must act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkEvent {
    /// The USB device went away: remove the interface's addresses (connections abort).
    DeviceLost,
    /// The device is back and running again: configure the interface again.
    DeviceBack,
    /// Bringing a plugged device up failed (retried while attempts remain).
    BringUpFailed,
}

/// A NIC driver under supervision; see the [module docs](self).
pub struct Supervisor<N> {
    nic: N,
    state: State,
    losses: u32,
    comebacks: u32,
    failed_bring_ups: u32,
    /// A loss seen from inside the stack's device calls, not reported by [`Self::poll`] yet.
    unreported: Option<LinkEvent>,
}

impl<N: HotPlug> Supervisor<N> {
    /// Supervises a running NIC.
    pub fn new(nic: N) -> Self {
        Self {
            nic,
            state: State::Running,
            losses: 0,
            comebacks: 0,
            failed_bring_ups: 0,
            unreported: None,
        }
    }

    /// The NIC driver.
    pub fn nic(&self) -> &N {
        &self.nic
    }

    /// The NIC driver, mutably.
    pub fn nic_mut(&mut self) -> &mut N {
        &mut self.nic
    }

    /// Where the NIC is.
    pub fn state(&self) -> State {
        self.state
    }

    /// Times the device went away so far ([`LinkEvent::DeviceLost`]).
    pub fn losses(&self) -> u32 {
        self.losses
    }

    /// Times a device came back running so far ([`LinkEvent::DeviceBack`]).
    pub fn comebacks(&self) -> u32 {
        self.comebacks
    }

    /// Failed bring-ups so far ([`LinkEvent::BringUpFailed`]).
    pub fn failed_bring_ups(&self) -> u32 {
        self.failed_bring_ups
    }

    /// Carrier: the device runs and its PHY has a link.
    pub fn carrier(&self) -> bool {
        self.state == State::Running && self.nic.link_state().is_up()
    }

    /// Watches the port, keeps a running NIC's link status current and brings a replugged
    /// device back; call it every round of the network loop, also while the stack has no
    /// carrier (it does not poll its device then, so the link could never come back).
    /// `now_ms` is any monotonic clock.
    pub fn poll(&mut self, now_ms: u64) -> Option<LinkEvent> {
        if let Some(event) = self.unreported.take() {
            return Some(event);
        }
        let port = self.nic.poll_port();
        if self.state == State::Running && port.is_none() {
            self.nic.maintain();
        }
        match (self.state, port) {
            (State::Running, Some(event)) => {
                // Disconnected, or connected anew (unplugged and replugged between looks):
                // the device we drove is gone either way; a new one is brought up next time.
                self.lose(event);
                Some(LinkEvent::DeviceLost)
            }
            (State::Running, None) => None,
            (_, Some(crate::usb::PortEvent::Disconnected)) => {
                self.state = State::Detached;
                None
            }
            (_, Some(crate::usb::PortEvent::Connected)) => Some(self.bring_up(0, now_ms)),
            (
                State::Retrying {
                    attempts,
                    retry_at_ms,
                },
                None,
            ) if now_ms >= retry_at_ms => Some(self.bring_up(attempts, now_ms)),
            (State::Retrying { .. } | State::Detached, None) => None,
        }
    }

    /// The port check of the stack's device calls: a loss found there is reported by the
    /// next [`Self::poll`]. True while the NIC runs.
    #[cfg(feature = "smoltcp")]
    fn running(&mut self) -> bool {
        if self.state != State::Running {
            return false;
        }
        if let Some(event) = self.nic.poll_port() {
            self.lose(event);
            self.unreported = Some(LinkEvent::DeviceLost);
            return false;
        }
        true
    }

    /// The running device is gone; `event` tells whether another one is already there.
    fn lose(&mut self, event: crate::usb::PortEvent) {
        log::warn!("supervisor: NIC device lost");
        self.nic.detached();
        self.losses = self.losses.wrapping_add(1);
        self.state = match event {
            crate::usb::PortEvent::Disconnected => State::Detached,
            crate::usb::PortEvent::Connected => State::Retrying {
                attempts: 0,
                retry_at_ms: 0,
            },
        };
    }

    /// Tries a bring-up after `failed` failed ones.
    fn bring_up(&mut self, failed: u8, now_ms: u64) -> LinkEvent {
        match self.nic.reattach() {
            Ok(()) => {
                log::info!("supervisor: NIC device back");
                self.comebacks = self.comebacks.wrapping_add(1);
                self.state = State::Running;
                LinkEvent::DeviceBack
            }
            Err(e) => {
                self.failed_bring_ups = self.failed_bring_ups.wrapping_add(1);
                let attempts = failed.saturating_add(1);
                self.state = if attempts >= MAX_ATTEMPTS {
                    log::error!(
                        "supervisor: bring-up failed {attempts} times ({e:?}); waiting for a plug"
                    );
                    State::Detached
                } else {
                    log::warn!("supervisor: bring-up failed ({e:?}), retrying");
                    State::Retrying {
                        attempts,
                        retry_at_ms: now_ms + (RETRY_PAUSE_MS << (attempts - 1)),
                    }
                };
                LinkEvent::BringUpFailed
            }
        }
    }
}

/// A network stack's device with a supervised NIC in it: the [`Supervisor`] itself, a reference
/// to one kept in a static, or a simulated board. The stack's owner reaches the supervisor
/// through it to act on what [`Supervisor::poll`] reports.
pub trait Supervised {
    /// The NIC driver under supervision.
    type Nic: HotPlug;
    /// The supervisor.
    fn supervisor(&self) -> &Supervisor<Self::Nic>;
    /// The supervisor, mutably.
    fn supervisor_mut(&mut self) -> &mut Supervisor<Self::Nic>;
}

impl<N: HotPlug> Supervised for Supervisor<N> {
    type Nic = N;
    fn supervisor(&self) -> &Supervisor<N> {
        self
    }
    fn supervisor_mut(&mut self) -> &mut Supervisor<N> {
        self
    }
}

impl<N: HotPlug> Supervised for &mut Supervisor<N> {
    type Nic = N;
    fn supervisor(&self) -> &Supervisor<N> {
        self
    }
    fn supervisor_mut(&mut self) -> &mut Supervisor<N> {
        self
    }
}

/// The supervised NIC's address and counters; its link is up only while its device runs.
impl<N: HotPlug> Driver for Supervisor<N> {
    fn mac(&self) -> [u8; 6] {
        self.nic.mac()
    }

    fn link_state(&self) -> LinkState {
        LinkState::from_up(self.carrier())
    }

    fn counters(&self) -> Counters {
        self.nic.counters()
    }
}

#[cfg(feature = "smoltcp")]
mod device {
    use super::{HotPlug, Supervisor};
    use smoltcp::phy::{Device, DeviceCapabilities};
    use smoltcp::time::Instant;

    /// The NIC's tokens while it runs; none while its device is gone.
    impl<N: HotPlug + Device> Device for Supervisor<N> {
        type RxToken<'a>
            = N::RxToken<'a>
        where
            Self: 'a;
        type TxToken<'a>
            = N::TxToken<'a>
        where
            Self: 'a;

        fn receive(&mut self, timestamp: Instant) -> Option<(N::RxToken<'_>, N::TxToken<'_>)> {
            if !self.running() {
                return None;
            }
            self.nic.receive(timestamp)
        }

        fn transmit(&mut self, timestamp: Instant) -> Option<N::TxToken<'_>> {
            if !self.running() {
                return None;
            }
            self.nic.transmit(timestamp)
        }

        fn capabilities(&self) -> DeviceCapabilities {
            self.nic.capabilities()
        }
    }

    /// A supervisor kept elsewhere (a static on a board, so that building the stack does not
    /// move the NIC's frame buffers), as the stack's device.
    impl<N: HotPlug + Device> Device for &mut Supervisor<N> {
        type RxToken<'a>
            = N::RxToken<'a>
        where
            Self: 'a;
        type TxToken<'a>
            = N::TxToken<'a>
        where
            Self: 'a;

        fn receive(&mut self, timestamp: Instant) -> Option<(N::RxToken<'_>, N::TxToken<'_>)> {
            (**self).receive(timestamp)
        }

        fn transmit(&mut self, timestamp: Instant) -> Option<N::TxToken<'_>> {
            (**self).transmit(timestamp)
        }

        fn capabilities(&self) -> DeviceCapabilities {
            (**self).capabilities()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usb::{PortEvent, UsbError};
    use mockall::Sequence;

    mockall::mock! {
        /// A NIC driver with a root port.
        pub HotPlug {}
        impl HotPlug for HotPlug {
            type Error = UsbError;
            fn poll_port(&mut self) -> Option<PortEvent>;
            fn detached(&mut self);
            fn reattach(&mut self) -> Result<(), UsbError>;
            fn maintain(&mut self);
        }
        impl Driver for HotPlug {
            fn mac(&self) -> [u8; 6];
            fn link_state(&self) -> LinkState;
            fn counters(&self) -> Counters;
        }
    }

    fn running() -> Supervisor<MockHotPlug> {
        Supervisor::new(MockHotPlug::new())
    }

    #[test]
    fn unplug_fails_the_nic_once_and_a_replug_brings_it_back() {
        let mut s = running();
        let mut seq = Sequence::new();
        let nic = s.nic_mut();
        nic.expect_poll_port()
            .times(1)
            .in_sequence(&mut seq)
            .return_const(None);
        nic.expect_poll_port()
            .times(1)
            .in_sequence(&mut seq)
            .return_const(Some(PortEvent::Disconnected));
        nic.expect_detached().times(1).return_const(());
        nic.expect_poll_port()
            .times(2)
            .in_sequence(&mut seq)
            .return_const(None);
        nic.expect_poll_port()
            .times(1)
            .in_sequence(&mut seq)
            .return_const(Some(PortEvent::Connected));
        nic.expect_reattach().times(1).returning(|| Ok(()));
        nic.expect_link_state().return_const(LinkState::Up);
        nic.expect_maintain().times(1).return_const(());

        assert_eq!(s.poll(0), None);
        assert!(s.carrier());
        assert_eq!(s.poll(1), Some(LinkEvent::DeviceLost));
        assert_eq!(
            (s.state(), s.losses(), s.carrier()),
            (State::Detached, 1, false)
        );
        assert_eq!(s.poll(2), None);
        assert_eq!(s.poll(3), None);
        assert_eq!(s.poll(4), Some(LinkEvent::DeviceBack));
        assert_eq!(
            (s.state(), s.losses(), s.carrier()),
            (State::Running, 1, true)
        );
        assert_eq!((s.comebacks(), s.failed_bring_ups()), (1, 0));
    }

    #[test]
    fn a_supervised_nic_has_its_drivers_address_and_counters_and_a_link_only_while_it_runs() {
        let mut s = running();
        let nic = s.nic_mut();
        nic.expect_mac().return_const([2, 0, 0, 0, 0, 1]);
        let counters = Counters {
            rx_frames: 1,
            tx_frames: 2,
            rx_errors: 3,
            tx_errors: 4,
            ..Counters::default()
        };
        nic.expect_counters().return_const(counters);
        nic.expect_link_state().return_const(LinkState::Up);
        nic.expect_poll_port()
            .times(1)
            .return_const(Some(PortEvent::Disconnected));
        nic.expect_detached().times(1).return_const(());
        assert_eq!((s.mac(), s.counters()), ([2, 0, 0, 0, 0, 1], counters));
        assert_eq!(s.link_state(), LinkState::Up);
        assert_eq!(s.poll(0), Some(LinkEvent::DeviceLost));
        assert_eq!(
            s.link_state(),
            LinkState::Down,
            "no link while the device is gone"
        );
        assert_eq!(s.counters(), counters, "the counters stay");
    }

    #[test]
    fn a_failed_bring_up_is_retried_with_growing_pauses_then_given_up() {
        let mut s = running();
        let nic = s.nic_mut();
        let mut seq = Sequence::new();
        nic.expect_detached().return_const(());
        nic.expect_poll_port()
            .times(1)
            .in_sequence(&mut seq)
            .return_const(Some(PortEvent::Disconnected));
        nic.expect_poll_port()
            .times(1)
            .in_sequence(&mut seq)
            .return_const(Some(PortEvent::Connected));
        nic.expect_poll_port().return_const(None);
        nic.expect_reattach()
            .times(usize::from(MAX_ATTEMPTS))
            .returning(|| Err(UsbError::Timeout));
        nic.expect_link_state().return_const(LinkState::Up);

        assert_eq!(s.poll(0), Some(LinkEvent::DeviceLost));
        assert_eq!(s.poll(1000), Some(LinkEvent::BringUpFailed));
        let mut now = 1000;
        for attempts in 1..MAX_ATTEMPTS {
            let pause = RETRY_PAUSE_MS << (attempts - 1);
            assert_eq!(
                s.state(),
                State::Retrying {
                    attempts,
                    retry_at_ms: now + pause
                }
            );
            assert_eq!(s.poll(now + pause - 1), None, "not before the pause");
            now += pause;
            assert_eq!(s.poll(now), Some(LinkEvent::BringUpFailed));
        }
        assert_eq!(s.state(), State::Detached, "given up until the next plug");
        assert_eq!(s.failed_bring_ups(), u32::from(MAX_ATTEMPTS));
        assert_eq!(s.comebacks(), 0);
        assert_eq!(s.poll(now + 100_000), None);
        assert!(!s.carrier());
    }

    #[test]
    fn a_new_plug_restarts_the_attempts_and_an_unplug_stops_the_retries() {
        let mut s = running();
        let nic = s.nic_mut();
        let mut seq = Sequence::new();
        nic.expect_detached().return_const(());
        for event in [
            PortEvent::Disconnected,
            PortEvent::Connected,
            PortEvent::Disconnected,
            PortEvent::Connected,
        ] {
            nic.expect_poll_port()
                .times(1)
                .in_sequence(&mut seq)
                .return_const(Some(event));
        }
        nic.expect_poll_port().return_const(None);
        let mut results = vec![Ok(()), Err(UsbError::Stall)];
        nic.expect_reattach()
            .times(2)
            .returning(move || results.pop().unwrap());

        assert_eq!(s.poll(0), Some(LinkEvent::DeviceLost));
        assert_eq!(s.poll(0), Some(LinkEvent::BringUpFailed));
        assert!(matches!(s.state(), State::Retrying { attempts: 1, .. }));
        assert_eq!(s.poll(1), None);
        assert_eq!(s.state(), State::Detached, "unplugged while retrying");
        assert_eq!(s.poll(2), Some(LinkEvent::DeviceBack));
        assert_eq!(s.state(), State::Running);
        assert_eq!(s.losses(), 1);
    }

    #[test]
    fn a_running_nic_is_maintained_every_poll_a_gone_one_never() {
        let mut s = running();
        let nic = s.nic_mut();
        let mut seq = Sequence::new();
        nic.expect_poll_port()
            .times(3)
            .in_sequence(&mut seq)
            .return_const(None);
        nic.expect_poll_port()
            .times(1)
            .in_sequence(&mut seq)
            .return_const(Some(PortEvent::Disconnected));
        nic.expect_poll_port()
            .times(5)
            .in_sequence(&mut seq)
            .return_const(None);
        nic.expect_detached().return_const(());
        nic.expect_maintain().times(3).return_const(());
        for now in 0..3 {
            assert_eq!(s.poll(now), None);
        }
        assert_eq!(s.poll(3), Some(LinkEvent::DeviceLost));
        for now in 4..9 {
            assert_eq!(s.poll(now), None);
        }
    }

    #[test]
    fn running_with_a_new_connection_means_the_old_device_is_gone_and_a_new_one_is_there() {
        let mut s = running();
        let nic = s.nic_mut();
        let mut seq = Sequence::new();
        nic.expect_poll_port()
            .times(1)
            .in_sequence(&mut seq)
            .return_const(Some(PortEvent::Connected));
        nic.expect_poll_port().return_const(None);
        nic.expect_detached().times(1).return_const(());
        nic.expect_reattach().times(1).returning(|| Ok(()));
        assert_eq!(s.poll(0), Some(LinkEvent::DeviceLost));
        assert!(matches!(s.state(), State::Retrying { attempts: 0, .. }));
        assert_eq!(
            s.poll(1),
            Some(LinkEvent::DeviceBack),
            "brought up without a new event"
        );
        assert_eq!(s.state(), State::Running);
    }

    #[cfg(feature = "smoltcp")]
    mod tokens {
        use super::*;
        use smoltcp::phy::{Device, DeviceCapabilities, RxToken, TxToken};
        use smoltcp::time::Instant;

        /// A NIC that always has a frame and room, with a mocked port.
        struct Nic {
            port: MockHotPlug,
        }

        struct Token;

        impl RxToken for Token {
            fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
                f(&[0; 60])
            }
        }

        impl TxToken for Token {
            fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
                f(&mut vec![0; len])
            }
        }

        impl Device for Nic {
            type RxToken<'a> = Token;
            type TxToken<'a> = Token;

            fn receive(&mut self, _: Instant) -> Option<(Token, Token)> {
                Some((Token, Token))
            }

            fn transmit(&mut self, _: Instant) -> Option<Token> {
                Some(Token)
            }

            fn capabilities(&self) -> DeviceCapabilities {
                DeviceCapabilities::default()
            }
        }

        impl HotPlug for Nic {
            type Error = UsbError;
            fn poll_port(&mut self) -> Option<PortEvent> {
                self.port.poll_port()
            }
            fn detached(&mut self) {
                self.port.detached()
            }
            fn reattach(&mut self) -> Result<(), UsbError> {
                self.port.reattach()
            }
            fn maintain(&mut self) {}
        }

        impl Driver for Nic {
            fn mac(&self) -> [u8; 6] {
                [2, 0, 0, 0, 0, 1]
            }
            fn link_state(&self) -> LinkState {
                LinkState::Up
            }
            fn counters(&self) -> Counters {
                Counters::default()
            }
        }

        #[test]
        fn no_tokens_while_the_device_is_gone_and_the_loss_is_reported_once() {
            let mut port = MockHotPlug::new();
            let mut seq = Sequence::new();
            port.expect_poll_port()
                .times(2)
                .in_sequence(&mut seq)
                .return_const(None);
            port.expect_poll_port()
                .times(1)
                .in_sequence(&mut seq)
                .return_const(Some(PortEvent::Disconnected));
            port.expect_poll_port()
                .times(1)
                .in_sequence(&mut seq)
                .return_const(None);
            port.expect_detached().times(1).return_const(());
            let mut s = Supervisor::new(Nic { port });
            let t = Instant::from_millis(0);
            assert!(s.receive(t).is_some());
            assert!(s.transmit(t).is_some());
            assert!(s.transmit(t).is_none(), "the port check found the loss");
            assert!(s.receive(t).is_none());
            assert_eq!(s.poll(1), Some(LinkEvent::DeviceLost));
            assert_eq!(s.poll(2), None, "reported once");
            assert_eq!(s.losses(), 1);
        }
    }
}
