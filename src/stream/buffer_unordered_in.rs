//! [`BufferUnorderedIn`]: item futures run as children of a scope, outputs in completion order.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::stream::{FusedStream, Stream};
use pin_project_lite::pin_project;

use super::spawner::Spawner;
use super::window::{ConsumerWatch, Unordered, check_window};
use crate::sync::{AtomicBool, Ordering};

pin_project! {
    /// The stream returned by
    /// [`ScopedStreamExt::buffer_unordered_in`](crate::ScopedStreamExt::buffer_unordered_in).
    ///
    /// Every item future of the source runs as a child of a scope; outputs
    /// come back in the order the items finish. At most `window` items are
    /// pulled from the source and not yet yielded.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future of `next()` loses nothing. Dropping the stream
    /// cancels the unfinished items voluntarily and leaves them to the
    /// scope, which still joins them; outputs of items that had finished but
    /// were not yielded are dropped with the stream. To keep them, call
    /// [`cancel`](Self::cancel) and drain the stream instead.
    #[must_use = "streams do nothing unless polled"]
    pub struct BufferUnorderedIn<St, S>
    where
        St: Stream,
        St::Item: Future,
    {
        #[pin]
        source: St,
        scope: S,
        in_flight: Unordered<<St::Item as Future>::Output>,
        window: usize,
        source_done: bool,
        stopped: AtomicBool,
        consumer: ConsumerWatch,
    }

    impl<St, S> PinnedDrop for BufferUnorderedIn<St, S>
    where
        St: Stream,
        St::Item: Future,
    {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            #[cfg(feature = "tracing")]
            {
                let finished = this.in_flight.finished();
                if finished > 0 {
                    tracing::debug!(
                        finished,
                        "taskscope: BufferUnorderedIn dropped with finished outputs not yet yielded; they are dropped"
                    );
                }
            }
            this.in_flight.cancel_all();
        }
    }
}

impl<St, S> BufferUnorderedIn<St, S>
where
    St: Stream,
    St::Item: Future,
    S: Spawner<St::Item>,
{
    #[track_caller]
    pub(crate) fn new(source: St, window: usize, scope: &S) -> Self {
        check_window(window, "buffer_unordered_in");
        BufferUnorderedIn {
            source,
            scope: scope.clone(),
            in_flight: Unordered::new(),
            window,
            source_done: false,
            stopped: AtomicBool::new(false),
            consumer: ConsumerWatch::default(),
        }
    }
}

impl<St, S> BufferUnorderedIn<St, S>
where
    St: Stream,
    St::Item: Future,
{
    /// Stops the stream gracefully: pulls nothing more from the source and
    /// cancels the items in flight voluntarily; the stream still yields
    /// their outputs as they finish, then ends. See
    /// [`BufferedIn::cancel`](crate::BufferedIn::cancel).
    pub fn cancel(&self) {
        self.stopped.store(true, Ordering::Release);
        self.in_flight.cancel_all();
    }

    /// How many items were pulled from the source and not yet yielded
    /// (running or finished); never more than the window.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// The window the stream was made with.
    pub fn window(&self) -> usize {
        self.window
    }
}

impl<St, S> Stream for BufferUnorderedIn<St, S>
where
    St: Stream,
    St::Item: Future,
    S: Spawner<St::Item>,
{
    type Item = <St::Item as Future>::Output;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut this = self.project();
        if this.consumer.newly_cancelled() {
            this.in_flight.cancel_all();
        }
        let stopped = this.stopped.load(Ordering::Acquire);
        while !*this.source_done && !stopped && this.in_flight.len() < *this.window {
            match this.source.as_mut().poll_next(cx) {
                Poll::Ready(Some(item)) => {
                    let handle = this.scope.spawn_child(item);
                    if this.consumer.is_cancelled() {
                        handle.cancel();
                    }
                    this.in_flight.push(handle);
                }
                Poll::Ready(None) => *this.source_done = true,
                Poll::Pending => break,
            }
        }
        match this.in_flight.poll_next(cx) {
            Poll::Ready(Some(output)) => Poll::Ready(Some(output)),
            Poll::Ready(None) if *this.source_done || stopped => Poll::Ready(None),
            // Nothing in flight and the source is pending (it registered the waker).
            Poll::Ready(None) | Poll::Pending => Poll::Pending,
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let in_flight = self.in_flight.len();
        if self.source_done || self.stopped.load(Ordering::Acquire) {
            return (in_flight, Some(in_flight));
        }
        let (low, high) = self.source.size_hint();
        (
            low.saturating_add(in_flight),
            high.and_then(|high| high.checked_add(in_flight)),
        )
    }
}

impl<St, S> FusedStream for BufferUnorderedIn<St, S>
where
    St: Stream,
    St::Item: Future,
    S: Spawner<St::Item>,
{
    fn is_terminated(&self) -> bool {
        self.in_flight.is_empty() && (self.source_done || self.stopped.load(Ordering::Acquire))
    }
}

impl<St, S> fmt::Debug for BufferUnorderedIn<St, S>
where
    St: Stream,
    St::Item: Future,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BufferUnorderedIn")
            .field("window", &self.window)
            .field("in_flight", &self.in_flight.len())
            .field("source_done", &self.source_done)
            .field("stopped", &self.stopped.load(Ordering::Acquire))
            .finish_non_exhaustive()
    }
}
