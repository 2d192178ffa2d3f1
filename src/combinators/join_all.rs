//! `join_all(iter)`: every output, in the order of the iterator.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use super::branch::{Branch, never, output};
use super::dynamic::{Boxed, Wakers, poll_dynamic};
use super::engine::{Engine, Mode};

/// Runs every future of `futures` concurrently and returns their outputs in
/// the iterator's order.
///
/// Each future is a branch with its own child token, as in
/// [`join`](fn@crate::join).
///
/// ```
/// # futures::executor::block_on(async {
/// let squares = taskscope::join_all((1..=3).map(|n| async move { n * n })).await;
/// assert_eq!(squares, [1, 4, 9]);
/// # });
/// ```
///
/// # Allocation
///
/// Allocates: one box per future (an element of a growable collection
/// cannot be pinned in place without `unsafe`), the vector of boxes, and at
/// the first poll one waker per branch plus a shared ready queue. In return
/// a poll costs time in proportion to the branches that were woken, not to
/// all of them. For no allocation at all use [`join!`](crate::join!).
///
/// # Fairness
///
/// Each branch has its own waker; a poll polls the woken branches once
/// each, in the order they were woken. A branch that wakes itself at once
/// is polled again on the next poll, not within this one.
///
/// # Cancel safety
///
/// Not cancel-safe: dropping it drops every future wherever it is.
///
/// # Panics
///
/// If a branch panics, the others are cancelled with
/// [`CancelReason::Panicked`](crate::CancelReason::Panicked) and awaited,
/// then the first panic is resumed; later panics are dropped. Polling the
/// `JoinAll` again after it completed panics.
pub fn join_all<I>(futures: I) -> JoinAll<I::Item>
where
    I: IntoIterator,
    I::Item: Future,
{
    JoinAll {
        branches: futures
            .into_iter()
            .map(|future| Box::pin(Branch::new(future, never)))
            .collect(),
        engine: Engine::new(Mode::Join, "JoinAll"),
        wakers: None,
    }
}

/// The future returned by [`join_all`].
#[must_use = "futures do nothing unless polled"]
pub struct JoinAll<F: Future> {
    branches: Boxed<F>,
    engine: Engine,
    wakers: Option<Wakers>,
}

impl<F: Future> Future for JoinAll<F> {
    type Output = Vec<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        ready!(poll_dynamic(
            &mut this.engine,
            &mut this.branches,
            &mut this.wakers,
            cx
        ));
        Poll::Ready(
            this.branches
                .iter_mut()
                .map(|b| output(b.as_mut()))
                .collect(),
        )
    }
}

impl<F: Future> fmt::Debug for JoinAll<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinAll")
            .field("engine", &self.engine)
            .field("wakers", &self.wakers)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::CountingWaker;
    use crate::test_util::yield_now;
    use std::cell::Cell;

    #[test]
    fn join_all_polls_only_the_branches_whose_waker_fired() {
        let polls = [Cell::new(0), Cell::new(0)];
        let busy = async {
            for _ in 0..3 {
                polls[0].set(polls[0].get() + 1);
                yield_now().await;
            }
        };
        let idle = std::future::poll_fn(|_| {
            polls[1].set(polls[1].get() + 1);
            Poll::<()>::Pending
        });
        // Boxed to give both branches one type.
        let futures: Vec<Pin<Box<dyn Future<Output = ()> + '_>>> =
            vec![Box::pin(busy), Box::pin(idle)];
        let mut fut = std::pin::pin!(join_all(futures));
        let waker = CountingWaker::new();
        for _ in 0..4 {
            assert!(fut.as_mut().poll(&mut waker.context()).is_pending());
        }
        assert_eq!(polls[0].get(), 3, "the busy branch woke itself each time");
        assert_eq!(polls[1].get(), 1, "the idle branch was never woken");
    }

    #[test]
    fn join_all_of_nothing_is_ready_at_once() {
        let waker = CountingWaker::new();
        let mut fut = std::pin::pin!(join_all(Vec::<std::future::Ready<u8>>::new()));
        assert_eq!(fut.as_mut().poll(&mut waker.context()), Poll::Ready(vec![]));
    }
}
