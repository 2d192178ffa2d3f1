//! Small futures and runtimes shared by the workloads.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Wake};
use std::time::Instant;

/// Returns `Pending` once after waking itself: the cheapest await that goes
/// through the executor's wake path. Runtime-agnostic on purpose, so that no
/// contender gets a faster yield from its own runtime than the others.
#[derive(Debug, Default)]
#[must_use = "futures do nothing unless polled"]
pub struct YieldOnce {
    yielded: bool,
}

impl Future for YieldOnce {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// A short await of a producer (a channel hop, a pooled connection handed
/// over): it is ready as soon as it asked, and it adds to `stall` the time it
/// then waited to be polled again, which is time the producer was ready to run
/// but nobody polled it.
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct Hop<'a> {
    stall_ns: &'a AtomicU64,
    woken_at: Option<Instant>,
}

impl<'a> Hop<'a> {
    /// A hop whose stall is added to `stall_ns`.
    pub fn new(stall_ns: &'a AtomicU64) -> Self {
        Hop {
            stall_ns,
            woken_at: None,
        }
    }
}

impl Future for Hop<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match self.woken_at {
            Some(at) => {
                let stalled = at.elapsed().as_nanos() as u64;
                // Relaxed: a sum read after every producer finished.
                self.stall_ns.fetch_add(stalled, Ordering::Relaxed);
                Poll::Ready(())
            }
            None => {
                self.woken_at = Some(Instant::now());
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }
}

/// A waker that counts its wakes: the cheapest honest wake (one atomic add),
/// so that a cancel's cost is the token's and not an executor's.
#[derive(Debug, Default)]
pub struct CountingWaker {
    /// Wakes so far.
    pub wakes: AtomicU64,
}

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // Relaxed: read after the cancel returned, on the same thread.
        self.wakes.fetch_add(1, Ordering::Relaxed);
    }
}

/// tokio's current-thread runtime with timers.
pub fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime")
}

/// tokio's multi-thread runtime, one worker per core.
pub fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_time()
        .build()
        .expect("a multi-thread runtime")
}

/// Checks a contender's sum against the data's, then hides it from the
/// optimiser: a contender that lost or repeated children would otherwise
/// just look faster.
///
/// # Panics
///
/// If `sum` is not `expected`, naming the contender.
pub fn check_sum(contender: &str, sum: u64, expected: u64) {
    assert_eq!(
        sum, expected,
        "{contender} returned a wrong sum: it lost or repeated children"
    );
    std::hint::black_box(sum);
}
