//! `race_array([..])`: the first output of an array of futures, once the
//! losers have finished too.

use std::future::Future;
use std::pin::Pin;

use super::array::{ArrayForm, ArrayKind, sealed::Sealed};
use super::branch::{Branch, never};
use super::engine::Mode;

/// Runs an array of futures of one type concurrently and returns the output
/// of the first to finish, *after* every other one has finished too.
///
/// The array form of [`race_all`](crate::race_all), and [`race`](fn@crate::race)
/// for any number of futures of one type: the losers are cancelled with
/// [`CancelReason::LostRace`](crate::CancelReason::LostRace) and awaited, so
/// a loser half-way through a write finishes it; their outputs are dropped as
/// soon as they are produced.
///
/// ```
/// # futures::executor::block_on(async {
/// let fast = async { "fast" };
/// let slow = async {
///     taskscope::cancelled().await;
///     "slow, and cancelled"
/// };
/// let branches: [std::pin::Pin<Box<dyn Future<Output = &str>>>; 2] =
///     [Box::pin(slow), Box::pin(fast)];
/// assert_eq!(taskscope::race_array(branches).await, "fast");
/// # });
/// ```
///
/// # Allocation
///
/// None, as [`race`](fn@crate::race) (the example boxes its branches only to
/// give two `async` blocks one type).
///
/// # Fairness
///
/// Only the branches whose waker fired are polled, starting one further
/// along the array on each poll, and a new `race_array` at a pseudo-random
/// branch, so no branch wins every tie.
///
/// # Cancel safety
///
/// Not cancel-safe: dropping the `RaceArray` drops every branch wherever it
/// is, which is what a race that waits for its losers exists to avoid.
///
/// # Panics
///
/// If a branch panics, the others are cancelled with
/// [`CancelReason::Panicked`](crate::CancelReason::Panicked) and awaited, and
/// then the panic is resumed. An empty array has no winner: `race_array([])`
/// panics right away. Polling the `RaceArray` again after it returned
/// panics.
#[track_caller]
pub fn race_array<F: Future, const N: usize>(futures: [F; N]) -> RaceArray<F, N> {
    assert!(
        N > 0,
        "taskscope: race_array of an empty array has no winner; give it at least one future"
    );
    ArrayForm::new(futures, never)
}

/// The future returned by [`race_array`].
pub type RaceArray<F, const N: usize> = ArrayForm<F, N, RaceKind>;

/// Makes an [`ArrayForm`] a [`race_array`].
#[doc(hidden)]
#[derive(Debug)]
pub struct RaceKind;

impl Sealed for RaceKind {}

impl<F: Future, const N: usize> ArrayKind<F, N> for RaceKind {
    type Output = F::Output;
    const MODE: Mode = Mode::Race;
    const NAME: &'static str = "RaceArray";

    fn finish(mut branches: [Pin<&mut Branch<F>>; N], winner: Option<usize>) -> Self::Output {
        // `race_array` refused an empty array, so a race that ended has one.
        let winner = winner.expect("taskscope: a finished race_array has a winner");
        let output = branches[winner].as_mut().take_if_won();
        output.expect("taskscope: the winner of a race holds its output")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CancelReason;
    use crate::test_util::CountingWaker;
    use std::cell::Cell;
    use std::future::poll_fn;
    use std::task::Poll;

    #[test]
    fn the_first_to_finish_wins_and_the_losers_finish_their_work_first() {
        let written = Cell::new(0);
        // A loser that needs two more polls after it is cancelled to finish
        // the write it started.
        let branch = |wins: bool| {
            let written = &written;
            let mut polls_after_cancel = 0;
            poll_fn(move |cx| {
                if wins {
                    return Poll::Ready("winner");
                }
                if crate::is_cancelled() {
                    polls_after_cancel += 1;
                    if polls_after_cancel == 3 {
                        written.set(written.get() + 1);
                        return Poll::Ready("loser");
                    }
                    cx.waker().wake_by_ref();
                }
                Poll::Pending
            })
        };
        let waker = CountingWaker::new();
        let mut fut = std::pin::pin!(race_array([branch(false), branch(true), branch(false)]));
        let mut polls = 0;
        let output = loop {
            polls += 1;
            assert!(polls < 10, "the race never finished");
            if let Poll::Ready(output) = fut.as_mut().poll(&mut waker.context()) {
                break output;
            }
        };
        assert_eq!(output, "winner");
        assert_eq!(written.get(), 2, "both losers finished their write");
    }

    #[test]
    fn losers_see_lost_race_as_their_reason() {
        let waker = CountingWaker::new();
        let reason = std::cell::RefCell::new(None);
        let loser = async {
            crate::cancelled().await;
            *reason.borrow_mut() = crate::current_token().reason();
            0
        };
        let branches: [Pin<Box<dyn Future<Output = i32> + '_>>; 2] =
            [Box::pin(loser), Box::pin(async { 1 })];
        let mut fut = std::pin::pin!(race_array(branches));
        let output = loop {
            if let Poll::Ready(output) = fut.as_mut().poll(&mut waker.context()) {
                break output;
            }
        };
        assert_eq!(output, 1);
        assert!(matches!(*reason.borrow(), Some(CancelReason::LostRace)));
    }

    #[test]
    #[should_panic(expected = "race_array of an empty array has no winner")]
    fn an_empty_race_array_panics_with_a_clear_message_when_made() {
        let empty: [std::future::Ready<u8>; 0] = [];
        drop(race_array(empty));
    }
}
