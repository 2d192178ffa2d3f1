//! [`CancelExt`]: cancellation adapters for every future.

use std::future::Future;

use super::cancel_when::CancelWhen;
use super::token::CancelToken;
use super::until_cancelled::UntilCancelled;

/// Cancellation adapters for every [`Future`].
///
/// ```
/// use taskscope::{CancelExt, CancelToken};
///
/// # futures::executor::block_on(async {
/// let token = CancelToken::new();
/// token.cancel();
/// // A cancel-safe wait, abandoned because the token fired.
/// let waited = std::future::pending::<()>().until_cancelled(&token).await;
/// assert!(waited.is_err());
/// # });
/// ```
pub trait CancelExt: Future + Sized {
    /// Resolves to `Ok(output)`, or to `Err(Cancelled)` as soon as `token`
    /// is cancelled, dropping `self` then. For cancel-safe futures only:
    /// see [`UntilCancelled`].
    ///
    /// # Cancel safety
    ///
    /// As cancel-safe as `self`.
    ///
    /// # Panics
    ///
    /// Polling the result after it returned `Ok` panics.
    fn until_cancelled(self, token: &CancelToken) -> UntilCancelled<Self> {
        UntilCancelled::new(self, Some(token))
    }

    /// [`until_cancelled`](Self::until_cancelled) with the ambient token,
    /// read at the first poll: the token of the task that polls it (see
    /// [`current_token`](crate::current_token)).
    ///
    /// # Cancel safety
    ///
    /// As cancel-safe as `self`.
    ///
    /// # Panics
    ///
    /// Polling the result after it returned `Ok` panics.
    fn until_cancelled_ambient(self) -> UntilCancelled<Self> {
        UntilCancelled::new(self, None)
    }

    /// Cancels `self` voluntarily when `deadline` completes: see
    /// [`cancel_when`](crate::cancel_when).
    ///
    /// Voluntary means that `self` must look at its token: a future that
    /// never does (a plain timer, a client request) runs on to its end. To
    /// cut such a future off at the deadline, drop it when the token fires,
    /// if it is cancel-safe:
    ///
    /// ```
    /// use taskscope::CancelExt;
    ///
    /// # futures::executor::block_on(async {
    /// let request = std::future::pending::<u32>(); // never looks at a token
    /// let outcome = request
    ///     .until_cancelled_ambient()
    ///     .cancel_when(std::future::ready(())) // a deadline already passed
    ///     .await;
    /// assert!(outcome.is_err());
    /// # });
    /// ```
    ///
    /// # Cancel safety
    ///
    /// As cancel-safe as `self`.
    ///
    /// # Panics
    ///
    /// Panics of `self` and `deadline` propagate. The returned future panics
    /// if polled after it completed or after `self` or `deadline` panicked.
    fn cancel_when<D: Future>(self, deadline: D) -> CancelWhen<Self, D> {
        CancelWhen::new(self, deadline, None, false)
    }

    /// [`cancel_when`](Self::cancel_when) with a tokio timer that fires
    /// `duration` from now (the clock starts when this is called).
    ///
    /// tokio's timer fires on its millisecond tick, not at its first poll:
    /// on a running clock a `duration` of zero does not cancel before
    /// `self` is first polled, but on a paused one (`tokio::time::pause`,
    /// `start_paused`) its tick has come and it does; rely on neither. To
    /// cancel before it starts, use `cancel_when(std::future::ready(()))`.
    ///
    /// # Cancel safety
    ///
    /// As cancel-safe as `self`, as for [`cancel_when`](Self::cancel_when).
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime with its time driver enabled.
    #[cfg(feature = "tokio")]
    #[track_caller]
    fn cancel_after(self, duration: std::time::Duration) -> CancelWhen<Self, tokio::time::Sleep> {
        self.cancel_when(tokio::time::sleep(duration))
    }

    /// [`cancel_when`](Self::cancel_when) with a tokio timer that fires at
    /// `deadline`.
    ///
    /// # Cancel safety
    ///
    /// As cancel-safe as `self`, as for [`cancel_when`](Self::cancel_when).
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime with its time driver enabled.
    #[cfg(feature = "tokio")]
    #[track_caller]
    fn cancel_at(self, deadline: tokio::time::Instant) -> CancelWhen<Self, tokio::time::Sleep> {
        self.cancel_when(tokio::time::sleep_until(deadline))
    }
}

impl<F: Future> CancelExt for F {}
