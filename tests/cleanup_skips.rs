//! Clean-up that cannot run to completion: the scope future dropped, the
//! clean-up timeout. Its own test binary, so the process-wide skip counter
//! moves only for these tests.

mod cleanup_common;
mod common;

use std::sync::{Mutex, MutexGuard};
use std::task::Poll;

use cleanup_common::{Conn, Stubborn, entries, new_log, record};
use common::{CountingWaker, Gate};
use futures::executor::block_on;
use taskscope::{Builder, cleanup_skipped_count, scope};

/// Tests that make clean-ups skip hold this while they measure the global
/// counter, so their deltas are exact; no other test skips a clean-up.
fn skip_counter_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[test]
fn dropping_the_scope_future_runs_only_the_sync_drops_and_counts_the_skips() {
    let _counting = skip_counter_lock();
    let log = new_log();
    let log_ref = &log;
    let before = cleanup_skipped_count();
    let mut fut = Box::pin(scope(|s| async move {
        let child_conn = s.adopt(Conn::open("child", log_ref));
        s.spawn(async move {
            let _conn = child_conn;
            std::future::pending::<()>().await;
        });
        let log = log_ref.clone();
        s.defer(async move { record(&log, "deferred ran") });
        let _body_conn = s.adopt(Conn::open("body", log_ref));
        std::future::pending::<()>().await;
    }));
    let waker = CountingWaker::new();
    assert!(waker.poll(fut.as_mut()).is_pending());
    drop(fut);
    let events = entries(&log);
    assert_eq!(
        events,
        ["child: open", "body: open", "body: drop", "child: drop"],
        "sync drops only, newest first: no close, the deferred future never ran"
    );
    assert_eq!(
        cleanup_skipped_count() - before,
        3,
        "two adopted values and one deferred future were skipped"
    );
}

#[test]
fn a_clean_up_ignoring_cancellation_is_cut_off_when_the_timeout_fires() {
    let _counting = skip_counter_lock();
    let log = new_log();
    let log_ref = &log;
    let before = cleanup_skipped_count();
    let gate = Gate::new();
    let (open, slot) = (gate.open.clone(), gate.waker.clone());
    // A timer completed by hand: `gate.open()` is "the time is up".
    let timer = move || {
        let (open, slot) = (open.clone(), slot.clone());
        std::future::poll_fn(move |cx| {
            if open.load(std::sync::atomic::Ordering::SeqCst) {
                return Poll::Ready(());
            }
            *slot.lock().unwrap() = Some(cx.waker().clone());
            Poll::Pending
        })
    };
    let mut fut = Box::pin(
        Builder::new()
            .cleanup_timeout_when(timer)
            .scope(|s| async move {
                let log = log_ref.clone();
                s.defer(async move {
                    let token = taskscope::current_token();
                    std::future::poll_fn(|_| {
                        if token.is_cancelled() {
                            record(&log, "well-behaved saw the timeout");
                            Poll::Ready(())
                        } else {
                            Poll::Pending
                        }
                    })
                    .await;
                });
                let _stubborn = s.adopt(Stubborn {
                    log: log_ref.clone(),
                });
            }),
    );
    let waker = CountingWaker::new();
    for _ in 0..3 {
        assert!(
            waker.poll(fut.as_mut()).is_pending(),
            "waits for the stubborn clean-up"
        );
    }
    assert_eq!(entries(&log), ["stubborn: close start"]);
    gate.open();
    assert!(
        waker.poll(fut.as_mut()).is_ready(),
        "the timeout ends the clean-up"
    );
    assert_eq!(
        entries(&log),
        [
            "stubborn: close start",
            "stubborn: polled after the cancel",
            "stubborn: drop (cancelled: true)",
            "well-behaved saw the timeout",
        ],
        "the stuck clean-up got one poll after the cancel, then its sync drop; \
         the next one still ran and saw the cancellation"
    );
    assert_eq!(
        cleanup_skipped_count() - before,
        1,
        "only the cut-off one counts"
    );
}

#[cfg(feature = "tokio")]
// The lock only serialises the global skip counter between tests; this test
// runs on a current-thread runtime, so holding it across awaits is harmless.
#[allow(clippy::await_holding_lock)]
#[tokio::test(start_paused = true)]
async fn the_tokio_clean_up_timeout_cuts_off_a_stuck_clean_up() {
    let _counting = skip_counter_lock();
    let log = new_log();
    let log_ref = &log;
    let start = tokio::time::Instant::now();
    Builder::new()
        .cleanup_timeout(std::time::Duration::from_secs(5))
        .scope(|s| async move {
            let _stubborn = s.adopt(Stubborn {
                log: log_ref.clone(),
            });
        })
        .await;
    assert_eq!(start.elapsed(), std::time::Duration::from_secs(5));
    assert_eq!(
        entries(&log),
        [
            "stubborn: close start",
            "stubborn: polled after the cancel",
            "stubborn: drop (cancelled: true)"
        ]
    );
}

#[test]
fn a_scope_with_nothing_to_clean_up_makes_no_timer() {
    let made = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = made.clone();
    let output = futures::executor::block_on(
        Builder::new()
            .cleanup_timeout_when(move || {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                std::future::pending::<()>()
            })
            .scope(|_| async { 5 }),
    );
    assert_eq!(output, 5);
    assert_eq!(made.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[cfg(feature = "tokio")]
#[test]
fn a_tokio_clean_up_timeout_needs_no_runtime_when_there_is_nothing_to_clean_up() {
    let output = futures::executor::block_on(
        Builder::new()
            .cleanup_timeout(std::time::Duration::from_secs(1))
            .scope(|_| async { 5 }),
    );
    assert_eq!(output, 5);
}

#[test]
fn dropping_the_scope_future_during_clean_up_drops_the_running_and_waiting_ones() {
    let _counting = skip_counter_lock();
    let log = new_log();
    let log_ref = &log;
    let before = cleanup_skipped_count();
    let mut fut = Box::pin(scope(|s| async move {
        let log = log_ref.clone();
        s.defer(async move { record(&log, "waiting deferred ran") });
        let _stubborn = s.adopt(Stubborn {
            log: log_ref.clone(),
        });
    }));
    let waker = CountingWaker::new();
    assert!(waker.poll(fut.as_mut()).is_pending());
    assert_eq!(entries(&log), ["stubborn: close start"]);
    drop(fut);
    assert_eq!(
        entries(&log),
        ["stubborn: close start", "stubborn: drop (cancelled: false)"],
        "the running clean-up got its sync drop; the waiting one never ran"
    );
    assert_eq!(cleanup_skipped_count() - before, 2);
}

/// Adopts and defers on its scope from its destructor, as a hand-made async
/// drop might: the scope must take both even while its future is dropped.
struct CleansUpOnDrop<'env> {
    scope: taskscope::Scope<'env>,
    log: &'env cleanup_common::Log,
}

impl Drop for CleansUpOnDrop<'_> {
    fn drop(&mut self) {
        record(self.log, "outer: drop");
        let log = self.log.clone();
        self.scope
            .defer(async move { record(&log, "late deferred ran") });
        let _late = self.scope.adopt(Conn::open("late", self.log));
    }
}

#[test]
fn clean_ups_added_by_a_destructor_while_the_scope_future_is_dropped_are_dropped_and_counted() {
    let _counting = skip_counter_lock();
    let log = new_log();
    let log_ref = &log;
    let before = cleanup_skipped_count();
    let mut fut = Box::pin(scope(|s| {
        let outer = CleansUpOnDrop {
            scope: s.clone(),
            log: log_ref,
        };
        s.defer(async move {
            let _outer = outer;
        });
        std::future::pending::<()>()
    }));
    assert!(CountingWaker::new().poll(fut.as_mut()).is_pending());
    let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(fut)));
    assert!(dropped.is_ok(), "dropping the scope future does not panic");
    assert_eq!(
        entries(&log),
        ["outer: drop", "late: open", "late: drop"],
        "the late adoption gets its sync drop; no deferred future ran"
    );
    assert_eq!(
        cleanup_skipped_count() - before,
        3,
        "the first deferred future, the late one and the late adoption were skipped"
    );
}

#[test]
fn a_guard_dropped_after_its_scope_returned_gets_its_sync_drop_and_counts_a_skip() {
    let _counting = skip_counter_lock();
    let log = new_log();
    let log_ref = &log;
    let before = cleanup_skipped_count();
    let guard = block_on(scope(
        |s| async move { s.adopt(Conn::open("late", log_ref)) },
    ));
    drop(guard);
    assert_eq!(
        entries(&log),
        ["late: open", "late: drop"],
        "no close, a sync drop"
    );
    assert_eq!(
        cleanup_skipped_count() - before,
        1,
        "the skipped close is counted"
    );
}

/// An adopted value whose sync drop panics.
struct PanicsOnDrop(&'static str);

impl taskscope::AsyncDrop for PanicsOnDrop {
    async fn prepare_drop(&mut self) {}
}

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("{}", self.0);
    }
}

#[test]
fn a_guard_dropped_after_its_scope_returned_raises_its_values_drop_panic() {
    let _counting = skip_counter_lock();
    let guard = block_on(scope(|s| async move {
        s.adopt(PanicsOnDrop("late drop panicked"))
    }));
    let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(guard)));
    let payload = dropped.expect_err("the value's panic reaches whoever dropped the guard");
    assert_eq!(common::panic_message(&*payload), "late drop panicked");
}

#[test]
fn dropping_the_scope_future_during_clean_up_drops_the_running_one_first() {
    let _counting = skip_counter_lock();
    let log = new_log();
    let log_ref = &log;
    let mut fut = Box::pin(scope(|s| async move {
        let _waiting = s.adopt(Conn::open("waiting", log_ref));
        let _stubborn = s.adopt(Stubborn {
            log: log_ref.clone(),
        });
    }));
    assert!(CountingWaker::new().poll(fut.as_mut()).is_pending());
    drop(fut);
    assert_eq!(
        entries(&log),
        [
            "waiting: open",
            "stubborn: close start",
            "stubborn: drop (cancelled: false)",
            "waiting: drop"
        ],
        "newest first: the running clean-up, then the one below it"
    );
}

#[test]
fn dropping_the_scope_future_raises_the_first_clean_up_drop_panic() {
    let _counting = skip_counter_lock();
    let before = cleanup_skipped_count();
    let mut fut = Box::pin(scope(|s| {
        let (older, newer) = (PanicsOnDrop("older"), PanicsOnDrop("newer"));
        s.defer(async move {
            let _older = older;
        });
        s.defer(async move {
            let _newer = newer;
        });
        std::future::pending::<()>()
    }));
    assert!(CountingWaker::new().poll(fut.as_mut()).is_pending());
    let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(fut)));
    let payload = dropped.expect_err("a clean-up's drop panic is raised");
    assert_eq!(
        common::panic_message(&*payload),
        "newer",
        "dropped newest first, and the first panic is the one raised"
    );
    assert_eq!(cleanup_skipped_count() - before, 2, "both were skipped");
}

/// A timer that never fires and panics when dropped.
struct TimerPanicsWhenDropped;

impl std::future::Future for TimerPanicsWhenDropped {
    type Output = ();

    fn poll(self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>) -> Poll<()> {
        Poll::Pending
    }
}

impl Drop for TimerPanicsWhenDropped {
    fn drop(&mut self) {
        panic!("the timer's drop panicked");
    }
}

#[test]
fn dropping_the_scope_future_mid_clean_up_drops_and_counts_every_clean_up_though_the_timers_drop_panics()
 {
    let _counting = skip_counter_lock();
    let log = new_log();
    let log_ref = &log;
    let before = cleanup_skipped_count();
    let mut fut = Box::pin(
        Builder::new()
            .cleanup_timeout_when(|| TimerPanicsWhenDropped)
            .scope(|s| async move {
                let _waiting = s.adopt(Conn::open("waiting", log_ref));
                let _stuck = s.adopt(Stubborn {
                    log: log_ref.clone(),
                });
            }),
    );
    assert!(CountingWaker::new().poll(fut.as_mut()).is_pending());
    let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(fut)));
    assert_eq!(
        entries(&log),
        [
            "waiting: open",
            "stubborn: close start",
            "stubborn: drop (cancelled: false)",
            "waiting: drop",
        ],
        "the running and the waiting clean-up were both dropped"
    );
    assert_eq!(
        cleanup_skipped_count() - before,
        2,
        "both clean-ups were counted as skipped"
    );
    let payload = dropped.expect_err("the timer's drop panic is raised");
    assert_eq!(
        payload.downcast_ref::<&str>().copied(),
        Some("the timer's drop panicked")
    );
}

#[test]
fn a_finished_bodys_output_dropped_with_the_scope_future_may_still_adopt_and_defer() {
    let _counting = skip_counter_lock();
    let log = new_log();
    let log_ref = &log;
    let before = cleanup_skipped_count();
    let mut fut = Box::pin(scope(|s| async move {
        s.spawn(std::future::pending::<()>());
        CleansUpOnDrop {
            scope: s.clone(),
            log: log_ref,
        }
    }));
    assert!(
        CountingWaker::new().poll(fut.as_mut()).is_pending(),
        "the body finished; its child waits"
    );
    let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(fut)));
    assert!(
        dropped.is_ok(),
        "the output's destructor found its scope open"
    );
    assert_eq!(
        entries(&log),
        ["outer: drop", "late: open", "late: drop"],
        "the late adoption gets its sync drop; the deferred future never ran"
    );
    assert_eq!(
        cleanup_skipped_count() - before,
        2,
        "the late deferred future and the late adoption were skipped"
    );
}
