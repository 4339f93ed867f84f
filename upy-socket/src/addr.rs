//! IPv4 address text as modlwip reads it.
//!
//! modlwip parses `(host, port)` tuples with lwIP's `ipaddr_aton`, which follows BSD
//! `inet_aton`: one to four dot-separated parts, each decimal, octal (leading `0`) or hex
//! (`0x`), the last part filling the remaining bytes; parsing stops at the first white space.
//! `getaddrinfo` uses the same parser to decide that a host needs no DNS query.

use core::net::{Ipv4Addr, SocketAddrV4};

use crate::errno::SocketError;

/// The address a `(host, port)` tuple names: `""` is `0.0.0.0` (any), otherwise `host` must be
/// an IPv4 address or it is modlwip's `ValueError("invalid arguments")`.
pub fn parse_inet_addr(host: &str, port: u16) -> Result<SocketAddrV4, SocketError> {
    if host.is_empty() {
        return Ok(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port));
    }
    parse_ipv4(host)
        .map(|ip| SocketAddrV4::new(ip, port))
        .ok_or(SocketError::Value("invalid arguments"))
}

/// `host` as lwIP's `ipaddr_aton` reads it, `None` if it is not an IPv4 address.
pub fn parse_ipv4(host: &str) -> Option<Ipv4Addr> {
    let mut bytes = host.bytes().peekable();
    let mut parts = [0u32; 4];
    let mut count = 0;
    loop {
        // Every part starts with a digit.
        let first = *bytes.peek()?;
        if !first.is_ascii_digit() {
            return None;
        }
        let mut base = 10;
        if first == b'0' {
            bytes.next();
            base = 8;
            if matches!(bytes.peek(), Some(b'x' | b'X')) {
                bytes.next();
                base = 16;
            }
        }
        // lwIP accumulates in a u32 without an overflow check.
        let mut value: u32 = 0;
        while let Some(&c) = bytes.peek() {
            let digit = match (c as char).to_digit(base) {
                Some(d) => d,
                // An 8 or 9 in an octal part is an error, not the end of the part.
                None if base == 8 && c.is_ascii_digit() => return None,
                None => break,
            };
            value = value.wrapping_mul(base).wrapping_add(digit);
            bytes.next();
        }
        if count == parts.len() {
            return None;
        }
        parts[count] = value;
        count += 1;
        match bytes.peek() {
            Some(b'.') => {
                bytes.next();
            }
            None => break,
            Some(c) if c.is_ascii_whitespace() => break,
            Some(_) => return None,
        }
    }
    let [a, b, c, d] = parts;
    let bytes_ok = |ps: &[u32]| ps.iter().all(|&p| p <= 0xff);
    let value = match count {
        1 => a,
        2 if b <= 0x00ff_ffff && bytes_ok(&[a]) => (a << 24) | b,
        3 if c <= 0xffff && bytes_ok(&[a, b]) => (a << 24) | (b << 16) | c,
        4 if bytes_ok(&[a, b, c, d]) => (a << 24) | (b << 16) | (c << 8) | d,
        _ => return None,
    };
    Some(Ipv4Addr::from(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<[u8; 4]> {
        parse_ipv4(s).map(|a| a.octets())
    }

    #[test]
    fn dotted_decimal() {
        assert_eq!(ip("192.168.1.20"), Some([192, 168, 1, 20]));
        assert_eq!(ip("0.0.0.0"), Some([0, 0, 0, 0]));
        assert_eq!(ip("255.255.255.255"), Some([255; 4]));
    }

    #[test]
    fn inet_aton_short_forms_octal_and_hex() {
        assert_eq!(ip("127.1"), Some([127, 0, 0, 1]));
        assert_eq!(ip("10.1.258"), Some([10, 1, 1, 2]));
        assert_eq!(ip("3232235777"), Some([192, 168, 1, 1]));
        assert_eq!(ip("0x7f.0.0.1"), Some([127, 0, 0, 1]));
        assert_eq!(ip("010.0.0.1"), Some([8, 0, 0, 1]));
        assert_eq!(ip("0X0A.0.0.0x1"), Some([10, 0, 0, 1]));
        // Parsing stops at white space, like lwIP.
        assert_eq!(ip("1.2.3.4 trailing"), Some([1, 2, 3, 4]));
    }

    #[test]
    fn rejects_what_lwip_rejects() {
        for bad in [
            "",
            "a.b.c.d",
            "1.2.3.4.5",
            "256.1.1.1",
            "1.2.3.256",
            "1.2.3.",
            ".1.2.3",
            "1..2",
            "08.1.1.1",
            "1.2.3.4x",
            "-1.2.3.4",
            "1.16777216",
            "1.2.65536",
            "host.example",
        ] {
            assert_eq!(ip(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn inet_addr_tuple() {
        assert_eq!(
            parse_inet_addr("", 80),
            Ok(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 80))
        );
        assert_eq!(
            parse_inet_addr("10.0.0.2", 8080),
            Ok(SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 8080))
        );
        assert_eq!(
            parse_inet_addr("example.com", 80),
            Err(SocketError::Value("invalid arguments"))
        );
    }
}
