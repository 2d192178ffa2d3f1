//! `try_scope`: the first error cancels the scope, which still joins everything.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use common::yield_once;
use taskscope::{CancelReason, try_scope};

#[test]
fn an_error_in_the_body_cancels_the_children_and_is_returned_after_they_finish() {
    let child_saw = std::sync::Mutex::new(None);
    let child_saw = &child_saw;
    let result: Result<(), &str> = common::run(try_scope(|s| async move {
        s.spawn(async move {
            let cancelled = taskscope::cancelled().await;
            *child_saw.lock().unwrap() = Some(cancelled.into_reason());
        });
        yield_once().await;
        Err("body failed")
    }));
    assert_eq!(result, Err("body failed"));
    let reason = child_saw
        .lock()
        .unwrap()
        .take()
        .expect("the child finished first");
    match reason.origin() {
        CancelReason::Failed(text) => assert_eq!(&**text, "\"body failed\""),
        other => panic!("children must see the body's error as the reason: {other:?}"),
    }
}

#[test]
fn an_error_in_a_child_cancels_its_siblings_and_wins_over_the_bodys_ok() {
    let sibling_finished = AtomicBool::new(false);
    let sibling_finished = &sibling_finished;
    let result: Result<&str, String> = common::run(try_scope(|s| async move {
        let failing = s.spawn_try(async { Err::<(), _>(String::from("child failed")) });
        s.spawn(async move {
            taskscope::cancelled().await;
            sibling_finished.store(true, Ordering::SeqCst);
        });
        let cancelled = failing.await.expect_err("the handle reports the failure");
        assert!(
            matches!(cancelled.reason(), CancelReason::Failed(text) if &**text == "\"child failed\"")
        );
        Ok("the body did not notice")
    }));
    assert_eq!(result, Err(String::from("child failed")));
    assert!(sibling_finished.load(Ordering::SeqCst));
}

#[test]
fn an_error_in_a_grandchild_scope_reaches_the_outer_scope() {
    let outer_sibling_reason = std::sync::Mutex::new(None);
    let outer_sibling_reason = &outer_sibling_reason;
    let result: Result<(), String> = common::run(try_scope(|s| async move {
        s.spawn(async move {
            let cancelled = taskscope::cancelled().await;
            *outer_sibling_reason.lock().unwrap() = Some(cancelled.into_reason());
        });
        s.spawn_try(async {
            // A scope inside a child: its token hangs under the child's.
            try_scope(|inner| async move {
                inner.spawn_try(async { Err::<(), _>(String::from("deep failure")) });
                Ok(())
            })
            .await
        });
        Ok(())
    }));
    assert_eq!(result, Err(String::from("deep failure")));
    let reason = outer_sibling_reason
        .lock()
        .unwrap()
        .take()
        .expect("the sibling was joined");
    assert!(matches!(reason.origin(), CancelReason::Failed(text) if text.contains("deep failure")));
}

#[test]
fn later_errors_are_counted_as_suppressed() {
    let suppressed = AtomicUsize::new(usize::MAX);
    let suppressed = &suppressed;
    let result: Result<(), &str> = common::run(try_scope(|s| async move {
        let first = s.spawn_try(async { Err::<(), _>("first") });
        let second = s.spawn_try(async {
            taskscope::cancelled().await;
            Err::<(), _>("second")
        });
        let second_error = second.await.expect_err("the second child failed too");
        assert!(
            matches!(second_error.reason(), CancelReason::Failed(text) if &**text == "\"second\"")
        );
        assert!(first.await.is_err());
        suppressed.store(s.suppressed_errors(), Ordering::SeqCst);
        // Also a later error: the scope keeps the first one.
        Err("body gave up")
    }));
    assert_eq!(result, Err("first"));
    assert_eq!(suppressed.load(Ordering::SeqCst), 1);
}

/// An error that counts its drops.
#[derive(Debug)]
struct Failure {
    name: &'static str,
    drops: std::sync::Arc<AtomicUsize>,
}

impl Drop for Failure {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn later_errors_are_dropped_before_the_scope_returns_and_the_first_is_kept() {
    let drops = std::sync::Arc::new(AtomicUsize::new(0));
    let fail = |name| Failure {
        name,
        drops: drops.clone(),
    };
    let (first, second, body) = (fail("first"), fail("second"), fail("body"));
    let result: Result<(), Failure> = common::run(try_scope(|s| async move {
        let first_failed = s.spawn_try(async move { Err::<(), _>(first) });
        assert!(first_failed.await.is_err());
        let second_failed = s.spawn_try(async move { Err::<(), _>(second) });
        assert!(second_failed.await.is_err());
        Err(body)
    }));
    assert_eq!(
        drops.load(Ordering::SeqCst),
        2,
        "the second and the body's error were dropped"
    );
    let kept = result.expect_err("the first error is returned");
    assert_eq!(kept.name, "first");
    drop(kept);
    assert_eq!(drops.load(Ordering::SeqCst), 3);
}

#[test]
fn without_errors_the_bodys_value_is_returned() {
    let result: Result<u32, &str> = common::run(try_scope(|s| async move {
        let a = s.spawn_try(async { Ok::<_, &str>(20) });
        let b = s.spawn(async { 22 });
        Ok(a.await.unwrap() + b.await)
    }));
    assert_eq!(result, Ok(42));
}

#[test]
fn a_child_ignoring_the_cancellation_is_still_joined() {
    let steps = AtomicUsize::new(0);
    let steps = &steps;
    let result: Result<(), &str> = common::run(try_scope(|s| async move {
        s.spawn(async move {
            // Never looks at its token.
            for _ in 0..10 {
                yield_once().await;
                steps.fetch_add(1, Ordering::SeqCst);
            }
        });
        Err("stop")
    }));
    assert_eq!(result, Err("stop"));
    assert_eq!(steps.load(Ordering::SeqCst), 10);
}

#[test]
fn a_panicking_child_is_reraised_not_turned_into_an_error() {
    let outcome = std::panic::catch_unwind(|| {
        common::run(try_scope(|s| async move {
            s.spawn(async { panic!("child panicked") });
            Ok::<_, &str>(())
        }))
    });
    let payload = outcome.expect_err("the panic is re-raised by the scope");
    assert_eq!(common::panic_message(&*payload), "child panicked");
}

#[test]
fn the_builder_hangs_a_try_scope_under_a_given_token() {
    let parent = taskscope::CancelToken::new();
    parent.cancel();
    let result: Result<bool, &str> = common::run(
        taskscope::Builder::new()
            .parent(&parent)
            .try_scope(|s| async move { Ok(s.token().is_cancelled()) }),
    );
    assert_eq!(result, Ok(true));
    // Cancelled while the scope runs: the cancellation reaches its children.
    let parent = taskscope::CancelToken::new();
    let parent_ref = &parent;
    let seen: Result<CancelReason, &str> = common::run(
        taskscope::Builder::new()
            .parent(&parent)
            .try_scope(|s| async move {
                let child = s.spawn(async { taskscope::cancelled().await.reason().clone() });
                yield_once().await;
                parent_ref.cancel();
                Ok(child.await)
            }),
    );
    let reason = seen.expect("no error");
    assert!(matches!(reason, CancelReason::Parent(_)), "{reason:?}");
    assert!(
        matches!(reason.origin(), CancelReason::Requested),
        "{reason:?}"
    );
}

#[test]
fn a_child_can_spawn_failing_siblings_through_a_cloned_handle() {
    let result: Result<(), String> = common::run(try_scope(|s| async move {
        let inner = s.clone();
        s.spawn(async move {
            inner.spawn_try(async { Err::<(), _>(String::from("from a nested spawn")) });
        });
        Ok(())
    }));
    assert_eq!(result, Err(String::from("from a nested spawn")));
}

#[test]
fn a_failing_clean_up_is_the_scopes_error_only_if_there_was_none() {
    let clean: Result<(), String> = common::run(try_scope(|s| async move {
        s.defer_try(async { Err(String::from("close failed")) });
        Ok(())
    }));
    assert_eq!(clean, Err(String::from("close failed")));

    let suppressed = AtomicUsize::new(usize::MAX);
    let suppressed = &suppressed;
    let failed: Result<(), String> = common::run(try_scope(|s| async move {
        let counter = s.clone();
        s.defer(async move { suppressed.store(counter.suppressed_errors(), Ordering::SeqCst) });
        s.defer_try(async { Err(String::from("close failed")) });
        Err(String::from("body failed"))
    }));
    assert_eq!(failed, Err(String::from("body failed")));
    assert_eq!(
        suppressed.load(Ordering::SeqCst),
        1,
        "the clean-up's error was counted, not returned"
    );
}

#[test]
fn a_try_scope_built_with_a_clean_up_timeout_applies_it() {
    let mut fut = Box::pin(
        taskscope::Builder::new()
            .cleanup_timeout_when(|| std::future::ready(()))
            .try_scope(|s| async move {
                // Ignores every cancellation: only the timeout ends it.
                s.defer(std::future::pending::<()>());
                Ok::<_, String>(7)
            }),
    );
    let waker = common::CountingWaker::new();
    let ready = (0..5).find_map(|_| match waker.poll(fut.as_mut()) {
        std::task::Poll::Ready(result) => Some(result),
        std::task::Poll::Pending => None,
    });
    assert_eq!(ready, Some(Ok(7)), "the timeout cut the stuck clean-up off");
}

#[test]
fn an_error_after_the_scope_was_cancelled_is_still_the_scopes_error() {
    let mut reason = None;
    let result: Result<(), &str> = common::run(try_scope(|s| {
        let reason = &mut reason;
        async move {
            s.cancel();
            let failed = s.spawn_try(async { Err::<(), _>("late") }).await;
            assert!(failed.is_err(), "the handle reports the failure");
            *reason = s.token().reason();
            Ok(())
        }
    }));
    assert_eq!(result, Err("late"), "cancelled first, the error still wins");
    assert!(
        matches!(reason, Some(CancelReason::Requested)),
        "the token keeps its first reason: {reason:?}"
    );
}

#[test]
fn a_named_fallible_child_shows_its_name() {
    let result: Result<(), ()> = common::run(try_scope(|s| async move {
        s.spawn_try_named("parse", async {
            taskscope::cancelled().await;
            Ok(())
        });
        let snapshot = s.snapshot();
        assert_eq!(snapshot.scopes[0].tasks[0].name.as_deref(), Some("parse"));
        s.cancel();
        Ok(())
    }));
    assert!(result.is_ok());
}
