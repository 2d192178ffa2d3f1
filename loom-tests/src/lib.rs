//! Loom models live in `tests/`; this library holds what they share: the
//! model runner that reports how many interleavings it explored, and a
//! loom-visible one-shot flag that a child task can await.
//!
//! Everything here is `cfg(loom)`: the crate is empty in ordinary builds.
#![cfg(loom)]

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use loom::sync::{Arc, Mutex};

/// Runs `model` under loom, exploring every interleaving within
/// `preemptions` preemptions (the `LOOM_MAX_PREEMPTIONS` environment
/// variable overrides it, to run one model deeper), and prints how many
/// interleavings it explored.
///
/// The other bounds come from loom's environment variables
/// (`LOOM_MAX_BRANCHES`, `LOOM_CHECKPOINT_FILE`, ...).
pub fn check<F>(name: &str, preemptions: usize, model: F)
where
    F: Fn() + Sync + Send + 'static,
{
    // A std atomic on purpose: it counts loom's executions from outside the
    // model, so loom must not see it.
    let iterations = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = iterations.clone();
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(preemptions);
    }
    let bound = builder.preemption_bound;
    // As `loom::model` does: with LOOM_LOG set (e.g. `info`, `trace`), loom's
    // own log (schedule decisions, "Completed in N iterations") is printed.
    let _log = std::env::var_os("LOOM_LOG").map(|_| {
        use tracing_subscriber::util::SubscriberInitExt;
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_env("LOOM_LOG"))
            .with_test_writer()
            .without_time()
            .finish()
            .set_default()
    });
    builder.check(move || {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        model();
    });
    eprintln!(
        "loom model {name}: {} interleavings explored (preemption bound {bound:?})",
        iterations.load(std::sync::atomic::Ordering::Relaxed)
    );
}

/// A one-shot flag: `set` once from any thread, `wait` until it is set.
///
/// Built on loom's mutex so that loom explores the race between `set` and
/// the registration in `wait`; correct by construction (the waker is stored
/// and the flag checked under the same lock), so a lost wake-up found by a
/// model is the library's.
#[derive(Clone, Default)]
pub struct Flag {
    state: Arc<Mutex<(bool, Option<Waker>)>>,
}

impl Flag {
    /// A flag that is not set.
    pub fn new() -> Self {
        Flag::default()
    }

    /// Sets the flag and wakes the waiter, if any.
    pub fn set(&self) {
        let waker = {
            let mut state = self.state.lock().unwrap();
            state.0 = true;
            state.1.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Whether the flag is set.
    pub fn is_set(&self) -> bool {
        self.state.lock().unwrap().0
    }

    /// Completes once the flag is set.
    pub fn wait(&self) -> Wait<'_> {
        Wait { flag: self }
    }
}

/// The future of [`Flag::wait`].
#[must_use = "futures do nothing unless polled"]
pub struct Wait<'a> {
    flag: &'a Flag,
}

impl Future for Wait<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.flag.state.lock().unwrap();
        if state.0 {
            return Poll::Ready(());
        }
        state.1 = Some(cx.waker().clone());
        Poll::Pending
    }
}
