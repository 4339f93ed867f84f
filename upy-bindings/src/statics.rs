//! Interior-mutable statics for objects MicroPython reads in place (types, functions, tables).

use core::cell::UnsafeCell;

/// A static MicroPython reads through raw pointers and the bindings fill once at registration.
///
/// MicroPython runs on one thread; every write happens during registration on that thread before
/// any script runs, and afterwards the contents are only read.
#[repr(transparent)]
pub struct Static<T: ?Sized>(UnsafeCell<T>);

// SAFETY: see the type's documentation: written only during single-threaded registration, read
// only by the interpreter thread afterwards.
unsafe impl<T: ?Sized> Sync for Static<T> {}

impl<T> Static<T> {
    /// Wraps a value.
    pub const fn new(value: T) -> Self {
        Self(UnsafeCell::new(value))
    }
}

impl<T: ?Sized> Static<T> {
    /// The address MicroPython is given.
    pub const fn get(&self) -> *mut T {
        self.0.get()
    }
}
