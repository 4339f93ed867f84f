//! The `network` module with `network.LAN`, as CanMV-K230 offers it for the board's Ethernet:
//! `active([bool])`, `isconnected()`, `status()`, `ifconfig([(ip, mask, gw, dns) | 'dhcp'])`,
//! `config('mac')` and `config(mac=...)`.

use crate::args;
use crate::backend::{self, IfConfig};
use crate::error::Error;
use crate::ffi::{self, Map, ObjBase, ObjTypeHead};
use crate::obj::Obj;
use crate::object::{Fun, Module, PyType, TypeBuilder, Value};
use crate::qstr::Qstr;
use crate::runtime::try_or_raise;
use crate::socket::addr;
use crate::statics::Static;
use crate::table;

table!(LAN_LOCALS = {
    c"active" => Value::Fun(&ACTIVE),
    c"isconnected" => Value::Fun(&ISCONNECTED),
    c"status" => Value::Fun(&STATUS),
    c"ifconfig" => Value::Fun(&IFCONFIG),
    c"config" => Value::Fun(&CONFIG),
});

/// `network.LAN`.
pub static LAN: PyType = TypeBuilder::new()
    .make_new(make_new)
    .build(c"LAN", &LAN_LOCALS);

table!(GLOBALS = {
    c"__name__" => Value::Str(c"network"),
    c"LAN" => Value::Type(&LAN),
});

/// The `network` module.
pub static MODULE: Module = Module::new(c"network", &GLOBALS);

/// The one interface object (there is one Ethernet port): a static, never collected.
static THE_LAN: Static<ObjBase> = Static::new(ObjBase {
    type_: core::ptr::null(),
});

static ACTIVE: Fun = Fun::var(1, 2, active);
static ISCONNECTED: Fun = Fun::var(1, 1, isconnected);
static STATUS: Fun = Fun::var(1, 1, status);
static IFCONFIG: Fun = Fun::var(1, 2, ifconfig);
static CONFIG: Fun = Fun::kw(1, config);

unsafe extern "C" fn make_new(
    _type: *const ObjTypeHead,
    n_args: usize,
    n_kw: usize,
    _args: *const Obj,
) -> Obj {
    try_or_raise(|| {
        if n_args > 1 || n_kw != 0 {
            return Err(Error::TypeError(
                "LAN() takes at most one positional argument",
            ));
        }
        // SAFETY: the static is only written here, on the interpreter thread, always with the
        // same value.
        unsafe { (*THE_LAN.get()).type_ = LAN.as_type_ptr() };
        Ok(Obj::from_ptr(THE_LAN.get()))
    })
}

fn check_self(obj: Obj) -> Result<(), Error> {
    if obj.is_exact_type(LAN.as_type_ptr()) {
        Ok(())
    } else {
        Err(Error::TypeError("LAN object required"))
    }
}

unsafe extern "C" fn active(n: usize, args: *const Obj) -> Obj {
    // SAFETY: MicroPython passes `n` valid objects.
    let args = unsafe { args::slice(n, args) };
    try_or_raise(|| {
        check_self(args[0])?;
        match args::optional(args, 1) {
            Some(flag) => {
                let flag = flag.is_true()?;
                backend::with_lan(|b| b.set_active(flag))?;
                Ok(Obj::NONE)
            }
            None => Ok(Obj::from(backend::with_lan(|b| Ok(b.active()))?)),
        }
    })
}

unsafe extern "C" fn isconnected(n: usize, args: *const Obj) -> Obj {
    // SAFETY: MicroPython passes `n` valid objects.
    let args = unsafe { args::slice(n, args) };
    try_or_raise(|| {
        check_self(args[0])?;
        Ok(backend::with_lan(|b| Ok(b.isconnected()))?)
    })
}

unsafe extern "C" fn status(n: usize, args: *const Obj) -> Obj {
    // SAFETY: MicroPython passes `n` valid objects.
    let args = unsafe { args::slice(n, args) };
    try_or_raise(|| {
        check_self(args[0])?;
        let status = backend::with_lan(|b| Ok(b.status()))?;
        Obj::try_from(status as isize)
    })
}

unsafe extern "C" fn ifconfig(n: usize, args: *const Obj) -> Obj {
    // SAFETY: MicroPython passes `n` valid objects.
    let args = unsafe { args::slice(n, args) };
    try_or_raise(|| {
        check_self(args[0])?;
        let Some(arg) = args::optional(args, 1) else {
            let config = backend::with_lan(|b| Ok(b.ifconfig()))?;
            return Obj::tuple(&[
                addr::ip_str(config.address)?,
                addr::ip_str(config.netmask)?,
                addr::ip_str(config.gateway)?,
                addr::ip_str(config.dns)?,
            ]);
        };
        if let Ok(text) = <&str>::try_from(arg) {
            if text != "dhcp" {
                return Err(Error::ValueError("ifconfig takes a 4-tuple or 'dhcp'"));
            }
            backend::with_lan(|b| b.set_dhcp())?;
            return Ok(Obj::NONE);
        }
        let items = arg.items()?;
        let [address, netmask, gateway, dns] = items else {
            return Err(Error::ValueError("ifconfig takes a 4-tuple or 'dhcp'"));
        };
        let ip = |obj: &Obj| -> Result<_, Error> { addr::parse_ipv4(<&str>::try_from(*obj)?) };
        let config = IfConfig {
            address: ip(address)?,
            netmask: ip(netmask)?,
            gateway: ip(gateway)?,
            dns: ip(dns)?,
        };
        backend::with_lan(|b| b.set_ifconfig(config))?;
        Ok(Obj::NONE)
    })
}

/// The keyword arguments of a call, as (name, value) pairs.
///
/// # Safety
/// `kw` must be null or the keyword map MicroPython passed to a `mp_fun_kw_t`.
unsafe fn keywords(kw: *const Map) -> &'static [ffi::MapElem] {
    if kw.is_null() {
        return &[];
    }
    // SAFETY: per the caller, a valid map; its table holds `alloc` elements.
    unsafe {
        let map = &*kw;
        if map.table.is_null() || map.alloc == 0 {
            &[]
        } else {
            core::slice::from_raw_parts(map.table, map.alloc)
        }
    }
}

unsafe extern "C" fn config(n: usize, args: *const Obj, kw: *mut Map) -> Obj {
    // SAFETY: MicroPython passes `n` valid objects and its keyword map.
    let (args, kw) = unsafe { (args::slice(n, args), keywords(kw)) };
    try_or_raise(|| {
        check_self(args[0])?;
        let mac_q = Obj::from_qstr(Qstr::intern(c"mac")?);
        match (args.get(1), kw.iter().find(|e| !e.key.is_null())) {
            (Some(&name), None) if n == 2 => {
                if name != mac_q && <&str>::try_from(name)? != "mac" {
                    return Err(Error::ValueError("unknown config param"));
                }
                let mac = backend::with_lan(|b| Ok(b.mac()))?;
                Obj::bytes(&mac)
            }
            (None, Some(_)) => {
                for element in kw.iter().filter(|e| !e.key.is_null()) {
                    if element.key != mac_q {
                        return Err(Error::ValueError("unknown config param"));
                    }
                    let mac: [u8; 6] = element
                        .value
                        .buffer()?
                        .try_into()
                        .map_err(|_| Error::ValueError("mac must be 6 bytes"))?;
                    backend::with_lan(|b| b.set_mac(mac))?;
                }
                Ok(Obj::NONE)
            }
            _ => Err(Error::TypeError(
                "config takes one name or keyword arguments",
            )),
        }
    })
}

#[cfg(all(test, feature = "host"))]
mod tests;
