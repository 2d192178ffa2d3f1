//! `select(a, b)`: the first output; the loser is dropped at once.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;

use super::branch::{Branch, BranchDyn, never};
use super::engine::{Engine, Mode, poll_fixed};

/// Runs `a` and `b` concurrently, returns the first output and **drops the
/// loser at once**, wherever it is suspended.
///
/// This is the classic `select`, for futures that are *cancel-safe*
/// (dropping them at an `.await` loses nothing: a timer, a channel
/// `recv`, a [`cancelled`](crate::cancelled) future). A loser in the
/// middle of writing, or holding a value it read but has not passed on,
/// loses that work. When that matters use [`race`](fn@crate::race), which
/// cancels the loser and waits for it.
///
/// ```
/// use std::future::pending;
///
/// # futures::executor::block_on(async {
/// let first = taskscope::select(async { 1 }, pending()).await;
/// assert_eq!(first, 1); // the pending future was dropped
/// # });
/// ```
///
/// # Allocation
///
/// None, as [`join`](fn@crate::join).
///
/// # Fairness
///
/// Each branch has its own waker and is polled only when it woke, starting
/// one branch further each poll, and a new `select` at a pseudo-random
/// branch (a loop that makes a new `select` each turn gives neither branch
/// every tie); if both are woken and could finish
/// within one poll, the one polled first wins and the other is dropped
/// with its output.
///
/// # Cancel safety
///
/// Cancel-safe exactly when both futures are: dropping it drops them.
///
/// # Panics
///
/// A branch's panic drops the other branch and is resumed at once: a
/// select waits for nothing. Polling the `Select` again after it completed
/// panics.
pub fn select<A, B>(a: A, b: B) -> Select<A, B>
where
    A: Future,
    B: Future<Output = A::Output>,
{
    Select {
        a: Branch::new(a, never),
        b: Branch::new(b, never),
        engine: Engine::new(Mode::Select, "Select"),
    }
}

pin_project! {
    /// The future returned by [`select`].
    #[must_use = "futures do nothing unless polled"]
    pub struct Select<A: Future, B: Future> {
        #[pin]
        a: Branch<A>,
        #[pin]
        b: Branch<B>,
        engine: Engine,
    }
}

impl<A, B> Future for Select<A, B>
where
    A: Future,
    B: Future<Output = A::Output>,
{
    type Output = A::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let mut list: [Pin<&mut dyn BranchDyn>; 2] = [this.a.as_mut(), this.b.as_mut()];
        ready!(poll_fixed(this.engine, &mut list, cx));
        let output = this.a.take_if_won().or_else(|| this.b.take_if_won());
        Poll::Ready(output.expect("taskscope: the winner of a select holds its output"))
    }
}

impl<A: Future, B: Future> fmt::Debug for Select<A, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Select")
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
    fn select_drops_the_loser_in_the_poll_the_winner_finished() {
        struct Flag<'a>(&'a std::cell::Cell<bool>);
        impl Drop for Flag<'_> {
            fn drop(&mut self) {
                self.0.set(true);
            }
        }
        let dropped = std::cell::Cell::new(false);
        // Moved in, so the loser holds it whether or not it was polled
        // (a new select starts at a pseudo-random branch).
        let flag = Flag(&dropped);
        let loser = async move {
            let _flag = flag;
            std::future::pending::<u8>().await
        };
        let waker = CountingWaker::new();
        let mut fut = std::pin::pin!(select(loser, async { 3 }));
        assert_eq!(fut.as_mut().poll(&mut waker.context()), Poll::Ready(3));
        assert!(
            dropped.get(),
            "the loser must be dropped before select returns"
        );
    }
}
