//! The MAC address string descriptor of a CDC-ECM function.
//!
//! iMACAddress names a string descriptor holding exactly 12 hexadecimal characters, most
//! significant nibble first (USB ECM 1.2 §5.4, Table 3). String descriptors are bLength,
//! bDescriptorType 0x03, then UTF-16LE code units (USB 2.0 §9.6.7). Linux
//! `drivers/net/usb/usbnet.c` (`usbnet_get_ethernet_addr`) also insists on exactly 12 characters.

use crate::usb::descriptor::TYPE_STRING;

/// Hex characters in the string.
const HEX_CHARS: usize = 12;

/// Why a string descriptor is not a usable MAC address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MacError {
    /// Not a string descriptor, or bLength disagrees with the bytes received.
    NotString,
    /// Not exactly 12 characters.
    WrongLength,
    /// A character is not an ASCII hexadecimal digit.
    NotHex,
    /// The address is a group (multicast) address, unusable as a station address.
    Multicast,
}

/// Parses the MAC address from the raw string descriptor bytes received.
pub fn parse_mac_string(descriptor: &[u8]) -> Result<[u8; 6], MacError> {
    let (&len, rest) = descriptor.split_first().ok_or(MacError::NotString)?;
    let len = usize::from(len);
    if rest.first() != Some(&TYPE_STRING) || len < 2 || len > descriptor.len() || len % 2 != 0 {
        return Err(MacError::NotString);
    }
    let units = &descriptor[2..len];
    if units.len() != HEX_CHARS * 2 {
        return Err(MacError::WrongLength);
    }
    let mut mac = [0u8; 6];
    for (i, unit) in units.chunks_exact(2).enumerate() {
        let c = u16::from_le_bytes([unit[0], unit[1]]);
        let nibble = u8::try_from(c)
            .ok()
            .and_then(|c| char::from(c).to_digit(16))
            .ok_or(MacError::NotHex)?;
        // to_digit(16) is below 16, so the cast keeps every bit.
        mac[i / 2] |= (nibble as u8) << if i % 2 == 0 { 4 } else { 0 };
    }
    if mac[0] & 0x01 != 0 {
        return Err(MacError::Multicast);
    }
    Ok(mac)
}
