//! [`Scope`]: the handle a scope's body and children spawn through.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::Location;

use super::cell::Holds;
use super::core::Core;
use super::join_handle::JoinHandle;
use super::shared::ScopeShared;
use super::task::TaskExit;
use crate::cancel::CancelToken;
use crate::cleanup::queue::CleanupQueue;
use crate::introspect::{Snapshot, SnapshotHandle};
use crate::sync::{Arc, WakerArc};

/// The boxed form of a `Send` child.
pub(crate) type SendTask<'env> = dyn Future<Output = TaskExit> + Send + 'env;

/// A handle to a scope whose children are `Send`: [`scope`](crate::scope)'s
/// and the parallel scope's.
///
/// It is owned and cheap to clone (an `Arc`). Children may borrow anything
/// that outlives `'env`, the lifetime of the data around the scope; to spawn
/// from inside a child, move a clone into it:
///
/// ```
/// # futures::executor::block_on(async {
/// let words = ["a", "bb", "ccc"];
/// let words = &words;
/// let total = taskscope::scope(|s| async move {
///     let inner = s.clone();
///     let outer = s.spawn(async move {
///         let handles: Vec<_> = words.iter().map(|w| inner.spawn(async move { w.len() })).collect();
///         let mut sum = 0;
///         for handle in handles {
///             sum += handle.await;
///         }
///         sum
///     });
///     outer.await
/// })
/// .await;
/// assert_eq!(total, 6);
/// # });
/// ```
///
/// # `'env`
///
/// `'env` is chosen by the caller of `scope` and outlives the scope future,
/// so a child may hold `&'env T` for any `T` that lives around the call, but
/// never a borrow of a local of the body (the body may finish first) nor of
/// anything dropped while the scope runs. The handle is *invariant* in
/// `'env`, so it cannot be shortened to admit such a borrow:
///
/// ```compile_fail,E0597
/// # futures::executor::block_on(async {
/// taskscope::scope(|s| async move {
///     let local = vec![1, 2, 3];
///     let borrowed = &local;
///     // error[E0597]: `local` does not live long enough
///     s.spawn(async move { borrowed.len() });
/// })
/// .await;
/// # });
/// ```
///
/// A child must be `Send` here; `!Send` children belong in a
/// [`local_scope`](crate::local_scope):
///
/// ```compile_fail,E0277
/// # futures::executor::block_on(async {
/// taskscope::scope(|s| async move {
///     // error[E0277]: `Rc<i32>` cannot be sent between threads safely
///     s.spawn(std::future::ready(std::rc::Rc::new(1)));
/// })
/// .await;
/// # });
/// ```
pub struct Scope<'env> {
    handle: Handle<'env, SendTask<'env>>,
}

/// What [`Scope`] and [`LocalScope`](crate::LocalScope) share: the core and
/// the invariance marker; they differ only in the bounds of `spawn`.
pub(crate) struct Handle<'env, T: ?Sized> {
    core: Arc<Core<T>>,
    /// Invariant in `'env`: see [`Scope`]'s docs.
    _env: PhantomData<fn(&'env ()) -> &'env ()>,
}

impl<'env, T: ?Sized + 'env> Handle<'env, T> {
    pub(crate) fn new(core: Arc<Core<T>>) -> Self {
        Handle {
            core,
            _env: PhantomData,
        }
    }

    /// Spawns `future` in a task cell of its own; `T: Holds<F>` checks that
    /// the scope's child type may hold it (`Send` for a `Send` scope).
    #[track_caller]
    pub(crate) fn spawn_task<F>(
        &self,
        name: Option<Cow<'static, str>>,
        future: F,
        location: &'static Location<'static>,
    ) -> JoinHandle<F::Output>
    where
        F: Future + 'env,
        T: Holds<F>,
    {
        // A spawn from the clean-up is refused by `insert` (the scope closed
        // before its clean-up ran), which asks for the clean-up's message.
        self.core.insert(future, name, location)
    }

    pub(crate) fn token(&self) -> &CancelToken {
        self.core.shared().token()
    }

    /// See `Core::check_open`.
    #[track_caller]
    pub(crate) fn check_open(&self) {
        self.core.check_open();
    }

    pub(crate) fn shared(&self) -> &WakerArc<ScopeShared> {
        self.core.shared()
    }

    pub(crate) fn cleanup(&self) -> &CleanupQueue<T> {
        self.core.cleanup()
    }
}

impl<T: ?Sized> Clone for Handle<'_, T> {
    fn clone(&self) -> Self {
        Handle {
            core: self.core.clone(),
            _env: PhantomData,
        }
    }
}

impl<T: ?Sized> Handle<'_, T> {
    /// The `Debug` of the public handle that holds this one, under that
    /// handle's type name.
    pub(crate) fn fmt_as(&self, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(name)
            .field("core", &self.core)
            .field("token", self.core.shared().token())
            .finish()
    }
}

impl<'env> Scope<'env> {
    pub(crate) fn new(core: Arc<Core<SendTask<'env>>>) -> Self {
        Scope {
            handle: Handle::new(core),
        }
    }

    /// Spawns `future` as a child of the scope.
    ///
    /// The child makes progress whenever the scope future is polled,
    /// whatever the body is awaiting, and is joined before the scope
    /// returns: dropping the returned handle neither cancels nor detaches it.
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
        F: Future + Send + 'env,
        F::Output: Send + 'env,
    {
        self.handle.spawn_task(None, future, Location::caller())
    }

    /// Spawns `future` as a child named `name`; the name shows in
    /// [snapshots](crate::snapshot) and, with the `tracing` feature, in the
    /// child's span. Otherwise as [`spawn`](Self::spawn).
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// taskscope::scope(|s| async move {
    ///     s.spawn_named("load", async {});
    ///     let tasks = &s.snapshot().scopes[0].tasks;
    ///     assert_eq!(tasks[0].name.as_deref(), Some("load"));
    /// })
    /// .await;
    /// # });
    /// ```
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
        F: Future + Send + 'env,
        F::Output: Send + 'env,
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
    pub(crate) fn handle(&self) -> &Handle<'env, SendTask<'env>> {
        &self.handle
    }

    /// A snapshot of this scope and everything below it: its body, its
    /// children, the scopes created inside them, and so on down.
    ///
    /// Never blocks on a running task (each lock it takes is held just long
    /// enough to copy a few pointers) and may be called from anywhere,
    /// including the scope's own children. Turns on
    /// [poll times](crate::record_poll_times) for later polls.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot::of_scope(self.handle.shared())
    }

    /// A `'static`, `Send` handle that takes snapshots of this scope, e.g.
    /// from a watchdog thread. It does not keep the scope running.
    pub fn snapshot_handle(&self) -> SnapshotHandle {
        SnapshotHandle::new(self.handle.shared().clone())
    }

    pub(crate) fn cleanup(&self) -> &CleanupQueue<SendTask<'env>> {
        self.handle.cleanup()
    }

    /// Cancels the scope voluntarily, with
    /// [`CancelReason::Requested`](crate::CancelReason::Requested).
    ///
    /// The body and the children see it through their tokens and finish
    /// through their own error paths; the scope still waits for all of them.
    ///
    /// # Panics
    ///
    /// As [`CancelToken::cancel`](crate::CancelToken::cancel): if an
    /// [`on_cancel`](crate::CancelToken::on_cancel) callback on the scope's
    /// token or below it panics, the rest are still cancelled and the first
    /// panic is then resumed from here.
    pub fn cancel(&self) {
        self.token().cancel();
    }
}

impl Clone for Scope<'_> {
    fn clone(&self) -> Self {
        Scope {
            handle: self.handle.clone(),
        }
    }
}

impl fmt::Debug for Scope<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.handle.fmt_as("Scope", f)
    }
}
