//! [`CancellableStream`]: a stream that stops when a token fires.

use std::fmt;
use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use pin_project_lite::pin_project;

use super::reason::Cancelled;
use super::token::CancelToken;
use super::when_cancelled::WhenCancelled;

/// Stops a [`Stream`] when a token fires.
///
/// ```
/// use futures::StreamExt;
/// use taskscope::{CancelStreamExt, CancelToken};
///
/// # futures::executor::block_on(async {
/// let token = CancelToken::new();
/// let mut items = futures::stream::iter(1..).until_cancelled(&token);
/// assert_eq!(items.next().await.unwrap().unwrap(), 1);
/// token.cancel();
/// assert!(items.next().await.unwrap().is_err()); // one Err(Cancelled)...
/// assert!(items.next().await.is_none()); // ...then the end
/// # });
/// ```
pub trait CancelStreamExt: Stream + Sized {
    /// Yields `Ok(item)` for each item until `token` is cancelled, then one
    /// `Err(Cancelled)`, then ends; see [`CancellableStream`].
    ///
    /// # Cancel safety
    ///
    /// Each `next()` of the result is as cancel-safe as the inner stream's,
    /// and the cancel itself loses nothing: the inner stream is kept, no
    /// longer polled, with whatever it holds
    /// ([`into_inner`](CancellableStream::into_inner)). Dropping the
    /// result drops the inner stream and unregisters from `token`.
    ///
    /// # Panics
    ///
    /// This call does not panic. Polling the result propagates the inner
    /// stream's panics, and panics if polled again after one; see
    /// [`CancellableStream`].
    fn until_cancelled(self, token: &CancelToken) -> CancellableStream<Self> {
        CancellableStream {
            stream: self,
            cancelled: Some(token.cancelled()),
            polling: false,
        }
    }
}

impl<S: Stream> CancelStreamExt for S {}

pin_project! {
    /// A stream that yields `Ok(item)` until its token is cancelled, then a
    /// single `Err(Cancelled)` and ends; made by
    /// [`CancelStreamExt::until_cancelled`].
    ///
    /// Ending with an error rather than silently lets a consumer tell "the
    /// source is exhausted" from "we were told to stop"; a consumer that does
    /// not care stops at the first `Err` (e.g. `take_while(Result::is_ok)`).
    /// The token is checked before each poll of the inner stream. Once the
    /// stream ended either way the inner stream is no longer polled, but it
    /// is kept until the adapter is dropped: items it still holds (a
    /// channel's queue, say) can be taken back with
    /// [`into_inner`](Self::into_inner) or [`get_mut`](Self::get_mut), so
    /// that stopping loses no work that was already handed over.
    ///
    /// ```
    /// use futures::StreamExt;
    /// use taskscope::{CancelStreamExt, CancelToken};
    ///
    /// # futures::executor::block_on(async {
    /// let token = CancelToken::new();
    /// let (jobs, queue) = futures::channel::mpsc::unbounded();
    /// for job in 0..3 {
    ///     jobs.unbounded_send(job).unwrap();
    /// }
    /// let mut queue = queue.until_cancelled(&token);
    /// assert_eq!(queue.next().await.unwrap().unwrap(), 0);
    /// token.cancel();
    /// assert!(queue.next().await.unwrap().is_err());
    /// // The jobs still queued are not lost: drain them elsewhere.
    /// let left: Vec<u32> = queue.into_inner().take(2).collect().await;
    /// assert_eq!(left, [1, 2]);
    /// # });
    /// ```
    ///
    /// # Cancel safety
    ///
    /// Each `next()` is as cancel-safe as the inner stream's.
    ///
    /// # Panics
    ///
    /// Panics of the inner stream propagate; polling again after one panics
    /// (the inner stream is not polled again). Polling after the end keeps
    /// returning `None`.
    #[must_use = "streams do nothing unless polled"]
    pub struct CancellableStream<S> {
        #[pin]
        stream: S,
        // `None` once the stream has ended (either way).
        cancelled: Option<WhenCancelled>,
        // Set around the inner stream's poll: still set at the next poll
        // only if that poll panicked.
        polling: bool,
    }
}

impl<S: Stream> Stream for CancellableStream<S> {
    type Item = Result<S::Item, Cancelled>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.project();
        assert!(
            !*this.polling,
            "taskscope: CancellableStream polled after its stream panicked; \
             drop it instead of polling it again"
        );
        let Some(cancelled) = this.cancelled.as_mut() else {
            return Poll::Ready(None);
        };
        if let Poll::Ready(error) = Pin::new(cancelled).poll(cx) {
            *this.cancelled = None;
            return Poll::Ready(Some(Err(error)));
        }
        *this.polling = true;
        let next = this.stream.poll_next(cx);
        *this.polling = false;
        match std::task::ready!(next) {
            Some(item) => Poll::Ready(Some(Ok(item))),
            None => {
                *this.cancelled = None;
                Poll::Ready(None)
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.cancelled.is_none() {
            return (0, Some(0));
        }
        let (_, upper) = self.stream.size_hint();
        // The token may fire before the first item: one `Err` then.
        (0, upper.and_then(|upper| upper.checked_add(1)))
    }
}

impl<S> CancellableStream<S> {
    /// The inner stream.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// The inner stream, mutably; polling it bypasses the token.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// The inner stream, pinned; polling it bypasses the token.
    pub fn get_pin_mut(self: Pin<&mut Self>) -> Pin<&mut S> {
        self.project().stream
    }

    /// Unwraps the inner stream, with what it still holds.
    pub fn into_inner(self) -> S {
        self.stream
    }
}

impl<S> fmt::Debug for CancellableStream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancellableStream")
            .field("ended", &self.cancelled.is_none())
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::test_util::CountingWaker;

    #[test]
    fn a_pending_stream_is_woken_and_ends_with_one_error_when_the_token_fires() {
        let token = CancelToken::new();
        let mut stream = Box::pin(futures::stream::pending::<u8>().until_cancelled(&token));
        let waker = CountingWaker::new();
        assert!(stream.as_mut().poll_next(&mut waker.context()).is_pending());
        token.cancel();
        assert_eq!(waker.count(), 1);
        assert!(matches!(
            stream.as_mut().poll_next(&mut waker.context()),
            Poll::Ready(Some(Err(_)))
        ));
        assert!(matches!(
            stream.as_mut().poll_next(&mut waker.context()),
            Poll::Ready(None)
        ));
        assert_eq!(token.registered_waiters(), 0);
    }

    #[test]
    fn an_exhausted_stream_ends_without_error() {
        let token = CancelToken::new();
        let mut stream = Box::pin(futures::stream::iter([1]).until_cancelled(&token));
        let waker = CountingWaker::new();
        assert!(matches!(
            stream.as_mut().poll_next(&mut waker.context()),
            Poll::Ready(Some(Ok(1)))
        ));
        assert!(matches!(
            stream.as_mut().poll_next(&mut waker.context()),
            Poll::Ready(None)
        ));
        token.cancel();
        assert!(matches!(
            stream.as_mut().poll_next(&mut waker.context()),
            Poll::Ready(None)
        ));
    }

    /// Panics at its first poll; ends at the next, as if it had recovered.
    struct PanicsOnce(bool);

    impl Stream for PanicsOnce {
        type Item = u8;

        fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<u8>> {
            if std::mem::replace(&mut self.0, true) {
                return Poll::Ready(None);
            }
            panic!("the stream panicked");
        }
    }

    #[test]
    #[should_panic(expected = "CancellableStream polled after its stream panicked")]
    fn a_poll_after_the_stream_panicked_panics_without_polling_it_again() {
        let token = CancelToken::new();
        let mut stream = Box::pin(PanicsOnce(false).until_cancelled(&token));
        let waker = CountingWaker::new();
        let first = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            stream.as_mut().poll_next(&mut waker.context())
        }));
        assert!(first.is_err());
        let _ = stream.as_mut().poll_next(&mut waker.context());
    }

    #[test]
    fn a_cancelled_stream_keeps_its_inner_stream_and_what_it_holds() {
        let token = CancelToken::new();
        let mut stream = Box::pin(futures::stream::iter([1, 2, 3]).until_cancelled(&token));
        let waker = CountingWaker::new();
        assert!(matches!(
            stream.as_mut().poll_next(&mut waker.context()),
            Poll::Ready(Some(Ok(1)))
        ));
        token.cancel();
        assert!(matches!(
            stream.as_mut().poll_next(&mut waker.context()),
            Poll::Ready(Some(Err(_)))
        ));
        assert_eq!(stream.as_mut().get_pin_mut().size_hint(), (2, Some(2)));
        assert_eq!(stream.size_hint(), (0, Some(0)), "the adapter has ended");
        let left: Vec<u8> = futures::executor::block_on_stream(stream.get_mut()).collect();
        assert_eq!(left, [2, 3]);
    }
}
