//! `select`: `poll()` objects (`register`, `unregister`, `modify`, `poll`, `ipoll`) and
//! `select()`, over any object with the stream ioctl `MP_STREAM_POLL` (sockets, `sys.stdin`), as
//! MicroPython documents them.
//!
//! Waiting runs MicroPython's event wait (`mp_event_wait_ms`: the event hook polls the network,
//! a pending `KeyboardInterrupt` is raised) between scans, so readiness comes from the running
//! stack. `ERR` and `HUP` are reported whether asked for or not. Differences from upstream's
//! `extmod/modselect.c`: `ipoll` returns a list (it is iterated the same way; upstream hands out
//! one reused tuple), and `poll`'s timeout is checked at a 1 ms granularity.

use core::ffi::c_int;

use crate::args;
use crate::error::Error;
use crate::ffi::{self, MapElem, ObjBase, ObjTypeHead};
use crate::obj::Obj;
use crate::object::{Fun, Module, PyType, TypeBuilder, Value};
use crate::runtime::{catch_exception, try_or_raise};
use crate::table;

/// `select.POLLIN` (`MP_STREAM_POLL_RD`).
pub const POLLIN: usize = ffi::STREAM_POLL_RD;
/// `select.POLLOUT` (`MP_STREAM_POLL_WR`).
pub const POLLOUT: usize = ffi::STREAM_POLL_WR;
/// `select.POLLERR` (`MP_STREAM_POLL_ERR`).
pub const POLLERR: usize = ffi::STREAM_POLL_ERR;
/// `select.POLLHUP` (`MP_STREAM_POLL_HUP`).
pub const POLLHUP: usize = ffi::STREAM_POLL_HUP;
/// `ipoll` flag: an object that reported an event is not polled again until `modify`.
const ONESHOT: usize = 1;
/// `MP_STREAM_OP_IOCTL`.
const STREAM_OP_IOCTL: c_int = 4;
/// MicroPython's `ENOENT` (`modify` of an object not registered).
const ENOENT: i32 = 2;
/// `MP_OBJ_SENTINEL`: the key of a deleted map slot.
const SENTINEL: usize = 4;

table!(POLL_LOCALS = {
    c"register" => Value::Fun(&REGISTER),
    c"unregister" => Value::Fun(&UNREGISTER),
    c"modify" => Value::Fun(&MODIFY),
    c"poll" => Value::Fun(&POLL_POLL),
    c"ipoll" => Value::Fun(&IPOLL),
});

/// `select.poll`: calling the type makes a poll object (upstream has a function of that name;
/// calling either is the same).
pub static POLL_TYPE: PyType = TypeBuilder::new()
    .make_new(poll_new)
    .build(c"poll", &POLL_LOCALS);

table!(GLOBALS = {
    c"__name__" => Value::Str(c"select"),
    c"poll" => Value::Type(&POLL_TYPE),
    c"select" => Value::Fun(&SELECT),
    c"POLLIN" => Value::Int(POLLIN as isize),
    c"POLLOUT" => Value::Int(POLLOUT as isize),
    c"POLLERR" => Value::Int(POLLERR as isize),
    c"POLLHUP" => Value::Int(POLLHUP as isize),
});

/// The `select` module.
pub static MODULE: Module = Module::new(c"select", &GLOBALS);

static SELECT: Fun = Fun::var(3, 4, select);
static REGISTER: Fun = Fun::var(2, 3, register);
static UNREGISTER: Fun = Fun::var(2, 2, unregister);
static MODIFY: Fun = Fun::var(3, 3, modify);
static POLL_POLL: Fun = Fun::var(1, 2, poll_poll);
static IPOLL: Fun = Fun::var(1, 3, ipoll);

/// A poll object: registered objects and their event masks, in a dict (object -> small int).
#[repr(C)]
struct PollObj {
    base: ObjBase,
    entries: Obj,
}

/// The entries of the dict `dict` (a `mp_obj_dict_t`), writable in place.
fn slots(dict: Obj) -> &'static mut [MapElem] {
    // SAFETY: `dict` is a dict object made by `mp_obj_new_dict`; its map's table holds `alloc`
    // elements and lives as long as the dict, which its owner keeps alive.
    unsafe {
        let map = &(*dict.as_ptr().cast::<ffi::Dict>()).map;
        if map.table.is_null() {
            &mut []
        } else {
            core::slice::from_raw_parts_mut(map.table, map.alloc)
        }
    }
}

/// Whether a map slot holds an entry.
fn used(elem: &MapElem) -> bool {
    !elem.key.is_null() && elem.key.as_ptr() as usize != SENTINEL
}

/// The slot of `key` in `dict`, by identity (as modselect's map lookup of objects).
fn slot_of(dict: Obj, key: Obj) -> Option<&'static mut MapElem> {
    slots(dict).iter_mut().find(|e| used(e) && e.key == key)
}

fn new_dict() -> Result<Obj, Error> {
    // SAFETY: plain value.
    // EXCEPTION: raises MemoryError.
    catch_exception(|| unsafe { ffi::mp_obj_new_dict(0) })
}

fn dict_store(dict: Obj, key: Obj, value: Obj) -> Result<(), Error> {
    // SAFETY: `dict` is a dict; key and value are valid objects.
    // EXCEPTION: raises MemoryError, or TypeError for an unhashable key.
    catch_exception(|| unsafe { ffi::mp_obj_dict_store(dict, key, value) }).map(|_| ())
}

fn this(obj: Obj) -> Result<&'static mut PollObj, Error> {
    if !obj.is_exact_type(POLL_TYPE.as_type_ptr()) {
        return Err(Error::TypeError("poll object required"));
    }
    // SAFETY: an instance of our type, in the GC heap, alive while the caller holds it.
    Ok(unsafe { &mut *obj.as_ptr().cast::<PollObj>() })
}

/// Asks `obj` which of `mask` (plus ERR, HUP and NVAL) hold now, through its stream ioctl.
fn poll_one(obj: Obj, mask: usize) -> Result<usize, Error> {
    // SAFETY: `obj` is a valid object.
    // EXCEPTION: raises TypeError when it has no stream ioctl.
    let stream = catch_exception(|| unsafe { ffi::mp_get_stream_raise(obj, STREAM_OP_IOCTL) })?;
    // SAFETY: `mp_get_stream_raise` returned the object's stream protocol.
    let ioctl = unsafe { (*stream).ioctl };
    let mut errcode: c_int = 0;
    let errcode_ptr = &raw mut errcode;
    // SAFETY: the object's own ioctl with a valid errcode pointer.
    // EXCEPTION: a stream's ioctl may raise (e.g. a Python-level stream); caught.
    let ready = catch_exception(|| unsafe { ioctl(obj, ffi::STREAM_POLL, mask, errcode_ptr) })?;
    if ready == ffi::STREAM_ERROR {
        return Err(Error::OsError(errcode));
    }
    Ok(ready & (mask | POLLERR | POLLHUP | ffi::STREAM_POLL_NVAL))
}

/// Checks that `obj` can be polled (modselect raises at `register` too).
fn check_pollable(obj: Obj) -> Result<(), Error> {
    // SAFETY: `obj` is a valid object.
    // EXCEPTION: raises TypeError when it has no stream ioctl.
    catch_exception(|| unsafe { ffi::mp_get_stream_raise(obj, STREAM_OP_IOCTL) }).map(|_| ())
}

/// A timeout argument in milliseconds: `None` or negative waits forever.
fn timeout_ms(arg: Option<Obj>) -> Result<Option<u64>, Error> {
    match arg {
        None => Ok(None),
        Some(obj) if obj == Obj::NONE => Ok(None),
        Some(obj) => Ok(u64::try_from(isize::try_from(obj)?).ok()),
    }
}

/// Scans `entries` until one is ready or `timeout` passes, waiting for events in between; calls
/// `found(obj, events, slot)` for each ready entry of the scan that ends the wait.
fn wait(
    entries: Obj,
    timeout: Option<u64>,
    mut found: impl FnMut(Obj, usize, &mut MapElem) -> Result<(), Error>,
) -> Result<(), Error> {
    // SAFETY: reads the timer.
    // EXCEPTION: none.
    let start = unsafe { ffi::mp_hal_ticks_ms() };
    loop {
        let mut any = false;
        for slot in slots(entries).iter_mut().filter(|e| used(e)) {
            let mask = slot.value.as_small_int().unwrap_or(0) as usize;
            if mask == 0 {
                // A one-shot entry that already reported.
                continue;
            }
            let ready = poll_one(slot.key, mask)?;
            if ready != 0 {
                any = true;
                found(slot.key, ready, slot)?;
            }
        }
        // SAFETY: reads the timer.
        // EXCEPTION: none.
        let elapsed = unsafe { ffi::mp_hal_ticks_ms() }.wrapping_sub(start) as u64;
        if any || timeout.is_some_and(|t| elapsed >= t) {
            return Ok(());
        }
        // SAFETY: on the interpreter thread.
        // EXCEPTION: raises a pending exception (KeyboardInterrupt) or a scheduled callback's.
        catch_exception(|| unsafe { ffi::mp_event_wait_ms(1) })?;
    }
}

unsafe extern "C" fn poll_new(
    _type: *const ObjTypeHead,
    n_args: usize,
    n_kw: usize,
    _args: *const Obj,
) -> Obj {
    try_or_raise(|| {
        if n_args != 0 || n_kw != 0 {
            return Err(Error::TypeError("poll() takes no arguments"));
        }
        let entries = new_dict()?;
        let type_ = POLL_TYPE.as_type_ptr();
        // SAFETY: our registered type; the size is that of the object struct.
        // EXCEPTION: raises MemoryError.
        let ptr = catch_exception(|| unsafe {
            ffi::mp_obj_malloc_with_finaliser_helper(core::mem::size_of::<PollObj>(), type_)
        })?
        .cast::<PollObj>();
        // SAFETY: a block of the object's size with `base` set; `entries` is written before use.
        unsafe { (&raw mut (*ptr).entries).write(entries) };
        Ok(Obj::from_ptr(ptr))
    })
}

unsafe extern "C" fn register(n: usize, args: *const Obj) -> Obj {
    // SAFETY: MicroPython passes `n` valid objects.
    let args = unsafe { args::slice(n, args) };
    try_or_raise(|| {
        let poll = this(args[0])?;
        check_pollable(args[1])?;
        let mask = match args::optional(args, 2) {
            Some(m) => args::int::<usize>(m)?,
            None => POLLIN | POLLOUT,
        };
        dict_store(poll.entries, args[1], Obj::try_from(mask)?)
    })
}

unsafe extern "C" fn unregister(n: usize, args: *const Obj) -> Obj {
    // SAFETY: MicroPython passes `n` valid objects.
    let args = unsafe { args::slice(n, args) };
    try_or_raise(|| {
        let poll = this(args[0])?;
        // As modselect: an object that is not registered is ignored.
        if slot_of(poll.entries, args[1]).is_some() {
            let (entries, key) = (poll.entries, args[1]);
            // SAFETY: `entries` is a dict holding `key`.
            // EXCEPTION: raises KeyError if absent (checked above).
            catch_exception(|| unsafe { ffi::mp_obj_dict_delete(entries, key) })?;
        }
        Ok(())
    })
}

unsafe extern "C" fn modify(n: usize, args: *const Obj) -> Obj {
    // SAFETY: MicroPython passes `n` valid objects.
    let args = unsafe { args::slice(n, args) };
    try_or_raise(|| {
        let poll = this(args[0])?;
        let mask = args::int::<usize>(args[2])?;
        let slot = slot_of(poll.entries, args[1]).ok_or(Error::OsError(ENOENT))?;
        slot.value = Obj::try_from(mask)?;
        Ok(())
    })
}

/// `poll.poll([timeout])` and `poll.ipoll([timeout[, flags]])`: a list of `(obj, events)`.
fn poll_list(args: &[Obj], oneshot: bool) -> Result<Obj, Error> {
    let poll = this(args[0])?;
    let timeout = timeout_ms(args::optional(args, 1))?;
    let result = Obj::list()?;
    wait(poll.entries, timeout, |obj, events, slot| {
        if oneshot {
            slot.value = Obj::small_int_const(0);
        }
        result.list_append(Obj::tuple(&[obj, Obj::try_from(events)?])?)
    })?;
    Ok(result)
}

unsafe extern "C" fn poll_poll(n: usize, args: *const Obj) -> Obj {
    // SAFETY: MicroPython passes `n` valid objects.
    let args = unsafe { args::slice(n, args) };
    try_or_raise(|| poll_list(args, false))
}

unsafe extern "C" fn ipoll(n: usize, args: *const Obj) -> Obj {
    // SAFETY: MicroPython passes `n` valid objects.
    let args = unsafe { args::slice(n, args) };
    try_or_raise(|| {
        let flags = match args::optional(args, 2) {
            Some(f) => args::int::<usize>(f)?,
            None => 0,
        };
        poll_list(args, flags & ONESHOT != 0)
    })
}

unsafe extern "C" fn select(n: usize, args: *const Obj) -> Obj {
    // SAFETY: MicroPython passes `n` valid objects.
    let args = unsafe { args::slice(n, args) };
    try_or_raise(|| {
        let timeout = match args::optional(args, 3) {
            None => None,
            Some(t) if t == Obj::NONE => None,
            Some(t) => {
                let secs = t.to_f64()?;
                (secs >= 0.0).then_some((secs * 1000.0) as u64)
            }
        };
        // Every object with the union of what the three lists ask of it.
        let entries = new_dict()?;
        for (list, flag) in [(args[0], POLLIN), (args[1], POLLOUT), (args[2], POLLERR)] {
            for &obj in list.items()? {
                check_pollable(obj)?;
                match slot_of(entries, obj) {
                    Some(slot) => {
                        let mask = slot.value.as_small_int().unwrap_or(0) as usize;
                        slot.value = Obj::try_from(mask | flag)?;
                    }
                    None => dict_store(entries, obj, Obj::try_from(flag)?)?,
                }
            }
        }
        let lists = [Obj::list()?, Obj::list()?, Obj::list()?];
        wait(entries, timeout, |obj, events, _| {
            if events & POLLIN != 0 {
                lists[0].list_append(obj)?;
            }
            if events & POLLOUT != 0 {
                lists[1].list_append(obj)?;
            }
            if events & (POLLERR | POLLHUP) != 0 {
                lists[2].list_append(obj)?;
            }
            Ok(())
        })?;
        Obj::tuple(&lists)
    })
}
