//! `join_array([..])`: every output of an array of futures, in order.

use std::future::Future;
use std::pin::Pin;

use super::array::{ArrayForm, ArrayKind, sealed::Sealed};
use super::branch::{Branch, never, output};
use super::engine::Mode;

/// Runs an array of futures of one type concurrently and returns their
/// outputs in the same order, once every one has finished.
///
/// The array form of [`join_all`](crate::join_all): the branches live inline
/// in the returned future, so nothing is allocated, and each branch has its
/// own waker and its own child token, as in [`join`](fn@crate::join).
///
/// ```
/// # futures::executor::block_on(async {
/// let rows = [1_u32, 2, 3].map(|id| async move { id * 10 });
/// assert_eq!(taskscope::join_array(rows).await, [10, 20, 30]);
/// # });
/// ```
///
/// # Allocation
///
/// None, as [`join`](fn@crate::join): the per-branch wakers come from a
/// process-wide table; a branch that asks for its own token allocates it.
///
/// # Fairness
///
/// Only the branches whose waker fired are polled, starting one further
/// along the array on each poll of the `JoinArray`, so no branch is always
/// polled first.
///
/// # Cancel safety
///
/// Not cancel-safe: dropping the `JoinArray` drops every unfinished branch
/// wherever it is; the outputs of finished branches are dropped with it.
///
/// # Panics
///
/// If a branch panics, the others are cancelled with
/// [`CancelReason::Panicked`](crate::CancelReason::Panicked) and awaited, and
/// then the panic is resumed. Polling the `JoinArray` again after it
/// returned its outputs panics.
pub fn join_array<F: Future, const N: usize>(futures: [F; N]) -> JoinArray<F, N> {
    ArrayForm::new(futures, never)
}

/// The future returned by [`join_array`].
pub type JoinArray<F, const N: usize> = ArrayForm<F, N, JoinKind>;

/// Makes an [`ArrayForm`] a [`join_array`].
#[doc(hidden)]
#[derive(Debug)]
pub struct JoinKind;

impl Sealed for JoinKind {}

impl<F: Future, const N: usize> ArrayKind<F, N> for JoinKind {
    type Output = [F::Output; N];
    const MODE: Mode = Mode::Join;
    const NAME: &'static str = "JoinArray";

    fn finish(branches: [Pin<&mut Branch<F>>; N], _: Option<usize>) -> Self::Output {
        branches.map(output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{CountingWaker, poll_until_ready, yield_now};
    use std::cell::Cell;
    use std::future::poll_fn;
    use std::task::Poll;

    #[test]
    fn join_array_returns_every_output_in_array_order() {
        // Element `i` finishes after `2 - i` yields: the last one first, so
        // outputs in completion order would come back reversed.
        let finished = std::cell::RefCell::new(Vec::new());
        let branches = [(0, 3), (1, 1), (2, 2)].map(|(i, x)| {
            let finished = &finished;
            async move {
                for _ in 0..(2 - i) {
                    yield_now().await;
                }
                finished.borrow_mut().push(i);
                x * 2
            }
        });
        let output = poll_until_ready(join_array(branches), 10);
        assert_eq!(*finished.borrow(), [2, 1, 0], "the last element first");
        assert_eq!(output, Some([6, 2, 4]));
    }

    #[test]
    fn an_empty_join_array_is_ready_at_once() {
        let waker = CountingWaker::new();
        let empty: [std::future::Ready<u8>; 0] = [];
        let mut fut = std::pin::pin!(join_array(empty));
        assert_eq!(fut.as_mut().poll(&mut waker.context()), Poll::Ready([]));
    }

    #[test]
    fn only_the_woken_branch_is_polled_again() {
        let polls = [Cell::new(0), Cell::new(0), Cell::new(0)];
        let stored = std::cell::RefCell::new(None);
        let branch = |index: usize| {
            let (polls, stored) = (&polls, &stored);
            poll_fn(move |cx| {
                polls[index].set(polls[index].get() + 1);
                if index == 1 {
                    *stored.borrow_mut() = Some(cx.waker().clone());
                }
                Poll::<()>::Pending
            })
        };
        let waker = CountingWaker::new();
        let mut fut = std::pin::pin!(join_array([branch(0), branch(1), branch(2)]));
        assert!(fut.as_mut().poll(&mut waker.context()).is_pending());
        stored
            .borrow_mut()
            .take()
            .expect("branch 1 stored its waker")
            .wake();
        assert_eq!(waker.count(), 1, "the branch's wake reaches the task");
        assert!(fut.as_mut().poll(&mut waker.context()).is_pending());
        let counts = polls.each_ref().map(Cell::get);
        assert_eq!(counts, [1, 2, 1], "branches 0 and 2 were not woken");
    }

    #[test]
    #[should_panic(expected = "`JoinArray` polled after it completed")]
    fn polling_a_finished_join_array_panics() {
        let waker = CountingWaker::new();
        let mut fut = std::pin::pin!(join_array([async { 1 }]));
        assert!(fut.as_mut().poll(&mut waker.context()).is_ready());
        let _ = fut.as_mut().poll(&mut waker.context());
    }
}
