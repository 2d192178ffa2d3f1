//! `race(a, b)`: the first output, once the loser has finished too.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;

use super::branch::{Branch, BranchDyn, never};
use super::engine::{Engine, Mode, poll_fixed};

/// Runs `a` and `b` concurrently and returns the output of whichever
/// finishes first, *after* the other one has finished too.
///
/// The loser is not dropped: its token is cancelled with
/// [`CancelReason::LostRace`](crate::CancelReason::LostRace) and it is
/// polled until it returns, so a loser that was half-way through writing
/// something finishes the write. The loser's output is dropped as soon as it
/// is produced. A loser that never looks at its token keeps the race
/// pending until it finishes on its own. To drop the loser at once instead (only right for futures
/// that are cancel-safe), use [`select`](fn@crate::select). For more futures
/// use [`race!`](crate::race!) or [`race_all`](crate::race_all).
///
/// ```
/// # futures::executor::block_on(async {
/// let winner = taskscope::race(async { "fast" }, async {
///     // Loses the race, notices, and stops.
///     taskscope::cancelled().await;
///     "slow"
/// })
/// .await;
/// assert_eq!(winner, "fast");
/// # });
/// ```
///
/// # Allocation
///
/// None, as [`join`](fn@crate::join). Cancelling a loser that made its own
/// [`CancelToken`](crate::CancelToken) allocates the shared reason its
/// descendants receive.
///
/// # Fairness
///
/// Each branch has its own waker and is polled only when it woke (and
/// once more when the race cancels it, so that a branch that reads its
/// token without awaiting it sees the verdict), starting one branch
/// further each poll, and a new `race` at a pseudo-random branch (as
/// tokio's `select!`); if both are woken and finish within one poll, the
/// one polled first wins. So neither branch wins all ties, also when a loop
/// makes a new `race` each turn.
///
/// A cancellation from outside the race (a parent scope's, a token's)
/// reaches a branch only through wakers registered on its token, as in
/// any task: a branch that must stop for it awaits
/// [`cancelled`](crate::cancelled) (or wraps its wait in
/// [`until_cancelled`](crate::CancelExt::until_cancelled)) rather than
/// reading [`is_cancelled`](crate::is_cancelled) in a poll that registers
/// no waker.
///
/// # Cancel safety
///
/// Not cancel-safe: dropping the `Race` drops both futures wherever they
/// are, which is what `race` exists to avoid.
///
/// # Panics
///
/// If a branch panics, the other is cancelled with
/// [`CancelReason::Panicked`](crate::CancelReason::Panicked) and awaited, and
/// then the panic is resumed, even if the other branch had already won.
/// Polling the `Race` again after it completed panics.
pub fn race<A, B>(a: A, b: B) -> Race<A, B>
where
    A: Future,
    B: Future<Output = A::Output>,
{
    Race {
        a: Branch::new(a, never),
        b: Branch::new(b, never),
        engine: Engine::new(Mode::Race, "Race"),
    }
}

pin_project! {
    /// The future returned by [`race`].
    #[must_use = "futures do nothing unless polled"]
    pub struct Race<A: Future, B: Future> {
        #[pin]
        a: Branch<A>,
        #[pin]
        b: Branch<B>,
        engine: Engine,
    }
}

impl<A, B> Future for Race<A, B>
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
        Poll::Ready(output.expect("taskscope: the winner of a race holds its output"))
    }
}

impl<A: Future, B: Future> fmt::Debug for Race<A, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Race")
            .field("a", &self.a)
            .field("b", &self.b)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::CountingWaker;
    use crate::test_util::yield_now;

    #[test]
    fn race_waits_for_the_loser_to_finish() {
        let waker = CountingWaker::new();
        let finished = std::cell::Cell::new(false);
        let loser = async {
            // Needs two more polls after it was cancelled.
            while !crate::is_cancelled() {
                yield_now().await;
            }
            yield_now().await;
            yield_now().await;
            finished.set(true);
            "loser"
        };
        let mut fut = std::pin::pin!(race(async { "winner" }, loser));
        let mut polls = 0;
        let out = loop {
            polls += 1;
            if let Poll::Ready(out) = fut.as_mut().poll(&mut waker.context()) {
                break out;
            }
            assert!(polls < 10, "the race must finish");
        };
        assert_eq!(out, "winner");
        assert!(finished.get(), "race returned before its loser finished");
        assert!(
            polls >= 2,
            "the race stayed pending while its loser finished"
        );
    }
}
