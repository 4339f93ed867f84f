//! Start-up checks of every ABI assumption the bindings make about the loaded MicroPython.
//!
//! Each check compares something the bindings compute on their own (an object encoding, a
//! struct offset) with what the library does; a mismatch stops the start with a message.
//!
//! Assumptions checked:
//! 1. version: `sys.implementation.version[:2] == (1, 29)` (the pinned package ships v1.29);
//! 2. object representation A: `None`/`False`/`True` are immediates 6/14/30, small ints are
//!    `v << 1 | 1`, qstr objects `q << 3 | 2` (compared with what the compiler produces);
//! 3. `mp_obj_type_t`: base, `u16 flags`, `u16 name` (qstr), 12 `u8` slot indices, `slots[]` at
//!    offset 24; checked on `list`: base is `type`, name is the qstr "list", its `make_new`
//!    slot holds `mp_obj_list_make_new` and its `locals_dict` slot a `dict`;
//! 4. `mp_obj_fun_builtin_var_t`: base, `u32 sig` (`min << 17 | max << 1 | kw`), fun pointer;
//!    checked on `exec` (`MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(.., 1, 3, ..)`);
//! 5. `nlr_buf_t`: `prev`, `ret_val`, then 8 saved registers on x86-64: `nlr_push` writes no
//!    word past the 10th of the (over-sized) buffer, and a raise is caught with its object;
//! 6. `vstr_t`: `alloc`, `len`, `buf`, `fixed_buf`: `vstr_init_len(5)` sets them as expected;
//! 7. `mp_pending_exception` in `mp_state_ctx` ([`crate::host::pending::locate`]).
//!
//! Not checked at run time (no probe without side effects): `mp_obj_fun_builtin_var_t`'s
//! function pointer offset (16), `mp_stream_p_t` (three pointers then `is_text`), `mp_map_t`'s
//! bit-field order; they are exercised by every test that calls a binding.

use core::ffi::c_void;

use crate::error::Error;
use crate::ffi::{self, ObjTypeHead, Slot};
use crate::obj::Obj;
use crate::qstr::Qstr;

/// A failed ABI check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbiMismatch(pub String);

impl core::fmt::Display for AbiMismatch {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "MicroPython ABI mismatch: {}", self.0)
    }
}

impl std::error::Error for AbiMismatch {}

fn mismatch(what: impl Into<String>) -> AbiMismatch {
    AbiMismatch(what.into())
}

fn caught(context: &str) -> impl Fn(Error) -> AbiMismatch + '_ {
    move |e| mismatch(format!("{context}: {e:?}"))
}

/// Evaluates a Python expression with the builtin `eval`.
pub(crate) fn eval(expr: &str) -> Result<Obj, Error> {
    let source = Obj::try_from(expr)?;
    Obj::from_ptr(ffi::data::mp_builtin_eval_obj()).call(&[source])
}

/// Runs all checks; call right after `mp_init`.
pub fn check() -> Result<(), AbiMismatch> {
    check_nlr()?;
    check_representation()?;
    check_type_layout()?;
    check_fun_layout()?;
    check_vstr()?;
    check_version()?;
    crate::host::pending::locate()
}

fn check_nlr() -> Result<(), AbiMismatch> {
    const CANARY: usize = 0x5a5a_a5a5_5a5a_a5a5;
    let mut buf = ffi::NlrBuf {
        prev: core::ptr::null_mut(),
        ret_val: core::ptr::null_mut(),
        rest: [CANARY; ffi::NLR_BUF_WORDS - 2],
    };
    let buf_ptr = &raw mut buf;
    // SAFETY: push and pop on the same frame without a raise in between; `buf` outlives both.
    // EXCEPTION: none (nothing between push and pop can raise).
    let first = unsafe {
        let r = ffi::nlr_push(buf_ptr);
        ffi::nlr_pop();
        r
    };
    if first != 0 {
        return Err(mismatch("nlr_push returned non-zero on its first return"));
    }
    // SAFETY: plain reads of our own buffer after the library wrote it.
    let rest = unsafe { core::ptr::read_volatile(&raw const (*buf_ptr).rest) };
    let saved = ffi::NLR_WORDS_X64 - 2;
    if rest[saved..].iter().any(|&w| w != CANARY) {
        return Err(mismatch(
            "nlr_buf_t is larger than 10 words (nlr_push wrote past the x86-64 layout)",
        ));
    }
    if rest[..saved].iter().all(|&w| w == CANARY) {
        return Err(mismatch("nlr_push saved no registers into nlr_buf_t"));
    }
    let raised = eval("1 // 0");
    match raised {
        Err(Error::Caught(exc)) if exc.is_ptr() => Ok(()),
        other => Err(mismatch(format!(
            "a raise was not caught as an exception object: {other:?}"
        ))),
    }
}

fn check_representation() -> Result<(), AbiMismatch> {
    let cases: [(&str, Obj); 5] = [
        ("None", Obj::NONE),
        ("False", Obj::FALSE),
        ("True", Obj::TRUE),
        ("12345", Obj::small_int_const(12345)),
        ("-7", Obj::small_int_const(-7)),
    ];
    for (expr, expected) in cases {
        let got = eval(expr).map_err(caught(expr))?;
        if got != expected {
            return Err(mismatch(format!(
                "`{expr}` is {:#x}, object representation A says {:#x}",
                got.as_ptr() as usize,
                expected.as_ptr() as usize
            )));
        }
    }
    let q = Qstr::intern(c"k230_abi_probe").map_err(caught("intern"))?;
    let got = eval("'k230_abi_probe'").map_err(caught("str literal"))?;
    if got != Obj::from_qstr(q) {
        return Err(mismatch(
            "a str literal is not the qstr object `q << 3 | 2`",
        ));
    }
    Ok(())
}

/// The slot value of a type, by the layout this crate assumes.
///
/// # Safety
/// `type_` must point to a live `mp_obj_type_t`.
unsafe fn slot(type_: *const ObjTypeHead, slot: Slot) -> Option<*const c_void> {
    // SAFETY: per the caller, `type_` is valid; slot indices are 1-based into `slots[]`, which
    // starts right after the head.
    unsafe {
        let index = (*type_).slot_index[slot as usize];
        if index == 0 {
            return None;
        }
        let slots = type_
            .cast::<u8>()
            .add(ffi::TYPE_SLOTS_OFFSET)
            .cast::<*const c_void>();
        Some(*slots.add(usize::from(index) - 1))
    }
}

fn check_type_layout() -> Result<(), AbiMismatch> {
    if ffi::TYPE_SLOTS_OFFSET != 24 {
        return Err(mismatch("mp_obj_type_t head is not 24 bytes"));
    }
    let list: *const ObjTypeHead = ffi::data::mp_type_list().cast();
    let type_type: *const ObjTypeHead = ffi::data::mp_type_type().cast();
    // SAFETY: `mp_type_list` is a static type object of the library.
    let (base, name) = unsafe { ((*list).base.type_, (*list).name) };
    if base != type_type {
        return Err(mismatch("mp_type_list.base is not &mp_type_type"));
    }
    let list_q = Qstr::intern(c"list").map_err(caught("intern"))?;
    if usize::from(name) != list_q.index() {
        return Err(mismatch(format!(
            "mp_type_list.name is {name}, the qstr `list` is {}",
            list_q.index()
        )));
    }
    // SAFETY: `list` is a type object.
    let make_new = unsafe { slot(list, Slot::MakeNew) };
    if make_new != Some(ffi::data::mp_obj_list_make_new()) {
        return Err(mismatch(
            "mp_type_list's make_new slot does not hold mp_obj_list_make_new",
        ));
    }
    // SAFETY: `list` is a type object.
    let locals = unsafe { slot(list, Slot::LocalsDict) }
        .ok_or_else(|| mismatch("mp_type_list has no locals_dict slot"))?;
    if !Obj::from_ptr(locals).is_exact_type(ffi::data::mp_type_dict().cast()) {
        return Err(mismatch("mp_type_list's locals_dict slot is not a dict"));
    }
    let probe = eval("[].append").map_err(caught("[].append"))?;
    if probe.is_null() {
        return Err(mismatch("list has no append"));
    }
    Ok(())
}

fn check_fun_layout() -> Result<(), AbiMismatch> {
    let exec: *const ffi::FunBuiltinVar = ffi::data::mp_builtin_exec_obj().cast();
    // SAFETY: `mp_builtin_exec_obj` is a static `mp_obj_fun_builtin_var_t`.
    let (base, sig) = unsafe { ((*exec).base.type_, (*exec).sig) };
    if base != ffi::data::mp_type_fun_builtin_var().cast() {
        return Err(mismatch("exec is not a mp_type_fun_builtin_var object"));
    }
    if sig != ffi::fun_sig(1, 3, false) {
        return Err(mismatch(format!(
            "exec's sig is {sig:#x}, MP_OBJ_FUN_MAKE_SIG(1, 3, false) is {:#x}",
            ffi::fun_sig(1, 3, false)
        )));
    }
    Ok(())
}

fn check_vstr() -> Result<(), AbiMismatch> {
    let mut vstr = ffi::Vstr {
        alloc: 0,
        len: 0,
        buf: core::ptr::null_mut(),
        fixed_buf: true,
    };
    let vstr_ptr = &raw mut vstr;
    // SAFETY: `vstr_ptr` points to a vstr on this frame.
    // EXCEPTION: raises MemoryError (caught).
    crate::runtime::catch_exception(|| unsafe { ffi::vstr_init_len(vstr_ptr, 5) })
        .map_err(caught("vstr_init_len"))?;
    // SAFETY: initialised above; read through the same pointer.
    let (alloc, len, buf, fixed) = unsafe {
        (
            (*vstr_ptr).alloc,
            (*vstr_ptr).len,
            (*vstr_ptr).buf,
            (*vstr_ptr).fixed_buf,
        )
    };
    if len != 5 || alloc < 5 || buf.is_null() || fixed {
        return Err(mismatch(format!(
            "vstr_t is not {{alloc, len, buf, fixed_buf}}: vstr_init_len(5) gave alloc {alloc}, \
             len {len}, buf {buf:?}, fixed_buf {fixed}"
        )));
    }
    Ok(())
}

fn check_version() -> Result<(), AbiMismatch> {
    // Not `import sys`: imports read `sys.path`, which is not set yet.
    let sys = Obj::from_ptr(ffi::data::mp_module_sys());
    let version = Qstr::intern(c"implementation")
        .and_then(|q| sys.attr(q))
        .and_then(|implementation| implementation.attr(Qstr::intern(c"version")?))
        .and_then(Obj::items)
        .map_err(caught("sys.implementation.version"))?;
    let numbers: Vec<isize> = version.iter().filter_map(|o| o.as_small_int()).collect();
    if numbers.get(..2) != Some(&[1, 29][..]) {
        return Err(mismatch(format!(
            "MicroPython version {numbers:?}, the bindings are written for v1.29"
        )));
    }
    Ok(())
}
