//! [`Adopted`] and [`Scope::adopt`](crate::Scope::adopt).

use std::fmt;
use std::future::Future;
use std::ops::{Deref, DerefMut};

use super::async_drop::AsyncDrop;
use super::cleanup_task::CleanupTask;
use super::guard::{Guard, HandBack};
use crate::Scope;
use crate::combinators::private::Once;

/// A value adopted by a [`Scope`]: derefs to it; when the guard is dropped
/// the scope runs the value's [`AsyncDrop::prepare_drop`] before it returns,
/// then drops the value.
///
/// Made by [`Scope::adopt`]. The hand-back happens however the guard goes:
/// at the end of a block, by an early `return` or `?`, when the future
/// holding it is cancelled (dropped), or while a panic unwinds. It is `Send`
/// when `T` is, and it may be moved into a child of the scope (it holds a
/// clone of the scope's handle, like a child that spawns).
#[must_use = "dropping the guard at once hands the value back to the scope for clean-up"]
pub struct Adopted<'env, T: AsyncDrop + Send + 'env> {
    guard: Guard<T, Scope<'env>>,
}

impl<'env> Scope<'env> {
    /// Adopts `value`: the scope will run its [`AsyncDrop::prepare_drop`]
    /// after every child finished and before the scope returns, then drop it.
    ///
    /// Use the returned guard as the value (it derefs to it). Adopted values
    /// and [deferred](Scope::defer) futures are cleaned up last-in, first-out
    /// in the order they were adopted or deferred; see design/cleanup.md.
    ///
    /// ```
    /// # use std::future::Future;
    /// # use std::sync::{Arc, Mutex};
    /// struct Conn(Arc<Mutex<Vec<&'static str>>>);
    /// impl taskscope::AsyncDrop for Conn {
    ///     fn prepare_drop(&mut self) -> impl Future<Output = ()> + Send + '_ {
    ///         async move { self.0.lock().unwrap().push("closed") }
    ///     }
    /// }
    ///
    /// # futures::executor::block_on(async {
    /// let log = Arc::new(Mutex::new(Vec::new()));
    /// let log_ref = &log;
    /// let result: Result<(), &str> = taskscope::scope(|s| async move {
    ///     let conn = s.adopt(Conn(log_ref.clone()));
    ///     conn.0.lock().unwrap().push("query");
    ///     Err("failed")?; // the early return still closes `conn`
    ///     Ok(())
    /// })
    /// .await;
    /// assert!(result.is_err());
    /// assert_eq!(*log.lock().unwrap(), ["query", "closed"]);
    /// # });
    /// ```
    ///
    /// Children cannot borrow the guard (it is the body's local, not data
    /// that outlives the scope); to share the value between children, put
    /// the guard in an [`Arc`](std::sync::Arc): the value goes back to the
    /// scope when the last clone is dropped. An `Arc` is `Send` only when
    /// the value is `Sync`; for a value that is not (a
    /// `rusqlite::Connection`, say), share `Arc<Mutex<Adopted<T>>>`.
    ///
    /// If the scope future is dropped before it finishes, no async work can
    /// run: the value's sync `Drop` still runs, `prepare_drop` does not, and
    /// [`cleanup_skipped_count`](crate::cleanup_skipped_count) counts it.
    /// The same holds for a guard that leaves the scope (returned from the
    /// body, or sent to another task) and is dropped after the scope
    /// returned: the scope ran its clean-up without it.
    ///
    /// # Panics
    ///
    /// If the scope has already finished (the handle outlived its scope).
    #[track_caller]
    pub fn adopt<T>(&self, value: T) -> Adopted<'env, T>
    where
        T: AsyncDrop + Send + 'env,
    {
        let slot = self.cleanup().reserve();
        Adopted {
            guard: Guard::new(slot, value, self.clone()),
        }
    }
}

impl<'env, T: AsyncDrop + Send + 'env> HandBack<T> for Scope<'env> {
    fn hand_back(&self, slot: u64, value: T) {
        let task = CleanupTask::new(prepare_then_drop(value));
        self.cleanup().hand_back(slot, Box::pin(task));
    }

    fn release(&self, slot: u64) {
        self.cleanup().release(slot);
    }
}

async fn prepare_then_drop<T: AsyncDrop>(mut value: T) {
    AsyncDrop::prepare_drop(&mut value).await;
}

impl<'env, T: AsyncDrop + Send + 'env> Adopted<'env, T> {
    /// Runs the value's `prepare_drop` now, in the calling task, then drops
    /// it; the scope has nothing left to do for it.
    ///
    /// Unlike the scope's clean-up, this runs under the caller's own
    /// cancellation token, not shielded from it.
    ///
    /// # Cancel safety
    ///
    /// If this future is dropped before it completes, the value goes back
    /// to the scope, which calls `prepare_drop` again from the start before
    /// it returns (see [`AsyncDrop`]'s "Calling it more than once").
    ///
    /// # Panics
    ///
    /// If `prepare_drop` panics, the panic propagates to the caller and the
    /// value goes back to the scope as above. Polling the future again after
    /// it completed (or panicked) panics.
    pub fn close(mut self) -> impl Future<Output = ()> {
        Once::new("Adopted::close", async move {
            AsyncDrop::prepare_drop(self.guard.get_mut()).await;
            self.guard.finish();
        })
    }
}

impl<'env, T: AsyncDrop + Send + 'env> Deref for Adopted<'env, T> {
    type Target = T;

    fn deref(&self) -> &T {
        self.guard.get()
    }
}

impl<'env, T: AsyncDrop + Send + 'env> DerefMut for Adopted<'env, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.guard.get_mut()
    }
}

impl<'env, T: AsyncDrop + Send + fmt::Debug + 'env> fmt::Debug for Adopted<'env, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Adopted").field(&self.guard).finish()
    }
}
