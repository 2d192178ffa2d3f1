//! [`scope`] and its future.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use crate::cancel::CancelToken;

use super::builder::Builder;
use super::driver::Driver;
use super::handle::{Scope, SendTask};

/// Runs `body` with a [`Scope`] whose children may borrow from the caller;
/// completes once the body **and every child** have finished.
///
/// ```
/// # futures::executor::block_on(async {
/// let ids = [1_u64, 2, 3];
/// let ids = &ids;
/// let total = taskscope::scope(|s| async move {
///     let handles: Vec<_> = ids.iter().map(|id| s.spawn(async move { id * 10 })).collect();
///     let mut sum = 0;
///     for handle in handles {
///         sum += handle.await;
///     }
///     sum
/// })
/// .await;
/// assert_eq!(total, 60);
/// # });
/// ```
///
/// The scope future polls the body and every woken child itself, so a child
/// never stalls because the body is busy awaiting something else. The
/// reverse holds as in any async code: a child that blocks its thread
/// (`std::thread::sleep`, a long computation, blocking I/O) holds the whole
/// scope's poll, body and siblings included. Put CPU-bound children in a
/// [`par_scope`](crate::par_scope), and blocking calls in the runtime's
/// blocking facility (`tokio::task::spawn_blocking` for `'static` work). It is
/// `Send` when the body is (children always are), so it can be handed to
/// `tokio::spawn`. It needs no runtime.
///
/// `body` is called right away, and the scope's token is created right away
/// as a child of the ambient token (see [`Builder`] to choose another parent).
/// If the future is first polled under another ambient token, the scope
/// follows that one too: a scope future made in one place and awaited as a
/// branch of [`race`](crate::race()) or [`join`](crate::join()), as a child
/// (`s.spawn(scope(..))`) or as an item of
/// [`buffered_in`](crate::ScopedStreamExt::buffered_in) is cancelled with
/// its branch, child or item, as `async { scope(..).await }` there would be.
///
/// # Cancel safety
///
/// Dropping the scope future before it completes cancels the scope's token
/// with [`CancelReason::ScopeDropped`](crate::CancelReason::ScopeDropped),
/// then drops the body, then every unfinished child (also those the body's
/// destructors spawned), then the clean-ups not yet run (also those they
/// deferred), counting them as skipped: the synchronous cancellation that is
/// all a destructor can do. Prefer
/// [`Scope::cancel`](crate::Scope::cancel) and awaiting the scope.
///
/// # Panics
///
/// A child's panic is re-raised where its handle is awaited. If nobody
/// awaits it, the scope future re-raises it once every other child has
/// finished. The first panic (of the body or a child) cancels the scope
/// with [`CancelReason::Panicked`](crate::CancelReason::Panicked); the other
/// children are still joined. If several panics go un-awaited, the first is
/// raised and the rest are dropped.
///
/// Polling the scope future again after it completed panics.
#[track_caller]
pub fn scope<'env, F, Fut>(body: F) -> ScopeFuture<'env, Fut>
where
    F: FnOnce(Scope<'env>) -> Fut,
    Fut: Future,
{
    Builder::new().scope(body)
}

pin_project! {
    /// The future of a [`scope`] or [`par_scope`](crate::par_scope).
    ///
    /// # Cancel safety
    ///
    /// Dropping it before it completes cancels the scope and drops its body,
    /// children and pending clean-ups, as described for [`scope`].
    ///
    /// # Panics
    ///
    /// Re-raises the first un-awaited panic of the body or a child once
    /// every child has finished, as described for [`scope`]. Panics if
    /// polled after it completed.
    #[must_use = "futures do nothing unless polled"]
    pub struct ScopeFuture<'env, Fut: Future> {
        #[pin]
        driver: Driver<Fut, SendTask<'env>>,
    }
}

impl<'env, Fut: Future> ScopeFuture<'env, Fut> {
    pub(crate) fn new(driver: Driver<Fut, SendTask<'env>>) -> Self {
        ScopeFuture { driver }
    }
    /// The scope's token, created with the future: cancelling it from
    /// outside cancels the scope voluntarily, as
    /// [`Scope::cancel`](crate::Scope::cancel) does from inside.
    pub fn token(&self) -> &CancelToken {
        self.driver.token()
    }
}

impl<Fut: Future> Future for ScopeFuture<'_, Fut> {
    type Output = Fut::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Fut::Output> {
        self.project().driver.poll(cx)
    }
}

impl<Fut: Future> fmt::Debug for ScopeFuture<'_, Fut> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.driver.fmt_as("ScopeFuture", f)
    }
}
