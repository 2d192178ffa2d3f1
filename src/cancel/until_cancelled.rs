//! [`UntilCancelled`]: a future that is dropped as soon as a token fires.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use super::ambient;
use super::reason::Cancelled;
use super::token::CancelToken;
use super::when_cancelled::WhenCancelled;

pin_project! {
    /// Resolves to `Ok(output)`, or to `Err(Cancelled)` as soon as its token
    /// is cancelled, dropping the inner future at its current await point.
    ///
    /// Made by [`CancelExt::until_cancelled`](crate::CancelExt::until_cancelled)
    /// and [`CancelExt::until_cancelled_ambient`](crate::CancelExt::until_cancelled_ambient).
    ///
    /// This is *synchronous* cancellation, the opposite of the crate's
    /// voluntary model: use it only for futures that are cancel-safe (a
    /// channel receive, a timer, an accept), never for one that holds half-done
    /// work.
    ///
    /// # Cancel safety
    ///
    /// As cancel-safe as the inner future.
    ///
    /// # Panics
    ///
    /// Panics of the inner future propagate. Polling it again after it
    /// returned `Ok`, or after the inner future panicked, panics. After `Err`
    /// it keeps returning the same error.
    #[must_use = "futures do nothing unless polled"]
    pub struct UntilCancelled<F> {
        #[pin]
        future: Option<F>,
        // `None` for the ambient form until its first poll.
        cancelled: Option<WhenCancelled>,
        // True while the inner future is polled: still true at the next
        // poll only if that poll panicked.
        polling: bool,
    }
}

impl<F> UntilCancelled<F> {
    pub(crate) fn new(future: F, token: Option<&CancelToken>) -> Self {
        UntilCancelled {
            future: Some(future),
            cancelled: token.map(CancelToken::cancelled),
            polling: false,
        }
    }
}

impl<F: Future> Future for UntilCancelled<F> {
    type Output = Result<F::Output, Cancelled>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        // Both gone only after `Ok` (after `Err` the token's future stays and
        // answers): a poll then is the misuse the docs promise to report,
        // even if the token has fired since.
        assert!(
            this.future.is_some() || this.cancelled.is_some(),
            "taskscope: UntilCancelled polled after it completed; await it once"
        );
        assert!(
            !*this.polling,
            "taskscope: UntilCancelled polled after its future panicked; await it once"
        );
        let cancelled = this
            .cancelled
            .get_or_insert_with(|| ambient::current_token().cancelled());
        // Checked first: once the token fired, the future is never polled again.
        if let Poll::Ready(error) = Pin::new(cancelled).poll(cx) {
            this.future.set(None);
            return Poll::Ready(Err(error));
        }
        let future = this
            .future
            .as_mut()
            .as_pin_mut()
            .expect("taskscope: UntilCancelled polled after it completed; await it once");
        *this.polling = true;
        let polled = future.poll(cx);
        *this.polling = false;
        let output = std::task::ready!(polled);
        this.future.set(None);
        *this.cancelled = None;
        Poll::Ready(Ok(output))
    }
}

impl<F> fmt::Debug for UntilCancelled<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UntilCancelled")
            .field("cancelled", &self.cancelled)
            .field("running", &self.future.is_some())
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::CancelReason;
    use crate::test_util::CountingWaker;

    struct SetOnDrop(std::sync::Arc<std::sync::atomic::AtomicBool>);

    impl Drop for SetOnDrop {
        fn drop(&mut self) {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    #[test]
    fn the_inner_future_is_dropped_at_the_first_poll_after_the_token_fires() {
        let token = CancelToken::new();
        let dropped = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let guard = SetOnDrop(dropped.clone());
        let mut fut = Box::pin(UntilCancelled::new(
            async move {
                let _guard = guard;
                std::future::pending::<()>().await
            },
            Some(&token),
        ));
        let waker = CountingWaker::new();
        assert!(fut.as_mut().poll(&mut waker.context()).is_pending());
        token.cancel();
        assert_eq!(waker.count(), 1, "cancelling wakes the adapter");
        assert!(
            !dropped.load(std::sync::atomic::Ordering::SeqCst),
            "the cancel itself drops nothing: the adapter's poll does"
        );
        match fut.as_mut().poll(&mut waker.context()) {
            Poll::Ready(Err(error)) => assert!(matches!(error.reason(), CancelReason::Requested)),
            other => panic!(
                "expected Err(Cancelled), got {:?}",
                other.map(|r| r.is_ok())
            ),
        }
        assert!(dropped.load(std::sync::atomic::Ordering::SeqCst));
    }

    #[test]
    fn the_output_comes_through_once_and_a_later_poll_panics_even_if_the_token_fired() {
        let token = CancelToken::new();
        let mut fut = Box::pin(UntilCancelled::new(async { 5 }, Some(&token)));
        let waker = CountingWaker::new();
        assert!(matches!(
            fut.as_mut().poll(&mut waker.context()),
            Poll::Ready(Ok(5))
        ));
        token.cancel();
        let again = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            fut.as_mut().poll(&mut waker.context())
        }));
        let payload = again.expect_err("the documented misuse panic");
        let message = payload.downcast_ref::<&str>().copied().unwrap_or_default();
        assert!(message.contains("polled after it completed"), "{message}");
    }

    #[test]
    fn the_ambient_form_reads_the_token_current_at_its_first_poll() {
        let token = CancelToken::new();
        let mut fut = Box::pin(UntilCancelled::new(std::future::pending::<()>(), None));
        let waker = CountingWaker::new();
        {
            let _entered = ambient::enter(ambient::Ambient::Token(token.clone()));
            assert!(fut.as_mut().poll(&mut waker.context()).is_pending());
        }
        token.cancel();
        assert!(matches!(
            fut.as_mut().poll(&mut waker.context()),
            Poll::Ready(Err(_))
        ));
    }
}
