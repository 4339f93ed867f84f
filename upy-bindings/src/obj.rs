//! `Obj`: a MicroPython object handle (`mp_obj_t`), and conversions to and from Rust values.
//!
//! Object representation A (`py/mpconfig.h`, `MICROPY_OBJ_REPR_A`):
//! - `...xxx1`: small int, value in the upper bits;
//! - `...x010`: qstr, value `>> 3`;
//! - `...x110`: immediate object (`None` = 0, `False` = 1, `True` = 3), value `>> 3`;
//! - `...xx00`: pointer to an object whose first word is its type.
//!
//! An `Obj` must live on the interpreter thread's stack (or in another object): MicroPython's
//! garbage collector scans the C stack, not Rust heap allocations.

use core::ffi::{c_char, c_void};

use crate::error::Error;
use crate::ffi;
use crate::qstr::Qstr;
use crate::runtime::catch_exception;

/// A MicroPython object handle.
#[repr(transparent)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Obj(*mut c_void);

const fn immediate(value: usize) -> Obj {
    Obj(core::ptr::without_provenance_mut((value << 3) | 0b110))
}

/// Largest magnitude a small int holds (one bit of tag, one of sign).
const SMALL_INT_BITS: u32 = usize::BITS - 2;

impl Obj {
    /// `MP_OBJ_NULL`: "no object", never a Python value.
    pub const NULL: Obj = Obj(core::ptr::null_mut());
    /// `None`.
    pub const NONE: Obj = immediate(0);
    /// `False`.
    pub const FALSE: Obj = immediate(1);
    /// `True`.
    pub const TRUE: Obj = immediate(3);

    /// A small int, if `value` fits (62 bits on a 64-bit target).
    pub const fn small_int(value: isize) -> Option<Obj> {
        let limit = 1isize << (SMALL_INT_BITS - 1);
        if value >= -limit && value < limit {
            Some(Obj(core::ptr::without_provenance_mut(
                ((value << 1) | 1) as usize,
            )))
        } else {
            None
        }
    }

    /// A small int from a value known to fit (constants of a module table).
    ///
    /// Evaluated in const context, a value that does not fit fails the build.
    pub const fn small_int_const(value: isize) -> Obj {
        match Self::small_int(value) {
            Some(obj) => obj,
            None => panic!("constant does not fit a small int"),
        }
    }

    /// A qstr object.
    pub fn from_qstr(q: Qstr) -> Obj {
        Obj(core::ptr::without_provenance_mut((q.index() << 3) | 0b010))
    }

    /// An object from a pointer to an object struct (whose first word is `mp_obj_base_t`).
    pub fn from_ptr<T>(ptr: *const T) -> Obj {
        Obj(ptr.cast_mut().cast())
    }

    /// The raw word.
    pub fn as_ptr(self) -> *mut c_void {
        self.0
    }

    /// Whether this is the null handle.
    pub fn is_null(self) -> bool {
        self.0.is_null()
    }

    /// The value of a small int object.
    pub fn as_small_int(self) -> Option<isize> {
        let word = self.0 as usize;
        (word & 1 == 1).then_some((word as isize) >> 1)
    }

    /// Whether this handle points to an object struct.
    pub fn is_ptr(self) -> bool {
        !self.0.is_null() && (self.0 as usize) & 0b11 == 0
    }

    /// Whether this is an instance of `type_` (exactly, not a subclass).
    pub fn is_exact_type(self, type_: *const ffi::ObjTypeHead) -> bool {
        // SAFETY: a pointer handle points to an object whose first word is its type.
        // EXCEPTION: none.
        self.is_ptr() && unsafe { (*self.0.cast::<ffi::ObjBase>()).type_ } == type_
    }

    /// The object's type.
    pub fn type_of(self) -> *const ffi::ObjTypeHead {
        // SAFETY: `mp_obj_get_type` accepts any valid handle, including immediates.
        // EXCEPTION: none.
        unsafe { ffi::mp_obj_get_type(self) }
    }

    /// `obj.attr` (raises AttributeError if missing).
    pub fn attr(self, attr: Qstr) -> Result<Obj, Error> {
        // SAFETY: `self` is a valid object; `attr` an interned qstr.
        // EXCEPTION: raises AttributeError, or whatever a property getter raises.
        catch_exception(|| unsafe { ffi::mp_load_attr(self, attr.index()) })
    }

    /// `obj.attr = value`.
    pub fn set_attr(self, attr: Qstr, value: Obj) -> Result<(), Error> {
        // SAFETY: `self` and `value` are valid objects.
        // EXCEPTION: raises AttributeError when the object has no writable attribute.
        catch_exception(|| unsafe { ffi::mp_store_attr(self, attr.index(), value) })
    }

    /// `obj(*args)`.
    pub fn call(self, args: &[Obj]) -> Result<Obj, Error> {
        // SAFETY: `args` outlives the call and holds valid objects.
        // EXCEPTION: raises whatever the callee raises.
        catch_exception(|| unsafe {
            ffi::mp_call_function_n_kw(self, args.len(), 0, args.as_ptr())
        })
    }

    /// `bool(obj)`.
    pub fn is_true(self) -> Result<bool, Error> {
        // SAFETY: `self` is valid.
        // EXCEPTION: raises whatever `__bool__`/`__len__` raises.
        catch_exception(|| unsafe { ffi::mp_obj_is_true(self) })
    }

    /// The items of a tuple or list.
    pub fn items(self) -> Result<&'static [Obj], Error> {
        let mut len = 0usize;
        let mut items: *mut Obj = core::ptr::null_mut();
        let (len_ptr, items_ptr) = (&raw mut len, &raw mut items);
        // SAFETY: the out-pointers are valid for writes.
        // EXCEPTION: raises TypeError if the object is not a tuple or list.
        catch_exception(|| unsafe { ffi::mp_obj_get_array(self, len_ptr, items_ptr) })?;
        if len == 0 {
            return Ok(&[]);
        }
        // SAFETY: MicroPython returned the object's item array of `len` valid handles; it stays
        // alive as long as the object, which the caller holds on the stack.
        Ok(unsafe { core::slice::from_raw_parts(items, len) })
    }

    /// The items of a tuple or list of exactly `N` items: `TypeError` for other objects,
    /// `ValueError` for another length (MicroPython's `mp_obj_get_array_fixed_n`).
    pub fn items_fixed<const N: usize>(self) -> Result<&'static [Obj; N], Error> {
        const {
            assert!(
                N > 0,
                "a fixed-length sequence of no items has no item array"
            )
        };
        let mut items: *mut Obj = core::ptr::null_mut();
        let items_ptr = &raw mut items;
        // SAFETY: the out-pointer is valid for writes.
        // EXCEPTION: raises TypeError (not a tuple or list) or ValueError (wrong length).
        catch_exception(|| unsafe { ffi::mp_obj_get_array_fixed_n(self, N, items_ptr) })?;
        // SAFETY: MicroPython checked the object has exactly `N` items at `items`; they stay
        // alive as long as the object, which the caller holds.
        Ok(unsafe { &*items.cast::<[Obj; N]>() })
    }

    /// The bytes of an object with the buffer protocol (bytes, bytearray, memoryview, str).
    pub fn buffer(self) -> Result<&'static [u8], Error> {
        let info = self.buffer_info(ffi::BUFFER_READ)?;
        if info.len == 0 {
            return Ok(&[]);
        }
        // SAFETY: MicroPython gave a readable buffer of `len` bytes owned by the object.
        Ok(unsafe { core::slice::from_raw_parts(info.buf.cast::<u8>(), info.len) })
    }

    /// The writable bytes of an object with the buffer protocol (bytearray, memoryview).
    pub fn buffer_mut(self) -> Result<&'static mut [u8], Error> {
        let info = self.buffer_info(ffi::BUFFER_WRITE)?;
        if info.len == 0 {
            return Ok(&mut []);
        }
        // SAFETY: MicroPython gave a writable buffer of `len` bytes owned by the object.
        Ok(unsafe { core::slice::from_raw_parts_mut(info.buf.cast::<u8>(), info.len) })
    }

    fn buffer_info(self, flags: usize) -> Result<ffi::BufferInfo, Error> {
        let mut info = ffi::BufferInfo {
            buf: core::ptr::null_mut(),
            len: 0,
            typecode: 0,
        };
        let info_ptr = &raw mut info;
        // SAFETY: `info_ptr` is valid for writes; without MP_BUFFER_RAISE_IF_UNSUPPORTED the
        // call reports failure by its return value.
        // EXCEPTION: none.
        let ok = unsafe { ffi::mp_get_buffer(self, info_ptr, flags) };
        if ok {
            Ok(info)
        } else {
            Err(Error::TypeError("object with buffer protocol required"))
        }
    }

    /// A new tuple.
    pub fn tuple(items: &[Obj]) -> Result<Obj, Error> {
        // SAFETY: `items` holds valid objects and outlives the call.
        // EXCEPTION: raises MemoryError.
        catch_exception(|| unsafe { ffi::mp_obj_new_tuple(items.len(), items.as_ptr()) })
    }

    /// A new empty list.
    pub fn list() -> Result<Obj, Error> {
        // SAFETY: an empty list needs no items.
        // EXCEPTION: raises MemoryError.
        catch_exception(|| unsafe { ffi::mp_obj_new_list(0, core::ptr::null_mut()) })
    }

    /// `list.append(item)`.
    pub fn list_append(self, item: Obj) -> Result<(), Error> {
        // SAFETY: `self` is a list (callers create it with `Obj::list`).
        // EXCEPTION: raises MemoryError.
        catch_exception(|| unsafe { ffi::mp_obj_list_append(self, item) }).map(|_| ())
    }

    /// A new `bytes` object holding a copy of `data`.
    pub fn bytes(data: &[u8]) -> Result<Obj, Error> {
        // SAFETY: `data` is valid for reads of its length.
        // EXCEPTION: raises MemoryError.
        catch_exception(|| unsafe { ffi::mp_obj_new_bytes(data.as_ptr(), data.len()) })
    }

    /// A new `bytes` object of at most `capacity` bytes, filled by `fill` (which returns how
    /// many it wrote, or an error). The buffer is in the GC heap, so a request too large raises
    /// `MemoryError` instead of exhausting Rust's memory.
    pub fn bytes_with<E>(
        capacity: usize,
        fill: impl FnOnce(&mut [u8]) -> Result<usize, E>,
    ) -> Result<Obj, Error>
    where
        Error: From<E>,
    {
        // `vstr_init_len` allocates `capacity + 1` bytes: keep the sum from wrapping (a GC heap
        // can never hold half the address space anyway).
        if capacity >= isize::MAX as usize {
            return Err(Error::MemoryError);
        }
        let mut vstr = ffi::Vstr {
            alloc: 0,
            len: 0,
            buf: core::ptr::null_mut(),
            fixed_buf: false,
        };
        let vstr_ptr = &raw mut vstr;
        // SAFETY: `vstr_ptr` points to a vstr on this stack frame (which the GC scans, keeping
        // the buffer alive).
        // EXCEPTION: raises MemoryError.
        catch_exception(|| unsafe { ffi::vstr_init_len(vstr_ptr, capacity) })?;
        // SAFETY: the vstr is initialised; all accesses go through `vstr_ptr`.
        let (buf, len) = unsafe { ((*vstr_ptr).buf, (*vstr_ptr).len) };
        if buf.is_null() || len != capacity {
            return Err(Error::OsError(crate::backend::ENOMEM));
        }
        // SAFETY: `vstr_init_len` allocated at least `capacity` bytes at `buf`.
        let buf = unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), capacity) };
        let written = fill(buf)?.min(capacity);
        // SAFETY: as above.
        unsafe { (*vstr_ptr).len = written };
        // SAFETY: `vstr` holds `written` valid bytes; MicroPython takes the buffer over.
        // EXCEPTION: raises MemoryError.
        catch_exception(|| unsafe { ffi::mp_obj_new_bytes_from_vstr(vstr_ptr) })
    }

    /// `obj[index] = value`.
    pub fn set_item(self, index: Obj, value: Obj) -> Result<(), Error> {
        // SAFETY: valid objects; `value` non-null selects store.
        // EXCEPTION: raises TypeError if not subscriptable, or what `__setitem__` raises.
        catch_exception(|| unsafe { ffi::mp_obj_subscr(self, index, value) }).map(|_| ())
    }

    /// The number in an int or float object, as float.
    pub fn to_f64(self) -> Result<f64, Error> {
        // SAFETY: valid object.
        // EXCEPTION: raises TypeError if not a number.
        catch_exception(|| unsafe { ffi::mp_obj_get_float(self) })
    }
}

impl From<bool> for Obj {
    fn from(value: bool) -> Self {
        if value {
            Obj::TRUE
        } else {
            Obj::FALSE
        }
    }
}

impl From<()> for Obj {
    fn from(_: ()) -> Self {
        Obj::NONE
    }
}

impl TryFrom<isize> for Obj {
    type Error = Error;

    fn try_from(value: isize) -> Result<Self, Error> {
        match Obj::small_int(value) {
            Some(obj) => Ok(obj),
            // SAFETY: plain value.
            // EXCEPTION: raises MemoryError (a big int is allocated).
            None => catch_exception(|| unsafe { ffi::mp_obj_new_int(value) }),
        }
    }
}

impl TryFrom<usize> for Obj {
    type Error = Error;

    fn try_from(value: usize) -> Result<Self, Error> {
        let value = isize::try_from(value).map_err(|_| Error::OverflowError)?;
        Obj::try_from(value)
    }
}

impl TryFrom<&str> for Obj {
    type Error = Error;

    fn try_from(value: &str) -> Result<Self, Error> {
        // SAFETY: `value` is valid UTF-8 of its length; MicroPython copies or interns it.
        // EXCEPTION: raises MemoryError.
        catch_exception(|| unsafe {
            ffi::mp_obj_new_str(value.as_ptr().cast::<c_char>(), value.len())
        })
    }
}

impl TryFrom<Obj> for isize {
    type Error = Error;

    fn try_from(obj: Obj) -> Result<Self, Error> {
        if let Some(value) = obj.as_small_int() {
            return Ok(value);
        }
        // SAFETY: valid object.
        // EXCEPTION: raises TypeError if not an int, OverflowError if it does not fit.
        catch_exception(|| unsafe { ffi::mp_obj_get_int(obj) })
    }
}

impl TryFrom<Obj> for bool {
    type Error = Error;

    fn try_from(obj: Obj) -> Result<Self, Error> {
        obj.is_true()
    }
}

impl TryFrom<Obj> for &'static str {
    type Error = Error;

    fn try_from(obj: Obj) -> Result<Self, Error> {
        let mut len = 0usize;
        let len_ptr = &raw mut len;
        // SAFETY: `len_ptr` is valid for writes.
        // EXCEPTION: raises TypeError if the object is not str or bytes.
        let data = catch_exception(|| unsafe { ffi::mp_obj_str_get_data(obj, len_ptr) })?;
        if data.is_null() {
            return Err(Error::TypeError("can't convert to str"));
        }
        // SAFETY: MicroPython returned the object's data of `len` bytes; the object lives on.
        let bytes = unsafe { core::slice::from_raw_parts(data.cast::<u8>(), len) };
        core::str::from_utf8(bytes).map_err(|_| Error::ValueError("invalid UTF-8"))
    }
}
