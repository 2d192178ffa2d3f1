//! The stream adapters against their promises: order and window under
//! random delays (proptest, tokio's paused clock), and no stall while the
//! consumer is busy, where `futures`' `buffered` stalls.

mod counting_alloc;

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use futures::stream::{self, StreamExt};
use proptest::prelude::*;
use taskscope::{ScopedStreamExt, scope};
use tokio::time::{Instant, sleep};

/// A current-thread runtime whose clock is paused: time advances only when
/// every task waits for a timer, so runs are deterministic.
fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
}

fn ms(n: u8) -> Duration {
    Duration::from_millis(u64::from(n))
}

/// Checks the window at every pull: items pulled minus items yielded.
struct Window {
    pulled: Cell<usize>,
    yielded: Cell<usize>,
    most: Cell<usize>,
}

impl Window {
    fn new() -> Window {
        Window {
            pulled: Cell::new(0),
            yielded: Cell::new(0),
            most: Cell::new(0),
        }
    }

    fn pull(&self) {
        self.pulled.set(self.pulled.get() + 1);
        let in_flight = self.pulled.get() - self.yielded.get();
        self.most.set(self.most.get().max(in_flight));
    }

    fn yielded(&self) {
        self.yielded.set(self.yielded.get() + 1);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn buffered_in_keeps_input_order_and_window_under_random_delays(
        window in 1_usize..6,
        items in prop::collection::vec((0_u8..5, 0_u8..5, 0_u8..5), 0..40),
        consumer in prop::collection::vec(0_u8..5, 40),
    ) {
        let pulls = Window::new();
        let (pulls, items_ref, consumer) = (&pulls, &items, &consumer);
        let outputs = paused_runtime().block_on(scope(|s| async move {
            let mut outputs = Vec::new();
            let mut stream = std::pin::pin!(
                stream::iter(items_ref.iter().copied().enumerate())
                    .inspect(|_| pulls.pull())
                    .map(|(i, (a, b, c))| async move {
                        sleep(ms(a)).await;
                        sleep(ms(b)).await;
                        sleep(ms(c)).await;
                        i
                    })
                    .buffered_in(window, &s)
            );
            while let Some(i) = stream.next().await {
                pulls.yielded();
                outputs.push(i);
                sleep(ms(consumer[i])).await;
            }
            outputs
        }));
        prop_assert_eq!(outputs, (0..items.len()).collect::<Vec<_>>());
        prop_assert!(pulls.most.get() <= window, "{} in flight, window {}", pulls.most.get(), window);
    }

    #[test]
    fn buffer_unordered_in_yields_in_completion_order_within_window_under_random_delays(
        window in 1_usize..6,
        items in prop::collection::vec((0_u8..5, 0_u8..5), 0..40),
        consumer in prop::collection::vec(0_u8..5, 40),
    ) {
        let pulls = Window::new();
        let pulls = &pulls;
        let finished = AtomicUsize::new(0);
        let (finished, items_ref, consumer) = (&finished, &items, &consumer);
        let outputs = paused_runtime().block_on(scope(|s| async move {
            let mut outputs = Vec::new();
            let mut stream = std::pin::pin!(
                stream::iter(items_ref.iter().copied().enumerate())
                    .inspect(|_| pulls.pull())
                    .map(|(i, (a, b))| async move {
                        sleep(ms(a)).await;
                        sleep(ms(b)).await;
                        (i, finished.fetch_add(1, SeqCst))
                    })
                    .buffer_unordered_in(window, &s)
            );
            while let Some((i, rank)) = stream.next().await {
                pulls.yielded();
                outputs.push((i, rank));
                sleep(ms(consumer[i])).await;
            }
            outputs
        }));
        let ranks: Vec<usize> = outputs.iter().map(|&(_, rank)| rank).collect();
        prop_assert_eq!(ranks, (0..items.len()).collect::<Vec<_>>(), "yielded in the order they finished");
        let mut seen: Vec<usize> = outputs.iter().map(|&(i, _)| i).collect();
        seen.sort_unstable();
        prop_assert_eq!(seen, (0..items.len()).collect::<Vec<_>>(), "every item exactly once");
        prop_assert!(pulls.most.get() <= window, "{} in flight, window {}", pulls.most.get(), window);
    }

    #[test]
    fn for_each_in_runs_every_body_once_within_window_under_random_delays(
        window in 1_usize..6,
        items in prop::collection::vec((0_u8..5, 0_u8..5), 0..40),
    ) {
        let running = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        let ran = Mutex::new(Vec::new());
        let (running, most, ran, items_ref) = (&running, &most, &ran, &items);
        paused_runtime().block_on(scope(|s| async move {
            stream::iter(items_ref.iter().copied().enumerate())
                .for_each_in(window, &s, |(i, (a, b))| async move {
                    most.fetch_max(running.fetch_add(1, SeqCst) + 1, SeqCst);
                    sleep(ms(a)).await;
                    sleep(ms(b)).await;
                    running.fetch_sub(1, SeqCst);
                    ran.lock().unwrap().push(i);
                })
                .await;
            prop_assert_eq!(running.load(SeqCst), 0, "complete only once every body finished");
            Ok(())
        }))?;
        let mut ran = ran.lock().unwrap().clone();
        ran.sort_unstable();
        prop_assert_eq!(ran, (0..items.len()).collect::<Vec<_>>());
        prop_assert!(most.load(SeqCst) <= window);
    }
}

// ---------------------------------------------------------------------------
// The motivating pipeline on the paused clock.

/// Sums, over a future's awaits, the (paused-clock) time from a wake-up to
/// the poll it asked for.
struct Stalls<F> {
    future: Pin<Box<F>>,
    woken_at: Arc<Mutex<Option<Instant>>>,
    stall: Duration,
}

struct StallWaker {
    inner: Waker,
    woken_at: Arc<Mutex<Option<Instant>>>,
}

impl Wake for StallWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken_at
            .lock()
            .unwrap()
            .get_or_insert_with(Instant::now);
        self.inner.wake_by_ref();
    }
}

impl<F: Future> Future for Stalls<F> {
    type Output = (F::Output, Duration);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let woken_at = self.woken_at.lock().unwrap().take();
        if let Some(woken_at) = woken_at {
            self.stall += woken_at.elapsed();
        }
        let waker = Waker::from(Arc::new(StallWaker {
            inner: cx.waker().clone(),
            woken_at: self.woken_at.clone(),
        }));
        let stall = self.stall;
        self.future
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .map(|output| (output, stall))
    }
}

fn stalls<F: Future>(future: F) -> Stalls<F> {
    Stalls {
        future: Box::pin(future),
        woken_at: Arc::default(),
        stall: Duration::ZERO,
    }
}

/// A producer: three 1 ms calls; returns when it finished.
async fn produce() -> Instant {
    for _ in 0..3 {
        sleep(Duration::from_millis(1)).await;
    }
    Instant::now()
}

/// What a pipeline run saw.
#[derive(Debug, Default)]
struct Seen {
    /// Producers that finished while the consumer was inside a call.
    finished_while_busy: usize,
    stall: Duration,
    elapsed: Duration,
}

const ITEMS: usize = 30;
const WINDOW: usize = 5;
const CONSUMER_CALL: Duration = Duration::from_millis(10);

/// The consumer: one 10 ms call per item; records when it was busy.
async fn consume(busy: &RefCell<Vec<(Instant, Instant)>>) {
    let start = Instant::now();
    sleep(CONSUMER_CALL).await;
    busy.borrow_mut().push((start, Instant::now()));
}

fn seen(outputs: Vec<(Instant, Duration)>, busy: &[(Instant, Instant)], start: Instant) -> Seen {
    Seen {
        finished_while_busy: outputs
            .iter()
            .filter(|(at, _)| busy.iter().any(|(from, to)| from < at && at < to))
            .count(),
        stall: outputs.iter().map(|&(_, stall)| stall).sum(),
        elapsed: start.elapsed(),
    }
}

fn run_buffered() -> Seen {
    paused_runtime().block_on(async {
        let busy = RefCell::new(Vec::new());
        let mut outputs = Vec::new();
        let start = Instant::now();
        let mut stream = std::pin::pin!(
            stream::iter(0..ITEMS)
                .map(|_| stalls(produce()))
                .buffered(WINDOW)
        );
        while let Some(output) = stream.next().await {
            outputs.push(output);
            consume(&busy).await;
        }
        seen(outputs, &busy.borrow(), start)
    })
}

fn run_buffered_in() -> Seen {
    paused_runtime().block_on(scope(|s| async move {
        let busy = RefCell::new(Vec::new());
        let mut outputs = Vec::new();
        let start = Instant::now();
        let mut stream = std::pin::pin!(
            stream::iter(0..ITEMS)
                .map(|_| stalls(produce()))
                .buffered_in(WINDOW, &s)
        );
        while let Some(output) = stream.next().await {
            outputs.push(output);
            consume(&busy).await;
        }
        seen(outputs, &busy.borrow(), start)
    }))
}

#[test]
fn buffered_in_producers_keep_completing_while_the_consumer_is_busy() {
    let seen = run_buffered_in();
    assert_eq!(
        seen.stall,
        Duration::ZERO,
        "no producer waited to be polled"
    );
    // The first window finishes together, before the consumer's first call
    // starts; every later producer finishes during one of its calls.
    assert_eq!(seen.finished_while_busy, ITEMS - WINDOW, "{seen:?}");
    // So the pipeline runs at the consumer-bound floor: the first item's
    // three calls, then one consumer call per item.
    assert_eq!(
        seen.elapsed,
        Duration::from_millis(3) + CONSUMER_CALL * ITEMS as u32,
        "{seen:?}"
    );
}

#[test]
fn buffered_stalls_producers_while_the_consumer_is_busy() {
    let seen = run_buffered();
    assert_eq!(seen.finished_while_busy, 0, "{seen:?}");
    assert!(seen.stall > Duration::ZERO, "{seen:?}");
    assert!(
        seen.elapsed > Duration::from_millis(3) + CONSUMER_CALL * ITEMS as u32,
        "{seen:?}"
    );
}

#[test]
fn a_scope_streaming_with_buffered_in_can_be_spawned_on_a_multi_thread_runtime() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let sum = runtime.block_on(async {
        // `tokio::spawn` needs the scope future (stream included) to be `Send`.
        tokio::spawn(async {
            let factor = 2_u64;
            let factor = &factor;
            scope(|s| async move {
                stream::iter(1..=20_u64)
                    .map(|n| async move {
                        tokio::task::yield_now().await;
                        n * factor
                    })
                    .buffered_in(4, &s)
                    .fold(0, |sum, n| async move { sum + n })
                    .await
            })
            .await
        })
        .await
        .unwrap()
    });
    assert_eq!(sum, 420);
}

#[test]
fn buffered_in_spawns_into_a_try_scope() {
    let result: Result<Vec<u32>, String> =
        futures::executor::block_on(taskscope::try_scope(|s| async move {
            let outputs = stream::iter(0..4_u32)
                .map(|i| async move { i + 1 })
                .buffered_in(2, &s)
                .collect()
                .await;
            Ok(outputs)
        }));
    assert_eq!(result.unwrap(), [1, 2, 3, 4]);
}

#[test]
fn an_unbounded_window_of_usize_max_allocates_nothing_up_front_in_every_adapter() {
    let (largest, outputs) = counting_alloc::largest(|| {
        futures::executor::block_on(scope(|s| async move {
            let ordered: Vec<u32> = stream::iter(0..3)
                .map(|i| async move { i })
                .buffered_in(usize::MAX, &s)
                .collect()
                .await;
            let mut unordered: Vec<u32> = stream::iter(0..3)
                .map(|i| async move { i })
                .buffer_unordered_in(usize::MAX, &s)
                .collect()
                .await;
            unordered.sort_unstable();
            let sum = AtomicUsize::new(0);
            stream::iter(0..3_usize)
                .for_each_in(usize::MAX, &s, |i| {
                    sum.fetch_add(i, SeqCst);
                    async {}
                })
                .await;
            (ordered, unordered, sum.into_inner())
        }))
    });
    assert_eq!(outputs, (vec![0, 1, 2], vec![0, 1, 2], 3));
    // Three items need a few hundred bytes a place at most; storage sized
    // by the window (even capped, say at 4,096 places) would show here.
    assert!(largest < 4096, "an allocation of {largest} bytes");
}
