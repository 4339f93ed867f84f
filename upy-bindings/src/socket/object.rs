//! The `socket.socket` type: methods of the K230 socket manual and the stream protocol.

use core::ffi::{c_int, c_void};

use crate::args;
use crate::backend::{self, Handle, OptOutcome, SockError, EBADF, EINVAL};
use crate::error::Error;
use crate::ffi::{self, ObjBase, ObjTypeHead, StreamProtocol};
use crate::obj::Obj;
use crate::object::{Fun, PyType, TypeBuilder, Value};
use crate::runtime::{catch_exception, try_or_raise};
use crate::socket::addr;
use crate::table;
use upy_socket::RecvFlags;

/// The Python object: lives in MicroPython's heap (with a finaliser that closes it).
#[repr(C)]
struct SocketObj {
    base: ObjBase,
    /// The backend's socket; `None` once closed (or before it is opened).
    handle: Option<Handle>,
}

table!(LOCALS = {
    c"__del__" => Value::Fun(&CLOSE),
    c"close" => Value::Fun(&CLOSE),
    c"bind" => Value::Fun(&BIND),
    c"listen" => Value::Fun(&LISTEN),
    c"accept" => Value::Fun(&ACCEPT),
    c"connect" => Value::Fun(&CONNECT),
    c"send" => Value::Fun(&SEND),
    c"sendall" => Value::Fun(&SENDALL),
    c"recv" => Value::Fun(&RECV),
    c"sendto" => Value::Fun(&SENDTO),
    c"recvfrom" => Value::Fun(&RECVFROM),
    c"setsockopt" => Value::Fun(&SETSOCKOPT),
    c"settimeout" => Value::Fun(&SETTIMEOUT),
    c"setblocking" => Value::Fun(&SETBLOCKING),
    c"makefile" => Value::Fun(&MAKEFILE),
    c"read" => Value::Extern(ffi::data::mp_stream_read_obj),
    c"readinto" => Value::Extern(ffi::data::mp_stream_readinto_obj),
    c"readline" => Value::Extern(ffi::data::mp_stream_unbuffered_readline_obj),
    c"write" => Value::Extern(ffi::data::mp_stream_write_obj),
});

static STREAM: StreamProtocol = StreamProtocol {
    read: stream_read,
    write: stream_write,
    ioctl: stream_ioctl,
    is_text: 0,
};

/// `socket.socket`.
pub static SOCKET: PyType = TypeBuilder::new()
    .make_new(make_new)
    .stream(&STREAM)
    .build(c"socket", &LOCALS);

static CLOSE: Fun = Fun::var(1, 1, close);
static BIND: Fun = Fun::var(2, 2, bind);
static LISTEN: Fun = Fun::var(1, 2, listen);
static ACCEPT: Fun = Fun::var(1, 1, accept);
static CONNECT: Fun = Fun::var(2, 2, connect);
static SEND: Fun = Fun::var(2, 2, send);
static SENDALL: Fun = Fun::var(2, 2, sendall);
static RECV: Fun = Fun::var(2, 3, recv);
static SENDTO: Fun = Fun::var(3, 3, sendto);
static RECVFROM: Fun = Fun::var(2, 3, recvfrom);
static SETSOCKOPT: Fun = Fun::var(4, 4, setsockopt);
static SETTIMEOUT: Fun = Fun::var(2, 2, settimeout);
static SETBLOCKING: Fun = Fun::var(2, 2, setblocking);
static MAKEFILE: Fun = Fun::var(1, 3, makefile);

/// Allocates an unopened socket object (closing it is a no-op until a handle is set).
fn alloc() -> Result<*mut SocketObj, Error> {
    let type_ = SOCKET.as_type_ptr();
    // SAFETY: `type_` is our registered type; the size is that of the object struct.
    // EXCEPTION: raises MemoryError.
    let ptr = catch_exception(|| unsafe {
        ffi::mp_obj_malloc_with_finaliser_helper(core::mem::size_of::<SocketObj>(), type_)
    })?
    .cast::<SocketObj>();
    // SAFETY: MicroPython returned a block of the requested size with `base` set; the rest is
    // written before anything reads it.
    unsafe { (&raw mut (*ptr).handle).write(None) };
    Ok(ptr)
}

/// The socket object behind `obj`, `TypeError` if it is something else.
fn this(obj: Obj) -> Result<&'static mut SocketObj, Error> {
    if !obj.is_exact_type(SOCKET.as_type_ptr()) {
        return Err(Error::TypeError("socket object required"));
    }
    // SAFETY: `obj` is an instance of our type, so it points to a `SocketObj` in the GC heap,
    // alive while the caller (a binding on the interpreter thread) holds it.
    Ok(unsafe { &mut *obj.as_ptr().cast::<SocketObj>() })
}

/// The open handle of `obj`, `OSError(EBADF)` once closed.
fn handle(obj: Obj) -> Result<Handle, Error> {
    this(obj)?.handle.ok_or(Error::OsError(EBADF))
}

unsafe extern "C" fn make_new(
    _type: *const ObjTypeHead,
    n_args: usize,
    n_kw: usize,
    args: *const Obj,
) -> Obj {
    // SAFETY: MicroPython passes `n_args + 2 * n_kw` valid objects.
    let args = unsafe { args::slice(n_args, args) };
    try_or_raise(|| {
        if n_kw != 0 {
            return Err(Error::TypeError("function doesn't take keyword arguments"));
        }
        // modlwip takes up to 4 positional arguments (`af, type, proto, fileno`) and ignores
        // the fourth.
        if args.len() > 4 {
            return Err(Error::TypeError("function expected at most 4 arguments"));
        }
        let arg = |i: usize, default: i32| match args::optional(args, i) {
            Some(obj) => args::int::<i32>(obj),
            None => Ok(default),
        };
        let family = arg(0, crate::socket::AF_INET)?;
        let socktype = arg(1, crate::socket::SOCK_STREAM)?;
        let proto = arg(2, 0)?;
        let obj = alloc()?;
        let handle = backend::with(|b| b.socket(family, socktype, proto))?;
        // SAFETY: `obj` was just allocated and initialised by `alloc`.
        unsafe { (*obj).handle = Some(handle) };
        Ok(Obj::from_ptr(obj))
    })
}

unsafe extern "C" fn close(n: usize, args: *const Obj) -> Obj {
    // SAFETY: MicroPython passes `n` valid objects.
    let args = unsafe { args::slice(n, args) };
    try_or_raise(|| {
        let sock = this(args[0])?;
        if let Some(handle) = sock.handle.take() {
            backend::with(|b| {
                b.close(handle);
                Ok(())
            })?;
        }
        Ok(())
    })
}

unsafe extern "C" fn bind(n: usize, args: *const Obj) -> Obj {
    // SAFETY: MicroPython passes `n` valid objects.
    let args = unsafe { args::slice(n, args) };
    try_or_raise(|| {
        // Closed already: EBADF before any argument error.
        handle(args[0])?;
        let local = addr::parse(args[1])?;
        // The handle again, last: converting an argument may run Python code (`__int__`) that
        // closes the socket (and a new socket may then take its handle).
        let h = handle(args[0])?;
        Ok(backend::with(|b| b.bind(h, local))?)
    })
}

unsafe extern "C" fn listen(n: usize, args: *const Obj) -> Obj {
    // SAFETY: MicroPython passes `n` valid objects.
    let args = unsafe { args::slice(n, args) };
    try_or_raise(|| {
        // Closed already: EBADF before any argument error.
        handle(args[0])?;
        let backlog = match args::optional(args, 1) {
            Some(obj) => Some(args::int::<i64>(obj)?),
            None => None,
        };
        // The handle again, last, as in `bind`.
        let h = handle(args[0])?;
        Ok(backend::with(|b| b.listen(h, backlog))?)
    })
}

unsafe extern "C" fn accept(n: usize, args: *const Obj) -> Obj {
    // SAFETY: MicroPython passes `n` valid objects.
    let args = unsafe { args::slice(n, args) };
    try_or_raise(|| {
        let h = handle(args[0])?;
        // Allocate first: a MemoryError must not strand an accepted connection.
        let obj = alloc()?;
        let (conn, peer) = backend::with(|b| b.accept(h))?;
        // SAFETY: `obj` was just allocated and initialised by `alloc`.
        unsafe { (*obj).handle = Some(conn) };
        Obj::tuple(&[Obj::from_ptr(obj), addr::tuple(peer)?])
    })
}

unsafe extern "C" fn connect(n: usize, args: *const Obj) -> Obj {
    // SAFETY: MicroPython passes `n` valid objects.
    let args = unsafe { args::slice(n, args) };
    try_or_raise(|| {
        // Closed already: EBADF before any argument error.
        handle(args[0])?;
        let remote = addr::parse(args[1])?;
        // The handle again, last, as in `bind`.
        let h = handle(args[0])?;
        Ok(backend::with(|b| b.connect(h, remote))?)
    })
}

unsafe extern "C" fn send(n: usize, args: *const Obj) -> Obj {
    // SAFETY: MicroPython passes `n` valid objects.
    let args = unsafe { args::slice(n, args) };
    try_or_raise(|| {
        let h = handle(args[0])?;
        let data = args[1].buffer()?;
        Ok(backend::with(|b| b.send(h, data))?)
    })
}

unsafe extern "C" fn sendall(n: usize, args: *const Obj) -> Obj {
    // SAFETY: MicroPython passes `n` valid objects.
    let args = unsafe { args::slice(n, args) };
    try_or_raise(|| {
        let h = handle(args[0])?;
        let data = args[1].buffer()?;
        Ok(backend::with(|b| b.sendall(h, data))?)
    })
}

/// A receive size argument. Negative is `MemoryError`, as the pinned MicroPython's own socket
/// raises (it allocates the size as unsigned); modlwip's `vstr_init_len(len)` wraps `len + 1`
/// to a 1-byte buffer and then writes past it, so it defines nothing to follow.
fn recv_size(obj: Obj) -> Result<usize, Error> {
    let size: isize = isize::try_from(obj)?;
    usize::try_from(size).map_err(|_| Error::MemoryError)
}

/// The optional `flags` argument of `recv`/`recvfrom` (an int, as modlwip's `mp_obj_get_int`).
fn recv_flags(args: &[Obj]) -> Result<RecvFlags, Error> {
    match args::optional(args, 2) {
        Some(obj) => Ok(RecvFlags::from_bits(args::int::<i64>(obj)?)),
        None => Ok(RecvFlags::NONE),
    }
}

unsafe extern "C" fn recv(n: usize, args: *const Obj) -> Obj {
    // SAFETY: MicroPython passes `n` valid objects.
    let args = unsafe { args::slice(n, args) };
    try_or_raise(|| {
        // Closed already: EBADF before any argument error.
        handle(args[0])?;
        let size = recv_size(args[1])?;
        let flags = recv_flags(args)?;
        // The handle again, last, as in `bind`.
        let h = handle(args[0])?;
        Obj::bytes_with(size, |buf| backend::with(|b| b.recv(h, buf, flags)))
    })
}

unsafe extern "C" fn sendto(n: usize, args: *const Obj) -> Obj {
    // SAFETY: MicroPython passes `n` valid objects.
    let args = unsafe { args::slice(n, args) };
    try_or_raise(|| {
        // Closed already: EBADF before any argument error.
        handle(args[0])?;
        let to = addr::parse(args[2])?;
        // The handle again and the data last: the address's `__int__` may close the socket,
        // or resize a bytearray holding the data (which moves or frees its bytes).
        let h = handle(args[0])?;
        let data = args[1].buffer()?;
        Ok(backend::with(|b| b.sendto(h, data, to))?)
    })
}

unsafe extern "C" fn recvfrom(n: usize, args: *const Obj) -> Obj {
    // SAFETY: MicroPython passes `n` valid objects.
    let args = unsafe { args::slice(n, args) };
    try_or_raise(|| {
        // Closed already: EBADF before any argument error.
        handle(args[0])?;
        let size = recv_size(args[1])?;
        let flags = recv_flags(args)?;
        // The handle again, last, as in `bind`.
        let h = handle(args[0])?;
        let mut from = None;
        let data = Obj::bytes_with(size, |buf| {
            backend::with(|b| b.recvfrom(h, buf, flags)).map(|(len, peer)| {
                from = Some(peer);
                len
            })
        })?;
        let from = from.ok_or(Error::OsError(EINVAL))?;
        Obj::tuple(&[data, addr::tuple(from)?])
    })
}

unsafe extern "C" fn setsockopt(n: usize, args: *const Obj) -> Obj {
    // SAFETY: MicroPython passes `n` valid objects.
    let args = unsafe { args::slice(n, args) };
    try_or_raise(|| {
        // Closed already: EBADF before any argument error.
        handle(args[0])?;
        let level = args::int::<i32>(args[1])?;
        let name = args::int::<i32>(args[2])?;
        if name == crate::socket::IP_ADD_MEMBERSHIP || name == crate::socket::IP_DROP_MEMBERSHIP {
            // As modlwip: the value must be a buffer of two IPv4 addresses; the stack has no
            // IGMP, so a well-formed request is then refused.
            if args[3].buffer()?.len() != 8 {
                return Err(Error::ValueError(""));
            }
            return Err(Error::OsError(upy_socket::Errno::EOPNOTSUPP.code()));
        }
        let value = args::int::<i64>(args[3])?;
        // The handle again, last, as in `bind`.
        let h = handle(args[0])?;
        match backend::with(|b| b.setsockopt(h, level, name, value))? {
            OptOutcome::Applied => {}
            OptOutcome::NotImplemented => {
                log::warn!("setsockopt: level {level} option {name} not implemented");
                // modlwip `printf`s this line to the console.
                print_str(c"Warning: lwip.setsockopt() not implemented\n")?;
            }
        }
        Ok(())
    })
}

unsafe extern "C" fn settimeout(n: usize, args: *const Obj) -> Obj {
    // SAFETY: MicroPython passes `n` valid objects.
    let args = unsafe { args::slice(n, args) };
    try_or_raise(|| {
        let sock = this(args[0])?;
        let secs = if args[1] == Obj::NONE {
            None
        } else {
            Some(args[1].to_f64()?)
        };
        // As modlwip, a closed socket takes (and forgets) the setting without an error.
        match sock.handle {
            Some(h) => Ok(backend::with(|b| b.settimeout(h, secs))?),
            None => Ok(()),
        }
    })
}

unsafe extern "C" fn setblocking(n: usize, args: *const Obj) -> Obj {
    // SAFETY: MicroPython passes `n` valid objects.
    let args = unsafe { args::slice(n, args) };
    try_or_raise(|| {
        let sock = this(args[0])?;
        let flag = args[1].is_true()?;
        // As `settimeout`.
        match sock.handle {
            Some(h) => Ok(backend::with(|b| b.setblocking(h, flag))?),
            None => Ok(()),
        }
    })
}

unsafe extern "C" fn makefile(n: usize, args: *const Obj) -> Obj {
    // SAFETY: MicroPython passes `n` valid objects.
    let args = unsafe { args::slice(n, args) };
    // As modlwip: the socket is its own (binary, unbuffered) file; mode and buffering are
    // accepted and ignored.
    try_or_raise(|| this(args[0]).map(|_| args[0]))
}

/// Prints `text` on MicroPython's console (`mp_plat_print`), as modlwip's `printf` does.
fn print_str(text: &core::ffi::CStr) -> Result<(), Error> {
    let print = ffi::data::mp_plat_print().cast::<ffi::Print>();
    let text = text.as_ptr();
    // SAFETY: `mp_plat_print` is the library's console printer; `text` is NUL-terminated.
    // EXCEPTION: may raise (a printer writing to a stream); caught.
    catch_exception(|| unsafe { ffi::mp_print_str(print, text) })
}

/// Reports a stream error through `errcode` as the stream protocol wants; an interrupted wait
/// raises the pending exception instead.
///
/// # Safety
/// `errcode` must be valid for writes; called at the outer edge of a stream function (nothing
/// with a destructor alive in the frames below MicroPython's).
unsafe fn stream_result(result: Result<usize, SockError>, errcode: *mut c_int) -> usize {
    match result {
        Ok(n) => n,
        Err(e) => {
            let errno = match e {
                SockError::Os(errno) => errno,
                SockError::Value(_) | SockError::NotImplemented => EINVAL,
                // SAFETY: per this function's contract.
                SockError::Interrupted => unsafe { crate::runtime::raise(Error::Interrupted) },
            };
            // SAFETY: per the caller.
            unsafe { errcode.write(errno) };
            ffi::STREAM_ERROR
        }
    }
}

fn stream_handle(obj: Obj) -> Result<Handle, SockError> {
    match this(obj) {
        Ok(sock) => sock.handle.ok_or(SockError::Os(EBADF)),
        Err(_) => Err(SockError::Os(EINVAL)),
    }
}

unsafe extern "C" fn stream_read(
    obj: Obj,
    buf: *mut c_void,
    size: usize,
    errcode: *mut c_int,
) -> usize {
    let result = stream_handle(obj).and_then(|h| {
        let buf: &mut [u8] = if size == 0 {
            &mut []
        } else {
            // SAFETY: the stream layer passes a writable buffer of `size` bytes.
            unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), size) }
        };
        backend::with(|b| b.stream_read(h, buf))
    });
    // SAFETY: the stream layer passes a valid `errcode`.
    unsafe { stream_result(result, errcode) }
}

unsafe extern "C" fn stream_write(
    obj: Obj,
    buf: *const c_void,
    size: usize,
    errcode: *mut c_int,
) -> usize {
    let result = stream_handle(obj).and_then(|h| {
        let data: &[u8] = if size == 0 {
            &[]
        } else {
            // SAFETY: the stream layer passes a readable buffer of `size` bytes.
            unsafe { core::slice::from_raw_parts(buf.cast::<u8>(), size) }
        };
        backend::with(|b| b.stream_write(h, data))
    });
    // SAFETY: the stream layer passes a valid `errcode`.
    unsafe { stream_result(result, errcode) }
}

unsafe extern "C" fn stream_ioctl(
    obj: Obj,
    request: usize,
    arg: usize,
    errcode: *mut c_int,
) -> usize {
    let result = match request {
        ffi::STREAM_POLL => match this(obj) {
            Ok(sock) => match sock.handle {
                Some(h) => backend::with(|b| Ok(b.poll(h, arg))),
                None => Ok(ffi::STREAM_POLL_NVAL),
            },
            Err(_) => Err(SockError::Os(EINVAL)),
        },
        ffi::STREAM_CLOSE => match this(obj) {
            Ok(sock) => match sock.handle.take() {
                Some(h) => backend::with(|b| {
                    b.close(h);
                    Ok(0)
                }),
                None => Ok(0),
            },
            Err(_) => Err(SockError::Os(EINVAL)),
        },
        _ => Err(SockError::Os(EINVAL)),
    };
    // SAFETY: the stream layer passes a valid `errcode`.
    unsafe { stream_result(result, errcode) }
}
