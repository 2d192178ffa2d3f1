//! [`local_scope`] and its future.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use crate::cancel::CancelToken;

use super::builder::Builder;
use super::driver::Driver;
use super::local::{LocalScope, LocalTask};

/// Like [`scope`](crate::scope), for children that are not `Send`.
///
/// The children may hold `Rc`s, `RefCell` borrows or a `&rusqlite::Connection`;
/// the scope future is then `!Send` and runs on one thread (a current-thread
/// runtime, a `LocalSet`, `futures::executor::block_on`).
///
/// # Cancel safety
///
/// As for [`scope`](crate::scope).
///
/// # Panics
///
/// As for [`scope`](crate::scope).
#[track_caller]
pub fn local_scope<'env, F, Fut>(body: F) -> LocalScopeFuture<'env, Fut>
where
    F: FnOnce(LocalScope<'env>) -> Fut,
    Fut: Future,
{
    Builder::new().local_scope(body)
}

pin_project! {
    /// The future of a [`local_scope`].
    ///
    /// # Cancel safety
    ///
    /// As for [`ScopeFuture`](crate::ScopeFuture): dropping it before it
    /// completes cancels the scope and drops its body, children and pending
    /// clean-ups.
    ///
    /// # Panics
    ///
    /// As for [`ScopeFuture`](crate::ScopeFuture); panics if polled after
    /// it completed.
    #[must_use = "futures do nothing unless polled"]
    pub struct LocalScopeFuture<'env, Fut: Future> {
        #[pin]
        driver: Driver<Fut, LocalTask<'env>>,
    }
}

impl<'env, Fut: Future> LocalScopeFuture<'env, Fut> {
    pub(crate) fn new(driver: Driver<Fut, LocalTask<'env>>) -> Self {
        LocalScopeFuture { driver }
    }
    /// The scope's token, created with the future: cancelling it from
    /// outside cancels the scope voluntarily, as
    /// [`Scope::cancel`](crate::Scope::cancel) does from inside.
    pub fn token(&self) -> &CancelToken {
        self.driver.token()
    }
}

impl<Fut: Future> Future for LocalScopeFuture<'_, Fut> {
    type Output = Fut::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Fut::Output> {
        self.project().driver.poll(cx)
    }
}

impl<Fut: Future> fmt::Debug for LocalScopeFuture<'_, Fut> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.driver.fmt_as("LocalScopeFuture", f)
    }
}
