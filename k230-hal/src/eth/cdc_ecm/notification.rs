//! Notifications a CDC-ECM function sends on its interrupt IN endpoint.
//!
//! Each is an 8-byte header shaped like a SETUP packet (bmRequestType 0xA1, bNotification,
//! wValue, wIndex = control interface, wLength) followed by wLength data bytes (USB CDC 1.2
//! §6.3; ECM 1.2 §6.3). ECM uses NETWORK_CONNECTION (0x00, wValue 1 = connected) and
//! CONNECTION_SPEED_CHANGE (0x2A, two little-endian u32 bit rates: downstream, upstream). The same
//! codes are used by Linux `drivers/net/usb/cdc_ether.c` (`usbnet_cdc_status`).

/// bmRequestType of every CDC notification: device to host, class, interface.
const REQUEST_TYPE: u8 = 0xA1;
/// bNotification: NETWORK_CONNECTION.
const NETWORK_CONNECTION: u8 = 0x00;
/// bNotification: RESPONSE_AVAILABLE.
const RESPONSE_AVAILABLE: u8 = 0x01;
/// bNotification: CONNECTION_SPEED_CHANGE.
const CONNECTION_SPEED_CHANGE: u8 = 0x2A;
/// Bytes of the notification header.
const HEADER_LEN: usize = 8;

/// A checked, zero-copy view of one notification.
#[derive(Clone, Copy, Debug)]
pub struct Notification<T: AsRef<[u8]>> {
    buffer: T,
}

/// Why bytes from the interrupt endpoint are not a notification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotificationError {
    /// Shorter than the header, or than the header plus wLength.
    Truncated,
    /// bmRequestType is not 0xA1.
    NotCdc,
}

/// What a notification tells the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// NETWORK_CONNECTION: the link is up (`true`) or down.
    Connection(bool),
    /// CONNECTION_SPEED_CHANGE: bit rates in bit/s.
    Speed {
        /// Device to host (receive) rate.
        downstream: u32,
        /// Host to device (transmit) rate.
        upstream: u32,
    },
    /// RESPONSE_AVAILABLE (encapsulated command protocols; ECM does not use it).
    ResponseAvailable,
    /// A notification ECM does not define, by its code.
    Other(u8),
}

impl<T: AsRef<[u8]>> Notification<T> {
    /// Wraps `buffer` after checking the header and that wLength data bytes follow it.
    pub fn new_checked(buffer: T) -> Result<Self, NotificationError> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(NotificationError::Truncated);
        }
        if b[0] != REQUEST_TYPE {
            return Err(NotificationError::NotCdc);
        }
        let view = Self { buffer };
        if view.buffer.as_ref().len() < HEADER_LEN + usize::from(view.length()) {
            return Err(NotificationError::Truncated);
        }
        Ok(view)
    }

    fn u16_at(&self, at: usize) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_le_bytes([b[at], b[at + 1]])
    }

    /// bNotification.
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[1]
    }

    /// wValue.
    pub fn value(&self) -> u16 {
        self.u16_at(2)
    }

    /// wIndex: the interface the notification is about.
    pub fn interface(&self) -> u16 {
        self.u16_at(4)
    }

    /// wLength: bytes of data after the header.
    pub fn length(&self) -> u16 {
        self.u16_at(6)
    }

    /// The data after the header (wLength bytes).
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..HEADER_LEN + usize::from(self.length())]
    }

    /// The event, or `None` for a CONNECTION_SPEED_CHANGE without its 8 data bytes.
    pub fn event(&self) -> Option<Event> {
        match self.code() {
            NETWORK_CONNECTION => Some(Event::Connection(self.value() != 0)),
            CONNECTION_SPEED_CHANGE => {
                let d = self.data();
                let downstream = u32::from_le_bytes(d.get(0..4)?.try_into().ok()?);
                let upstream = u32::from_le_bytes(d.get(4..8)?.try_into().ok()?);
                Some(Event::Speed {
                    downstream,
                    upstream,
                })
            }
            RESPONSE_AVAILABLE => Some(Event::ResponseAvailable),
            other => Some(Event::Other(other)),
        }
    }
}
