//! Streams whose item futures run as children of a scope.
//!
//! `futures`' `buffered(n)` polls its item futures only while the stream
//! itself is polled: while the consumer awaits something else, finished
//! items wait and unfinished ones stall (a connection times out, a permit is
//! held). [`ScopedStreamExt`]'s adapters spawn each item into a scope
//! instead, so the items run whenever the scope is polled, whatever the
//! consumer is doing, and may still borrow from around the scope.
//! See design/streams.md for the choices.

mod buffer_unordered_in;
mod buffered_in;
mod for_each_in;
mod refill;
pub(crate) mod spawner;
#[cfg(test)]
mod test_support;
mod window;

use std::future::Future;

use futures_core::stream::Stream;

pub use buffer_unordered_in::BufferUnorderedIn;
pub use buffered_in::BufferedIn;
pub use for_each_in::ForEachIn;
pub use spawner::Spawner;

/// Adapters that run a stream's items as children of a scope.
///
/// Each takes a window `n` and a scope handle (`&Scope`, `&LocalScope`,
/// `&TryScope`, `&LocalTryScope`): every item runs as a child of that scope
/// with a token of its own, and at most `n` items are pulled from the
/// source and not yet done with. In a `try_scope` an item's `Err` is its
/// output, for the consumer to handle: it does not fail the scope. Bringing the trait into scope adds the methods to every
/// [`Stream`].
///
/// One poll pulls at most [`POLL_BUDGET`](crate::POLL_BUDGET) items from
/// the source; past that the adapter wakes its task and returns, so that
/// even a huge window over an always-ready source lets the scope run the
/// items.
pub trait ScopedStreamExt: Stream {
    /// Runs each item future of this stream as a child of `scope`, at most
    /// `n` at once, and yields their outputs **in input order**.
    ///
    /// The items make progress whenever the scope is polled, also while the
    /// consumer of this stream is busy with an earlier output, so none of
    /// them sits finished-but-unpolled or stalls half-way. At most `n` items
    /// are pulled from the source and not yet yielded, counting the one
    /// being yielded: while the consumer holds an output, up to `n - 1`
    /// further items run, and nothing more is taken from the source (it may
    /// be a queue shared with others).
    ///
    /// Each item runs under its own token, a child of the scope's: cancelling
    /// the scope, dropping the stream, calling
    /// [`BufferedIn::cancel`], or cancelling the task that polls the stream
    /// cancels the items voluntarily (they see it through
    /// [`checkpoint`](crate::checkpoint)). These differ in what they do to
    /// the source: `cancel` (and dropping the stream) stop pulling from it,
    /// while a cancelled consumer that keeps polling keeps pulling, and the
    /// items it pulls start cancelled; a consumer that stops on cancellation
    /// and takes from a shared queue should call `cancel` first.
    ///
    /// ```
    /// use futures::stream::{self, StreamExt};
    /// use taskscope::ScopedStreamExt;
    ///
    /// # futures::executor::block_on(async {
    /// let prices = [3_u32, 1, 4, 1, 5];
    /// let prices = &prices; // the items borrow it
    /// let doubled: Vec<u32> = taskscope::scope(|s| async move {
    ///     stream::iter(prices)
    ///         .map(|price| async move { price * 2 })
    ///         .buffered_in(2, &s)
    ///         .collect()
    ///         .await
    /// })
    /// .await;
    /// assert_eq!(doubled, [6, 2, 8, 2, 10]);
    /// # });
    /// ```
    ///
    /// # Cancel safety
    ///
    /// Awaiting `next()` is cancel-safe. Dropping the stream cancels the
    /// unfinished items and leaves them to the scope, which joins them; the
    /// outputs of items that had finished but were not yielded are dropped
    /// with it. [`BufferedIn::cancel`] then draining keeps them.
    ///
    /// Racing `next()` is not the same as dropping it: [`race`](crate::race())
    /// *cancels* its losers and waits for them, and the stream reads a
    /// cancelled `next()` as a cancelled consumer, so every item in flight
    /// is cancelled, and the output that `next()` then returns is dropped
    /// with the loser. Around `next()`, use [`select`](crate::select()) (it
    /// drops the loser, which `next()` survives) or `futures::select!`.
    ///
    /// # Panics
    ///
    /// Here, if `n` is 0 (no item could ever run), or if `scope` has already
    /// ended (its handle outlived it). Later, a poll of the stream re-raises
    /// the panic of an item when its output is due; a spawn panics if the
    /// scope has ended since.
    #[track_caller]
    fn buffered_in<S>(self, n: usize, scope: &S) -> BufferedIn<Self, S>
    where
        Self: Sized,
        Self::Item: Future,
        S: Spawner<Self::Item>,
    {
        BufferedIn::new(self, n, scope)
    }

    /// Runs each item future of this stream as a child of `scope`, at most
    /// `n` at once, and yields their outputs **in the order they finish**.
    ///
    /// The same as [`buffered_in`](Self::buffered_in) but for the order: at
    /// most `n` items are pulled from the source and not yet yielded, each
    /// runs under its own token, and they progress whenever the scope is
    /// polled.
    ///
    /// ```
    /// use futures::stream::{self, StreamExt};
    /// use taskscope::ScopedStreamExt;
    ///
    /// # futures::executor::block_on(async {
    /// let words = ["scoped", "tasks", "borrow"];
    /// let words = &words;
    /// let mut lengths: Vec<usize> = taskscope::scope(|s| async move {
    ///     stream::iter(words)
    ///         .map(|word| async move { word.len() })
    ///         .buffer_unordered_in(3, &s)
    ///         .collect()
    ///         .await
    /// })
    /// .await;
    /// lengths.sort();
    /// assert_eq!(lengths, [5, 6, 6]);
    /// # });
    /// ```
    ///
    /// # Cancel safety
    ///
    /// As for [`buffered_in`](Self::buffered_in); the graceful stop is
    /// [`BufferUnorderedIn::cancel`].
    ///
    /// # Panics
    ///
    /// Here, if `n` is 0 or `scope` has already ended. Later, a poll of the
    /// stream re-raises the panic of an item once that item has finished; a
    /// spawn panics if the scope has ended since.
    #[track_caller]
    fn buffer_unordered_in<S>(self, n: usize, scope: &S) -> BufferUnorderedIn<Self, S>
    where
        Self: Sized,
        Self::Item: Future,
        S: Spawner<Self::Item>,
    {
        BufferUnorderedIn::new(self, n, scope)
    }

    /// Runs `f` on each item of this stream as a child of `scope`, at most
    /// `n` bodies at once; the future completes once the stream is exhausted
    /// and every body has finished.
    ///
    /// An item is pulled from the source only when a place in the window is
    /// free. Each body runs under its own token, a child of the scope's:
    /// cancelling the scope, dropping the future, calling
    /// [`ForEachIn::cancel`], or cancelling the task that polls the future
    /// cancels the bodies voluntarily (they see it through
    /// [`checkpoint`](crate::checkpoint)). `cancel` and a cancelled polling
    /// task (the scope's body, when it awaits the future) also stop the
    /// pulling: no body starts after them, items not yet pulled stay in the
    /// source, and the future completes once the running bodies finish,
    /// even if the source never ends.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering};
    ///
    /// use futures::stream;
    /// use taskscope::ScopedStreamExt;
    ///
    /// # futures::executor::block_on(async {
    /// let total = AtomicU64::new(0);
    /// let total_ref = &total;
    /// taskscope::scope(|s| async move {
    ///     stream::iter(1..=10_u64)
    ///         .for_each_in(4, &s, |n| async move {
    ///             total_ref.fetch_add(n, Ordering::Relaxed);
    ///         })
    ///         .await
    /// })
    /// .await;
    /// assert_eq!(total.into_inner(), 55);
    /// # });
    /// ```
    ///
    /// To stop it from outside, pin it, and call [`ForEachIn::cancel`]
    /// between polls; then await it for the running bodies. The items not
    /// yet pulled stay in the source:
    ///
    /// ```
    /// use std::pin::pin;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    ///
    /// use futures::channel::{mpsc, oneshot};
    /// use futures::{StreamExt, future};
    /// use taskscope::ScopedStreamExt;
    ///
    /// # futures::executor::block_on(async {
    /// let (jobs, mut queue) = mpsc::unbounded::<usize>();
    /// (0..100).for_each(|job| jobs.unbounded_send(job).unwrap());
    /// drop(jobs);
    /// let (stop, stopped) = oneshot::channel::<()>();
    /// let stop = std::sync::Mutex::new(Some(stop));
    /// let done = AtomicUsize::new(0);
    /// let (stop, done_ref, queue_ref) = (&stop, &done, &mut queue);
    /// taskscope::scope(|s| async move {
    ///     let mut all = pin!(queue_ref.for_each_in(2, &s, |job| async move {
    ///         done_ref.fetch_add(1, Ordering::Relaxed);
    ///         if job == 9 {
    ///             stop.lock().unwrap().take().map(|stop| stop.send(()));
    ///         }
    ///     }));
    ///     // Process until the stop signal, then stop pulling.
    ///     if let future::Either::Right(_) = future::select(all.as_mut(), stopped).await {
    ///         all.as_mut().cancel();
    ///         all.await; // the running bodies finish
    ///     }
    /// })
    /// .await;
    /// let (done, left) = (done.into_inner(), queue.count().await);
    /// assert_eq!(done + left, 100, "every job done or still queued");
    /// assert!(left > 0);
    /// # });
    /// ```
    ///
    /// # Cancel safety
    ///
    /// Dropping the future cancels the running bodies voluntarily and leaves
    /// them to the scope, which joins them; the remaining items are dropped
    /// with the source. [`ForEachIn::cancel`] is the graceful stop.
    ///
    /// # Panics
    ///
    /// Here, if `n` is 0 or `scope` has already ended. Later, a poll of the
    /// future re-raises the panic of a body once it has finished; a spawn
    /// panics if the scope has ended since.
    #[track_caller]
    fn for_each_in<S, F, Fut>(self, n: usize, scope: &S, f: F) -> ForEachIn<Self, S, F>
    where
        Self: Sized,
        F: FnMut(Self::Item) -> Fut,
        Fut: Future<Output = ()>,
        S: Spawner<Fut>,
    {
        ForEachIn::new(self, n, scope, f)
    }
}

impl<St: Stream + ?Sized> ScopedStreamExt for St {}
