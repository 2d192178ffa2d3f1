//! [`ForEachIn`]: a body per item, up to `n` at once, each a child of a scope.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::stream::Stream;
use pin_project_lite::pin_project;

use super::refill::{PULL_BUDGET, Pull};
use super::spawner::{AdapterScope, Spawner};
use super::window::{ConsumerWatch, Unordered, check_window};

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
    /// Cancelling the task that polls it (or a scope around that task) does
    /// the same as `cancel`.
    ///
    /// # Panics
    ///
    /// A poll re-raises the panic of a body once it has finished, and panics if the scope
    /// has already finished when an item is to be spawned (the future
    /// outlived its scope).
    ///
    /// Polling it again after it completed panics.
    #[must_use = "futures do nothing unless polled"]
    pub struct ForEachIn<St, S, F> {
        #[pin]
        pull: Pull<St>,
        scope: AdapterScope<S>,
        body: F,
        running: Unordered<()>,
        // Set when it returned `Ready`: a later poll is a bug, reported as one.
        finished: bool,
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
            pull: Pull::new(source, window),
            scope: AdapterScope::new(scope),
            body,
            running: Unordered::new(),
            finished: false,
            consumer: ConsumerWatch::default(),
        }
    }
}

impl<St, S, F> ForEachIn<St, S, F> {
    /// Stops gracefully: pulls nothing more from the source and cancels the
    /// running bodies voluntarily; the future completes once they finish.
    ///
    /// # Panics
    ///
    /// As [`BufferedIn::cancel`](crate::BufferedIn::cancel), for the
    /// running bodies.
    pub fn cancel(&self) {
        self.pull.stop();
        self.running.cancel_all();
    }

    /// How many bodies are running (started and not yet seen finished);
    /// never more than the window.
    pub fn running(&self) -> usize {
        self.running.len()
    }

    /// The window the future was made with.
    pub fn window(&self) -> usize {
        self.pull.window()
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
        assert!(
            !*this.finished,
            "taskscope: `for_each_in` polled after it completed; a future must not be polled again once it returned Ready"
        );
        if this.consumer.newly_cancelled(cx) {
            // As `cancel`: with no consumer to stop it, pulling on would
            // drain a shared source into bodies born cancelled, and never
            // end while the source stays open.
            this.pull.stop();
            this.running.cancel_all();
        }
        // One budget for the whole poll: each finished body frees a place
        // and the loop pulls again.
        let mut budget = PULL_BUDGET;
        loop {
            let held = this.running.len();
            this.pull.as_mut().refill(held, &mut budget, cx, |item| {
                let body = (this.body)(item);
                let started = this.consumer.started(this.scope.spawn(body));
                this.running.push(started);
            });
            match this.running.poll_next(cx) {
                // A body finished: its place in the window is free again.
                Poll::Ready(Some(())) => {}
                Poll::Ready(None) if this.pull.ended() => {
                    *this.finished = true;
                    return Poll::Ready(());
                }
                Poll::Ready(None) | Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl<St, S, F> fmt::Debug for ForEachIn<St, S, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ForEachIn")
            .field("window", &self.pull.window())
            .field("running", &self.running.len())
            .field("source_done", &self.pull.source_done())
            .field("stopped", &self.pull.is_stopped())
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::cell::Cell;
    use std::pin::pin;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

    use futures::executor::block_on;
    use futures::poll;
    use futures::stream::{self, StreamExt};

    use crate::test_util::{poll_until_ready, poll_when_woken, yield_now};
    use crate::{ScopedStreamExt, local_scope, scope};

    #[test]
    fn for_each_in_never_runs_more_than_window_bodies() {
        let running = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        let done = AtomicUsize::new(0);
        let (running, most, done) = (&running, &most, &done);
        block_on(scope(|s| async move {
            stream::iter(0..20_usize)
                .for_each_in(3, &s, |i| async move {
                    let now = running.fetch_add(1, SeqCst) + 1;
                    most.fetch_max(now, SeqCst);
                    for _ in 0..(i % 4) {
                        yield_now().await;
                    }
                    running.fetch_sub(1, SeqCst);
                    done.fetch_add(1, SeqCst);
                })
                .await;
            // Completion means every body has finished.
            assert_eq!(done.load(SeqCst), 20);
        }));
        assert_eq!(most.load(SeqCst), 3);
    }

    #[test]
    fn for_each_in_pulls_an_item_only_when_a_place_is_free() {
        let pulled = AtomicUsize::new(0);
        let pulled = &pulled;
        poll_until_ready(
            scope(|s| async move {
                let mut all = pin!(
                    stream::iter(0..10)
                        .inspect(|_| {
                            pulled.fetch_add(1, SeqCst);
                        })
                        .for_each_in(2, &s, |_| async {
                            let _ = crate::cancelled().await;
                        })
                );
                assert!(poll!(all.as_mut()).is_pending());
                yield_now().await;
                assert!(poll!(all.as_mut()).is_pending());
                assert_eq!(pulled.load(SeqCst), 2);
                assert_eq!(all.running(), 2);
                all.cancel();
                all.await;
                assert_eq!(pulled.load(SeqCst), 2, "cancel stopped the pulling");
            }),
            100,
        )
        .expect("after cancel it completes once the running bodies finish");
    }

    #[test]
    fn a_cancelled_consumer_stops_pulling_from_a_source_that_stays_open() {
        let (sender, queue) = futures::channel::mpsc::unbounded::<u32>();
        for item in 0..100 {
            sender.unbounded_send(item).unwrap();
        }
        let started = AtomicUsize::new(0);
        let started = &started;
        poll_when_woken(
            scope(|s| async move {
                let token = s.token().clone(); // the consumer's: it is the body
                queue
                    .for_each_in(4, &s, |_| {
                        let token = token.clone();
                        async move {
                            if started.fetch_add(1, SeqCst) == 2 {
                                token.cancel();
                            }
                            yield_now().await;
                        }
                    })
                    .await;
            }),
            1_000,
        )
        .expect("it completes once the running bodies finished, the source still open");
        let started = started.load(SeqCst);
        assert!(
            started <= 4 + 1,
            "{started} bodies: it pulled on after the cancel"
        );
        drop(sender);
    }

    #[test]
    fn dropping_for_each_in_cancels_running_bodies() {
        let saw_cancel = AtomicUsize::new(0);
        let saw_cancel = &saw_cancel;
        poll_until_ready(
            scope(|s| async move {
                let mut all = Box::pin(stream::iter(0..10).for_each_in(4, &s, |_| async {
                    let _ = crate::cancelled().await;
                    saw_cancel.fetch_add(1, SeqCst);
                }));
                assert!(poll!(all.as_mut()).is_pending());
                drop(all);
            }),
            100,
        )
        .expect("the drop cancelled the bodies, so the scope could join them");
        assert_eq!(
            saw_cancel.load(SeqCst),
            4,
            "joined by the scope after the drop"
        );
    }

    #[test]
    fn for_each_in_wakes_itself_to_refill_its_window_and_to_complete() {
        let ran = AtomicUsize::new(0);
        let ran = &ran;
        poll_when_woken(
            scope(|s| async move {
                stream::iter(0..4)
                    .for_each_in(2, &s, |_| async move {
                        yield_now().await;
                        ran.fetch_add(1, SeqCst);
                    })
                    .await;
            }),
            100,
        )
        .expect("it completes on its wakes alone, none lost");
        assert_eq!(ran.load(SeqCst), 4);
    }

    #[test]
    fn for_each_in_waits_for_a_pending_source_instead_of_completing() {
        let ran = AtomicUsize::new(0);
        let ran = &ran;
        block_on(scope(|s| async move {
            let (sender, receiver) = futures::channel::mpsc::unbounded();
            let mut all = pin!(receiver.for_each_in(2, &s, |()| async move {
                ran.fetch_add(1, SeqCst);
            }));
            assert!(
                poll!(all.as_mut()).is_pending(),
                "the source may still send"
            );
            sender.unbounded_send(()).unwrap();
            drop(sender);
            all.await;
        }));
        assert_eq!(ran.load(SeqCst), 1);
    }

    #[test]
    fn for_each_in_never_polls_its_source_after_it_ended() {
        let ran = AtomicUsize::new(0);
        let ran = &ran;
        block_on(scope(|s| async move {
            // `unfold` panics if polled after it returned `None`.
            stream::unfold(0, |i| async move { (i < 3).then_some((i, i + 1)) })
                .for_each_in(2, &s, |_| async move {
                    ran.fetch_add(1, SeqCst);
                })
                .await;
        }));
        assert_eq!(ran.load(SeqCst), 3);
    }

    #[test]
    fn running_counts_the_started_bodies_and_window_reports_the_window() {
        block_on(scope(|s| async move {
            let mut all = pin!(stream::iter(0..2).for_each_in(3, &s, |_| async {
                let _ = crate::cancelled().await;
            }));
            assert_eq!((all.running(), all.window()), (0, 3));
            assert!(poll!(all.as_mut()).is_pending());
            assert_eq!(all.running(), 2, "both items run, a place is left free");
            all.cancel();
            all.as_mut().await;
            assert_eq!(all.running(), 0);
        }));
    }

    #[test]
    fn for_each_in_bodies_borrow_non_send_data_in_a_local_scope() {
        let total = Cell::new(0);
        let total = &total;
        block_on(local_scope(|s| async move {
            stream::iter(1..=4)
                .for_each_in(2, &s, |i| async move {
                    yield_now().await;
                    total.set(total.get() + i);
                })
                .await;
        }));
        assert_eq!(total.get(), 10);
    }

    #[test]
    #[should_panic(expected = "`for_each_in` was called with a window of 0")]
    fn for_each_in_rejects_a_window_of_zero() {
        block_on(scope(|s| async move {
            let _all = stream::iter(0..1).for_each_in(0, &s, |_| async {});
        }));
    }

    #[test]
    #[should_panic(expected = "`for_each_in` polled after it completed")]
    fn for_each_in_panics_when_polled_after_it_completed() {
        block_on(scope(|s| async move {
            let mut all = pin!(stream::iter(0..3).for_each_in(2, &s, |_| async {}));
            all.as_mut().await;
            let _ = poll!(all.as_mut());
        }));
    }

    #[test]
    #[should_panic(expected = "body 3 failed")]
    fn for_each_in_reraises_the_panic_of_a_body() {
        block_on(scope(|s| async move {
            stream::iter(0..5)
                .for_each_in(2, &s, |i| async move { assert!(i != 3, "body {i} failed") })
                .await;
        }));
    }
}
