//! Exclusive access to the socket layer, which the board may share with a poller.

/// Gives exclusive access to a `T` for the duration of a call.
pub trait Lock {
    /// What is locked.
    type Target;
    /// Runs `f` with exclusive access.
    fn with<R>(&self, f: impl FnOnce(&mut Self::Target) -> R) -> R;
}

/// Single-threaded sharing (the board: the interpreter and its poll hook on one core).
impl<T> Lock for &core::cell::RefCell<T> {
    type Target = T;

    fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        f(&mut self.borrow_mut())
    }
}

/// Sharing with a background poller thread (the host simulator). A poisoned lock is used
/// anyway: the poller's panic does not make the socket table inconsistent for the next call.
#[cfg(feature = "std")]
impl<T> Lock for std::sync::Arc<std::sync::Mutex<T>> {
    type Target = T;

    fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let mut guard = self
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut guard)
    }
}
