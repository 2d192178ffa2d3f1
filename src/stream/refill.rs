//! Pulling a stream's items into a window of children, a budget at a time.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::stream::Stream;
use pin_project_lite::pin_project;

use crate::sync::{AtomicBool, Ordering};

pin_project! {
    /// The source side that the three adapters share: the stream, whether
    /// it ended, the window, and whether the adapter was stopped.
    pub(crate) struct Pull<St> {
        #[pin]
        source: St,
        source_done: bool,
        window: usize,
        // Atomic because `cancel` takes `&self` (the adapters stay `Sync`);
        // nothing else is published with it.
        stopped: AtomicBool,
    }
}

impl<St> Pull<St> {
    pub(crate) fn new(source: St, window: usize) -> Self {
        Pull {
            source,
            source_done: false,
            window,
            stopped: AtomicBool::new(false),
        }
    }

    /// Pulls nothing more, for good (the adapters' `cancel`).
    pub(crate) fn stop(&self) {
        // Release/Acquire: the flag carries no data; the pair keeps its
        // reads ordered after the store on any thread.
        self.stopped.store(true, Ordering::Release);
    }

    pub(crate) fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    pub(crate) fn source_done(&self) -> bool {
        self.source_done
    }

    /// Nothing more will be pulled: the source ended, or the adapter was
    /// stopped.
    pub(crate) fn ended(&self) -> bool {
        self.source_done || self.is_stopped()
    }

    pub(crate) fn window(&self) -> usize {
        self.window
    }

    /// The adapter's size hint, with `in_flight` items held.
    pub(crate) fn size_hint(&self, in_flight: usize) -> (usize, Option<usize>)
    where
        St: Stream,
    {
        size_hint(in_flight, !self.ended(), self.source.size_hint())
    }

    /// Pulls items into the room that `held` items leave in the window,
    /// handing each to `start`, within what is left of this poll's
    /// `budget` (see [`refill`]).
    pub(crate) fn refill(
        self: Pin<&mut Self>,
        held: usize,
        budget: &mut usize,
        cx: &mut Context<'_>,
        start: impl FnMut(St::Item),
    ) where
        St: Stream,
    {
        let room = room(self.window, held, self.is_stopped());
        let this = self.project();
        refill(this.source, this.source_done, room, budget, cx, start);
    }
}

/// The most items one poll of an adapter pulls from its source.
///
/// A window is a bound, not a promise of progress: with a large one
/// (`usize::MAX` means "no bound") over a source that is always ready,
/// pulling until the window is full would never return from the poll,
/// and the scope, which polls its children only between polls of the
/// task that polls the adapter, would never run one. Past the budget the
/// adapter wakes itself and returns, as the scope does after
/// [`POLL_BUDGET`](crate::POLL_BUDGET) polls of its children.
pub(crate) const PULL_BUDGET: usize = crate::POLL_BUDGET;

/// The free places of a window of `window` that holds `held` items; none
/// once the adapter was stopped.
fn room(window: usize, held: usize, stopped: bool) -> usize {
    if stopped {
        0
    } else {
        window.saturating_sub(held)
    }
}

/// The size hint of an adapter holding `in_flight` items: those, plus what
/// the source still hints at unless it ended or the adapter was stopped.
fn size_hint(
    in_flight: usize,
    pulling: bool,
    source: (usize, Option<usize>),
) -> (usize, Option<usize>) {
    if !pulling {
        return (in_flight, Some(in_flight));
    }
    let (low, high) = source;
    (
        low.saturating_add(in_flight),
        high.and_then(|high| high.checked_add(in_flight)),
    )
}

/// Pulls items from `source` into a window with `room` free places,
/// handing each to `start`, until the window is full, the source ends
/// (setting `source_done`) or is pending, or `budget` (what is left of
/// this poll's [`PULL_BUDGET`]) is used up. In the last case, if the window
/// still has room, it wakes the task so that the adapter is polled again
/// and pulls on.
fn refill<St: Stream + ?Sized>(
    mut source: Pin<&mut St>,
    source_done: &mut bool,
    mut room: usize,
    budget: &mut usize,
    cx: &mut Context<'_>,
    mut start: impl FnMut(St::Item),
) {
    while !*source_done && room > 0 {
        if *budget == 0 {
            cx.waker().wake_by_ref();
            return;
        }
        match source.as_mut().poll_next(cx) {
            Poll::Ready(Some(item)) => {
                *budget -= 1;
                room -= 1;
                start(item);
            }
            Poll::Ready(None) => *source_done = true,
            Poll::Pending => return,
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::pin::pin;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::task::{Context, Wake, Waker};

    use futures::executor::block_on;
    use futures::poll;
    use futures::stream::{self, StreamExt};

    use super::{PULL_BUDGET, refill};
    use crate::{ScopedStreamExt, scope};

    #[derive(Default)]
    struct CountingWaker(AtomicUsize);

    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, SeqCst);
        }
    }

    #[test]
    fn an_endless_ready_source_is_pulled_a_budget_at_a_time_and_the_task_woken() {
        let wakes = Arc::new(CountingWaker::default());
        let waker = Waker::from(wakes.clone());
        let mut cx = Context::from_waker(&waker);
        let mut source = pin!(stream::repeat(()));
        let (mut done, mut budget, mut started) = (false, PULL_BUDGET, 0);
        refill(
            source.as_mut(),
            &mut done,
            usize::MAX,
            &mut budget,
            &mut cx,
            |()| {
                started += 1;
            },
        );
        assert_eq!(started, PULL_BUDGET);
        assert_eq!(budget, 0);
        assert_eq!(wakes.0.load(SeqCst), 1, "woken to pull on");
        assert!(!done);
    }

    #[test]
    fn a_full_window_or_an_ended_source_needs_no_wake() {
        let wakes = Arc::new(CountingWaker::default());
        let waker = Waker::from(wakes.clone());
        let mut cx = Context::from_waker(&waker);
        let mut budget = PULL_BUDGET;
        let mut started = 0;
        let mut done = false;
        let mut endless = pin!(stream::repeat(()));
        refill(endless.as_mut(), &mut done, 3, &mut budget, &mut cx, |()| {
            started += 1
        });
        assert_eq!(started, 3, "the window's room bounds the pulls");
        let mut short = pin!(stream::iter(0..2).fuse());
        refill(short.as_mut(), &mut done, 10, &mut budget, &mut cx, |_| {
            started += 1
        });
        assert_eq!(started, 5);
        assert!(done, "the source's end is recorded");
        assert_eq!(wakes.0.load(SeqCst), 0);
    }

    #[test]
    fn every_adapter_over_an_endless_source_returns_from_its_first_poll() {
        let pulled = block_on(scope(|s| async move {
            let items = || stream::repeat(()).map(|()| async {});
            let mut ordered = pin!(items().buffered_in(usize::MAX, &s));
            let mut unordered = pin!(items().buffer_unordered_in(usize::MAX, &s));
            let mut each = pin!(stream::repeat(()).for_each_in(usize::MAX, &s, |()| async {}));
            assert!(poll!(ordered.next()).is_pending());
            assert!(poll!(unordered.next()).is_pending());
            assert!(poll!(each.as_mut()).is_pending());
            let pulled = [ordered.in_flight(), unordered.in_flight(), each.running()];
            assert_eq!(
                ordered.next().await,
                Some(()),
                "the items run between polls"
            );
            assert_eq!(unordered.next().await, Some(()));
            each.cancel();
            each.await;
            pulled
        }));
        assert_eq!(pulled, [PULL_BUDGET; 3]);
    }
}
