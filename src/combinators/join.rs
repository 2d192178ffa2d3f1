//! `join(a, b)`: both outputs, once both futures finished.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;

use super::branch::{Branch, BranchDyn, never, output};
use super::engine::{Engine, Mode, poll_fixed};

/// Runs `a` and `b` concurrently and returns both outputs.
///
/// Each future runs as a *branch* with its own child token of the token that
/// is ambient when the `Join` is first polled, so [`cancelled`](crate::cancelled)
/// and [`checkpoint`](crate::checkpoint) inside a branch behave as inside a
/// scope's child. For more than two futures use [`join!`](crate::join!), for
/// many of one type [`join_all`](crate::join_all).
///
/// ```
/// # futures::executor::block_on(async {
/// let (number, text) = taskscope::join(async { 1 }, async { "one" }).await;
/// assert_eq!((number, text), (1, "one"));
/// # });
/// ```
///
/// # Allocation
///
/// None. A branch's token is made (one allocation) only if code in that
/// branch asks for a [`CancelToken`](crate::CancelToken), for example through
/// [`current_token`](crate::current_token) or [`cancelled`](crate::cancelled);
/// a `Join` polled inside another combinator's branch makes that branch's
/// token at its first poll.
///
/// # Fairness
///
/// Each branch has its own waker, so a poll of the `Join` polls only the
/// branches woken since the last one (both at the first poll, and both
/// once more when one branch's panic cancels the other), starting with a
/// different branch each time. The wakers need no allocation; if more than
/// 4,096 fixed combinators are alive at once the later ones fall back to
/// polling every branch on every poll (design/combinators.md).
///
/// # Cancel safety
///
/// Not cancel-safe: dropping the `Join` drops both futures wherever they
/// are. Cancel it through its token instead: the branches see it and finish.
///
/// # Panics
///
/// If a branch panics, the other branch's token is cancelled with
/// [`CancelReason::Panicked`](crate::CancelReason::Panicked), it is polled to
/// completion, and then the panic is resumed. Polling a `Join` again after
/// it completed panics.
pub fn join<A: Future, B: Future>(a: A, b: B) -> Join<A, B> {
    Join {
        a: Branch::new(a, never),
        b: Branch::new(b, never),
        engine: Engine::new(Mode::Join, "Join"),
    }
}

pin_project! {
    /// The future returned by [`join`].
    #[must_use = "futures do nothing unless polled"]
    pub struct Join<A: Future, B: Future> {
        #[pin]
        a: Branch<A>,
        #[pin]
        b: Branch<B>,
        engine: Engine,
    }
}

impl<A: Future, B: Future> Future for Join<A, B> {
    type Output = (A::Output, B::Output);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let mut list: [Pin<&mut dyn BranchDyn>; 2] = [this.a.as_mut(), this.b.as_mut()];
        ready!(poll_fixed(this.engine, &mut list, cx));
        Poll::Ready((output(this.a), output(this.b)))
    }
}

impl<A: Future, B: Future> fmt::Debug for Join<A, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Join")
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
    fn join_returns_outputs_of_different_types_in_order() {
        let waker = CountingWaker::new();
        let mut fut = std::pin::pin!(join(async { 7_u8 }, async { String::from("x") }));
        let out = fut.as_mut().poll(&mut waker.context());
        assert_eq!(out, Poll::Ready((7, String::from("x"))));
    }

    #[test]
    fn each_branch_sees_its_own_token_not_the_other_branchs() {
        let waker = CountingWaker::new();
        let mut fut = std::pin::pin!(join(async { crate::current_token() }, async {
            crate::current_token()
        }));
        let Poll::Ready((a, b)) = fut.as_mut().poll(&mut waker.context()) else {
            panic!("both branches are ready at once");
        };
        assert_ne!(a, b);
        a.cancel();
        assert!(!b.is_cancelled());
    }
}
