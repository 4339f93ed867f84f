//! A model's report shared with the test that reads it: the model updates it, the test takes
//! snapshots (the RTL8152 and CDC-ECM models' `ReportHandle`).

use std::sync::{Arc, Mutex, PoisonError};

/// A handle on a report of type `T`; clones share it.
#[derive(Clone, Debug, Default)]
pub struct ReportHandle<T>(Arc<Mutex<T>>);

impl<T: Clone> ReportHandle<T> {
    /// A copy of the report now.
    pub fn snapshot(&self) -> T {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl<T> ReportHandle<T> {
    /// Runs `f` on the report (the model's side).
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}
