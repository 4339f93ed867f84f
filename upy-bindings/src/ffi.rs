//! The C ABI of MicroPython v1.29 (object representation A, 64-bit and 32-bit little endian),
//! written from `py/obj.h`, `py/nlr.h`, `py/stream.h` and `py/mpprint.h` of micropython/micropython.
//!
//! Only layouts and entry points; nothing here is safe to call without the caller checking the
//! interpreter is initialised. On the firmware the symbols are linked statically (`extern`); on
//! the host (feature `host`) they are resolved at start-up from the loaded library with `dlsym`,
//! so a missing symbol is a start-up error, never a crash.
#![allow(
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    missing_docs
)]

use core::ffi::{c_char, c_int, c_void};

use crate::obj::Obj;

/// `mp_obj_base_t`: the first word of every object, its type.
#[repr(C)]
pub struct ObjBase {
    pub type_: *const ObjTypeHead,
}

/// The fixed head of `mp_obj_type_t` (v1.20+ "slots" layout): base, flags, name, 12 slot indices.
/// The variable `slots[]` array follows at offset [`TYPE_SLOTS_OFFSET`].
#[repr(C)]
pub struct ObjTypeHead {
    pub base: ObjBase,
    pub flags: u16,
    /// The type's name as a (short) qstr.
    pub name: u16,
    /// 1-based index into `slots` per [`Slot`], 0 when absent.
    pub slot_index: [u8; SLOT_COUNT],
}

/// Number of slot indices in `mp_obj_type_t`.
pub const SLOT_COUNT: usize = 12;
/// Offset of `slots[]` in `mp_obj_type_t` on a 64-bit target (8 + 2 + 2 + 12 = 24).
pub const TYPE_SLOTS_OFFSET: usize = core::mem::size_of::<ObjTypeHead>();

/// The slots of `mp_obj_type_t`, in the order of their index fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum Slot {
    MakeNew = 0,
    Print = 1,
    Call = 2,
    UnaryOp = 3,
    BinaryOp = 4,
    Attr = 5,
    Subscr = 6,
    Iter = 7,
    Buffer = 8,
    Protocol = 9,
    Parent = 10,
    LocalsDict = 11,
}

/// `mp_map_elem_t`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct MapElem {
    pub key: Obj,
    pub value: Obj,
}

/// `mp_map_t`: `all_keys_are_qstrs:1, is_fixed:1, is_ordered:1, used:N-3` packed in one word
/// (GCC bit-field order on little endian: bit 0 first), then `alloc`, then `table`.
#[repr(C)]
pub struct Map {
    pub bits: usize,
    pub alloc: usize,
    pub table: *mut MapElem,
}

impl Map {
    /// The first word of a fixed, ordered map whose keys are all qstrs, with `used` entries.
    pub const fn fixed_bits(used: usize) -> usize {
        0b111 | (used << 3)
    }
}

/// `mp_obj_dict_t`.
#[repr(C)]
pub struct Dict {
    pub base: ObjBase,
    pub map: Map,
}

/// `mp_obj_fun_builtin_var_t`: a native function taking a variable number of arguments.
#[repr(C)]
pub struct FunBuiltinVar {
    pub base: ObjBase,
    /// `MP_OBJ_FUN_MAKE_SIG(min, max, takes_kw)`.
    pub sig: u32,
    pub fun: *const c_void,
}

/// `MP_OBJ_FUN_MAKE_SIG`: `min << 17 | max << 1 | takes_kw`.
pub const fn fun_sig(min: u16, max: u16, takes_kw: bool) -> u32 {
    ((min as u32) << 17) | ((max as u32) << 1) | takes_kw as u32
}

/// `MP_OBJ_FUN_ARGS_MAX`.
pub const FUN_ARGS_MAX: u16 = 0xffff;

/// `mp_fun_var_t`.
pub type FunVar = unsafe extern "C" fn(n_args: usize, args: *const Obj) -> Obj;
/// `mp_fun_kw_t`.
pub type FunKw = unsafe extern "C" fn(n_args: usize, args: *const Obj, kw: *mut Map) -> Obj;
/// `mp_make_new_fun_t`.
pub type MakeNew = unsafe extern "C" fn(
    type_: *const ObjTypeHead,
    n_args: usize,
    n_kw: usize,
    args: *const Obj,
) -> Obj;
/// `mp_print_fun_t`.
pub type PrintFun = unsafe extern "C" fn(print: *const Print, obj: Obj, kind: c_int);

/// `mp_print_t`: where printed text goes.
#[repr(C)]
pub struct Print {
    pub data: *mut c_void,
    pub print_strn: unsafe extern "C" fn(data: *mut c_void, s: *const c_char, len: usize),
}

/// `mp_stream_p_t`.
#[repr(C)]
pub struct StreamProtocol {
    pub read: unsafe extern "C" fn(Obj, *mut c_void, usize, *mut c_int) -> usize,
    pub write: unsafe extern "C" fn(Obj, *const c_void, usize, *mut c_int) -> usize,
    pub ioctl: unsafe extern "C" fn(Obj, usize, usize, *mut c_int) -> usize,
    /// `is_text : 1` in the low bit of a full word.
    pub is_text: usize,
}

/// `MP_STREAM_ERROR`.
pub const STREAM_ERROR: usize = usize::MAX;
/// `MP_STREAM_POLL`.
pub const STREAM_POLL: usize = 3;
/// `MP_STREAM_CLOSE`.
pub const STREAM_CLOSE: usize = 4;
/// `MP_STREAM_TIMEOUT`.
pub const STREAM_TIMEOUT: usize = 5;
/// `MP_STREAM_POLL_RD`.
pub const STREAM_POLL_RD: usize = 0x0001;
/// `MP_STREAM_POLL_WR`.
pub const STREAM_POLL_WR: usize = 0x0004;
/// `MP_STREAM_POLL_ERR`.
pub const STREAM_POLL_ERR: usize = 0x0008;
/// `MP_STREAM_POLL_HUP`.
pub const STREAM_POLL_HUP: usize = 0x0010;
/// `MP_STREAM_POLL_NVAL`: polled after close.
pub const STREAM_POLL_NVAL: usize = 0x0020;

/// `mp_buffer_info_t`.
#[repr(C)]
pub struct BufferInfo {
    pub buf: *mut c_void,
    pub len: usize,
    pub typecode: c_int,
}

/// `vstr_t`: a growable byte buffer in the GC heap.
#[repr(C)]
pub struct Vstr {
    pub alloc: usize,
    pub len: usize,
    pub buf: *mut c_char,
    pub fixed_buf: bool,
}

/// `MP_BUFFER_READ`.
pub const BUFFER_READ: usize = 1;
/// `MP_BUFFER_WRITE`.
pub const BUFFER_WRITE: usize = 2;

/// Words in `nlr_buf_t` on x86-64 System V (`prev`, `ret_val`, 8 saved registers). Other
/// architectures save more (riscv64: 14 registers); the buffer is sized for the largest.
pub const NLR_WORDS_X64: usize = 10;
/// Words reserved for `nlr_buf_t`: generous so a different port still fits; only `prev` and
/// `ret_val` positions are relied on.
pub const NLR_BUF_WORDS: usize = 32;

/// `nlr_buf_t`, over-allocated (see [`NLR_BUF_WORDS`]).
#[repr(C)]
pub struct NlrBuf {
    pub prev: *mut NlrBuf,
    pub ret_val: *mut c_void,
    pub rest: [usize; NLR_BUF_WORDS - 2],
}

/// `mp_print_kind_t` value `PRINT_REPR`.
pub const PRINT_REPR: c_int = 1;

/// Declares the MicroPython entry points and data objects used by the bindings.
///
/// Firmware: plain `extern` declarations. Host: a table filled by `dlsym` at load time, with
/// wrappers of the same name and signature so calling code is identical.
macro_rules! mp_api {
    (
        fns { $( fn $f:ident( $($a:ident : $t:ty),* ) $(-> $r:ty)?; )* }
        data { $( $d:ident; )* }
    ) => {
        #[cfg(not(feature = "host"))]
        mod linked {
            use super::*;
            extern "C" {
                $( pub fn $f( $($a : $t),* ) $(-> $r)?; )*
                $( pub static $d: u8; )*
            }
        }
        #[cfg(not(feature = "host"))]
        pub use linked::{ $($f,)* };

        /// Addresses of MicroPython's data objects (types, modules, function objects).
        #[cfg(not(feature = "host"))]
        pub mod data {
            $(
                /// The address of the C object of this name.
                #[inline]
                pub fn $d() -> *const core::ffi::c_void {
                    (&raw const super::linked::$d).cast()
                }
            )*
        }

        /// Entry points resolved from the loaded library.
        #[cfg(feature = "host")]
        pub struct Api {
            $( $f: unsafe extern "C" fn( $($t),* ) $(-> $r)?, )*
            $( $d: *const core::ffi::c_void, )*
        }

        #[cfg(feature = "host")]
        static API: crate::statics::Static<Option<Api>> = crate::statics::Static::new(None);

        #[cfg(feature = "host")]
        impl Api {
            /// Resolves every entry point with `lookup`; names the first one missing.
            pub fn resolve(
                lookup: impl Fn(&core::ffi::CStr) -> Option<*const core::ffi::c_void>,
            ) -> Result<Self, &'static str> {
                Ok(Self {
                    $( $f: {
                        let name = core::ffi::CStr::from_bytes_with_nul(
                            concat!(stringify!($f), "\0").as_bytes()).map_err(|_| stringify!($f))?;
                        let p = lookup(name).ok_or(stringify!($f))?;
                        // SAFETY: the library exports `$f` with the C signature declared here
                        // (MicroPython v1.29, checked by `host::abi` at start-up).
                        unsafe { core::mem::transmute::<*const core::ffi::c_void,
                            unsafe extern "C" fn( $($t),* ) $(-> $r)?>(p) }
                    }, )*
                    $( $d: lookup(core::ffi::CStr::from_bytes_with_nul(
                            concat!(stringify!($d), "\0").as_bytes()).map_err(|_| stringify!($d))?)
                            .ok_or(stringify!($d))?, )*
                })
            }

            /// Installs the table. Must happen before the interpreter starts.
            ///
            /// # Safety
            /// No other thread may be using the API while it is installed.
            pub unsafe fn install(self) {
                // SAFETY: the caller guarantees exclusive access.
                unsafe { *API.get() = Some(self) };
            }
        }

        #[cfg(feature = "host")]
        fn api() -> &'static Api {
            // SAFETY: the table is written once by `Api::install` before the interpreter thread
            // starts and never again, so shared reads afterwards do not race.
            match unsafe { &*API.get() } {
                Some(api) => api,
                None => {
                    log::error!("MicroPython API used before the library was loaded");
                    std::process::abort()
                }
            }
        }

        $(
            #[cfg(feature = "host")]
            #[doc = concat!("`", stringify!($f), "` of the loaded library.")]
            ///
            /// # Safety
            /// As the C function: valid arguments, on the interpreter thread, and a raise
            /// must be caught (see `crate::runtime`).
            #[inline]
            pub unsafe fn $f( $($a : $t),* ) $(-> $r)? {
                // SAFETY: forwarded with the caller's obligations.
                unsafe { (api().$f)( $($a),* ) }
            }
        )*

        /// Addresses of MicroPython's data objects (types, modules, function objects).
        #[cfg(feature = "host")]
        pub mod data {
            $(
                /// The address of the C object of this name.
                #[inline]
                pub fn $d() -> *const core::ffi::c_void {
                    super::api().$d
                }
            )*
        }
    };
}

mp_api! {
    fns {
        fn mp_thread_init();
        fn mp_cstack_init_with_sp_here(stack_size: usize);
        fn gc_init(start: *mut c_void, end: *mut c_void);
        fn gc_collect();
        fn mp_init();
        fn nlr_push(buf: *mut NlrBuf) -> u32;
        fn nlr_pop();
        fn nlr_jump(val: *mut c_void) -> !;
        fn qstr_from_strn(s: *const c_char, len: usize) -> usize;
        fn qstr_str(q: usize) -> *const c_char;
        fn mp_load_attr(base: Obj, attr: usize) -> Obj;
        fn mp_store_attr(base: Obj, attr: usize, value: Obj);
        fn mp_obj_new_module(name: usize) -> Obj;
        fn mp_call_function_1(fun: Obj, arg: Obj) -> Obj;
        fn mp_call_function_n_kw(fun: Obj, n_args: usize, n_kw: usize, args: *const Obj) -> Obj;
        fn mp_obj_new_str(data: *const c_char, len: usize) -> Obj;
        fn mp_obj_new_bytes(data: *const u8, len: usize) -> Obj;
        fn vstr_init_len(vstr: *mut Vstr, len: usize);
        fn mp_obj_new_bytes_from_vstr(vstr: *mut Vstr) -> Obj;
        fn mp_obj_new_int(value: isize) -> Obj;
        fn mp_obj_new_tuple(n: usize, items: *const Obj) -> Obj;
        fn mp_obj_new_list(n: usize, items: *mut Obj) -> Obj;
        fn mp_obj_list_append(list: Obj, item: Obj) -> Obj;
        fn mp_obj_list_init(list: *mut c_void, n: usize);
        fn mp_obj_new_dict(n_args: usize) -> Obj;
        fn mp_obj_dict_store(dict: Obj, key: Obj, value: Obj) -> Obj;
        fn mp_obj_subscr(base: Obj, index: Obj, value: Obj) -> Obj;
        fn mp_obj_new_exception_args(type_: *const ObjTypeHead, n: usize, args: *const Obj) -> Obj;
        fn mp_obj_get_int(arg: Obj) -> isize;
        fn mp_obj_get_float(arg: Obj) -> f64;
        fn mp_obj_is_true(arg: Obj) -> bool;
        fn mp_obj_str_get_data(s: Obj, len: *mut usize) -> *const c_char;
        fn mp_get_buffer(obj: Obj, info: *mut BufferInfo, flags: usize) -> bool;
        fn mp_obj_get_array(obj: Obj, len: *mut usize, items: *mut *mut Obj);
        fn mp_obj_get_array_fixed_n(obj: Obj, len: usize, items: *mut *mut Obj);
        fn mp_print_str(print: *const Print, s: *const c_char);
        fn mp_obj_get_type(obj: Obj) -> *const ObjTypeHead;
        fn mp_obj_is_subclass_fast(object: Obj, classinfo: Obj) -> bool;
        fn mp_obj_exception_get_value(exc: Obj) -> Obj;
        fn mp_obj_malloc_with_finaliser_helper(num_bytes: usize, type_: *const ObjTypeHead) -> *mut c_void;
        fn mp_obj_print_exception(print: *const Print, exc: Obj);
        fn mp_handle_pending(raise_exceptions: bool);
        fn mp_hal_ticks_ms() -> usize;
        fn mp_hal_ticks_us() -> usize;
        fn mp_hal_delay_ms(ms: usize);
        fn mp_event_wait_ms(timeout_ms: usize);
        fn mp_get_stream_raise(obj: Obj, flags: c_int) -> *const StreamProtocol;
        fn mp_obj_new_int_from_ull(value: u64) -> Obj;
        fn mp_obj_new_attrtuple(fields: *const usize, n: usize, items: *const Obj) -> Obj;
        fn mp_obj_dict_delete(dict: Obj, key: Obj) -> Obj;
        fn mp_sched_keyboard_interrupt();
        fn vstr_init(vstr: *mut Vstr, alloc: usize);
        fn vstr_add_byte(vstr: *mut Vstr, byte: u8);
        fn vstr_null_terminated_str(vstr: *mut Vstr) -> *mut c_char;
        fn vstr_clear(vstr: *mut Vstr);
        fn readline_init0();
        fn readline(line: *mut Vstr, prompt: *const c_char) -> c_int;
        fn mp_repl_continue_with_input(input: *const c_char) -> bool;
        fn mp_hal_stdio_mode_raw();
        fn mp_hal_stdio_mode_orig();
        fn mp_hal_stdin_rx_chr() -> c_int;
        fn mp_hal_stdout_tx_strn(s: *const c_char, len: usize) -> usize;
    }
    data {
        mp_type_type;
        mp_type_dict;
        mp_type_list;
        mp_type_fun_builtin_var;
        mp_type_OSError;
        mp_type_TypeError;
        mp_type_ValueError;
        mp_type_NotImplementedError;
        mp_type_OverflowError;
        mp_type_MemoryError;
        mp_plat_print;
        mp_type_SystemExit;
        mp_type_KeyboardInterrupt;
        mp_module_sys;
        mp_builtin_compile_obj;
        mp_builtin_exec_obj;
        mp_builtin_eval_obj;
        mp_obj_list_make_new;
        mp_stream_read_obj;
        mp_stream_readinto_obj;
        mp_stream_unbuffered_readline_obj;
        mp_stream_write_obj;
        mp_stream_close_obj;
        mp_state_ctx;
    }
}
