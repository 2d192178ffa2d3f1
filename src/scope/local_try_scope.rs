//! [`local_try_scope`] and the [`LocalTryScope`] handle its body gets.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::ops::Deref;

use super::builder::Builder;
use super::first_error::{FirstError, recording, recording_cleanup};
use super::join_handle::JoinHandle;
use super::local::LocalScope;
use super::local_try_scope_future::LocalTryScopeFuture;
use crate::cancel::Cancelled;
use crate::sync::Arc;

/// A [`try_scope`](crate::try_scope) whose children need not be `Send`, as
/// in [`local_scope`](crate::local_scope): fallible children that hold an
/// `Rc`, a `RefCell` borrow or a `&rusqlite::Connection`.
///
/// ```
/// use std::cell::RefCell;
///
/// # futures::executor::block_on(async {
/// let stock = RefCell::new(vec![3_u32, 1, 0]);
/// let stock_ref = &stock;
/// let result: Result<(), String> = taskscope::local_try_scope(|s| async move {
///     for item in 0..3 {
///         s.spawn_try(async move {
///             let mut stock = stock_ref.borrow_mut();
///             let left = &mut stock[item];
///             *left = left.checked_sub(1).ok_or(format!("item {item} is sold out"))?;
///             Ok(())
///         });
///     }
///     Ok(())
/// })
/// .await;
/// assert_eq!(result, Err(String::from("item 2 is sold out")));
/// assert_eq!(stock.into_inner(), vec![2, 0, 0]);
/// # });
/// ```
///
/// The error policy is [`try_scope`](crate::try_scope#error-policy)'s; the
/// body gets a [`LocalTryScope`], which derefs to [`LocalScope`].
///
/// # Cancel safety
///
/// As for [`scope`](crate::scope).
///
/// # Panics
///
/// As for [`try_scope`](crate::try_scope#panics): a panic is re-raised,
/// never turned into an `Err`, and wins over an error.
#[track_caller]
pub fn local_try_scope<'env, F, Fut, R, E>(body: F) -> LocalTryScopeFuture<'env, Fut, R, E>
where
    F: FnOnce(LocalTryScope<'env, E>) -> Fut,
    Fut: Future<Output = Result<R, E>>,
    E: fmt::Debug,
{
    Builder::new().local_try_scope(body)
}

/// The handle a [`local_try_scope`]'s body gets: a [`LocalScope`] plus the
/// scope's first-error slot. As [`TryScope`](crate::TryScope), without the
/// `Send` bounds.
///
/// Cheap to clone; move a clone into a child to spawn from there.
pub struct LocalTryScope<'env, E> {
    scope: LocalScope<'env>,
    errors: Arc<FirstError<E>>,
}

impl<'env, E: fmt::Debug> LocalTryScope<'env, E> {
    pub(crate) fn new(scope: LocalScope<'env>, errors: Arc<FirstError<E>>) -> Self {
        LocalTryScope { scope, errors }
    }

    /// Spawns a child that can fail; see
    /// [`TryScope::spawn_try`](crate::TryScope::spawn_try).
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
        F: Future<Output = Result<T, E>> + 'env,
        T: 'env,
        E: 'env,
    {
        self.scope.spawn(recording(&self.errors, future))
    }

    /// Spawns a child that can fail, named `name`; see
    /// [`TryScope::spawn_try_named`](crate::TryScope::spawn_try_named).
    ///
    /// # Panics
    ///
    /// As [`spawn_try`](Self::spawn_try).
    #[track_caller]
    pub fn spawn_try_named<F, T>(
        &self,
        name: impl Into<Cow<'static, str>>,
        future: F,
    ) -> JoinHandle<Result<T, Cancelled>>
    where
        F: Future<Output = Result<T, E>> + 'env,
        T: 'env,
        E: 'env,
    {
        self.scope
            .spawn_named(name, recording(&self.errors, future))
    }

    /// Runs a fallible clean-up when the scope is finishing; see
    /// [`TryScope::defer_try`](crate::TryScope::defer_try).
    ///
    /// # Panics
    ///
    /// As for [`Scope::defer`](crate::Scope::defer).
    #[track_caller]
    pub fn defer_try<F>(&self, future: F)
    where
        F: Future<Output = Result<(), E>> + 'env,
        E: 'env,
    {
        self.scope.defer(recording_cleanup(&self.errors, future));
    }

    /// How many errors arrived after the first one and were dropped, so far.
    pub fn suppressed_errors(&self) -> usize {
        self.errors.suppressed()
    }

    /// The plain scope handle, e.g. to move into a child that only spawns
    /// infallible work.
    pub fn scope(&self) -> &LocalScope<'env> {
        &self.scope
    }
}

impl<'env, E> Deref for LocalTryScope<'env, E> {
    type Target = LocalScope<'env>;

    fn deref(&self) -> &LocalScope<'env> {
        &self.scope
    }
}

impl<E> Clone for LocalTryScope<'_, E> {
    fn clone(&self) -> Self {
        LocalTryScope {
            scope: self.scope.clone(),
            errors: self.errors.clone(),
        }
    }
}

impl<E> fmt::Debug for LocalTryScope<'_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalTryScope")
            .field("scope", &self.scope)
            .field("errors", &self.errors)
            .finish()
    }
}
