//! [`LocalAdopted`] and [`LocalScope::adopt`](crate::LocalScope::adopt).

use std::fmt;
use std::future::Future;
use std::ops::{Deref, DerefMut};

use super::cleanup_task::CleanupTask;
use super::guard::{Guard, HandBack};
use super::local_async_drop::LocalAsyncDrop;
use crate::LocalScope;
use crate::combinators::private::Once;

/// A value adopted by a [`LocalScope`]; like [`Adopted`](crate::Adopted), but
/// the value and its clean-up future need not be `Send` (and the guard never is).
///
/// Made by [`LocalScope::adopt`].
#[must_use = "dropping the guard at once hands the value back to the scope for clean-up"]
pub struct LocalAdopted<'env, T: LocalAsyncDrop + 'env> {
    guard: Guard<T, LocalScope<'env>>,
}

impl<'env> LocalScope<'env> {
    /// Adopts `value`; see [`Scope::adopt`](crate::Scope::adopt). The value
    /// may be `!Send` and its [`LocalAsyncDrop::prepare_drop`] future too.
    ///
    /// # Panics
    ///
    /// If the scope has already finished (the handle outlived its scope).
    #[track_caller]
    pub fn adopt<T>(&self, value: T) -> LocalAdopted<'env, T>
    where
        T: LocalAsyncDrop + 'env,
    {
        let slot = self.cleanup().reserve();
        LocalAdopted {
            guard: Guard::new(slot, value, self.clone()),
        }
    }
}

impl<'env, T: LocalAsyncDrop + 'env> HandBack<T> for LocalScope<'env> {
    fn hand_back(&self, slot: u64, value: T) {
        let task = CleanupTask::new(prepare_then_drop(value));
        self.cleanup().hand_back(slot, Box::pin(task));
    }

    fn release(&self, slot: u64) {
        self.cleanup().release(slot);
    }
}

async fn prepare_then_drop<T: LocalAsyncDrop>(mut value: T) {
    LocalAsyncDrop::prepare_drop(&mut value).await;
}

impl<'env, T: LocalAsyncDrop + 'env> LocalAdopted<'env, T> {
    /// Runs the value's `prepare_drop` now, then drops it; see
    /// [`Adopted::close`](crate::Adopted::close).
    ///
    /// # Cancel safety
    ///
    /// If this future is dropped before it completes, the value goes back
    /// to the scope, which calls `prepare_drop` again from the start.
    ///
    /// # Panics
    ///
    /// If `prepare_drop` panics, the panic propagates to the caller and the
    /// value goes back to the scope. Polling the future again after it
    /// completed (or panicked) panics.
    pub fn close(mut self) -> impl Future<Output = ()> {
        Once::new("LocalAdopted::close", async move {
            LocalAsyncDrop::prepare_drop(self.guard.get_mut()).await;
            self.guard.finish();
        })
    }
}

impl<'env, T: LocalAsyncDrop + 'env> Deref for LocalAdopted<'env, T> {
    type Target = T;

    fn deref(&self) -> &T {
        self.guard.get()
    }
}

impl<'env, T: LocalAsyncDrop + 'env> DerefMut for LocalAdopted<'env, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.guard.get_mut()
    }
}

impl<'env, T: LocalAsyncDrop + fmt::Debug + 'env> fmt::Debug for LocalAdopted<'env, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("LocalAdopted").field(&self.guard).finish()
    }
}
