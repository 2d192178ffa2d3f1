//! Async-drop-style clean-up: adopted values and deferred futures.

mod cleanup_common;
mod common;

use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::task::Poll;

use cleanup_common::{Conn, closed_then_dropped, entries, new_log, record, with_open};
use common::{panic_message, yield_once};
use taskscope::{LocalAsyncDrop, local_scope, scope};

#[test]
fn early_return_closes_the_adopted_value_before_the_scope_returns() {
    let log = new_log();
    let log_ref = &log;
    let value = common::run(scope(|s| async move {
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
    let result: Result<(), String> = common::run(scope(|s| async move {
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
    common::run(scope(|s| async move {
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
    common::run(scope(|s| async move {
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
        common::run(scope(|s| async move {
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
    common::run(scope(|outer| async move {
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
fn deferred_futures_run_last_in_first_out_after_every_child_finished() {
    let log = new_log();
    let log_ref = &log;
    common::run(scope(|s| async move {
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
    common::run(scope(|s| async move {
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
    common::run(scope(|s| async move {
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
fn polling_a_finished_close_again_panics_clearly() {
    let log = new_log();
    let log_ref = &log;
    common::run(scope(|s| async move {
        let mut close = std::pin::pin!(s.adopt(Conn::open("a", log_ref)).close());
        (&mut close).await;
        let waker = std::task::Waker::noop();
        let again = panic::catch_unwind(AssertUnwindSafe(|| {
            close
                .as_mut()
                .poll(&mut std::task::Context::from_waker(waker))
                .is_ready()
        }));
        let message = panic_message(&*again.expect_err("a second poll panics"));
        assert!(
            message.contains("`Adopted::close` polled after it completed"),
            "{message}"
        );
    }));
    assert_eq!(entries(&log).last().map(String::as_str), Some("a: drop"));
}

#[test]
fn a_close_dropped_midway_hands_the_value_back_for_a_full_prepare_drop() {
    let log = new_log();
    let log_ref = &log;
    common::run(scope(|s| async move {
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
        common::run(scope(|s| async move {
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

#[test]
fn spawning_from_a_clean_up_panics_with_a_clear_message() {
    let caught = panic::catch_unwind(AssertUnwindSafe(|| {
        common::run(scope(|s| async move {
            let handle = s.clone();
            s.defer(async move {
                drop(handle.spawn(async {}));
            });
        }))
    }));
    let payload = caught.expect_err("spawn from clean-up is refused");
    assert!(
        panic_message(&*payload).contains("spawn while the scope's clean-up runs"),
        "{}",
        panic_message(&*payload)
    );
}

#[test]
fn a_clean_up_may_defer_more_clean_up_which_runs_next() {
    let log = new_log();
    let log_ref = &log;
    common::run(scope(|s| async move {
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
    common::run(local_scope(|s| async move {
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
    common::run(fut);
}

#[test]
fn a_guard_dropped_by_a_running_clean_up_still_gets_its_async_close() {
    let log = new_log();
    let log_ref = &log;
    common::run(scope(|s| async move {
        let conn = s.adopt(Conn::open("a", log_ref));
        // Deferred after the adoption, so it runs first, and drops the guard
        // while the clean-up is running.
        s.defer(async move {
            let _conn = conn;
        });
    }));
    assert_eq!(
        entries(&log),
        with_open("a", closed_then_dropped("a")),
        "the value handed back mid-clean-up takes its slot and is closed"
    );
}

#[test]
fn a_guard_whose_slot_was_passed_empty_is_closed_when_it_comes_back() {
    let log = new_log();
    let log_ref = &log;
    common::run(scope(|s| async move {
        let holder = std::sync::Arc::new(std::sync::Mutex::new(None));
        let held = holder.clone();
        // Runs last: by then the adoption's slot below was found empty.
        s.defer(async move {
            drop(held.lock().unwrap().take());
        });
        *holder.lock().unwrap() = Some(s.adopt(Conn::open("a", log_ref)));
    }));
    assert_eq!(
        entries(&log),
        with_open("a", closed_then_dropped("a")),
        "a guard that outlived its slot is still closed before the scope returns"
    );
}
