//! Async-drop-style clean-up: adopted values and deferred futures.

mod common;

use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;

use common::{CountingWaker, Gate, panic_message, yield_once};
use taskscope::{AsyncDrop, Builder, LocalAsyncDrop, cleanup_skipped_count, local_scope, scope};

type Log = Arc<Mutex<Vec<String>>>;

fn new_log() -> Log {
    Arc::default()
}

fn entries(log: &Log) -> Vec<String> {
    log.lock().unwrap().clone()
}

fn record(log: &Log, event: impl Into<String>) {
    log.lock().unwrap().push(event.into());
}

/// Tests that make clean-ups skip hold this while they measure the global
/// counter, so their deltas are exact; no other test skips a clean-up.
fn skip_counter_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A fake connection: an async close of a few steps, and a sync drop.
struct Conn {
    name: &'static str,
    log: Log,
}

impl Conn {
    fn open(name: &'static str, log: &Log) -> Conn {
        record(log, format!("{name}: open"));
        Conn {
            name,
            log: log.clone(),
        }
    }

    fn query(&self) {
        record(&self.log, format!("{}: query", self.name));
    }
}

impl AsyncDrop for Conn {
    async fn prepare_drop(&mut self) {
        let shielded = !taskscope::is_cancelled();
        record(
            &self.log,
            format!("{}: close start (shielded: {shielded})", self.name),
        );
        for _ in 0..3 {
            yield_once().await;
        }
        record(&self.log, format!("{}: closed", self.name));
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        record(&self.log, format!("{}: drop", self.name));
    }
}

fn closed_then_dropped(name: &str) -> Vec<String> {
    vec![
        format!("{name}: close start (shielded: true)"),
        format!("{name}: closed"),
        format!("{name}: drop"),
    ]
}

fn with_open(name: &str, rest: Vec<String>) -> Vec<String> {
    let mut events = vec![format!("{name}: open")];
    events.extend(rest);
    events
}

#[test]
fn early_return_closes_the_adopted_value_before_the_scope_returns() {
    let log = new_log();
    let log_ref = &log;
    let value = futures::executor::block_on(scope(|s| async move {
        let conn = s.adopt(Conn::open("a", log_ref));
        conn.query();
        if !conn.name.is_empty() {
            return 1;
        }
        record(log_ref, "not reached");
        2
    }));
    record(&log, "scope returned");
    assert_eq!(value, 1);
    let mut expected = with_open("a", vec!["a: query".into()]);
    expected.extend(closed_then_dropped("a"));
    expected.push("scope returned".into());
    assert_eq!(entries(&log), expected);
}

#[test]
fn question_mark_hands_the_value_back_and_the_error_comes_out_after_the_close() {
    let log = new_log();
    let log_ref = &log;
    let result: Result<(), String> = futures::executor::block_on(scope(|s| async move {
        let conn = s.adopt(Conn::open("a", log_ref));
        conn.query();
        Err::<(), _>("query failed".to_string())?;
        record(log_ref, "not reached");
        Ok(())
    }));
    record(&log, "scope returned");
    assert_eq!(result, Err("query failed".to_string()));
    let mut expected = with_open("a", vec!["a: query".into()]);
    expected.extend(closed_then_dropped("a"));
    expected.push("scope returned".into());
    assert_eq!(entries(&log), expected);
}

#[test]
fn a_cancelled_scope_still_closes_its_values_shielded_from_the_cancellation() {
    let log = new_log();
    let log_ref = &log;
    futures::executor::block_on(scope(|s| async move {
        let conn = s.adopt(Conn::open("a", log_ref));
        s.spawn(async move {
            let _conn = conn; // moved into a child, dropped when it is cancelled
            taskscope::cancelled().await;
            record(log_ref, "child saw the cancellation");
        });
        s.cancel();
    }));
    record(&log, "scope returned");
    let mut expected = with_open("a", vec!["child saw the cancellation".into()]);
    expected.extend(closed_then_dropped("a"));
    expected.push("scope returned".into());
    assert_eq!(entries(&log), expected);
}

#[test]
fn a_cancelled_await_in_the_body_hands_the_value_back() {
    let log = new_log();
    let log_ref = &log;
    futures::executor::block_on(scope(|s| async move {
        let waiting = async {
            let _conn = s.adopt(Conn::open("a", log_ref));
            std::future::pending::<()>().await;
        };
        // The select drops `waiting` mid-await: its guard goes back to the scope.
        let mut waiting = Box::pin(waiting);
        std::future::poll_fn(|cx| {
            assert!(waiting.as_mut().poll(cx).is_pending());
            Poll::Ready(())
        })
        .await;
        drop(waiting);
        record(log_ref, "body done");
    }));
    let mut expected = with_open("a", vec!["body done".into()]);
    expected.extend(closed_then_dropped("a"));
    assert_eq!(entries(&log), expected);
}

#[test]
fn a_panicking_child_is_re_raised_only_after_the_values_were_closed() {
    let log = new_log();
    let log_ref = &log;
    let caught = panic::catch_unwind(AssertUnwindSafe(|| {
        futures::executor::block_on(scope(|s| async move {
            let conn = s.adopt(Conn::open("a", log_ref));
            s.spawn(async move {
                let _conn = conn;
                yield_once().await;
                panic!("child failed");
            });
        }))
    }));
    let payload = caught.expect_err("the child's panic is re-raised by the scope");
    assert_eq!(panic_message(&*payload), "child failed");
    assert_eq!(entries(&log), with_open("a", closed_then_dropped("a")));
}

#[test]
fn nested_scopes_clean_up_the_inner_scope_before_the_outer() {
    let log = new_log();
    let log_ref = &log;
    futures::executor::block_on(scope(|outer| async move {
        let _outer_conn = outer.adopt(Conn::open("outer", log_ref));
        scope(|inner| async move {
            let _inner_conn = inner.adopt(Conn::open("inner", log_ref));
        })
        .await;
        record(log_ref, "inner scope returned");
    }));
    let mut expected = vec!["outer: open".to_string(), "inner: open".to_string()];
    expected.extend(closed_then_dropped("inner"));
    expected.push("inner scope returned".into());
    expected.extend(closed_then_dropped("outer"));
    assert_eq!(entries(&log), expected);
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
        ["child: open", "body: open", "child: drop", "body: drop"],
        "sync drops only: no close, the deferred future never ran"
    );
    assert_eq!(
        cleanup_skipped_count() - before,
        3,
        "two adopted values and one deferred future were skipped"
    );
}

#[test]
fn deferred_futures_run_last_in_first_out_after_every_child_finished() {
    let log = new_log();
    let log_ref = &log;
    futures::executor::block_on(scope(|s| async move {
        for i in 1..=3 {
            let log = log_ref.clone();
            s.defer(async move {
                yield_once().await;
                record(&log, format!("deferred {i}"));
            });
        }
        s.spawn(async move {
            yield_once().await;
            yield_once().await;
            record(log_ref, "child finished");
        });
    }));
    assert_eq!(
        entries(&log),
        ["child finished", "deferred 3", "deferred 2", "deferred 1"]
    );
}

#[test]
fn adopted_values_and_deferred_futures_share_one_stack_in_registration_order() {
    let log = new_log();
    let log_ref = &log;
    futures::executor::block_on(scope(|s| async move {
        let _first = s.adopt(Conn::open("first", log_ref));
        let log = log_ref.clone();
        s.defer(async move { record(&log, "deferred") });
        let _second = s.adopt(Conn::open("second", log_ref));
        // `_second` drops before `_first` at the end of the body, but the
        // order is that of the `adopt` calls.
    }));
    let mut expected = vec!["first: open".to_string(), "second: open".to_string()];
    expected.extend(closed_then_dropped("second"));
    expected.push("deferred".into());
    expected.extend(closed_then_dropped("first"));
    assert_eq!(entries(&log), expected);
}

#[test]
fn close_runs_prepare_drop_at_once_and_leaves_nothing_for_the_scope() {
    let log = new_log();
    let log_ref = &log;
    futures::executor::block_on(scope(|s| async move {
        let conn = s.adopt(Conn::open("a", log_ref));
        conn.close().await;
        record(log_ref, "after close");
    }));
    assert_eq!(
        entries(&log),
        [
            "a: open",
            "a: close start (shielded: true)",
            "a: closed",
            "a: drop",
            "after close"
        ]
    );
}

#[test]
fn a_close_dropped_midway_hands_the_value_back_for_a_full_prepare_drop() {
    let log = new_log();
    let log_ref = &log;
    futures::executor::block_on(scope(|s| async move {
        let conn = s.adopt(Conn::open("a", log_ref));
        let mut closing = Box::pin(conn.close());
        std::future::poll_fn(|cx| {
            assert!(closing.as_mut().poll(cx).is_pending());
            Poll::Ready(())
        })
        .await;
        drop(closing);
        record(log_ref, "close abandoned");
    }));
    let mut expected = with_open(
        "a",
        vec![
            "a: close start (shielded: true)".into(),
            "close abandoned".into(),
        ],
    );
    expected.extend(closed_then_dropped("a"));
    assert_eq!(entries(&log), expected);
}

#[test]
fn a_panicking_clean_up_does_not_stop_the_others_and_is_re_raised_after_all() {
    let log = new_log();
    let log_ref = &log;
    let caught = panic::catch_unwind(AssertUnwindSafe(|| {
        futures::executor::block_on(scope(|s| async move {
            let _conn = s.adopt(Conn::open("a", log_ref));
            s.defer(async { panic!("deferred failed") });
            let log = log_ref.clone();
            s.defer(async move { record(&log, "last deferred ran") });
        }))
    }));
    let payload = caught.expect_err("the clean-up's panic is re-raised");
    assert_eq!(panic_message(&*payload), "deferred failed");
    let mut expected = with_open("a", vec!["last deferred ran".into()]);
    expected.extend(closed_then_dropped("a"));
    assert_eq!(entries(&log), expected);
}

/// A clean-up that ignores cancellation: never finishes on its own.
struct Stubborn {
    log: Log,
}

impl AsyncDrop for Stubborn {
    async fn prepare_drop(&mut self) {
        record(&self.log, "stubborn: close start");
        std::future::poll_fn(|_| {
            if taskscope::is_cancelled() {
                record(&self.log, "stubborn: polled after the cancel");
            }
            Poll::<()>::Pending
        })
        .await;
    }
}

impl Drop for Stubborn {
    fn drop(&mut self) {
        let cancelled = taskscope::is_cancelled();
        record(
            &self.log,
            format!("stubborn: drop (cancelled: {cancelled})"),
        );
    }
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
fn spawning_from_a_clean_up_panics_with_a_clear_message() {
    let caught = panic::catch_unwind(AssertUnwindSafe(|| {
        futures::executor::block_on(scope(|s| async move {
            let handle = s.clone();
            s.defer(async move {
                drop(handle.spawn(async {}));
            });
        }))
    }));
    let payload = caught.expect_err("spawn from clean-up is refused");
    assert!(
        panic_message(&*payload).contains("spawn from a scope's clean-up"),
        "{}",
        panic_message(&*payload)
    );
}

#[test]
fn a_clean_up_may_defer_more_clean_up_which_runs_next() {
    let log = new_log();
    let log_ref = &log;
    futures::executor::block_on(scope(|s| async move {
        let log = log_ref.clone();
        s.defer(async move { record(&log, "registered first") });
        let (handle, log) = (s.clone(), log_ref.clone());
        s.defer(async move {
            let inner_log = log.clone();
            handle.defer(async move { record(&inner_log, "deferred by a clean-up") });
            record(&log, "registered second");
        });
    }));
    assert_eq!(
        entries(&log),
        [
            "registered second",
            "deferred by a clean-up",
            "registered first"
        ]
    );
}

#[test]
fn a_local_scope_adopts_a_value_whose_clean_up_is_not_send() {
    use std::cell::RefCell;
    use std::rc::Rc;

    struct Local(Rc<RefCell<Vec<&'static str>>>);
    impl LocalAsyncDrop for Local {
        async fn prepare_drop(&mut self) {
            let shared = self.0.clone(); // an `Rc` held across an await
            yield_once().await;
            shared.borrow_mut().push("closed");
        }
    }

    let log = Rc::new(RefCell::new(Vec::new()));
    let log_ref = &log;
    futures::executor::block_on(local_scope(|s| async move {
        let _value = s.adopt(Local(log_ref.clone()));
        // `AsyncDrop` types are adopted by local scopes too.
        let _conn = s.adopt(Conn::open("a", &new_log()));
        s.defer(async move { log_ref.borrow_mut().push("deferred") });
    }));
    assert_eq!(*log.borrow(), ["deferred", "closed"]);
}

#[test]
fn adopted_guards_and_scope_futures_holding_them_stay_send() {
    fn assert_send<T: Send>(_: &T) {}
    let log = new_log();
    let log_ref = &log;
    let fut = scope(|s| async move {
        let conn = s.adopt(Conn::open("a", log_ref));
        assert_send(&conn);
        yield_once().await;
        conn.close().await;
    });
    assert_send(&fut);
    futures::executor::block_on(fut);
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
