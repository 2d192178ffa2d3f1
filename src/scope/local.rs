//! [`LocalScope`]: the handle of a scope whose children need not be `Send`.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::panic::Location;

use super::core::Core;
use super::handle::Handle;
use super::join_handle::JoinHandle;
use super::task::TaskExit;
use crate::cancel::CancelToken;
use crate::cleanup::queue::CleanupQueue;
use crate::introspect::{Snapshot, SnapshotHandle};
use crate::sync::Arc;

/// The boxed form of a child that need not be `Send`.
pub(crate) type LocalTask<'env> = dyn Future<Output = TaskExit> + 'env;

/// A handle to a [`local_scope`](crate::local_scope): like
/// [`Scope`](crate::Scope), but children may hold `Rc`, `RefCell` borrows or a
/// `&rusqlite::Connection`, and the scope future is `!Send`.
///
/// ```
/// use std::cell::RefCell;
///
/// # futures::executor::block_on(async {
/// let log = RefCell::new(Vec::new());
/// let log_ref = &log;
/// taskscope::local_scope(|s| async move {
///     for i in 0..3 {
///         let log = log_ref;
///         s.spawn(async move { log.borrow_mut().push(i) });
///     }
/// })
/// .await;
/// assert_eq!(log.into_inner(), vec![0, 1, 2]);
/// # });
/// ```
///
/// The scope future of a local scope cannot cross threads:
///
/// ```compile_fail,E0277
/// fn assert_send<T: Send>(_: T) {}
/// assert_send(taskscope::local_scope(|_s| async {}));
/// ```
pub struct LocalScope<'env> {
    handle: Handle<'env, LocalTask<'env>>,
}

impl<'env> LocalScope<'env> {
    pub(crate) fn new(core: Arc<Core<LocalTask<'env>>>) -> Self {
        LocalScope {
            handle: Handle::new(core),
        }
    }

    /// Spawns `future` as a child of the scope; see [`Scope::spawn`](crate::Scope::spawn).
    ///
    /// # Panics
    ///
    /// If the scope has already finished (the handle outlived its scope), or
    /// if called from the scope's clean-up (a deferred future or a
    /// `prepare_drop`), which runs after the children were joined: run a
    /// nested scope there instead.
    #[track_caller]
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'env,
        F::Output: 'env,
    {
        self.handle.spawn_task(None, future, Location::caller())
    }

    /// Spawns `future` as a child named `name`; see
    /// [`Scope::spawn_named`](crate::Scope::spawn_named).
    ///
    /// # Panics
    ///
    /// If the scope has already finished (the handle outlived its scope), or
    /// if called from the scope's clean-up (a deferred future or a
    /// `prepare_drop`), which runs after the children were joined: run a
    /// nested scope there instead.
    #[track_caller]
    pub fn spawn_named<F>(
        &self,
        name: impl Into<Cow<'static, str>>,
        future: F,
    ) -> JoinHandle<F::Output>
    where
        F: Future + 'env,
        F::Output: 'env,
    {
        self.handle
            .spawn_task(Some(name.into()), future, Location::caller())
    }

    /// The scope's token: cancelling it cancels the body and every child.
    pub fn token(&self) -> &CancelToken {
        self.handle.token()
    }

    /// What the stream adapters spawn through (`Spawner`): their children
    /// are asked for where the adapter was made, not where it spawns them.
    pub(crate) fn handle(&self) -> &Handle<'env, LocalTask<'env>> {
        &self.handle
    }

    /// A snapshot of this scope and everything below it; see
    /// [`Scope::snapshot`](crate::Scope::snapshot).
    pub fn snapshot(&self) -> Snapshot {
        Snapshot::of_scope(self.handle.shared())
    }

    /// A `'static`, `Send` handle that takes snapshots of this scope; see
    /// [`Scope::snapshot_handle`](crate::Scope::snapshot_handle).
    pub fn snapshot_handle(&self) -> SnapshotHandle {
        SnapshotHandle::new(self.handle.shared().clone())
    }

    pub(crate) fn cleanup(&self) -> &CleanupQueue<LocalTask<'env>> {
        self.handle.cleanup()
    }

    /// Cancels the scope voluntarily; see [`Scope::cancel`](crate::Scope::cancel).
    ///
    /// # Panics
    ///
    /// As [`Scope::cancel`](crate::Scope::cancel).
    pub fn cancel(&self) {
        self.token().cancel();
    }
}

impl Clone for LocalScope<'_> {
    fn clone(&self) -> Self {
        LocalScope {
            handle: self.handle.clone(),
        }
    }
}

impl fmt::Debug for LocalScope<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.handle.fmt_as("LocalScope", f)
    }
}
