//! The future returned by [`CancelToken::cancelled`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::reason::Cancelled;
use super::token::CancelToken;

/// Completes once its token is cancelled, with the [`Cancelled`] error.
///
/// Returned by [`CancelToken::cancelled`] and [`cancelled`](crate::cancelled).
///
/// # Cancel safety
///
/// Cancel-safe: dropping it unregisters its waker; nothing is lost.
///
/// # Panics
///
/// Polling it again after it completed returns the same error again rather
/// than panicking: the token stays cancelled.
#[must_use = "futures do nothing unless polled"]
pub struct WhenCancelled {
    token: CancelToken,
    key: Option<usize>,
}

impl WhenCancelled {
    pub(crate) fn new(token: CancelToken) -> Self {
        WhenCancelled { token, key: None }
    }

    /// The token this future waits on.
    pub(crate) fn token(&self) -> &CancelToken {
        &self.token
    }
}

impl Future for WhenCancelled {
    type Output = Cancelled;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Cancelled> {
        let this = self.get_mut();
        if let Err(cancelled) = this.token.check() {
            this.key = None; // the registration went with the cancellation (I2)
            return Poll::Ready(cancelled);
        }
        match this.token.register_waker(this.key, cx.waker()) {
            Some(key) => {
                this.key = Some(key);
                Poll::Pending
            }
            // Cancelled between the check and the registration.
            None => {
                this.key = None;
                Poll::Ready(this.token.check().expect_err("a token stays cancelled"))
            }
        }
    }
}

impl Drop for WhenCancelled {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.token.unregister(key);
        }
    }
}

impl fmt::Debug for WhenCancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WhenCancelled")
            .field("token", &self.token)
            .field("registered", &self.key.is_some())
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::test_util::CountingWaker;

    #[test]
    fn completes_after_cancel_and_wakes_once() {
        let token = CancelToken::new();
        let mut fut = Box::pin(token.cancelled());
        let waker = CountingWaker::new();
        assert!(fut.as_mut().poll(&mut waker.context()).is_pending());
        assert_eq!(waker.count(), 0);
        token.cancel();
        assert_eq!(waker.count(), 1);
        assert!(fut.as_mut().poll(&mut waker.context()).is_ready());
    }

    #[test]
    fn dropping_the_future_unregisters_its_waker() {
        let token = CancelToken::new();
        let mut fut = Box::pin(token.cancelled());
        let waker = CountingWaker::new();
        assert!(fut.as_mut().poll(&mut waker.context()).is_pending());
        assert_eq!(token.registered_waiters(), 1);
        drop(fut);
        assert_eq!(token.registered_waiters(), 0);
        token.cancel();
        assert_eq!(waker.count(), 0);
    }

    #[test]
    fn repolling_reuses_the_registration() {
        let token = CancelToken::new();
        let mut fut = Box::pin(token.cancelled());
        let first = CountingWaker::new();
        let second = CountingWaker::new();
        assert!(fut.as_mut().poll(&mut first.context()).is_pending());
        assert!(fut.as_mut().poll(&mut second.context()).is_pending());
        assert_eq!(token.registered_waiters(), 1);
        token.cancel();
        assert_eq!((first.count(), second.count()), (0, 1));
    }

    #[test]
    fn a_registration_racing_with_cancel_on_other_threads_is_never_lost() {
        let rounds = if cfg!(miri) { 5 } else { 200 };
        for _ in 0..rounds {
            let token = CancelToken::new();
            type Outcome = (bool, CountingWaker, Pin<Box<WhenCancelled>>);
            let outcomes: Vec<Outcome> = std::thread::scope(|s| {
                let waiters: Vec<_> = (0..3)
                    .map(|_| {
                        s.spawn(|| {
                            let waker = CountingWaker::new();
                            let mut fut = Box::pin(token.cancelled());
                            let ready = fut.as_mut().poll(&mut waker.context()).is_ready();
                            // Kept alive: dropping it would unregister it.
                            (ready, waker, fut)
                        })
                    })
                    .collect();
                s.spawn(|| token.cancel());
                waiters.into_iter().map(|w| w.join().unwrap()).collect()
            });
            for (ready, waker, _fut) in outcomes {
                assert!(
                    ready || waker.count() == 1,
                    "a waiter registered before the cancel must be woken"
                );
            }
        }
    }
}
