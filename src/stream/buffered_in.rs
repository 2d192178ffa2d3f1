//! [`BufferedIn`]: item futures run as children of a scope, outputs in input order.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::stream::{FusedStream, Stream};
use pin_project_lite::pin_project;

use super::refill::{PULL_BUDGET, Pull};
use super::spawner::{AdapterScope, Spawner};
use super::window::{ConsumerWatch, check_window};
use crate::cancel::each::cancel_each;
use crate::scope::JoinHandle;
use crate::sync::mutant;

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
    ///
    /// # Panics
    ///
    /// A poll re-raises the panic of an item when its output is due, and panics if the scope
    /// has already finished when an item is to be spawned (the stream
    /// outlived its scope).
    #[must_use = "streams do nothing unless polled"]
    pub struct BufferedIn<St, S>
    where
        St: Stream,
        St::Item: Future,
    {
        #[pin]
        pull: Pull<St>,
        scope: AdapterScope<S>,
        in_flight: VecDeque<JoinHandle<<St::Item as Future>::Output>>,
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
            cancel_unfinished(this.in_flight);
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
            pull: Pull::new(source, window),
            scope: AdapterScope::new(scope),
            // Grown as items arrive, not reserved: a window is a bound, and
            // `usize::MAX` ("no bound") must not allocate it up front.
            in_flight: VecDeque::new(),
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
    ///
    /// # Panics
    ///
    /// If an [`on_cancel`](crate::CancelToken::on_cancel) callback under an
    /// item's token panics: every item is still cancelled, and the first
    /// panic is then resumed from here. Dropping the stream cancels the
    /// unfinished items the same way; a panic of theirs that comes while
    /// the thread is already unwinding is dropped rather than raised (a
    /// second panic would abort the process).
    pub fn cancel(&self) {
        self.pull.stop();
        cancel_unfinished(&self.in_flight);
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

/// Asks every unfinished item to stop, every one even if an `on_cancel`
/// callback of one panics (`cancel_each`).
fn cancel_unfinished<T>(in_flight: &VecDeque<JoinHandle<T>>) {
    let unfinished = in_flight.iter().filter(|handle| !handle.is_finished());
    cancel_each(unfinished, JoinHandle::cancel);
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
        if this.consumer.newly_cancelled(cx) {
            cancel_unfinished(this.in_flight);
        }
        // Refill the window before looking at its head, so the items behind
        // the head start as early as the bound allows.
        let mut budget = PULL_BUDGET;
        let held = (this.in_flight.len())
            .saturating_sub(usize::from(mutant("buffered_in_window_off_by_one")));
        this.pull.as_mut().refill(held, &mut budget, cx, |item| {
            let started = this.consumer.started(this.scope.spawn(item));
            this.in_flight.push_back(started);
        });
        match this.in_flight.front_mut() {
            Some(head) => match panic::catch_unwind(AssertUnwindSafe(|| Pin::new(head).poll(cx))) {
                Ok(Poll::Ready(output)) => {
                    this.in_flight.pop_front();
                    Poll::Ready(Some(output))
                }
                Ok(Poll::Pending) => Poll::Pending,
                // The head re-raised its item's panic and is spent: drop it
                // before the panic goes on, so that a caller that catches it
                // gets the items behind it rather than a spent handle.
                Err(payload) => {
                    this.in_flight.pop_front();
                    panic::resume_unwind(payload);
                }
            },
            None if this.pull.ended() => Poll::Ready(None),
            // The source is pending and registered the waker.
            None => Poll::Pending,
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.pull.size_hint(self.in_flight.len())
    }
}

impl<St, S> FusedStream for BufferedIn<St, S>
where
    St: Stream,
    St::Item: Future,
    S: Spawner<St::Item>,
{
    fn is_terminated(&self) -> bool {
        self.in_flight.is_empty() && self.pull.ended()
    }
}

impl<St, S> fmt::Debug for BufferedIn<St, S>
where
    St: Stream,
    St::Item: Future,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BufferedIn")
            .field("window", &self.pull.window())
            .field("in_flight", &self.in_flight.len())
            .field("source_done", &self.pull.source_done())
            .field("stopped", &self.pull.is_stopped())
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::pin::pin;
    use std::rc::Rc;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::task::Poll;

    use futures::executor::block_on;
    use futures::poll;
    use futures::stream::{self, StreamExt};

    use crate::stream::test_support::{drain_catching_panics, gates, items_where_1_panics};
    use crate::test_util::{poll_until_ready, yield_now};
    use crate::{CancelExt, ScopedStreamExt, local_scope, scope};

    #[test]
    fn a_panicking_cancel_callback_of_one_item_does_not_keep_the_others_running() {
        let (waiting, cancelled) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let (waiting, cancelled) = (&waiting, &cancelled);
        let done = poll_until_ready(
            scope(|s| async move {
                let mut items = Box::pin(
                    stream::iter(0..3)
                        .map(|i| async move {
                            if i == 0 {
                                crate::current_token()
                                    .on_cancel(|_| panic!("callback of item 0"))
                                    .forget();
                            }
                            waiting.fetch_add(1, SeqCst);
                            let _ = crate::cancelled().await;
                            cancelled.fetch_add(1, SeqCst);
                        })
                        .buffered_in(3, &s),
                );
                assert!(poll!(items.next()).is_pending(), "the items are spawned");
                while waiting.load(SeqCst) < 3 {
                    yield_now().await; // until they registered and wait
                }
                let dropped =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(items)));
                assert!(
                    dropped.is_err(),
                    "the callback's panic comes out of the drop"
                );
            }),
            100,
        );
        assert!(
            done.is_some(),
            "every item was cancelled, so the scope finished"
        );
        assert_eq!(cancelled.load(SeqCst), 3);
    }

    #[test]
    fn buffered_in_never_pulls_more_than_window() {
        let pulled = AtomicUsize::new(0);
        let pulled = &pulled;
        let outputs = block_on(scope(|s| async move {
            let (mut senders, receivers) = gates::<usize>(10);
            let mut outputs = Vec::new();
            let mut items = pin!(
                stream::iter(receivers)
                    .inspect(|_| {
                        pulled.fetch_add(1, SeqCst);
                    })
                    .map(|receiver| async move { receiver.await.unwrap() })
                    .buffered_in(3, &s)
            );
            assert!(poll!(items.next()).is_pending());
            assert_eq!(pulled.load(SeqCst), 3, "the first poll fills the window");
            // Finish the items from the back: nothing can be yielded, so
            // nothing more may be pulled.
            for i in (0..10).rev() {
                senders[i].take().unwrap().send(i).unwrap();
                yield_now().await;
                while let Poll::Ready(Some(output)) = poll!(items.next()) {
                    outputs.push(output);
                }
                let in_flight = pulled.load(SeqCst) - outputs.len();
                assert!(in_flight <= 3, "{in_flight} items pulled and not yielded");
                assert_eq!(items.in_flight(), in_flight);
            }
            assert!(poll!(items.next()).is_pending() || items.in_flight() == 0);
            outputs.extend(items.collect::<Vec<_>>().await);
            outputs
        }));
        assert_eq!(outputs, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn buffered_in_yields_outputs_in_input_order() {
        let outputs = block_on(scope(|s| async move {
            let (mut senders, receivers) = gates::<usize>(5);
            let items = stream::iter(receivers)
                .map(|receiver| async move { receiver.await.unwrap() })
                .buffered_in(5, &s);
            let items = s.spawn(items.collect::<Vec<_>>());
            for i in [3, 1, 4, 0, 2] {
                yield_now().await;
                senders[i].take().unwrap().send(i * 10).unwrap();
            }
            items.await
        }));
        assert_eq!(outputs, [0, 10, 20, 30, 40]);
    }

    #[test]
    fn buffered_in_items_progress_while_the_consumer_awaits_something_else() {
        let finished = AtomicUsize::new(0);
        let finished = &finished;
        block_on(scope(|s| async move {
            let mut items = pin!(
                stream::iter(0..4)
                    .map(|i| async move {
                        yield_now().await;
                        finished.fetch_add(1, SeqCst);
                        i
                    })
                    .buffered_in(4, &s)
            );
            assert!(poll!(items.next()).is_pending());
            // The consumer is busy elsewhere and does not poll the stream.
            for _ in 0..3 {
                yield_now().await;
            }
            assert_eq!(finished.load(SeqCst), 4, "every item ran to completion");
            assert_eq!(items.collect::<Vec<_>>().await, [0, 1, 2, 3]);
        }));
    }

    #[test]
    fn dropping_buffered_in_cancels_unfinished_items_and_the_scope_joins_them() {
        let saw_cancel = AtomicUsize::new(0);
        let pulled = AtomicUsize::new(0);
        let (saw_cancel, pulled) = (&saw_cancel, &pulled);
        let scope_cancelled = poll_until_ready(
            scope(|s| async move {
                let mut items = Box::pin(
                    stream::iter(0..10)
                        .inspect(|_| {
                            pulled.fetch_add(1, SeqCst);
                        })
                        .map(|i| async move {
                            if i > 0 {
                                let _ = crate::cancelled().await;
                                saw_cancel.fetch_add(1, SeqCst);
                            }
                            i
                        })
                        .buffered_in(3, &s),
                );
                assert!(poll!(items.next()).is_pending());
                yield_now().await; // item 0 finishes; 1 and 2 wait for cancellation
                drop(items); // item 0's output is dropped with the stream
                s.token().is_cancelled()
            }),
            100,
        )
        .expect("the dropped stream's items saw the cancel and finished");
        assert!(!scope_cancelled, "only the items were cancelled");
        assert_eq!(saw_cancel.load(SeqCst), 2, "both waiting items saw it");
        assert_eq!(pulled.load(SeqCst), 3);
    }

    #[test]
    fn buffered_in_cancel_stops_pulling_and_still_yields_the_items_in_flight() {
        let pulled = AtomicUsize::new(0);
        let pulled = &pulled;
        let outputs = poll_until_ready(
            scope(|s| async move {
                let mut items = pin!(
                    stream::iter(0..10)
                        .inspect(|_| {
                            pulled.fetch_add(1, SeqCst);
                        })
                        .map(|i| async move {
                            match i {
                                0 => Ok(i),
                                _ => Err(crate::cancelled().await),
                            }
                        })
                        .buffered_in(3, &s)
                );
                let first = items.next().await.unwrap();
                items.cancel();
                let rest = items.collect::<Vec<_>>().await;
                (first, rest)
            }),
            100,
        )
        .expect("the items in flight saw the cancel and finished");
        let (first, rest) = outputs;
        assert_eq!(first.unwrap(), 0);
        assert_eq!(rest.len(), 2, "the two items in flight still yield");
        assert!(rest.iter().all(Result::is_err));
        assert_eq!(pulled.load(SeqCst), 3, "nothing was pulled after cancel");
    }

    /// Three items that each wait to be cancelled and yield why.
    fn items_yielding_why_they_were_cancelled<'env>(
        s: &crate::Scope<'env>,
    ) -> impl futures::Stream<Item = crate::CancelReason> + Send + 'env {
        stream::iter(0..3)
            .map(|_| async { crate::cancelled().await.reason().origin().clone() })
            .buffered_in(3, s)
    }

    fn all_requested(reasons: &[crate::CancelReason]) -> bool {
        reasons.len() == 3
            && reasons
                .iter()
                .all(|reason| matches!(reason, crate::CancelReason::Requested))
    }

    #[test]
    fn cancelling_the_consumer_cancels_the_items_it_started() {
        let outputs = poll_until_ready(
            scope(|s| async move {
                let items_scope = s.clone();
                let consumer = s.spawn(async move {
                    items_yielding_why_they_were_cancelled(&items_scope)
                        .collect::<Vec<_>>()
                        .await
                });
                yield_now().await;
                yield_now().await;
                consumer.cancel();
                consumer.await
            }),
            100,
        )
        .expect("the cancelled consumer's items saw the cancel and finished");
        assert!(all_requested(&outputs), "{outputs:?}");
    }

    #[test]
    fn a_consumer_moved_to_another_task_is_watched_there() {
        let outputs = poll_until_ready(
            scope(|s| async move {
                let mut items = Box::pin(items_yielding_why_they_were_cancelled(&s));
                // Polled first by the body, then moved into a child.
                assert!(poll!(items.next()).is_pending());
                let consumer = s.spawn(async move { items.collect::<Vec<_>>().await });
                yield_now().await;
                consumer.cancel();
                consumer.await
            }),
            100,
        )
        .expect("the moved consumer's cancellation reached its items");
        assert!(all_requested(&outputs), "{outputs:?}");
    }

    #[test]
    fn a_deadline_on_one_next_cancels_only_the_items_started_under_it() {
        let outputs = block_on(scope(|s| async move {
            let mut items = Box::pin(
                stream::iter(0..4)
                    .map(|i| async move {
                        yield_now().await;
                        (i, crate::is_cancelled())
                    })
                    .buffered_in(1, &s),
            );
            // A deadline that has already passed, on the first call only.
            let first = items.next().cancel_when(async {}).await;
            let mut outputs = vec![first.expect("an item")];
            outputs.extend(items.collect::<Vec<_>>().await);
            outputs
        }));
        assert_eq!(outputs, [(0, true), (1, false), (2, false), (3, false)]);
    }

    #[test]
    fn a_caught_item_panic_leaves_the_items_behind_it_to_be_yielded() {
        let outputs = poll_until_ready(
            scope(|s| async move {
                let items = Box::pin(items_where_1_panics().buffered_in(2, &s));
                drain_catching_panics(items, |_| {}).await
            }),
            100,
        )
        .expect("the stream ends after the items behind the panic");
        assert_eq!(outputs, [Ok(0), Err("panicked"), Ok(2), Ok(3)]);
    }

    #[test]
    fn cancelling_the_scope_cancels_the_items() {
        let saw_cancel = poll_until_ready(
            scope(|s| async move {
                let items = stream::iter(0..4)
                    .map(|_| async { crate::cancelled().await })
                    .buffered_in(2, &s);
                s.cancel();
                items.collect::<Vec<_>>().await.len()
            }),
            100,
        )
        .expect("the scope's cancel reached the items");
        assert_eq!(saw_cancel, 4);
    }

    #[test]
    fn buffered_in_runs_non_send_items_in_a_local_scope() {
        let shared = Rc::new(5);
        let shared = &shared;
        let outputs = block_on(local_scope(|s| async move {
            stream::iter(0..3)
                .map(|i| {
                    let shared = Rc::clone(shared);
                    async move {
                        yield_now().await;
                        *shared + i
                    }
                })
                .buffered_in(2, &s)
                .collect::<Vec<_>>()
                .await
        }));
        assert_eq!(outputs, [5, 6, 7]);
    }

    #[test]
    #[should_panic(expected = "`buffered_in` was called with a window of 0")]
    fn buffered_in_rejects_a_window_of_zero() {
        block_on(scope(|s| async move {
            let _items = stream::iter(0..1)
                .map(|i| async move { i })
                .buffered_in(0, &s);
        }));
    }

    #[test]
    #[should_panic(expected = "item 1 failed")]
    fn buffered_in_reraises_the_panic_of_an_item() {
        block_on(scope(|s| async move {
            stream::iter(0..3)
                .map(|i| async move {
                    assert!(i != 1, "item {i} failed");
                    i
                })
                .buffered_in(2, &s)
                .collect::<Vec<_>>()
                .await
        }));
    }

    #[test]
    fn buffered_in_ends_with_its_source_and_stays_ended() {
        use futures_core::stream::{FusedStream, Stream};
        block_on(scope(|s| async move {
            let mut items = pin!(
                stream::iter(0..2)
                    .map(|i| async move { i })
                    .buffered_in(4, &s)
            );
            assert_eq!(items.size_hint(), (2, Some(2)));
            assert_eq!(items.next().await, Some(0));
            assert_eq!(items.next().await, Some(1));
            assert_eq!(items.next().await, None);
            assert!(items.is_terminated());
            assert_eq!(items.next().await, None);
        }));
    }

    #[test]
    fn buffered_in_debug_shows_the_window() {
        block_on(scope(|s| async move {
            let items = stream::iter(0..2)
                .map(|i| async move { i })
                .buffered_in(4, &s);
            let shown = format!("{items:?}");
            assert!(
                shown.starts_with("BufferedIn { window: 4, in_flight: 0"),
                "{shown}"
            );
        }));
    }
}
