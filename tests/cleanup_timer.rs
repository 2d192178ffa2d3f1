//! The clean-up runner: its poll budget, its timeout's timer (made once,
//! panicking when made, polled or dropped) and the reason it cancels with.
//!
//! Its own test binary: cut-off clean-ups count as skipped, and the skip
//! counter tests in `cleanup_skips` need exact deltas.

mod cleanup_common;
mod common;

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use cleanup_common::{Stubborn, entries, new_log, record};
use common::{CountingWaker, panic_message};
use futures::executor::block_on;
use taskscope::{Builder, CancelReason, POLL_BUDGET, scope};

#[test]
fn a_long_clean_up_stack_yields_after_the_budget_and_wakes_itself() {
    let ran = AtomicUsize::new(0);
    let ran = &ran;
    let mut fut = Box::pin(scope(|s| async move {
        for _ in 0..POLL_BUDGET + 72 {
            s.defer(async move {
                ran.fetch_add(1, Ordering::SeqCst);
            });
        }
    }));
    let waker = CountingWaker::new();
    assert!(waker.poll(fut.as_mut()).is_pending(), "yields mid-stack");
    assert_eq!(
        ran.load(Ordering::SeqCst),
        POLL_BUDGET,
        "one budget's worth"
    );
    assert_eq!(waker.count(), 1, "and asked to be polled again");
    assert!(waker.poll(fut.as_mut()).is_ready());
    assert_eq!(ran.load(Ordering::SeqCst), POLL_BUDGET + 72);
}

#[test]
fn the_timeout_timer_is_made_once_for_the_whole_clean_up() {
    let made = Arc::new(AtomicUsize::new(0));
    let counted = made.clone();
    block_on(
        Builder::new()
            .cleanup_timeout_when(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                std::future::pending::<()>()
            })
            .scope(|s| async move {
                s.defer(async {});
                s.defer(async {});
            }),
    );
    assert_eq!(
        made.load(Ordering::SeqCst),
        1,
        "the clock starts once, with the first clean-up"
    );
}

#[test]
fn a_timed_out_clean_up_is_cancelled_with_the_deadline_reason() {
    let seen = std::sync::Mutex::new(None);
    let seen = &seen;
    block_on(
        Builder::new()
            .cleanup_timeout_when(|| std::future::ready(()))
            .scope(|s| async move {
                s.defer(async move {
                    let cancelled = taskscope::cancelled().await;
                    *seen.lock().unwrap() = Some(cancelled.into_reason());
                });
            }),
    );
    let reason = seen
        .lock()
        .unwrap()
        .take()
        .expect("the clean-up saw a cancel");
    assert!(matches!(reason, CancelReason::Deadline), "{reason:?}");
}

/// Runs a scope with a stuck clean-up under `make_timer`, polling it at
/// most five times; returns the log and the scope's outcome.
fn stuck_clean_up_under<F, Fut>(make_timer: F) -> (Vec<String>, std::thread::Result<()>)
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let log = new_log();
    let log_ref = &log;
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
        let mut fut = Box::pin(Builder::new().cleanup_timeout_when(make_timer).scope(
            |s| async move {
                let _stuck = s.adopt(Stubborn {
                    log: log_ref.clone(),
                });
            },
        ));
        let waker = CountingWaker::new();
        for _ in 0..5 {
            if waker.poll(fut.as_mut()).is_ready() {
                return;
            }
        }
        panic!("the stuck clean-up was never cut off");
    }));
    (entries(&log), outcome)
}

const CUT_OFF: [&str; 3] = [
    "stubborn: close start",
    "stubborn: polled after the cancel",
    "stubborn: drop (cancelled: true)",
];

#[test]
fn a_timer_that_panics_when_made_counts_as_fired_and_its_panic_is_raised() {
    let (log, outcome) = stuck_clean_up_under(|| -> std::future::Ready<()> { panic!("no clock") });
    assert_eq!(log, CUT_OFF, "the clean-up was still bounded");
    let payload = outcome.expect_err("the timer's panic is raised");
    assert_eq!(panic_message(&*payload), "no clock");
}

/// A timer that panics when polled.
struct PanicsWhenPolled;

impl Future for PanicsWhenPolled {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        panic!("the clock broke")
    }
}

#[test]
fn a_timer_that_panics_when_polled_counts_as_fired_and_its_panic_is_raised() {
    let (log, outcome) = stuck_clean_up_under(|| PanicsWhenPolled);
    assert_eq!(log, CUT_OFF, "the clean-up was still bounded");
    let payload = outcome.expect_err("the timer's panic is raised");
    assert_eq!(panic_message(&*payload), "the clock broke");
}

/// A timer that never fires and panics when dropped.
struct PanicsWhenDropped;

impl Future for PanicsWhenDropped {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        Poll::Pending
    }
}

impl Drop for PanicsWhenDropped {
    fn drop(&mut self) {
        panic!("the timer's drop panicked");
    }
}

#[test]
fn a_timer_whose_drop_panics_at_the_end_of_the_clean_up_raises_it() {
    let log = new_log();
    let log_ref = &log;
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
        block_on(
            Builder::new()
                .cleanup_timeout_when(|| PanicsWhenDropped)
                .scope(|s| async move {
                    let log = log_ref.clone();
                    s.defer(async move { record(&log, "clean-up ran") });
                }),
        )
    }));
    assert_eq!(entries(&log), ["clean-up ran"]);
    let payload = outcome.expect_err("the timer's drop panic is raised");
    assert_eq!(panic_message(&*payload), "the timer's drop panicked");
}

/// A clean-up that ignores cancellation and panics when dropped.
struct StuckAndPanicsWhenDropped;

impl taskscope::AsyncDrop for StuckAndPanicsWhenDropped {
    async fn prepare_drop(&mut self) {
        std::future::pending::<()>().await;
    }
}

impl Drop for StuckAndPanicsWhenDropped {
    fn drop(&mut self) {
        panic!("the cut-off clean-up's drop panicked");
    }
}

#[test]
fn a_cut_off_clean_up_whose_drop_panics_raises_it() {
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
        block_on(
            Builder::new()
                .cleanup_timeout_when(|| std::future::ready(()))
                .scope(|s| async move {
                    let _stuck = s.adopt(StuckAndPanicsWhenDropped);
                }),
        )
    }));
    let payload = outcome.expect_err("the drop's panic is raised");
    assert_eq!(
        panic_message(&*payload),
        "the cut-off clean-up's drop panicked"
    );
}

/// A value that commits unless its clean-up sees a cancellation.
struct Transaction(Arc<std::sync::Mutex<Vec<&'static str>>>);

impl taskscope::AsyncDrop for Transaction {
    async fn prepare_drop(&mut self) {
        let outcome = if taskscope::is_cancelled() {
            "rollback"
        } else {
            "commit"
        };
        self.0.lock().unwrap().push(outcome);
    }
}

/// Before, the nested scope's clean-up ran under a fresh root token: its
/// value committed after the deadline that rolled back the same value one
/// scope up.
#[test]
fn the_clean_up_deadline_reaches_the_clean_up_of_a_scope_made_inside_it() {
    let log = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = &log;
    block_on(
        Builder::new()
            .cleanup_timeout_when(|| std::future::ready(())) // passed at once
            .scope(|s| async move {
                let _direct = s.adopt(Transaction(log.clone()));
                s.defer(async move {
                    scope(|inner| async move {
                        let _nested = inner.adopt(Transaction(log.clone()));
                    })
                    .await;
                });
            }),
    );
    // Last in, first out: the deferred scope's value, then the direct one.
    assert_eq!(*log.lock().unwrap(), ["rollback", "rollback"]);
}

/// The nested clean-up hangs under the enclosing clean-up's token, not
/// under the scopes' tokens: a cancelled scope still cleans up in full.
#[test]
fn a_scope_made_inside_a_clean_up_is_still_shielded_from_the_outer_scopes_cancel() {
    let log = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = &log;
    block_on(scope(|s| async move {
        s.defer(async move {
            scope(|inner| async move {
                let _nested = inner.adopt(Transaction(log.clone()));
            })
            .await;
        });
        s.cancel();
    }));
    assert_eq!(*log.lock().unwrap(), ["commit"]);
}

/// On a pool thread no clean-up is being polled: the enclosing clean-up is
/// found through the scope of the task that makes the nested scope. Heavy
/// children fan out; rounds run until one made its scope on a pool thread.
#[cfg(feature = "parallel")]
#[test]
#[cfg_attr(
    miri,
    ignore = "rayon's pool: Miri cannot check rayon-core (see .ci/run)"
)]
fn a_scope_made_on_a_pool_thread_inside_a_clean_up_hears_its_deadline() {
    use std::sync::atomic::AtomicBool;
    let on_pool = AtomicBool::new(false);
    for _ in 0..50 {
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (log, on_pool) = (&log, &on_pool);
        block_on(
            Builder::new()
                .cleanup_timeout_when(|| std::future::ready(()))
                .scope(|s| async move {
                    s.defer(async move {
                        taskscope::par_scope(|middle| async move {
                            for _ in 0..8 {
                                middle.spawn(async move {
                                    spin_for(std::time::Duration::from_millis(1));
                                    if rayon_core::current_thread_index().is_some() {
                                        on_pool.store(true, Ordering::SeqCst);
                                    }
                                    scope(|inner| async move {
                                        let _nested = inner.adopt(Transaction(log.clone()));
                                    })
                                    .await;
                                });
                            }
                        })
                        .await;
                    });
                }),
        );
        assert_eq!(*log.lock().unwrap(), ["rollback"; 8]);
        if on_pool.load(Ordering::SeqCst) {
            return;
        }
    }
    panic!("no child ran on a pool thread in 50 rounds: the case was not shown");
}

#[cfg(feature = "parallel")]
fn spin_for(duration: std::time::Duration) {
    let start = std::time::Instant::now();
    while start.elapsed() < duration {
        std::hint::spin_loop();
    }
}
