//! [`BufferedIn`]: item futures run as children of a scope, outputs in input order.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::stream::{FusedStream, Stream};
use pin_project_lite::pin_project;

use super::spawner::Spawner;
use super::window::{ConsumerWatch, check_window};
use crate::scope::JoinHandle;
use crate::sync::{AtomicBool, Ordering};

pin_project! {
    /// The stream returned by
    /// [`ScopedStreamExt::buffered_in`](crate::ScopedStreamExt::buffered_in).
    ///
    /// Every item future of the source runs as a child of a scope, so it
    /// makes progress whenever the scope is polled; outputs come back in the
    /// order the items were pulled. At most `window` items are pulled from
    /// the source and not yet yielded.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future of `next()` loses nothing: an output stays in its
    /// child's slot until the next poll. Dropping the stream itself cancels
    /// the unfinished items voluntarily (each through its own token) and
    /// leaves them to the scope, which still joins them; the outputs of
    /// items that had already finished but were not yielded are dropped with
    /// the stream. To keep those, call [`cancel`](Self::cancel) and drain the
    /// stream instead of dropping it.
    #[must_use = "streams do nothing unless polled"]
    pub struct BufferedIn<St, S>
    where
        St: Stream,
        St::Item: Future,
    {
        #[pin]
        source: St,
        scope: S,
        in_flight: VecDeque<JoinHandle<<St::Item as Future>::Output>>,
        window: usize,
        source_done: bool,
        stopped: AtomicBool,
        consumer: ConsumerWatch,
    }

    impl<St, S> PinnedDrop for BufferedIn<St, S>
    where
        St: Stream,
        St::Item: Future,
    {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            #[cfg(feature = "tracing")]
            {
                let finished = this.in_flight.iter().filter(|h| h.is_finished()).count();
                if finished > 0 {
                    tracing::debug!(
                        finished,
                        "taskscope: BufferedIn dropped with finished outputs not yet yielded; they are dropped"
                    );
                }
            }
            for handle in this.in_flight.iter() {
                if !handle.is_finished() {
                    handle.cancel();
                }
            }
        }
    }
}

impl<St, S> BufferedIn<St, S>
where
    St: Stream,
    St::Item: Future,
    S: Spawner<St::Item>,
{
    #[track_caller]
    pub(crate) fn new(source: St, window: usize, scope: &S) -> Self {
        check_window(window, "buffered_in");
        BufferedIn {
            source,
            scope: scope.clone(),
            in_flight: VecDeque::with_capacity(window),
            window,
            source_done: false,
            stopped: AtomicBool::new(false),
            consumer: ConsumerWatch::default(),
        }
    }
}

impl<St, S> BufferedIn<St, S>
where
    St: Stream,
    St::Item: Future,
{
    /// Stops the stream gracefully: pulls nothing more from the source and
    /// cancels the items in flight voluntarily (each through its own token).
    ///
    /// The stream still yields the outputs of the items in flight, in order,
    /// and then ends, so nothing that was already computed is lost. Items
    /// see the cancellation through [`checkpoint`](crate::checkpoint) and
    /// decide what their output is (typically an `Err` carrying
    /// [`Cancelled`](crate::Cancelled)).
    pub fn cancel(&self) {
        self.stopped.store(true, Ordering::Release);
        for handle in &self.in_flight {
            if !handle.is_finished() {
                handle.cancel();
            }
        }
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

impl<St, S> Stream for BufferedIn<St, S>
where
    St: Stream,
    St::Item: Future,
    S: Spawner<St::Item>,
{
    type Item = <St::Item as Future>::Output;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut this = self.project();
        if this.consumer.newly_cancelled() {
            for handle in this.in_flight.iter() {
                handle.cancel();
            }
        }
        let stopped = this.stopped.load(Ordering::Acquire);
        // Refill the window before looking at its head, so the items behind
        // the head start as early as the bound allows.
        while !*this.source_done && !stopped && this.in_flight.len() < *this.window {
            match this.source.as_mut().poll_next(cx) {
                Poll::Ready(Some(item)) => {
                    let handle = this.scope.spawn_child(item);
                    if this.consumer.is_cancelled() {
                        handle.cancel();
                    }
                    this.in_flight.push_back(handle);
                }
                Poll::Ready(None) => *this.source_done = true,
                Poll::Pending => break,
            }
        }
        match this.in_flight.front_mut() {
            Some(head) => match Pin::new(head).poll(cx) {
                Poll::Ready(output) => {
                    this.in_flight.pop_front();
                    Poll::Ready(Some(output))
                }
                Poll::Pending => Poll::Pending,
            },
            None if *this.source_done || stopped => Poll::Ready(None),
            // The source is pending and registered the waker.
            None => Poll::Pending,
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

impl<St, S> FusedStream for BufferedIn<St, S>
where
    St: Stream,
    St::Item: Future,
    S: Spawner<St::Item>,
{
    fn is_terminated(&self) -> bool {
        self.in_flight.is_empty() && (self.source_done || self.stopped.load(Ordering::Acquire))
    }
}

impl<St, S> fmt::Debug for BufferedIn<St, S>
where
    St: Stream,
    St::Item: Future,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BufferedIn")
            .field("window", &self.window)
            .field("in_flight", &self.in_flight.len())
            .field("source_done", &self.source_done)
            .field("stopped", &self.stopped.load(Ordering::Acquire))
            .finish_non_exhaustive()
    }
}
