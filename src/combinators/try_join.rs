//! `try_join(a, b)`: both `Ok` values, or the first error once both finished.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;

use super::branch::{Branch, BranchDyn, err_if_won, is_err, ok};
use super::engine::{Engine, Mode, poll_fixed};

/// Runs `a` and `b` concurrently; on the first `Err`, cancels the other and
/// waits for it, then returns that error.
///
/// The sibling of a failed branch is not dropped: its token is cancelled
/// with [`CancelReason::SiblingFailed`](crate::CancelReason::SiblingFailed)
/// and it is polled until it returns, so it can finish what it started. Its
/// output (an `Ok` or a later error) is then dropped; the *first* error is
/// returned. For more futures use [`try_join!`](crate::try_join!) or
/// [`try_join_all`](crate::try_join_all).
///
/// ```
/// use taskscope::{CancelReason, Cancelled};
///
/// # futures::executor::block_on(async {
/// let failed: Result<((), ()), Cancelled> = taskscope::try_join(
///     async { Err(Cancelled::new(CancelReason::Requested)) },
///     async {
///         // Runs until it sees that its sibling failed.
///         let cancelled = taskscope::cancelled().await;
///         assert!(matches!(cancelled.reason(), CancelReason::SiblingFailed));
///         Ok(())
///     },
/// )
/// .await;
/// assert!(failed.is_err());
/// # });
/// ```
///
/// # Allocation
///
/// None, as [`join`](fn@crate::join): only a branch that asks for its
/// [`CancelToken`](crate::CancelToken) makes one (one node, plus one shared
/// reason when that token is then cancelled).
///
/// # Fairness
///
/// As [`join`](fn@crate::join): only woken branches are polled, starting
/// with a different branch each time. If both fail in the same poll, the
/// one polled first is the first error.
///
/// # Cancel safety
///
/// Not cancel-safe: dropping it drops both futures wherever they are.
///
/// # Panics
///
/// As [`join`](fn@crate::join): a branch's panic cancels the other branch,
/// waits for it, and is then resumed (it wins over an error). Polling the
/// `TryJoin` again after it completed panics.
pub fn try_join<A, B, T1, T2, E>(a: A, b: B) -> TryJoin<A, B>
where
    A: Future<Output = Result<T1, E>>,
    B: Future<Output = Result<T2, E>>,
{
    TryJoin {
        a: Branch::new(a, is_err),
        b: Branch::new(b, is_err),
        engine: Engine::new(Mode::TryJoin, "TryJoin"),
    }
}

pin_project! {
    /// The future returned by [`try_join`].
    #[must_use = "futures do nothing unless polled"]
    pub struct TryJoin<A: Future, B: Future> {
        #[pin]
        a: Branch<A>,
        #[pin]
        b: Branch<B>,
        engine: Engine,
    }
}

impl<A, B, T1, T2, E> Future for TryJoin<A, B>
where
    A: Future<Output = Result<T1, E>>,
    B: Future<Output = Result<T2, E>>,
{
    type Output = Result<(T1, T2), E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let mut list: [Pin<&mut dyn BranchDyn>; 2] = [this.a.as_mut(), this.b.as_mut()];
        if ready!(poll_fixed(this.engine, &mut list, cx)).is_some() {
            let error = err_if_won(this.a.as_mut()).or_else(|| err_if_won(this.b.as_mut()));
            return Poll::Ready(Err(
                error.expect("taskscope: the branch that failed first holds its error")
            ));
        }
        Poll::Ready(Ok((ok(this.a), ok(this.b))))
    }
}

impl<A: Future, B: Future> fmt::Debug for TryJoin<A, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TryJoin")
            .field("a", &self.a)
            .field("b", &self.b)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::CountingWaker;

    #[test]
    fn try_join_returns_both_values_when_both_succeed() {
        let waker = CountingWaker::new();
        let mut fut = std::pin::pin!(try_join(async { Ok::<_, ()>(1) }, async { Ok(2.5) }));
        assert_eq!(
            fut.as_mut().poll(&mut waker.context()),
            Poll::Ready(Ok((1, 2.5)))
        );
    }

    #[test]
    fn try_join_returns_the_first_error_not_a_later_one() {
        let waker = CountingWaker::new();
        let mut fut = std::pin::pin!(try_join(async { Err::<(), _>("first") }, async {
            std::future::poll_fn(|cx| {
                if crate::is_cancelled() {
                    Poll::Ready(Err::<(), _>("second, after the cancel"))
                } else {
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
            })
            .await
        }));
        assert_eq!(
            fut.as_mut().poll(&mut waker.context()),
            Poll::Ready(Err("first"))
        );
    }
}
