//! Helpers for the crate's unit tests: wakers that count, manual polling,
//! a future that yields once.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};

/// A waker that counts how often it was woken.
#[derive(Clone)]
pub(crate) struct CountingWaker {
    inner: Arc<Count>,
    waker: Waker,
}

struct Count(AtomicUsize);

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl CountingWaker {
    pub(crate) fn new() -> Self {
        let inner = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(inner.clone());
        CountingWaker { inner, waker }
    }

    pub(crate) fn count(&self) -> usize {
        self.inner.0.load(Ordering::SeqCst)
    }

    pub(crate) fn context(&self) -> Context<'_> {
        Context::from_waker(&self.waker)
    }
}

/// Returns `Pending` once (waking itself at once), then `Ready`.
pub(crate) fn yield_now() -> impl Future<Output = ()> {
    let mut yielded = false;
    std::future::poll_fn(move |cx| {
        if yielded {
            return Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    })
}

/// Polls `future` with a counting waker until it is ready, at most `limit`
/// times; `None` if it was still pending (a test of a hang then fails
/// instead of hanging the suite).
pub(crate) fn poll_until_ready<F: Future>(future: F, limit: usize) -> Option<F::Output> {
    let waker = CountingWaker::new();
    let mut future = std::pin::pin!(future);
    (0..limit).find_map(|_| match future.as_mut().poll(&mut waker.context()) {
        Poll::Ready(output) => Some(output),
        Poll::Pending => None,
    })
}

/// Polls `future` only when it was woken since the last poll, as an executor
/// does, at most `limit` times; `None` if it is still pending then, or pending
/// with no wake to come (a lost wake-up, which would hang an executor).
pub(crate) fn poll_when_woken<F: Future>(future: F, limit: usize) -> Option<F::Output> {
    let waker = CountingWaker::new();
    let mut future = std::pin::pin!(future);
    let mut wakes = 0;
    for _ in 0..limit {
        if let Poll::Ready(output) = future.as_mut().poll(&mut waker.context()) {
            return Some(output);
        }
        if waker.count() == wakes {
            return None;
        }
        wakes = waker.count();
    }
    None
}
