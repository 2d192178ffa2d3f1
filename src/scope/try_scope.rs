//! [`try_scope`] and the [`TryScope`] handle its body gets.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::ops::Deref;

use super::builder::Builder;
use super::first_error::{FirstError, recording, recording_cleanup};
use super::handle::Scope;
use super::join_handle::JoinHandle;
use super::try_scope_future::TryScopeFuture;
use crate::cancel::Cancelled;
use crate::sync::Arc;

/// Like [`scope`](crate::scope), for work that can fail: the first error
/// cancels the scope, which still joins every child, then returns that error.
///
/// The body gets a [`TryScope`]: it derefs to [`Scope`], so `spawn`,
/// `token` and `cancel` work as usual, and adds
/// [`spawn_try`](TryScope::spawn_try) and
/// [`spawn_try_named`](TryScope::spawn_try_named) for children returning
/// `Result<T, E>`. Only those children's errors fail the scope: a child
/// started with plain `spawn` returns its `Err` as its output, which is lost
/// if its handle is dropped; so are the items of a stream adapter
/// ([`buffered_in`](crate::ScopedStreamExt::buffered_in) with `&s`).
///
/// A child's handle from `spawn_try` yields `Err(Cancelled)` when the child
/// failed (the scope returns the child's own error), so `handle.await?` in
/// the body needs `E: From<Cancelled>`, or a `map_err` as below.
///
/// ```
/// # futures::executor::block_on(async {
/// let inputs = ["1", "2", "x", "4"];
/// let inputs = &inputs;
/// let result: Result<u32, String> = taskscope::try_scope(|s| async move {
///     let handles: Vec<_> = inputs
///         .iter()
///         .map(|text| s.spawn_try(async move { text.parse::<u32>().map_err(|e| e.to_string()) }))
///         .collect();
///     let mut sum = 0;
///     for handle in handles {
///         // A failed child's handle yields `Err(Cancelled)`; `?` leaves the
///         // body, and the scope returns the child's own error.
///         sum += handle.await.map_err(|c| c.to_string())?;
///     }
///     Ok(sum)
/// })
/// .await;
/// assert_eq!(result.unwrap_err(), "invalid digit found in string");
/// # });
/// ```
///
/// # Error policy
///
/// - The first `Err` in time wins: from a [`spawn_try`](TryScope::spawn_try)
///   child when it returns, or from the body when it returns. It cancels the
///   scope's token with [`CancelReason::Failed`](crate::CancelReason::Failed)
///   carrying the error's `Debug` rendering (if the token was already
///   cancelled, its first reason stays).
/// - The scope still waits for the body and every child, then returns that
///   first error, even if the body itself returned `Ok`.
/// - Later errors are dropped (after their `Debug` rendering went into their
///   own handle's [`Cancelled`]) and counted:
///   [`suppressed_errors`](TryScope::suppressed_errors).
/// - An error the body returns *after* a child's error is such a later
///   error: returning `Err` from the body because a handle said
///   `Err(Cancelled)` is the normal way to stop, and the scope still returns
///   the child's original error.
///
/// # Cancel safety
///
/// As for [`scope`](crate::scope).
///
/// # Panics
///
/// As for [`scope`](crate::scope): a panic cancels the scope with
/// [`CancelReason::Panicked`](crate::CancelReason::Panicked) and is
/// re-raised; it is never turned into an `Err`. A panic wins over an error:
/// a scope that recorded an error and then had an un-awaited panic raises
/// the panic and drops the error.
#[track_caller]
pub fn try_scope<'env, F, Fut, R, E>(body: F) -> TryScopeFuture<'env, Fut, R, E>
where
    F: FnOnce(TryScope<'env, E>) -> Fut,
    Fut: Future<Output = Result<R, E>>,
    E: fmt::Debug,
{
    Builder::new().try_scope(body)
}

/// The handle a [`try_scope`]'s body gets: a [`Scope`] plus the scope's
/// first-error slot.
///
/// Cheap to clone; move a clone into a child to spawn from there.
pub struct TryScope<'env, E> {
    scope: Scope<'env>,
    errors: Arc<FirstError<E>>,
}

impl<'env, E: fmt::Debug> TryScope<'env, E> {
    pub(crate) fn new(scope: Scope<'env>, errors: Arc<FirstError<E>>) -> Self {
        TryScope { scope, errors }
    }

    /// Spawns a child that can fail.
    ///
    /// If the child returns `Err(e)` and `e` is the scope's first error, `e`
    /// is kept for the scope to return and the scope is cancelled with
    /// [`CancelReason::Failed`](crate::CancelReason::Failed); a later error
    /// is dropped and counted. Either way the child's handle yields
    /// `Err(Cancelled)` whose reason is `Failed` with `e`'s `Debug`
    /// rendering; on success it yields `Ok`.
    ///
    /// # Panics
    ///
    /// If the scope has already finished (the handle outlived its scope), or
    /// if called from the scope's clean-up (a deferred future or a
    /// `prepare_drop`), which runs after the children were joined: run a
    /// nested scope there instead.
    #[track_caller]
    pub fn spawn_try<F, T>(&self, future: F) -> JoinHandle<Result<T, Cancelled>>
    where
        F: Future<Output = Result<T, E>> + Send + 'env,
        T: Send + 'env,
        E: Send + 'env,
    {
        self.scope.spawn(recording(&self.errors, future))
    }

    /// Spawns a child that can fail, named `name`; the name shows in
    /// [snapshots](crate::snapshot) and, with the `tracing` feature, in the
    /// child's span. Otherwise as [`spawn_try`](Self::spawn_try).
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// let result: Result<(), String> = taskscope::try_scope(|s| async move {
    ///     s.spawn_try_named("parse", async { "7".parse::<u8>().map_err(|e| e.to_string()) });
    ///     let tasks = &s.snapshot().scopes[0].tasks;
    ///     assert_eq!(tasks[0].name.as_deref(), Some("parse"));
    ///     Ok(())
    /// })
    /// .await;
    /// assert_eq!(result, Ok(()));
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
    pub fn spawn_try_named<F, T>(
        &self,
        name: impl Into<Cow<'static, str>>,
        future: F,
    ) -> JoinHandle<Result<T, Cancelled>>
    where
        F: Future<Output = Result<T, E>> + Send + 'env,
        T: Send + 'env,
        E: Send + 'env,
    {
        self.scope
            .spawn_named(name, recording(&self.errors, future))
    }

    /// Runs a fallible clean-up when the scope is finishing; see
    /// [`Scope::defer`](crate::Scope::defer) for when and how it runs.
    ///
    /// Clean-up runs after the body and every child finished, so its `Err`
    /// becomes the scope's error only if the scope had none; otherwise it is
    /// dropped and counted in [`suppressed_errors`](Self::suppressed_errors).
    /// A deferred future cut off by the scope's clean-up timeout
    /// ([`Builder::cleanup_timeout_when`](crate::Builder::cleanup_timeout_when))
    /// makes no error unless it returns one itself when cancelled: one that
    /// is dropped unfinished only shows in
    /// [`cleanup_skipped_count`](crate::cleanup_skipped_count). Check
    /// [`is_cancelled`](crate::is_cancelled) inside it, or return an error
    /// from its cancellation path, if a cut-off flush must fail the scope.
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// let result: Result<(), String> = taskscope::try_scope(|s| async move {
    ///     s.defer_try(async { Err(String::from("flush failed")) });
    ///     Ok(())
    /// })
    /// .await;
    /// assert_eq!(result, Err(String::from("flush failed")));
    /// # });
    /// ```
    ///
    /// # Panics
    ///
    /// As for [`Scope::defer`](crate::Scope::defer).
    #[track_caller]
    pub fn defer_try<F>(&self, future: F)
    where
        F: Future<Output = Result<(), E>> + Send + 'env,
        E: Send + 'env,
    {
        self.scope.defer(recording_cleanup(&self.errors, future));
    }

    /// How many errors arrived after the first one and were dropped, so far.
    pub fn suppressed_errors(&self) -> usize {
        self.errors.suppressed()
    }

    /// The plain scope handle, e.g. to move into a child that only spawns
    /// infallible work.
    pub fn scope(&self) -> &Scope<'env> {
        &self.scope
    }
}

impl<'env, E> Deref for TryScope<'env, E> {
    type Target = Scope<'env>;

    fn deref(&self) -> &Scope<'env> {
        &self.scope
    }
}

impl<E> Clone for TryScope<'_, E> {
    fn clone(&self) -> Self {
        TryScope {
            scope: self.scope.clone(),
            errors: self.errors.clone(),
        }
    }
}

impl<E> fmt::Debug for TryScope<'_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TryScope")
            .field("scope", &self.scope)
            .field("errors", &self.errors)
            .finish()
    }
}
