//! The future of a [`try_scope`](crate::try_scope).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use super::first_error::FirstError;
use super::scope_future::ScopeFuture;
use crate::cancel::CancelToken;
use crate::sync::Arc;

pin_project! {
    /// The body of a `try_scope` as the inner scope sees it: records its
    /// `Err` in the first-error slot the moment the body returns it.
    pub(crate) struct RecordBody<Fut, E> {
        #[pin]
        body: Fut,
        errors: Arc<FirstError<E>>,
    }
}

impl<Fut, E> RecordBody<Fut, E> {
    pub(crate) fn new(body: Fut, errors: Arc<FirstError<E>>) -> Self {
        RecordBody { body, errors }
    }
}

impl<Fut, R, E> Future for RecordBody<Fut, E>
where
    Fut: Future<Output = Result<R, E>>,
    E: fmt::Debug,
{
    type Output = Option<R>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<R>> {
        let this = self.project();
        match this.body.poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(value)) => Poll::Ready(Some(value)),
            Poll::Ready(Err(error)) => {
                // The returned `Cancelled` is for a child's handle; the body
                // has none.
                let _ = this.errors.record(error);
                Poll::Ready(None)
            }
        }
    }
}

pin_project! {
    /// The future of a [`try_scope`](crate::try_scope): resolves to the
    /// body's `Ok` value, or to the scope's first error, once the body and
    /// every child have finished.
    ///
    /// # Cancel safety
    ///
    /// As for [`scope`](crate::scope): dropping it before it completes
    /// cancels the scope's token with
    /// [`CancelReason::ScopeDropped`](crate::CancelReason::ScopeDropped),
    /// then drops the body and every unfinished child. No result is
    /// produced then: an error already recorded is dropped with the future.
    ///
    /// # Panics
    ///
    /// As for [`scope`](crate::scope): a panic of the body, or of a child
    /// whose handle nobody awaited, is re-raised once every child has
    /// finished. A
    /// panic wins over errors: if the scope both failed and panicked, the
    /// panic is raised and the first error is dropped; a panic is never
    /// turned into an `Err`.
    ///
    /// Polling it again after it completed panics.
    #[must_use = "futures do nothing unless polled"]
    pub struct TryScopeFuture<'env, Fut, R, E>
    where
        Fut: Future<Output = Result<R, E>>,
        E: fmt::Debug,
    {
        #[pin]
        inner: ScopeFuture<'env, RecordBody<Fut, E>>,
        errors: Arc<FirstError<E>>,
    }
}

impl<'env, Fut, R, E> TryScopeFuture<'env, Fut, R, E>
where
    Fut: Future<Output = Result<R, E>>,
    E: fmt::Debug,
{
    pub(crate) fn new(
        inner: ScopeFuture<'env, RecordBody<Fut, E>>,
        errors: Arc<FirstError<E>>,
    ) -> Self {
        TryScopeFuture { inner, errors }
    }

    /// The scope's token; see [`ScopeFuture::token`].
    pub fn token(&self) -> &CancelToken {
        self.errors.token()
    }
}

impl<Fut, R, E> Future for TryScopeFuture<'_, Fut, R, E>
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

impl<Fut, R, E> fmt::Debug for TryScopeFuture<'_, Fut, R, E>
where
    Fut: Future<Output = Result<R, E>>,
    E: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TryScopeFuture")
            .field("scope", &self.inner)
            .field("errors", &self.errors)
            .finish()
    }
}
