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
    /// Each `next()` of the result is as cancel-safe as the inner stream's.
    /// The inner stream is dropped when the token fires, with whatever it
    /// still holds; see [`CancellableStream`]. Dropping the result drops
    /// the inner stream and unregisters from `token`.
    ///
    /// # Panics
    ///
    /// This call does not panic. Polling the result propagates the inner
    /// stream's panics, and panics if polled again after one; see
    /// [`CancellableStream`].
    fn until_cancelled(self, token: &CancelToken) -> CancellableStream<Self> {
        CancellableStream {
            stream: Some(self),
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
    /// The token is checked before each poll of the inner stream, which is
    /// dropped as soon as the token fires or it ends: a channel's receiver
    /// closes then, so its senders see the end rather than waiting forever
    /// for room, and the items still queued in it are dropped with it. To
    /// keep those, take the stream back before the cancel reaches it
    /// ([`into_inner`](Self::into_inner)), or stop a channel yourself:
    /// close the receiver when the token fires and drain what it holds.
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
    /// // Stopping without losing the queued jobs: take the receiver back,
    /// // close it (senders see the end), then drain it.
    /// let mut queue = queue.into_inner().expect("not cancelled yet");
    /// queue.close();
    /// let left: Vec<u32> = queue.collect().await;
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
        stream: Option<S>,
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
        let mut this = self.project();
        assert!(
            !*this.polling,
            "taskscope: CancellableStream polled after its stream panicked; \
             drop it instead of polling it again"
        );
        let Some(cancelled) = this.cancelled.as_mut() else {
            return Poll::Ready(None);
        };
        if let Poll::Ready(error) = Pin::new(cancelled).poll(cx) {
            // Ended before the stream is dropped: a panicking destructor
            // leaves an ended stream, not one that yields again.
            *this.cancelled = None;
            this.stream.set(None);
            return Poll::Ready(Some(Err(error)));
        }
        let Some(stream) = this.stream.as_mut().as_pin_mut() else {
            return Poll::Ready(None);
        };
        *this.polling = true;
        let next = stream.poll_next(cx);
        *this.polling = false;
        match std::task::ready!(next) {
            Some(item) => Poll::Ready(Some(Ok(item))),
            None => {
                *this.cancelled = None;
                this.stream.set(None);
                Poll::Ready(None)
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match (&self.stream, &self.cancelled) {
            (Some(stream), Some(_)) => {
                let (_, upper) = stream.size_hint();
                // The token may fire before the first item: one `Err` then.
                (0, upper.and_then(|upper| upper.checked_add(1)))
            }
            _ => (0, Some(0)),
        }
    }
}

impl<S> CancellableStream<S> {
    /// The inner stream; `None` once it was dropped (the token fired or it
    /// ended).
    pub fn get_ref(&self) -> Option<&S> {
        self.stream.as_ref()
    }

    /// The inner stream, mutably; polling it bypasses the token. `None`
    /// once it was dropped.
    pub fn get_mut(&mut self) -> Option<&mut S> {
        self.stream.as_mut()
    }

    /// The inner stream, pinned; polling it bypasses the token. `None`
    /// once it was dropped.
    pub fn get_pin_mut(self: Pin<&mut Self>) -> Option<Pin<&mut S>> {
        self.project().stream.as_pin_mut()
    }

    /// Unwraps the inner stream, with what it still holds; `None` once it
    /// was dropped (the token fired or it ended).
    pub fn into_inner(self) -> Option<S> {
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

    /// Ends at once; its destructor panics.
    struct EndsThenPanicsWhenDropped;

    impl Stream for EndsThenPanicsWhenDropped {
        type Item = u8;

        fn poll_next(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<u8>> {
            Poll::Ready(None)
        }
    }

    impl Drop for EndsThenPanicsWhenDropped {
        fn drop(&mut self) {
            panic!("the stream's drop panicked");
        }
    }

    #[test]
    fn a_stream_whose_drop_panicked_at_its_end_stays_ended_when_the_token_fires() {
        let token = CancelToken::new();
        let mut stream = Box::pin(EndsThenPanicsWhenDropped.until_cancelled(&token));
        let waker = CountingWaker::new();
        let first = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            stream.as_mut().poll_next(&mut waker.context())
        }));
        assert!(first.is_err(), "the drop's panic propagates");
        token.cancel();
        assert!(matches!(
            stream.as_mut().poll_next(&mut waker.context()),
            Poll::Ready(None)
        ));
    }

    /// A producer blocked on a full channel must see the receiver close at
    /// the cancel, not wait for room forever (a review found the hang when
    /// the adapter kept its stream).
    #[test]
    fn the_cancel_closes_a_channel_so_a_blocked_sender_sees_the_end() {
        use futures::SinkExt;
        let token = CancelToken::new();
        let (mut jobs, queue) = futures::channel::mpsc::channel::<u8>(0);
        let mut queue = Box::pin(queue.until_cancelled(&token));
        futures::executor::block_on(async {
            jobs.try_send(1).unwrap(); // fills the channel
            let waker = CountingWaker::new();
            let mut blocked = std::pin::pin!(jobs.send(2));
            assert!(blocked.as_mut().poll(&mut waker.context()).is_pending());
            token.cancel();
            assert!(matches!(
                queue.as_mut().poll_next(&mut waker.context()),
                Poll::Ready(Some(Err(_)))
            ));
            assert!(
                queue.as_mut().get_pin_mut().is_none(),
                "dropped at the cancel"
            );
            assert!(blocked.await.is_err(), "the sender sees the end");
        });
    }

    #[test]
    fn the_inner_stream_can_be_taken_back_before_the_cancel() {
        let token = CancelToken::new();
        let stream = futures::stream::iter([1, 2]).until_cancelled(&token);
        assert!(stream.get_ref().is_some());
        let inner = stream.into_inner().expect("not cancelled, not ended");
        assert_eq!(futures::executor::block_on_stream(inner).count(), 2);
    }
}
