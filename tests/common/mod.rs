//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};

/// A waker that counts its wake-ups.
#[derive(Clone)]
pub struct CountingWaker {
    count: Arc<Count>,
    waker: Waker,
}

struct Count(AtomicUsize);

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl CountingWaker {
    pub fn new() -> Self {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        CountingWaker {
            waker: Waker::from(count.clone()),
            count,
        }
    }

    pub fn count(&self) -> usize {
        self.count.0.load(Ordering::SeqCst)
    }

    pub fn poll<F: Future + ?Sized>(&self, fut: Pin<&mut F>) -> Poll<F::Output> {
        fut.poll(&mut Context::from_waker(&self.waker))
    }
}

/// Returns `Pending` once (waking itself), then `Ready`.
pub fn yield_once() -> impl Future<Output = ()> {
    let mut yielded = false;
    std::future::poll_fn(move |cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
}

/// A future that counts its polls and stays pending until `gate` is opened.
pub struct Gate {
    pub open: Arc<std::sync::atomic::AtomicBool>,
    pub waker: Arc<std::sync::Mutex<Option<Waker>>>,
}

impl Gate {
    pub fn new() -> Self {
        Gate {
            open: Arc::default(),
            waker: Arc::default(),
        }
    }

    /// A future that completes once the gate is opened, counting its polls.
    pub fn wait(&self, polls: Arc<AtomicUsize>) -> impl Future<Output = ()> + Send + 'static {
        let (open, slot) = (self.open.clone(), self.waker.clone());
        std::future::poll_fn(move |cx| {
            polls.fetch_add(1, Ordering::SeqCst);
            if open.load(Ordering::SeqCst) {
                return Poll::Ready(());
            }
            *slot.lock().unwrap() = Some(cx.waker().clone());
            Poll::Pending
        })
    }

    pub fn open(&self) {
        self.open.store(true, Ordering::SeqCst);
        if let Some(waker) = self.waker.lock().unwrap().take() {
            waker.wake();
        }
    }
}

/// Counts how often it is dropped.
pub struct DropCounter(pub Arc<AtomicUsize>);

impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// The message of a caught panic payload.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "<non-string panic>".to_string()
    }
}

/// Runs `f` on a thread of its own; true if it returned. A deadlock then
/// fails the test instead of hanging the suite (the bound is for a hang,
/// not a timing: the work takes microseconds).
pub fn returns(f: impl FnOnce() + Send + 'static) -> bool {
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        f();
        let _ = done.send(());
    });
    finished
        .recv_timeout(std::time::Duration::from_secs(60))
        .is_ok()
}

/// Drives `future` to completion on this thread as an executor does,
/// polling it again only after a wake. For tests with no other thread and
/// no timer, where `block_on` would hang on a lost wake-up or on a
/// cancellation that never arrives: this fails the test instead.
///
/// # Panics
///
/// If the future is pending with no wake to come, or still pending after
/// 100,000 polls.
pub fn run<F: Future>(future: F) -> F::Output {
    let waker = CountingWaker::new();
    let mut future = std::pin::pin!(future);
    let mut wakes = 0;
    for _ in 0..100_000 {
        if let Poll::Ready(output) = waker.poll(future.as_mut()) {
            return output;
        }
        let now = waker.count();
        assert_ne!(
            now, wakes,
            "pending with no wake to come: `block_on` would hang here"
        );
        wakes = now;
    }
    panic!("still pending after 100,000 polls");
}
