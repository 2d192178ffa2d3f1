//! `try_join_array([..])`: every `Ok` value of an array of fallible futures,
//! or the first error once every branch has finished.

use std::future::Future;
use std::pin::Pin;

use super::array::{ArrayForm, ArrayKind, sealed::Sealed};
use super::branch::{Branch, err_if_won, is_err, ok};
use super::engine::Mode;

/// Runs an array of fallible futures of one type concurrently; returns all
/// their `Ok` values in order, or the first `Err`.
///
/// The array form of [`try_join_all`](crate::try_join_all): on the first
/// `Err` the other branches are cancelled with
/// [`CancelReason::SiblingFailed`](crate::CancelReason::SiblingFailed) and
/// awaited, then that error is returned; later errors are dropped.
///
/// ```
/// # futures::executor::block_on(async {
/// let parsed = ["1", "2", "x"].map(|text| async move { text.parse::<u8>() });
/// assert!(taskscope::try_join_array(parsed).await.is_err());
/// # });
/// ```
///
/// # Allocation
///
/// None, as [`join`](fn@crate::join).
///
/// # Fairness
///
/// As [`join_array`](crate::join_array).
///
/// # Cancel safety
///
/// Not cancel-safe: dropping the `TryJoinArray` drops every unfinished
/// branch wherever it is.
///
/// # Panics
///
/// If a branch panics, the others are cancelled with
/// [`CancelReason::Panicked`](crate::CancelReason::Panicked) and awaited, and
/// then the panic is resumed (it wins over an error). Polling the
/// `TryJoinArray` again after it returned panics.
pub fn try_join_array<F, T, E, const N: usize>(futures: [F; N]) -> TryJoinArray<F, N>
where
    F: Future<Output = Result<T, E>>,
{
    ArrayForm::new(futures, is_err)
}

/// The future returned by [`try_join_array`].
pub type TryJoinArray<F, const N: usize> = ArrayForm<F, N, TryJoinKind>;

/// Makes an [`ArrayForm`] a [`try_join_array`].
#[doc(hidden)]
#[derive(Debug)]
pub struct TryJoinKind;

impl Sealed for TryJoinKind {}

impl<F, T, E, const N: usize> ArrayKind<F, N> for TryJoinKind
where
    F: Future<Output = Result<T, E>>,
{
    type Output = Result<[T; N], E>;
    const MODE: Mode = Mode::TryJoin;
    const NAME: &'static str = "TryJoinArray";

    fn finish(mut branches: [Pin<&mut Branch<F>>; N], failed: Option<usize>) -> Self::Output {
        match failed {
            Some(failed) => Err(err_if_won(branches[failed].as_mut())
                .expect("taskscope: the branch that failed first holds its error")),
            None => Ok(branches.map(ok)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CancelReason;
    use crate::test_util::{CountingWaker, poll_until_ready, yield_now};
    use std::task::Poll;

    #[test]
    fn all_ok_values_come_back_in_array_order() {
        // Element `i` finishes after `2 - i` yields: the last one first, so
        // values in completion order would come back reversed.
        let finished = std::cell::RefCell::new(Vec::new());
        let branches = [(0, 'a'), (1, 'b'), (2, 'c')].map(|(i, x)| {
            let finished = &finished;
            async move {
                for _ in 0..(2 - i) {
                    yield_now().await;
                }
                finished.borrow_mut().push(i);
                Ok::<_, ()>(x)
            }
        });
        let output = poll_until_ready(try_join_array(branches), 10);
        assert_eq!(*finished.borrow(), [2, 1, 0], "the last element first");
        assert_eq!(output, Some(Ok(['a', 'b', 'c'])));
    }

    #[test]
    fn the_first_error_cancels_the_siblings_and_is_returned_after_they_finish() {
        let waker = CountingWaker::new();
        let sibling_reason = std::cell::RefCell::new(None);
        let sibling = async {
            crate::cancelled().await;
            *sibling_reason.borrow_mut() = crate::current_token().reason();
            Err("sibling's own error")
        };
        type Fallible<'a> = Pin<Box<dyn Future<Output = Result<u8, &'static str>> + 'a>>;
        let branches: [Fallible<'_>; 2] = [Box::pin(sibling), Box::pin(async { Err("first") })];
        let mut fut = std::pin::pin!(try_join_array(branches));
        let output = loop {
            if let Poll::Ready(output) = fut.as_mut().poll(&mut waker.context()) {
                break output;
            }
        };
        assert_eq!(output, Err("first"));
        assert!(matches!(
            *sibling_reason.borrow(),
            Some(CancelReason::SiblingFailed)
        ));
    }
}
