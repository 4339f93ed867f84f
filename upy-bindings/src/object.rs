//! Static MicroPython objects defined in Rust: functions, types, attribute tables and modules.
//!
//! They are `static`s built by small `const fn`s (and the [`table!`](crate::table) macro), so a
//! module reads like the Python API it defines. Names become qstrs and base types are linked
//! when the objects are registered with the running interpreter ([`Module::register`]); until
//! then MicroPython never sees them.

use core::ffi::{c_void, CStr};

use crate::error::Error;
use crate::ffi::{self, Dict, FunBuiltinVar, Map, MapElem, ObjBase, ObjTypeHead, Slot};
use crate::obj::Obj;
use crate::qstr::Qstr;
use crate::statics::Static;

/// A native function object (`mp_obj_fun_builtin_var_t`).
pub struct Fun(Static<FunBuiltinVar>);

impl Fun {
    /// A function taking `min..=max` positional arguments.
    pub const fn var(min: u16, max: u16, f: ffi::FunVar) -> Fun {
        Fun(Static::new(FunBuiltinVar {
            base: ObjBase {
                type_: core::ptr::null(),
            },
            sig: ffi::fun_sig(min, max, false),
            fun: f as *const c_void,
        }))
    }

    /// A function taking at least `min` positional arguments and any keywords.
    pub const fn kw(min: u16, f: ffi::FunKw) -> Fun {
        Fun(Static::new(FunBuiltinVar {
            base: ObjBase {
                type_: core::ptr::null(),
            },
            sig: ffi::fun_sig(min, ffi::FUN_ARGS_MAX, true),
            fun: f as *const c_void,
        }))
    }

    fn link(&self) -> Obj {
        // SAFETY: registration runs on the interpreter thread before MicroPython can see the
        // object; the write is the same every time.
        unsafe { (*self.0.get()).base.type_ = ffi::data::mp_type_fun_builtin_var().cast() };
        Obj::from_ptr(self.0.get())
    }
}

/// `mp_obj_type_t` with room for every slot.
#[repr(C)]
struct TypeObj {
    head: ObjTypeHead,
    slots: [*const c_void; ffi::SLOT_COUNT],
}

/// A native type.
pub struct PyType {
    obj: Static<TypeObj>,
    name: &'static CStr,
    locals: Option<&'static Table>,
}

/// Builds a [`PyType`] slot by slot.
pub struct TypeBuilder {
    obj: TypeObj,
    used: u8,
}

impl TypeBuilder {
    /// A type without slots.
    pub const fn new() -> Self {
        TypeBuilder {
            obj: TypeObj {
                head: ObjTypeHead {
                    base: ObjBase {
                        type_: core::ptr::null(),
                    },
                    flags: 0,
                    name: 0,
                    slot_index: [0; ffi::SLOT_COUNT],
                },
                slots: [core::ptr::null(); ffi::SLOT_COUNT],
            },
            used: 0,
        }
    }

    const fn slot(mut self, slot: Slot, value: *const c_void) -> Self {
        self.obj.slots[self.used as usize] = value;
        self.used += 1;
        self.obj.head.slot_index[slot as usize] = self.used;
        self
    }

    /// The constructor, `Type(...)`.
    pub const fn make_new(self, f: ffi::MakeNew) -> Self {
        self.slot(Slot::MakeNew, f as *const c_void)
    }

    /// `repr()` and `str()`.
    pub const fn print(self, f: ffi::PrintFun) -> Self {
        self.slot(Slot::Print, f as *const c_void)
    }

    /// The stream protocol.
    pub const fn stream(self, protocol: &'static ffi::StreamProtocol) -> Self {
        self.slot(
            Slot::Protocol,
            protocol as *const ffi::StreamProtocol as *const c_void,
        )
    }

    /// Names the type and gives it its attributes.
    pub const fn build(self, name: &'static CStr, locals: &'static Table) -> PyType {
        let builder = self.slot(Slot::LocalsDict, locals.dict.get() as *const c_void);
        PyType {
            obj: Static::new(builder.obj),
            name,
            locals: Some(locals),
        }
    }
}

impl Default for TypeBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl PyType {
    /// The `mp_obj_type_t` address.
    pub fn as_type_ptr(&self) -> *const ObjTypeHead {
        self.obj.get().cast::<ObjTypeHead>()
    }

    fn link(&self) -> Result<Obj, Error> {
        let name = Qstr::intern(self.name)?.short()?;
        if let Some(locals) = self.locals {
            locals.link()?;
        }
        // SAFETY: registration runs on the interpreter thread before MicroPython can see the
        // type; the writes are the same every time.
        unsafe {
            let obj = self.obj.get();
            (*obj).head.base.type_ = ffi::data::mp_type_type().cast();
            (*obj).head.name = name;
        }
        Ok(Obj::from_ptr(self.as_type_ptr()))
    }
}

/// What a table entry holds.
pub enum Value {
    /// A function.
    Fun(&'static Fun),
    /// A type.
    Type(&'static PyType),
    /// A small int constant.
    Int(isize),
    /// A string constant.
    Str(&'static CStr),
    /// A MicroPython object defined in C, by its address.
    Extern(fn() -> *const c_void),
}

/// A fixed attribute table (`mp_obj_dict_t` over a fixed, ordered `mp_map_t`).
pub struct Table {
    dict: Static<Dict>,
    entries: &'static [(&'static CStr, Value)],
}

impl Table {
    /// A table over `entries`, stored in `elems` (which must have the same length).
    pub const fn new(
        entries: &'static [(&'static CStr, Value)],
        elems: &'static Static<[MapElem]>,
    ) -> Table {
        Table {
            dict: Static::new(Dict {
                base: ObjBase {
                    type_: core::ptr::null(),
                },
                map: Map {
                    bits: Map::fixed_bits(entries.len()),
                    alloc: entries.len(),
                    table: elems.get() as *mut MapElem,
                },
            }),
            entries,
        }
    }

    /// The entries.
    pub fn entries(&self) -> &'static [(&'static CStr, Value)] {
        self.entries
    }

    fn link(&self) -> Result<Obj, Error> {
        // SAFETY: the map was built over an element array of `entries.len()` elements.
        let (elems, len) = unsafe {
            let dict = self.dict.get();
            (*dict).base.type_ = ffi::data::mp_type_dict().cast();
            ((*dict).map.table, (*dict).map.alloc)
        };
        for (i, (name, value)) in self.entries.iter().enumerate().take(len) {
            let element = MapElem {
                key: Obj::from_qstr(Qstr::intern(name)?),
                value: value.link()?,
            };
            // SAFETY: `i < len`, the element array's length; registration is single-threaded.
            unsafe { elems.add(i).write(element) };
        }
        Ok(Obj::from_ptr(self.dict.get()))
    }
}

impl Value {
    fn link(&self) -> Result<Obj, Error> {
        Ok(match self {
            Value::Fun(fun) => fun.link(),
            Value::Type(type_) => type_.link()?,
            Value::Int(value) => Obj::small_int(*value).ok_or(Error::OverflowError)?,
            Value::Str(text) => Obj::from_qstr(Qstr::intern(text)?),
            Value::Extern(address) => Obj::from_ptr(address()),
        })
    }
}

/// Defines a [`Table`] static: `table!(NAME = { c"attr" => Value::..., ... });`.
#[macro_export]
macro_rules! table {
    ($vis:vis $name:ident = { $( $key:expr => $value:expr ),* $(,)? }) => {
        $vis static $name: $crate::object::Table = {
            const LEN: usize = [$( stringify!($key) ),*].len();
            static ENTRIES: [(&core::ffi::CStr, $crate::object::Value); LEN] = [
                $( ($key, $value) ),*
            ];
            static ELEMS: $crate::statics::Static<[$crate::ffi::MapElem; LEN]> =
                $crate::statics::Static::new(
                    [$crate::ffi::MapElem { key: $crate::obj::Obj::NULL, value: $crate::obj::Obj::NULL }; LEN]
                );
            $crate::object::Table::new(&ENTRIES, &ELEMS)
        };
    };
}

/// `mp_obj_module_t`: a module object defined at link time around a [`Module`]'s globals, for
/// a port's built-in module table (`MP_REGISTER_MODULE` in C names the static). Its dict is
/// usable once [`Module::link_globals`] has run.
#[repr(C)]
pub struct ModuleObj {
    base: ObjBase,
    globals: *mut Dict,
}

// SAFETY: the object is never written; its dict is written only by `Module::link_globals`, on
// the interpreter thread, before scripts run (see `crate::statics::Static`).
unsafe impl Sync for ModuleObj {}

extern "C" {
    /// MicroPython's `mp_type_module`.
    static mp_type_module: ObjTypeHead;
}

impl ModuleObj {
    /// The module object around `module`'s globals.
    pub const fn new(module: &Module) -> Self {
        Self {
            base: ObjBase {
                type_: &raw const mp_type_module,
            },
            globals: module.globals_dict(),
        }
    }
}

/// A module: a name and its globals.
pub struct Module {
    name: &'static CStr,
    globals: &'static Table,
}

impl Module {
    /// A module named `name` with the attributes of `globals`.
    pub const fn new(name: &'static CStr, globals: &'static Table) -> Module {
        Module { name, globals }
    }

    /// The address of the module's globals dict, for a module object defined at link time
    /// (`mp_obj_module_t` of a MicroPython user C module, registered with
    /// `MP_REGISTER_MODULE`). The dict is usable once [`Module::link_globals`] has run.
    pub const fn globals_dict(&self) -> *mut Dict {
        self.globals.dict.get()
    }

    /// Interns the globals' names and fills the dict at [`Module::globals_dict`] in place.
    /// Qstrs are pool indices of the running interpreter, so this runs again after every
    /// `mp_init` (a soft reset empties the pool of run-time qstrs).
    pub fn link_globals(&self) -> Result<Obj, Error> {
        self.globals.link()
    }

    /// Creates the module in the running interpreter and puts it into `sys.modules`, where it
    /// takes precedence over a built-in module of the same name.
    pub fn register(&self) -> Result<Obj, Error> {
        let name = Qstr::intern(self.name)?;
        // SAFETY: `name` is interned.
        // EXCEPTION: raises MemoryError.
        let module =
            crate::runtime::catch_exception(|| unsafe { ffi::mp_obj_new_module(name.index()) })?;
        for (key, value) in self.globals.entries() {
            module.set_attr(Qstr::intern(key)?, value.link()?)?;
        }
        let sys = Obj::from_ptr(ffi::data::mp_module_sys());
        let modules = sys.attr(Qstr::intern(c"modules")?)?;
        modules.set_item(Obj::from_qstr(name), module)?;
        Ok(module)
    }
}
