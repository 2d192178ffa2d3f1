//! [`ForEachIn`]: a body per item, up to `n` at once, each a child of a scope.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::stream::Stream;
use pin_project_lite::pin_project;

use super::spawner::Spawner;
use super::window::{ConsumerWatch, Unordered, check_window};
use crate::sync::{AtomicBool, Ordering};

pin_project! {
    /// The future returned by
    /// [`ScopedStreamExt::for_each_in`](crate::ScopedStreamExt::for_each_in).
    ///
    /// Pulls items from the source and runs the body on each as a child of
    /// a scope, at most `window` bodies at once; completes once the source
    /// is exhausted and every body it started has finished.
    ///
    /// # Cancel safety
    ///
    /// Dropping it before it completes cancels the running bodies
    /// voluntarily (each through its own token) and leaves them to the
    /// scope, which still joins them. Items not yet pulled stay in the
    /// source, which is dropped. [`cancel`](Self::cancel) is the graceful
    /// form: it stops pulling and completes once the running bodies finish.
    #[must_use = "futures do nothing unless polled"]
    pub struct ForEachIn<St, S, F> {
        #[pin]
        source: St,
        scope: S,
        body: F,
        running: Unordered<()>,
        window: usize,
        source_done: bool,
        stopped: AtomicBool,
        consumer: ConsumerWatch,
    }

    impl<St, S, F> PinnedDrop for ForEachIn<St, S, F> {
        fn drop(this: Pin<&mut Self>) {
            this.project().running.cancel_all();
        }
    }
}

impl<St, S, F, Fut> ForEachIn<St, S, F>
where
    St: Stream,
    F: FnMut(St::Item) -> Fut,
    Fut: Future<Output = ()>,
    S: Spawner<Fut>,
{
    #[track_caller]
    pub(crate) fn new(source: St, window: usize, scope: &S, body: F) -> Self {
        check_window(window, "for_each_in");
        ForEachIn {
            source,
            scope: scope.clone(),
            body,
            running: Unordered::new(),
            window,
            source_done: false,
            stopped: AtomicBool::new(false),
            consumer: ConsumerWatch::default(),
        }
    }
}

impl<St, S, F> ForEachIn<St, S, F> {
    /// Stops gracefully: pulls nothing more from the source and cancels the
    /// running bodies voluntarily; the future completes once they finish.
    pub fn cancel(&self) {
        self.stopped.store(true, Ordering::Release);
        self.running.cancel_all();
    }

    /// How many bodies are running (started and not yet seen finished);
    /// never more than the window.
    pub fn running(&self) -> usize {
        self.running.len()
    }

    /// The window the future was made with.
    pub fn window(&self) -> usize {
        self.window
    }
}

impl<St, S, F, Fut> Future for ForEachIn<St, S, F>
where
    St: Stream,
    F: FnMut(St::Item) -> Fut,
    Fut: Future<Output = ()>,
    S: Spawner<Fut>,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        if this.consumer.newly_cancelled() {
            this.running.cancel_all();
        }
        loop {
            let stopped = this.stopped.load(Ordering::Acquire);
            while !*this.source_done && !stopped && this.running.len() < *this.window {
                match this.source.as_mut().poll_next(cx) {
                    Poll::Ready(Some(item)) => {
                        let handle = this.scope.spawn_child((this.body)(item));
                        if this.consumer.is_cancelled() {
                            handle.cancel();
                        }
                        this.running.push(handle);
                    }
                    Poll::Ready(None) => *this.source_done = true,
                    Poll::Pending => break,
                }
            }
            match this.running.poll_next(cx) {
                // A body finished: its place in the window is free again.
                Poll::Ready(Some(())) => {}
                Poll::Ready(None) if *this.source_done || stopped => return Poll::Ready(()),
                Poll::Ready(None) | Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl<St, S, F> fmt::Debug for ForEachIn<St, S, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ForEachIn")
            .field("window", &self.window)
            .field("running", &self.running.len())
            .field("source_done", &self.source_done)
            .field("stopped", &self.stopped.load(Ordering::Acquire))
            .finish_non_exhaustive()
    }
}
