//! Socket addresses as Python sees them: `(host, port)` tuples.

use core::fmt::Write;
use core::net::{Ipv4Addr, SocketAddrV4};

use crate::args;
use crate::error::Error;
use crate::obj::Obj;

/// Parses `("a.b.c.d", port)` (a numeric IPv4 address, as modlwip's `connect`/`bind` take).
///
/// As modlwip's `lwip_parse_inet_addr`: not a tuple or list is `TypeError`, another length
/// `ValueError`, a host that is not a dotted quad `ValueError("invalid arguments")`. A port
/// outside 0..=65535 is `OverflowError` (modlwip passes it to lwIP as `u16_t`, silently
/// truncated; talking to another port than asked is worse than an error).
pub fn parse(addr: Obj) -> Result<SocketAddrV4, Error> {
    let [host, port] = addr.items_fixed::<2>()?;
    let ip = parse_ipv4(<&str>::try_from(*host)?)?;
    let port: u16 = args::int(*port)?;
    Ok(SocketAddrV4::new(ip, port))
}

/// A dotted-quad IPv4 address; `''` means any (0.0.0.0), as lwIP's `bind` takes it.
pub fn parse_ipv4(host: &str) -> Result<Ipv4Addr, Error> {
    if host.is_empty() {
        return Ok(Ipv4Addr::UNSPECIFIED);
    }
    host.parse::<Ipv4Addr>()
        .map_err(|_| Error::ValueError("invalid arguments"))
}

/// Formats an address into a small stack buffer.
struct Text {
    buf: [u8; 15],
    len: usize,
}

impl Write for Text {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let end = self.len + s.len();
        let dest = self.buf.get_mut(self.len..end).ok_or(core::fmt::Error)?;
        dest.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// The dotted-quad text of an address as a `str`.
pub fn ip_str(ip: Ipv4Addr) -> Result<Obj, Error> {
    let mut text = Text {
        buf: [0; 15],
        len: 0,
    };
    write!(text, "{ip}").map_err(|_| Error::ValueError("address"))?;
    let s =
        core::str::from_utf8(&text.buf[..text.len]).map_err(|_| Error::ValueError("address"))?;
    Obj::try_from(s)
}

/// `("a.b.c.d", port)`.
pub fn tuple(addr: SocketAddrV4) -> Result<Obj, Error> {
    let ip = ip_str(*addr.ip())?;
    let port = Obj::try_from(usize::from(addr.port()))?;
    Obj::tuple(&[ip, port])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dotted_quads_and_the_empty_host() {
        assert_eq!(parse_ipv4("10.0.0.1"), Ok(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(parse_ipv4(""), Ok(Ipv4Addr::UNSPECIFIED));
        for bad in ["10.0.0", "10.0.0.256", "host", "1.2.3.4 ", "-1.0.0.0"] {
            assert_eq!(
                parse_ipv4(bad),
                Err(Error::ValueError("invalid arguments")),
                "{bad}"
            );
        }
    }

    #[test]
    fn longest_address_fits_the_text_buffer() {
        let mut text = Text {
            buf: [0; 15],
            len: 0,
        };
        write!(text, "{}", Ipv4Addr::new(255, 255, 255, 255)).unwrap();
        assert_eq!(&text.buf[..text.len], b"255.255.255.255");
    }
}
