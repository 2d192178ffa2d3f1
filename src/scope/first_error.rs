//! The first error of a [`try_scope`](crate::try_scope), shared by its body and children.

use std::fmt;
use std::future::Future;

use crate::cancel::{CancelReason, CancelToken, Cancelled};
use crate::sync::{Arc, AtomicUsize, Mutex, Ordering};

/// Keeps the first error recorded in a `try_scope` and counts the others.
pub(crate) struct FirstError<E> {
    /// The scope's token, cancelled by the first error.
    token: CancelToken,
    first: Mutex<Option<E>>,
    /// Errors recorded after the first one, which were dropped.
    suppressed: AtomicUsize,
}

impl<E: fmt::Debug> FirstError<E> {
    pub(crate) fn new(token: CancelToken) -> Self {
        FirstError {
            token,
            first: Mutex::new(None),
            suppressed: AtomicUsize::new(0),
        }
    }

    /// Records `error`: the first one is kept and cancels the scope with
    /// [`CancelReason::Failed`]; later ones are dropped and counted.
    ///
    /// Returns the [`Cancelled`] the failing task reports, carrying its own
    /// error's rendering whether or not it was the first.
    pub(crate) fn record(&self, error: E) -> Cancelled {
        let reason = CancelReason::from_error(&error);
        let rejected = {
            let mut first = self.first.lock();
            if first.is_none() {
                *first = Some(error);
                None
            } else {
                Some(error)
            }
        };
        match rejected {
            None => self.token.cancel_with(reason.clone()),
            Some(error) => {
                // Relaxed: a statistic; it publishes no other data.
                self.suppressed.fetch_add(1, Ordering::Relaxed);
                // Dropped outside the lock: a destructor is user code.
                drop(error);
            }
        }
        Cancelled::new(reason)
    }

    /// The first error, if any was recorded.
    pub(crate) fn take(&self) -> Option<E> {
        self.first.lock().take()
    }

    pub(crate) fn suppressed(&self) -> usize {
        // Relaxed: see `record`.
        self.suppressed.load(Ordering::Relaxed)
    }

    pub(crate) fn token(&self) -> &CancelToken {
        &self.token
    }

    /// The scope's result once the body and every child finished: the first
    /// error if one was recorded, else the body's value (`None` only when
    /// the body returned an error, which was recorded).
    pub(crate) fn outcome<R>(&self, body: Option<R>) -> Result<R, E> {
        match self.take() {
            Some(error) => Err(error),
            None => Ok(body.expect("a body that returned `Err` recorded it")),
        }
    }
}

/// `future`, with its `Err` recorded in `errors`: what a `spawn_try` child
/// runs, in either flavour of try scope.
pub(crate) fn recording<F, T, E>(
    errors: &Arc<FirstError<E>>,
    future: F,
) -> impl Future<Output = Result<T, Cancelled>> + use<F, T, E>
where
    F: Future<Output = Result<T, E>>,
    E: fmt::Debug,
{
    let errors = errors.clone();
    async move {
        match future.await {
            Ok(value) => Ok(value),
            Err(error) => Err(errors.record(error)),
        }
    }
}

/// `future` as a clean-up whose `Err` is recorded in `errors`: what
/// `defer_try` defers, in either flavour of try scope.
pub(crate) fn recording_cleanup<F, E>(
    errors: &Arc<FirstError<E>>,
    future: F,
) -> impl Future<Output = ()> + use<F, E>
where
    F: Future<Output = Result<(), E>>,
    E: fmt::Debug,
{
    let errors = errors.clone();
    async move {
        if let Err(error) = future.await {
            // The scope's token may be cancelled now; clean-up is shielded
            // from it, so the rest of the clean-up still runs.
            let _ = errors.record(error);
        }
    }
}

impl<E> fmt::Debug for FirstError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Read under the lock, written after it, as in `Core`'s `Debug`.
        let failed = self.first.lock().is_some();
        f.debug_struct("FirstError")
            .field("failed", &failed)
            .field("suppressed", &self.suppressed.load(Ordering::Relaxed))
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn the_first_error_is_kept_cancels_the_token_and_later_ones_are_counted() {
        let token = CancelToken::new();
        let errors = FirstError::new(token.clone());
        let first = errors.record("first");
        assert!(matches!(first.reason(), CancelReason::Failed(text) if &**text == "\"first\""));
        assert!(matches!(token.reason(), Some(CancelReason::Failed(_))));
        let second = errors.record("second");
        assert!(matches!(second.reason(), CancelReason::Failed(text) if &**text == "\"second\""));
        assert_eq!(errors.suppressed(), 1);
        assert_eq!(errors.take(), Some("first"));
        match token.reason() {
            Some(CancelReason::Failed(text)) => assert_eq!(&*text, "\"first\""),
            other => panic!("the scope must keep the first error's reason: {other:?}"),
        }
    }
}
