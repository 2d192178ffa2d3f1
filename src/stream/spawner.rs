//! [`Spawner`]: what the stream adapters spawn their items through.

use std::future::Future;
use std::panic::Location;

use crate::scope::{JoinHandle, LocalScope, LocalTryScope, Scope, TryScope};

/// `pub(crate)` so that a scope handle defined elsewhere in the crate (the
/// parallel scope's) can implement [`Spawner`] next to its own type.
pub(crate) mod sealed {
    /// Keeps [`Spawner`](super::Spawner) implemented by this crate's scope
    /// handles only, so its shape can change without breaking anyone.
    pub trait Sealed {}
}

/// A scope handle that can spawn a child running `F`: implemented by
/// [`Scope`] and [`TryScope`] (for `Send` futures) and [`LocalScope`] and
/// [`LocalTryScope`] (for any future).
///
/// It is what lets [`ScopedStreamExt`](crate::ScopedStreamExt)'s adapters
/// work in every kind of scope; you never call it yourself, you pass
/// `&scope` to an adapter. It is sealed: only this crate implements it.
pub trait Spawner<F: Future>: Clone + sealed::Sealed {
    /// Spawns `future` as a child of the scope, as if
    /// [`Scope::spawn`] had been called at `location`.
    #[doc(hidden)]
    fn spawn_child(&self, future: F, location: &'static Location<'static>)
    -> JoinHandle<F::Output>;

    /// Panics, at the caller's line, if the scope no longer takes children.
    #[doc(hidden)]
    #[track_caller]
    fn check_open(&self);
}

impl sealed::Sealed for Scope<'_> {}

impl<'env, F> Spawner<F> for Scope<'env>
where
    F: Future + Send + 'env,
    F::Output: Send + 'env,
{
    fn spawn_child(
        &self,
        future: F,
        location: &'static Location<'static>,
    ) -> JoinHandle<F::Output> {
        self.handle().spawn_task(None, future, location)
    }

    #[track_caller]
    fn check_open(&self) {
        self.handle().check_open();
    }
}

impl sealed::Sealed for LocalScope<'_> {}

impl<'env, F> Spawner<F> for LocalScope<'env>
where
    F: Future + 'env,
    F::Output: 'env,
{
    fn spawn_child(
        &self,
        future: F,
        location: &'static Location<'static>,
    ) -> JoinHandle<F::Output> {
        self.handle().spawn_task(None, future, location)
    }

    #[track_caller]
    fn check_open(&self) {
        self.handle().check_open();
    }
}

impl<E> sealed::Sealed for TryScope<'_, E> {}

/// Items are spawned as plain children (with [`Scope::spawn`]): an item's
/// error is its output, it does not fail the scope.
impl<'env, F, E> Spawner<F> for TryScope<'env, E>
where
    F: Future + Send + 'env,
    F::Output: Send + 'env,
{
    fn spawn_child(
        &self,
        future: F,
        location: &'static Location<'static>,
    ) -> JoinHandle<F::Output> {
        (**self).handle().spawn_task(None, future, location)
    }

    #[track_caller]
    fn check_open(&self) {
        (**self).handle().check_open();
    }
}

impl<E> sealed::Sealed for LocalTryScope<'_, E> {}

/// As for [`TryScope`]: items are plain children, an item's error is its
/// output.
impl<'env, F, E> Spawner<F> for LocalTryScope<'env, E>
where
    F: Future + 'env,
    F::Output: 'env,
{
    fn spawn_child(
        &self,
        future: F,
        location: &'static Location<'static>,
    ) -> JoinHandle<F::Output> {
        (**self).handle().spawn_task(None, future, location)
    }

    #[track_caller]
    fn check_open(&self) {
        (**self).handle().check_open();
    }
}

/// An adapter's scope handle with the line that made the adapter: the
/// adapter spawns its children from its polls, inside this crate, but
/// snapshots show them where the user asked for them.
#[derive(Clone)]
pub(crate) struct AdapterScope<S> {
    scope: S,
    made_at: &'static Location<'static>,
}

impl<S> AdapterScope<S> {
    /// Refuses, at the caller's line, a scope that no longer takes children.
    #[track_caller]
    pub(crate) fn new<F: Future>(scope: &S) -> Self
    where
        S: Spawner<F>,
    {
        scope.check_open();
        AdapterScope {
            scope: scope.clone(),
            made_at: Location::caller(),
        }
    }

    pub(crate) fn spawn<F: Future>(&self, future: F) -> JoinHandle<F::Output>
    where
        S: Spawner<F>,
    {
        self.scope.spawn_child(future, self.made_at)
    }
}
