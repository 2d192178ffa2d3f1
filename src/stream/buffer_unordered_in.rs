//! [`BufferUnorderedIn`]: item futures run as children of a scope, outputs in completion order.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::stream::{FusedStream, Stream};
use pin_project_lite::pin_project;

use super::refill::{PULL_BUDGET, Pull};
use super::spawner::{AdapterScope, Spawner};
use super::window::{ConsumerWatch, Unordered, check_window};

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
    ///
    /// # Panics
    ///
    /// A poll re-raises the panic of an item once it has finished, and panics if the scope
    /// has already finished when an item is to be spawned (the stream
    /// outlived its scope).
    #[must_use = "streams do nothing unless polled"]
    pub struct BufferUnorderedIn<St, S>
    where
        St: Stream,
        St::Item: Future,
    {
        #[pin]
        pull: Pull<St>,
        scope: AdapterScope<S>,
        in_flight: Unordered<<St::Item as Future>::Output>,
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
            pull: Pull::new(source, window),
            scope: AdapterScope::new(scope),
            in_flight: Unordered::new(),
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
    ///
    /// # Panics
    ///
    /// As [`BufferedIn::cancel`](crate::BufferedIn::cancel).
    pub fn cancel(&self) {
        self.pull.stop();
        self.in_flight.cancel_all();
    }

    /// How many items were pulled from the source and not yet yielded
    /// (running or finished); never more than the window.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// The window the stream was made with.
    pub fn window(&self) -> usize {
        self.pull.window()
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
        if this.consumer.newly_cancelled(cx) {
            this.in_flight.cancel_all();
        }
        let mut budget = PULL_BUDGET;
        let held = this.in_flight.len();
        this.pull.as_mut().refill(held, &mut budget, cx, |item| {
            let started = this.consumer.started(this.scope.spawn(item));
            this.in_flight.push(started);
        });
        match this.in_flight.poll_next(cx) {
            Poll::Ready(Some(output)) => Poll::Ready(Some(output)),
            Poll::Ready(None) if this.pull.ended() => Poll::Ready(None),
            // Nothing in flight and the source is pending (it registered the waker).
            Poll::Ready(None) | Poll::Pending => Poll::Pending,
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.pull.size_hint(self.in_flight.len())
    }
}

impl<St, S> FusedStream for BufferUnorderedIn<St, S>
where
    St: Stream,
    St::Item: Future,
    S: Spawner<St::Item>,
{
    fn is_terminated(&self) -> bool {
        self.in_flight.is_empty() && self.pull.ended()
    }
}

impl<St, S> fmt::Debug for BufferUnorderedIn<St, S>
where
    St: Stream,
    St::Item: Future,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BufferUnorderedIn")
            .field("window", &self.pull.window())
            .field("in_flight", &self.in_flight.len())
            .field("source_done", &self.pull.source_done())
            .field("stopped", &self.pull.is_stopped())
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::future::Future;
    use std::pin::pin;
    use std::rc::Rc;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::task::Poll;

    use futures::executor::block_on;
    use futures::poll;
    use futures::stream::{self, FusedStream, Stream, StreamExt};

    use crate::stream::test_support::{drain_catching_panics, gates, items_where_1_panics};
    use crate::test_util::{poll_until_ready, yield_now};
    use crate::{ScopedStreamExt, local_scope, scope};

    #[test]
    fn a_caught_item_panic_frees_its_place_and_the_stream_still_ends() {
        let mut outputs = poll_until_ready(
            scope(|s| async move {
                let items = Box::pin(items_where_1_panics().buffer_unordered_in(2, &s));
                drain_catching_panics(items, |items| {
                    assert!(items.in_flight() <= 2, "the window holds");
                })
                .await
            }),
            100,
        )
        .expect("the stream ends after the items behind the panic");
        outputs.sort();
        assert_eq!(outputs, [Ok(0), Ok(2), Ok(3), Err("panicked")]);
    }

    #[test]
    fn buffer_unordered_in_yields_in_completion_order() {
        let outputs = block_on(scope(|s| async move {
            let (mut senders, receivers) = gates::<usize>(4);
            let mut items = pin!(
                stream::iter(receivers)
                    .map(|receiver| async move { receiver.await.unwrap() })
                    .buffer_unordered_in(4, &s)
            );
            let mut outputs = Vec::new();
            assert!(poll!(items.next()).is_pending());
            for i in [2, 0, 3, 1] {
                senders[i].take().unwrap().send(i).unwrap();
                yield_now().await;
                outputs.push(items.next().await.unwrap());
            }
            assert_eq!(items.next().await, None);
            outputs
        }));
        assert_eq!(outputs, [2, 0, 3, 1]);
    }

    #[test]
    fn buffer_unordered_in_never_pulls_more_than_window() {
        let pulled = AtomicUsize::new(0);
        let pulled = &pulled;
        let mut outputs = block_on(scope(|s| async move {
            let (mut senders, receivers) = gates::<usize>(9);
            let mut items = pin!(
                stream::iter(receivers)
                    .inspect(|_| {
                        pulled.fetch_add(1, SeqCst);
                    })
                    .map(|receiver| async move { receiver.await.unwrap() })
                    .buffer_unordered_in(2, &s)
            );
            let mut outputs = Vec::new();
            assert!(poll!(items.next()).is_pending());
            assert_eq!(pulled.load(SeqCst), 2);
            // Finish every item at once: the stream may still hold only two.
            for (i, sender) in senders.iter_mut().enumerate() {
                sender.take().unwrap().send(i).unwrap();
            }
            loop {
                yield_now().await;
                match poll!(items.next()) {
                    Poll::Ready(Some(output)) => outputs.push(output),
                    Poll::Ready(None) => break,
                    Poll::Pending => {}
                }
                let in_flight = pulled.load(SeqCst) - outputs.len();
                assert!(in_flight <= 2, "{in_flight} items pulled and not yielded");
            }
            outputs
        }));
        outputs.sort_unstable();
        assert_eq!(outputs, (0..9).collect::<Vec<_>>());
    }

    #[test]
    fn buffer_unordered_in_takes_a_finished_output_while_others_wait() {
        block_on(scope(|s| async move {
            let (_blocked, receivers) = gates::<usize>(3);
            let mut items = pin!(
                stream::iter(receivers.into_iter().map(Some).chain([None]))
                    .map(|receiver| async move {
                        match receiver {
                            Some(receiver) => receiver.await.unwrap_or(0),
                            None => 99,
                        }
                    })
                    .buffer_unordered_in(4, &s)
            );
            assert_eq!(items.next().await, Some(99));
            assert_eq!(items.in_flight(), 3);
        }));
    }

    #[test]
    fn dropping_buffer_unordered_in_cancels_unfinished_items() {
        let saw_cancel = AtomicUsize::new(0);
        let saw_cancel = &saw_cancel;
        poll_until_ready(
            scope(|s| async move {
                let mut items = Box::pin(
                    stream::iter(0..10)
                        .map(|i| async move {
                            let _ = crate::cancelled().await;
                            saw_cancel.fetch_add(1, SeqCst);
                            i
                        })
                        .buffer_unordered_in(3, &s),
                );
                assert!(poll!(items.next()).is_pending());
                yield_now().await;
                drop(items);
            }),
            100,
        )
        .expect("the drop cancelled the items, so the scope could join them");
        assert_eq!(saw_cancel.load(SeqCst), 3);
    }

    #[test]
    fn buffer_unordered_in_cancel_stops_pulling_and_drains() {
        let outputs = poll_until_ready(
            scope(|s| async move {
                let mut items = pin!(
                    stream::iter(0..10)
                        .map(|i| async move {
                            let _ = crate::cancelled().await;
                            i
                        })
                        .buffer_unordered_in(3, &s)
                );
                assert!(poll!(items.next()).is_pending());
                items.cancel();
                items.collect::<Vec<_>>().await
            }),
            100,
        )
        .expect("after cancel the stream ends once the items in flight finish");
        let mut outputs = outputs;
        outputs.sort_unstable();
        assert_eq!(outputs, [0, 1, 2]);
    }

    #[test]
    fn buffer_unordered_in_waits_for_a_pending_source_instead_of_ending() {
        let outputs = block_on(scope(|s| async move {
            let (sender, receiver) = futures::channel::mpsc::unbounded();
            let mut items = pin!(
                receiver
                    .map(|i| async move { i })
                    .buffer_unordered_in(2, &s)
            );
            assert!(
                poll!(items.next()).is_pending(),
                "the source may still send"
            );
            sender.unbounded_send(7).unwrap();
            drop(sender);
            items.collect::<Vec<_>>().await
        }));
        assert_eq!(outputs, [7]);
    }

    /// Two items from a source that panics if polled after it ended and
    /// whose size hint has no upper bound, even then.
    fn two_items_from_unfold() -> impl futures::Stream<Item = impl Future<Output = u32>> {
        stream::unfold(0, |i| async move { (i < 2).then_some((i, i + 1)) })
            .map(|i| async move { i })
    }

    #[test]
    fn buffer_unordered_in_never_polls_its_source_after_it_ended() {
        let outputs = block_on(scope(|s| async move {
            two_items_from_unfold()
                .buffer_unordered_in(2, &s)
                .collect::<Vec<_>>()
                .await
        }));
        assert_eq!(outputs.len(), 2);
    }

    #[test]
    fn buffer_unordered_in_drained_to_its_end_is_terminated_and_hints_no_more_items() {
        block_on(scope(|s| async move {
            let mut items = pin!(two_items_from_unfold().buffer_unordered_in(2, &s));
            while items.next().await.is_some() {}
            assert!(items.is_terminated());
            assert_eq!(items.size_hint(), (0, Some(0)));
        }));
    }

    #[test]
    fn buffer_unordered_in_reports_the_window_it_was_made_with() {
        block_on(scope(|s| async move {
            let items = stream::iter(0..1)
                .map(|i| async move { i })
                .buffer_unordered_in(5, &s);
            assert_eq!(items.window(), 5);
        }));
    }

    #[test]
    fn buffer_unordered_in_runs_non_send_items_in_a_local_scope() {
        let outputs = block_on(local_scope(|s| async move {
            stream::iter(0..3)
                .map(|i| {
                    let value = Rc::new(i);
                    async move {
                        yield_now().await;
                        *value
                    }
                })
                .buffer_unordered_in(3, &s)
                .collect::<Vec<_>>()
                .await
        }));
        assert_eq!(outputs.len(), 3);
    }

    #[test]
    #[should_panic(expected = "`buffer_unordered_in` was called with a window of 0")]
    fn buffer_unordered_in_rejects_a_window_of_zero() {
        block_on(scope(|s| async move {
            let _items = stream::iter(0..1)
                .map(|i| async move { i })
                .buffer_unordered_in(0, &s);
        }));
    }

    #[test]
    #[should_panic(expected = "item 2 failed")]
    fn buffer_unordered_in_reraises_the_panic_of_an_item() {
        block_on(scope(|s| async move {
            stream::iter(0..4)
                .map(|i| async move {
                    assert!(i != 2, "item {i} failed");
                    i
                })
                .buffer_unordered_in(4, &s)
                .collect::<Vec<_>>()
                .await
        }));
    }
}
