//! The `socket` module: constants, `getaddrinfo` and the `socket` type, with the values and
//! behaviour of MicroPython's lwIP socket module (`extmod/modlwip.c`).

pub(crate) mod addr;
mod object;

use crate::args;
use crate::backend;
use crate::error::Error;
use crate::obj::Obj;
use crate::object::{Fun, Module, Value};
use crate::runtime::try_or_raise;
use crate::table;

pub use object::SOCKET;

/// The module's numbers are upy-socket's (modlwip's values), the only source of them.
pub use upy_socket::consts::{
    AF_INET, AF_INET6, IPPROTO_IP, IPPROTO_TCP, IP_ADD_MEMBERSHIP, IP_DROP_MEMBERSHIP, SOCK_DGRAM,
    SOCK_STREAM, SOL_SOCKET, SO_BROADCAST, SO_REUSEADDR, TCP_NODELAY,
};

table!(GLOBALS = {
    c"__name__" => Value::Str(c"socket"),
    c"socket" => Value::Type(&SOCKET),
    c"getaddrinfo" => Value::Fun(&GETADDRINFO),
    c"AF_INET" => Value::Int(AF_INET as isize),
    c"AF_INET6" => Value::Int(AF_INET6 as isize),
    c"SOCK_STREAM" => Value::Int(SOCK_STREAM as isize),
    c"SOCK_DGRAM" => Value::Int(SOCK_DGRAM as isize),
    c"SOL_SOCKET" => Value::Int(SOL_SOCKET as isize),
    c"SO_REUSEADDR" => Value::Int(SO_REUSEADDR as isize),
    c"SO_BROADCAST" => Value::Int(SO_BROADCAST as isize),
    c"IPPROTO_IP" => Value::Int(IPPROTO_IP as isize),
    c"IPPROTO_TCP" => Value::Int(IPPROTO_TCP as isize),
    c"TCP_NODELAY" => Value::Int(TCP_NODELAY as isize),
    c"IP_ADD_MEMBERSHIP" => Value::Int(IP_ADD_MEMBERSHIP as isize),
    c"IP_DROP_MEMBERSHIP" => Value::Int(IP_DROP_MEMBERSHIP as isize),
    c"MSG_PEEK" => Value::Int(upy_socket::consts::MSG_PEEK as isize),
    c"MSG_DONTWAIT" => Value::Int(upy_socket::consts::MSG_DONTWAIT as isize),
});

/// The `socket` module.
pub static MODULE: Module = Module::new(c"socket", &GLOBALS);

static GETADDRINFO: Fun = Fun::var(2, 6, getaddrinfo);

/// `getaddrinfo(host, port, af=0, type=0, proto=0, flags=0)`: as modlwip, one entry
/// `(AF_INET, SOCK_STREAM, 0, '', (ip, port))`; the constraints do not filter (modlwip warns).
unsafe extern "C" fn getaddrinfo(n: usize, args: *const Obj) -> Obj {
    // SAFETY: MicroPython passes `n` valid objects.
    let args = unsafe { args::slice(n, args) };
    try_or_raise(|| {
        let host: &str = <&str>::try_from(args[0])?;
        let port: u16 = args::int(args[1])?;
        let mut hints = [0i64; 4];
        for (hint, arg) in hints.iter_mut().zip(args.iter().skip(2)) {
            *hint = args::int::<i64>(*arg)?;
        }
        let resolved = backend::with(|b| b.getaddrinfo(host, port, hints))?;
        let entry = Obj::tuple(&[
            Obj::small_int_const(AF_INET as isize),
            Obj::small_int_const(SOCK_STREAM as isize),
            Obj::small_int_const(0),
            Obj::try_from("")?,
            addr::tuple(resolved)?,
        ])?;
        let list = Obj::list()?;
        list.list_append(entry)?;
        Ok::<Obj, Error>(list)
    })
}

#[cfg(all(test, feature = "host"))]
mod tests;
