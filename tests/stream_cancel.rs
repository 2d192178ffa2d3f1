//! The stream adapters when cancelled: through `cancel()` (size hints,
//! termination) and through the consumer's task, for both adapters.

mod common;

use std::pin::pin;

use common::{CountingWaker, yield_once};
use futures::stream::{self, FusedStream, Stream, StreamExt};
use taskscope::{CancelExt, CancelReason, ScopedStreamExt, scope};

/// Five items that each wait to be cancelled and then yield why.
fn five_waiting_items()
-> impl Stream<Item = impl std::future::Future<Output = CancelReason> + Send> + Send {
    stream::iter(0..5).map(|_| async { taskscope::cancelled().await.reason().origin().clone() })
}

/// Runs the same checks on `buffered_in` and `buffer_unordered_in`.
macro_rules! for_both_adapters {
    ($check:ident) => {
        common::run(scope(|s| async move {
            $check(pin!(five_waiting_items().buffered_in(3, &s))).await;
            $check(pin!(five_waiting_items().buffer_unordered_in(3, &s))).await;
        }))
    };
}

#[test]
fn after_cancel_the_size_hint_counts_only_the_items_in_flight_and_the_stream_ends() {
    async fn check<S>(mut items: std::pin::Pin<&mut S>)
    where
        S: Stream<Item = CancelReason> + FusedStream + Cancel,
    {
        assert!(futures::poll!(items.next()).is_pending(), "three in flight");
        assert_eq!(
            items.size_hint(),
            (5, Some(5)),
            "three in flight plus the two the source still holds"
        );
        items.cancel_items();
        assert_eq!(items.size_hint(), (3, Some(3)), "nothing more is pulled");
        assert!(!items.is_terminated(), "the items in flight still yield");
        let rest: Vec<_> = items.as_mut().collect().await;
        assert_eq!(rest.len(), 3);
        assert!(items.is_terminated(), "drained after cancel, it has ended");
        assert_eq!(items.size_hint(), (0, Some(0)));
    }
    for_both_adapters!(check);
}

#[test]
fn cancelling_the_consumer_task_cancels_the_items_it_started_in_both_adapters() {
    // Polled a bounded number of times: a lost cancellation would leave the
    // items waiting for ever.
    let mut fut = Box::pin(scope(|s| async move {
        let (ordered, unordered) = (s.clone(), s.clone());
        let first = s.spawn(async move {
            five_waiting_items()
                .buffered_in(3, &ordered)
                .collect::<Vec<_>>()
                .await
        });
        let second = s.spawn(async move {
            five_waiting_items()
                .buffer_unordered_in(3, &unordered)
                .collect::<Vec<_>>()
                .await
        });
        yield_once().await;
        yield_once().await;
        first.cancel();
        second.cancel();
        (first.await, second.await)
    }));
    let outputs = ready_within_100_polls(fut.as_mut())
        .expect("the consumers' cancellation reached their items");
    for outputs in [outputs.0, outputs.1] {
        assert_eq!(outputs.len(), 5, "every item still yields: {outputs:?}");
        assert!(
            outputs
                .iter()
                .all(|reason| matches!(reason, CancelReason::Requested)),
            "each saw the consumer's cancellation: {outputs:?}"
        );
    }
}

#[test]
fn cancelling_the_consumer_task_cancels_the_running_bodies_of_for_each_in_and_starts_no_more() {
    let reasons = std::sync::Mutex::new(Vec::new());
    let reasons = &reasons;
    let mut fut = Box::pin(scope(|s| async move {
        let bodies = s.clone();
        let consumer = s.spawn(async move {
            five_waiting_items()
                .for_each_in(3, &bodies, |item| async move {
                    let reason = item.await;
                    reasons.lock().unwrap().push(reason);
                })
                .await;
        });
        yield_once().await;
        yield_once().await;
        consumer.cancel();
        consumer.await;
    }));
    ready_within_100_polls(fut.as_mut()).expect("the consumer's cancellation reached its bodies");
    let reasons = reasons.lock().unwrap();
    assert_eq!(
        reasons.len(),
        3,
        "the window's bodies ran, and none started after the cancel: {reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .all(|reason| matches!(reason, CancelReason::Requested)),
        "each saw the consumer's cancellation: {reasons:?}"
    );
}

/// Polls `future` with a counting waker at most 100 times: a lost
/// cancellation leaves items waiting for ever, which fails instead of hanging.
fn ready_within_100_polls<F: std::future::Future>(
    mut future: std::pin::Pin<&mut F>,
) -> Option<F::Output> {
    let waker = CountingWaker::new();
    (0..100).find_map(|_| match waker.poll(future.as_mut()) {
        std::task::Poll::Ready(output) => Some(output),
        std::task::Poll::Pending => None,
    })
}

#[test]
fn a_deadline_on_one_next_cancels_only_the_items_started_under_it_unordered() {
    let outputs = common::run(scope(|s| async move {
        let mut items = Box::pin(
            stream::iter(0..4)
                .map(|i| async move {
                    yield_once().await;
                    (i, taskscope::is_cancelled())
                })
                .buffer_unordered_in(1, &s),
        );
        // A deadline that has already passed, on the first call only.
        let first = items.next().cancel_when(async {}).await;
        let mut outputs = vec![first.expect("an item")];
        outputs.extend(items.collect::<Vec<_>>().await);
        outputs
    }));
    assert_eq!(outputs, [(0, true), (1, false), (2, false), (3, false)]);
}

/// The adapters' inherent `cancel`, under one name for the checks above.
trait Cancel {
    fn cancel_items(&self);
}

impl<St, S> Cancel for taskscope::BufferedIn<St, S>
where
    St: Stream,
    St::Item: std::future::Future,
{
    fn cancel_items(&self) {
        self.cancel();
    }
}

impl<St, S> Cancel for taskscope::BufferUnorderedIn<St, S>
where
    St: Stream,
    St::Item: std::future::Future,
{
    fn cancel_items(&self) {
        self.cancel();
    }
}
