//! `race_ok(iter)`: the first `Ok`, or every error.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use super::branch::{Branch, is_ok};
use super::dynamic::{Boxed, Wakers, poll_dynamic};
use super::engine::{Engine, Mode};

/// Runs every future of `futures` concurrently; the first `Ok` wins, and if
/// none succeeds, every error comes back, in the iterator's order (so an
/// empty iterator gives `Err` of an empty vector: nothing succeeded).
///
/// Once one succeeds the others still running are cancelled with
/// [`CancelReason::LostRace`](crate::CancelReason::LostRace) and awaited, as
/// in [`race`](fn@crate::race), and their outputs are dropped as they
/// finish. The errors of those that failed before the winner succeeded are
/// kept in the `RaceOk` and dropped with it (with `.await`, as soon as the
/// await returns).
///
/// ```
/// # futures::executor::block_on(async {
/// let mirrors = ["down", "up", "down"];
/// let first = taskscope::race_ok(mirrors.iter().map(|state| async move {
///     if *state == "up" { Ok(*state) } else { Err(format!("{state}")) }
/// }))
/// .await;
/// assert_eq!(first, Ok("up"));
///
/// let none = taskscope::race_ok([1, 2].map(|n| async move { Err::<(), _>(n) })).await;
/// assert_eq!(none, Err(vec![1, 2]));
/// # });
/// ```
///
/// # Allocation
///
/// As [`join_all`](crate::join_all), plus the vector of errors.
///
/// # Fairness
///
/// As [`join_all`](crate::join_all).
///
/// # Cancel safety
///
/// Not cancel-safe: dropping it drops every future wherever it is.
///
/// # Panics
///
/// A branch's panic cancels the others, waits for them, and is resumed.
/// Polling the `RaceOk` again after it completed panics.
pub fn race_ok<I, T, E>(futures: I) -> RaceOk<I::Item>
where
    I: IntoIterator,
    I::Item: Future<Output = Result<T, E>>,
{
    RaceOk {
        branches: futures
            .into_iter()
            .map(|future| Box::pin(Branch::new(future, is_ok)))
            .collect(),
        engine: Engine::new(Mode::RaceOk, "RaceOk"),
        wakers: None,
    }
}

/// The future returned by [`race_ok`].
#[must_use = "futures do nothing unless polled"]
pub struct RaceOk<F: Future> {
    branches: Boxed<F>,
    engine: Engine,
    wakers: Option<Wakers>,
}

impl<F, T, E> Future for RaceOk<F>
where
    F: Future<Output = Result<T, E>>,
{
    type Output = Result<T, Vec<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let winner = ready!(poll_dynamic(
            &mut this.engine,
            &mut this.branches,
            &mut this.wakers,
            cx
        ));
        if let Some(index) = winner {
            return match this.branches[index].as_mut().take_if_won() {
                Some(Ok(value)) => Poll::Ready(Ok(value)),
                _ => unreachable!("taskscope: the winner of race_ok holds its Ok value"),
            };
        }
        let errors = this
            .branches
            .iter_mut()
            .map(|b| match b.as_mut().take_output() {
                Some(Err(error)) => error,
                _ => unreachable!("taskscope: with no winner every branch of race_ok failed"),
            });
        Poll::Ready(Err(errors.collect()))
    }
}

impl<F: Future> fmt::Debug for RaceOk<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RaceOk")
            .field("engine", &self.engine)
            .field("wakers", &self.wakers)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{poll_until_ready, yield_now};

    #[test]
    fn race_ok_skips_errors_and_returns_the_first_ok() {
        // The first to finish is an error, which does not win; then the
        // `Ok` of the last element finishes, one poll before the `Ok` of the
        // middle one: the first `Ok` to finish wins, not the first in order.
        let finished = std::cell::RefCell::new(Vec::new());
        let futures = [(0, Err("a")), (2, Ok(2)), (1, Ok(3))].map(|(yields, result)| {
            let finished = &finished;
            async move {
                for _ in 0..yields {
                    yield_now().await;
                }
                finished.borrow_mut().push(result);
                result
            }
        });
        let output = poll_until_ready(race_ok(futures), 10);
        assert_eq!(
            *finished.borrow(),
            [Err("a"), Ok(3), Ok(2)],
            "the loser still running was awaited"
        );
        assert_eq!(output, Some(Ok(3)));
    }
}
