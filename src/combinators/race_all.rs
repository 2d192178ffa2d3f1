//! `race_all(iter)`: the first output, once every loser has finished.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use super::branch::{Branch, never};
use super::dynamic::{Boxed, Wakers, poll_dynamic};
use super::engine::{Engine, Mode};

/// Runs every future of `futures` concurrently and returns the first output,
/// after every loser has finished.
///
/// As in [`race`](fn@crate::race), the losers' tokens are cancelled with
/// [`CancelReason::LostRace`](crate::CancelReason::LostRace), they are polled
/// until they return, and their outputs are dropped as they come.
///
/// ```
/// # futures::executor::block_on(async {
/// let first = taskscope::race_all((1..=3).map(|n| async move {
///     if n != 2 {
///         taskscope::cancelled().await; // lose, and stop when told
///     }
///     n
/// }))
/// .await;
/// assert_eq!(first, 2);
/// # });
/// ```
///
/// # Allocation
///
/// As [`join_all`](crate::join_all). For none use [`race!`](crate::race!).
///
/// # Fairness
///
/// As [`join_all`](crate::join_all): woken branches are polled in the order
/// they were woken, so the first to finish after its wake wins.
///
/// # Cancel safety
///
/// Not cancel-safe: dropping it drops every future wherever it is.
///
/// # Panics
///
/// When created from an empty iterator: a race needs a winner.
/// A branch's panic cancels the others, waits for them, and is resumed.
/// Polling the `RaceAll` again after it completed panics.
#[track_caller]
pub fn race_all<I>(futures: I) -> RaceAll<I::Item>
where
    I: IntoIterator,
    I::Item: Future,
{
    let branches: Boxed<I::Item> = futures
        .into_iter()
        .map(|future| Box::pin(Branch::new(future, never)))
        .collect();
    assert!(
        !branches.is_empty(),
        "taskscope: race_all needs at least one future; an empty race has no winner"
    );
    RaceAll {
        branches,
        engine: Engine::new(Mode::Race, "RaceAll"),
        wakers: None,
    }
}

/// The future returned by [`race_all`].
#[must_use = "futures do nothing unless polled"]
pub struct RaceAll<F: Future> {
    branches: Boxed<F>,
    engine: Engine,
    wakers: Option<Wakers>,
}

impl<F: Future> Future for RaceAll<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let winner = ready!(poll_dynamic(
            &mut this.engine,
            &mut this.branches,
            &mut this.wakers,
            cx
        ));
        let output = winner.and_then(|index| this.branches[index].as_mut().take_if_won());
        Poll::Ready(output.expect("taskscope: the winner of a race holds its output"))
    }
}

impl<F: Future> fmt::Debug for RaceAll<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RaceAll")
            .field("engine", &self.engine)
            .field("wakers", &self.wakers)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "race_all needs at least one future")]
    fn race_all_of_nothing_panics_with_a_message() {
        drop(race_all(Vec::<std::future::Ready<u8>>::new()));
    }
}
