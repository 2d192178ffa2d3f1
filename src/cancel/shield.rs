//! [`shield`]: run a future that its surroundings cannot cancel.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use super::ambient::{self, Ambient};
use super::token::CancelToken;
use crate::combinators::private::Once;

/// Runs `future` under a fresh root token that nothing around it can cancel:
/// for clean-up that must finish even though its task was cancelled.
///
/// While `future` is polled, the shield's token is the ambient one, so
/// [`checkpoint`](crate::checkpoint) inside stays `Ok`,
/// [`cancelled`](crate::cancelled) stays pending, and scopes created inside
/// hang under the shield's token rather than under the cancelled task.
/// Only [`Shield::token`] cancels it.
///
/// ```
/// # futures::executor::block_on(async {
/// let flushed = taskscope::scope(|s| async move {
///     s.cancel();
///     assert!(taskscope::checkpoint().is_err());
///     taskscope::shield(async {
///         // The clean-up runs to the end although the scope is cancelled.
///         taskscope::checkpoint().is_ok()
///     })
///     .await
/// })
/// .await;
/// assert!(flushed);
/// # });
/// ```
///
/// A shield protects against *voluntary* cancellation only. Dropping the
/// shield (for instance because the scope around it was dropped) still drops
/// `future`. A scope future created *before* it is handed to `shield`
/// already has its token, a child of the ambient one: create scopes inside
/// an `async` block given to `shield` (or use
/// [`Builder::parent`](crate::Builder::parent)).
///
/// # Cancel safety
///
/// As cancel-safe as `future`.
///
/// # Panics
///
/// Panics of `future` propagate. Panics if polled after it completed or
/// after `future` panicked.
pub fn shield<F: Future>(future: F) -> Shield<F> {
    Shield {
        future: Once::new("shield", future),
        token: CancelToken::new(),
    }
}

pin_project! {
    /// The future of [`shield`].
    ///
    /// # Cancel safety
    ///
    /// A shield stops voluntary cancellation, not dropping: dropping it
    /// drops `future` where it stands. As cancel-safe as `future`.
    ///
    /// # Panics
    ///
    /// Panics of `future` propagate. Panics if polled after it completed or
    /// after `future` panicked.
    #[must_use = "futures do nothing unless polled"]
    pub struct Shield<F> {
        // `Once` reports a poll after completion (or a panic).
        #[pin]
        future: Once<F>,
        token: CancelToken,
    }
}

impl<F> Shield<F> {
    /// The shield's own root token: the only way to cancel the work inside.
    pub fn token(&self) -> &CancelToken {
        &self.token
    }
}

impl<F: Future> Future for Shield<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _entered = ambient::enter(Ambient::Token(this.token.clone()));
        this.future.poll(cx)
    }
}

impl<F> fmt::Debug for Shield<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shield")
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::test_util::CountingWaker;

    #[test]
    fn a_cancelled_surrounding_does_not_reach_inside() {
        let outer = CancelToken::new();
        outer.cancel();
        // Made and polled inside the cancelled surrounding.
        let _entered = ambient::enter(Ambient::Token(outer.clone()));
        let mut fut = Box::pin(shield(async {
            (crate::checkpoint().is_ok(), crate::current_token())
        }));
        let waker = CountingWaker::new();
        let Poll::Ready((ok, inner)) = fut.as_mut().poll(&mut waker.context()) else {
            panic!("the shielded future is ready at once");
        };
        assert!(ok);
        assert!(!inner.is_cancelled());
        assert_eq!(&inner, fut.token());
    }
}
