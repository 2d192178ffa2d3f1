//! `try_join_all(iter)`: every `Ok` value, or the first error once all finished.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use super::branch::{Branch, err_if_won, is_err, ok};
use super::dynamic::{Boxed, Wakers, poll_dynamic};
use super::engine::{Engine, Mode};

/// Runs every future of `futures` concurrently; on the first `Err`, cancels
/// the others with [`CancelReason::SiblingFailed`](crate::CancelReason::SiblingFailed),
/// waits for all of them, and returns that first error.
///
/// ```
/// # futures::executor::block_on(async {
/// let all = taskscope::try_join_all((1..=3).map(|n| async move {
///     if n == 2 { Err(format!("{n} failed")) } else { Ok(n) }
/// }))
/// .await;
/// assert_eq!(all, Err(String::from("2 failed")));
/// # });
/// ```
///
/// # Allocation
///
/// As [`join_all`](crate::join_all): a box per future, the vector, and the
/// wakers at the first poll. For none use [`try_join!`](crate::try_join!).
///
/// # Fairness
///
/// As [`join_all`](crate::join_all). If several fail in one poll, the one
/// polled first (woken first) is the first error.
///
/// # Cancel safety
///
/// Not cancel-safe: dropping it drops every future wherever it is.
///
/// # Panics
///
/// As [`join_all`](crate::join_all); a panic wins over an error. Polling the
/// `TryJoinAll` again after it completed panics.
pub fn try_join_all<I, T, E>(futures: I) -> TryJoinAll<I::Item>
where
    I: IntoIterator,
    I::Item: Future<Output = Result<T, E>>,
{
    TryJoinAll {
        branches: futures
            .into_iter()
            .map(|future| Box::pin(Branch::new(future, is_err)))
            .collect(),
        engine: Engine::new(Mode::TryJoin, "TryJoinAll"),
        wakers: None,
    }
}

/// The future returned by [`try_join_all`].
#[must_use = "futures do nothing unless polled"]
pub struct TryJoinAll<F: Future> {
    branches: Boxed<F>,
    engine: Engine,
    wakers: Option<Wakers>,
}

impl<F, T, E> Future for TryJoinAll<F>
where
    F: Future<Output = Result<T, E>>,
{
    type Output = Result<Vec<T>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let failed = ready!(poll_dynamic(
            &mut this.engine,
            &mut this.branches,
            &mut this.wakers,
            cx
        ));
        if let Some(index) = failed {
            let error = err_if_won(this.branches[index].as_mut());
            return Poll::Ready(Err(
                error.expect("taskscope: the branch that failed first holds its error")
            ));
        }
        Poll::Ready(Ok(this
            .branches
            .iter_mut()
            .map(|b| ok(b.as_mut()))
            .collect()))
    }
}

impl<F: Future> fmt::Debug for TryJoinAll<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TryJoinAll")
            .field("engine", &self.engine)
            .field("wakers", &self.wakers)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CancelReason;
    use crate::test_util::CountingWaker;

    #[test]
    fn try_join_all_cancels_the_others_with_sibling_failed() {
        let seen = std::cell::RefCell::new(Vec::new());
        let futures = (0..3).map(|n| {
            let seen = &seen;
            async move {
                if n == 0 {
                    return Err(());
                }
                let reason = crate::cancelled().await;
                seen.borrow_mut().push(reason);
                Ok(n)
            }
        });
        let waker = CountingWaker::new();
        let mut fut = std::pin::pin!(try_join_all(futures));
        let mut polls = 0;
        while fut.as_mut().poll(&mut waker.context()).is_pending() {
            polls += 1;
            assert!(polls < 10, "the siblings must finish");
        }
        let seen = seen.borrow();
        assert_eq!(seen.len(), 2);
        assert!(
            seen.iter()
                .all(|c| matches!(c.reason(), CancelReason::SiblingFailed))
        );
    }
}
