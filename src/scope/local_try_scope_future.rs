//! The future of a [`local_try_scope`](crate::local_try_scope).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use super::first_error::FirstError;
use super::local_scope_future::LocalScopeFuture;
use super::try_scope_future::RecordBody;
use crate::cancel::CancelToken;
use crate::sync::Arc;

pin_project! {
    /// The future of a [`local_try_scope`](crate::local_try_scope): as
    /// [`TryScopeFuture`](crate::TryScopeFuture), for a scope whose children
    /// need not be `Send` (so it is `!Send` itself).
    ///
    /// ```compile_fail,E0277
    /// fn assert_send<T: Send>(_: T) {}
    /// assert_send(taskscope::local_try_scope(|_s| async { Ok::<(), ()>(()) }));
    /// ```
    ///
    /// # Cancel safety
    ///
    /// As for [`TryScopeFuture`](crate::TryScopeFuture#cancel-safety).
    ///
    /// # Panics
    ///
    /// As for [`TryScopeFuture`](crate::TryScopeFuture#panics); polling it
    /// again after it completed panics.
    #[must_use = "futures do nothing unless polled"]
    pub struct LocalTryScopeFuture<'env, Fut, R, E>
    where
        Fut: Future<Output = Result<R, E>>,
        E: fmt::Debug,
    {
        #[pin]
        inner: LocalScopeFuture<'env, RecordBody<Fut, E>>,
        errors: Arc<FirstError<E>>,
    }
}

impl<'env, Fut, R, E> LocalTryScopeFuture<'env, Fut, R, E>
where
    Fut: Future<Output = Result<R, E>>,
    E: fmt::Debug,
{
    pub(crate) fn new(
        inner: LocalScopeFuture<'env, RecordBody<Fut, E>>,
        errors: Arc<FirstError<E>>,
    ) -> Self {
        LocalTryScopeFuture { inner, errors }
    }

    /// The scope's token; see [`ScopeFuture::token`](crate::ScopeFuture::token).
    pub fn token(&self) -> &CancelToken {
        self.errors.token()
    }
}

impl<Fut, R, E> Future for LocalTryScopeFuture<'_, Fut, R, E>
where
    Fut: Future<Output = Result<R, E>>,
    E: fmt::Debug,
{
    type Output = Result<R, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<R, E>> {
        let this = self.project();
        let body = std::task::ready!(this.inner.poll(cx));
        Poll::Ready(this.errors.outcome(body))
    }
}

impl<Fut, R, E> fmt::Debug for LocalTryScopeFuture<'_, Fut, R, E>
where
    Fut: Future<Output = Result<R, E>>,
    E: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalTryScopeFuture")
            .field("scope", &self.inner)
            .field("errors", &self.errors)
            .finish()
    }
}
