//! Panics are never lost: re-raised at the handle, or by the scope.

mod common;

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{panic_message, yield_once};
use futures::FutureExt;
use taskscope::{CancelReason, scope};

#[test]
fn a_childs_panic_is_re_raised_where_its_handle_is_awaited() {
    let caught = common::run(scope(|s| async move {
        let handle = s.spawn(async {
            yield_once().await;
            panic!("child failed");
        });
        AssertUnwindSafe(handle).catch_unwind().await
    }));
    let payload = caught.expect_err("awaiting the handle re-raises");
    assert_eq!(panic_message(&*payload), "child failed");
}

#[test]
fn an_unawaited_panic_is_raised_by_the_scope_after_the_others_finished() {
    let finished = AtomicUsize::new(0);
    let finished_ref = &finished;
    let outcome = common::run(
        AssertUnwindSafe(scope(|s| async move {
            drop(s.spawn(async { panic!("nobody awaits me") }));
            for _ in 0..5 {
                s.spawn(async move {
                    for _ in 0..3 {
                        yield_once().await;
                    }
                    finished_ref.fetch_add(1, Ordering::SeqCst);
                });
            }
        }))
        .catch_unwind(),
    );
    let payload = outcome.expect_err("the scope re-raises the child's panic");
    assert_eq!(panic_message(&*payload), "nobody awaits me");
    assert_eq!(
        finished.load(Ordering::SeqCst),
        5,
        "the other children were joined first"
    );
}

#[test]
fn the_first_panic_cancels_the_scope_with_its_message() {
    let outcome = common::run(
        AssertUnwindSafe(scope(|s| async move {
            let watcher = s.spawn(async {
                let cancelled = taskscope::cancelled().await;
                cancelled.into_reason()
            });
            drop(s.spawn(async { panic!("boom") }));
            let reason = watcher.await;
            assert!(
                matches!(reason.origin(), CancelReason::Panicked(text) if &**text == "boom"),
                "{reason:?}"
            );
        }))
        .catch_unwind(),
    );
    assert_eq!(panic_message(&*outcome.unwrap_err()), "boom");
}

#[test]
fn a_panicking_body_still_joins_its_children() {
    let finished = AtomicUsize::new(0);
    let finished_ref = &finished;
    let outcome = common::run(
        AssertUnwindSafe(scope(|s| async move {
            s.spawn(async move {
                yield_once().await;
                finished_ref.fetch_add(1, Ordering::SeqCst);
            });
            panic!("body failed");
        }))
        .catch_unwind(),
    );
    assert_eq!(panic_message(&*outcome.unwrap_err()), "body failed");
    assert_eq!(finished.load(Ordering::SeqCst), 1);
}

#[test]
fn a_handle_whose_panic_the_scope_raised_says_so_when_awaited_later() {
    let escaped = std::sync::Mutex::new(None);
    let escaped_ref = &escaped;
    let outcome = common::run(
        AssertUnwindSafe(scope(|s| async move {
            *escaped_ref.lock().unwrap() = Some(s.spawn(async { panic!("first") }));
        }))
        .catch_unwind(),
    );
    assert_eq!(panic_message(&*outcome.unwrap_err()), "first");
    let handle = escaped.lock().unwrap().take().unwrap();
    let late = common::run(AssertUnwindSafe(handle).catch_unwind());
    assert!(panic_message(&*late.unwrap_err()).contains("already re-raised"));
}

#[test]
fn a_panicking_destructor_of_a_finished_child_counts_as_its_panic() {
    struct Explodes;
    impl Drop for Explodes {
        fn drop(&mut self) {
            panic!("destructor failed");
        }
    }
    let outcome = common::run(
        AssertUnwindSafe(scope(|s| async move {
            drop(s.spawn(async {
                let _bomb = Explodes;
                yield_once().await;
            }));
        }))
        .catch_unwind(),
    );
    assert_eq!(panic_message(&*outcome.unwrap_err()), "destructor failed");
}

#[test]
fn a_panicking_cancel_callback_does_not_lose_the_children_polled_after_it() {
    let finished = AtomicUsize::new(0);
    let finished_ref = &finished;
    let outcome = common::run(
        AssertUnwindSafe(scope(|s| async move {
            s.token().on_cancel(|_| panic!("callback failed")).forget();
            // The first child panics: the scope is cancelled and the callback
            // panics, in the same batch as the siblings polled after it.
            drop(s.spawn(async { panic!("child failed") }));
            for _ in 0..3 {
                s.spawn(async move {
                    yield_once().await;
                    finished_ref.fetch_add(1, Ordering::SeqCst);
                });
            }
        }))
        .catch_unwind(),
    );
    assert_eq!(
        panic_message(&*outcome.unwrap_err()),
        "child failed",
        "the first panic wins"
    );
    assert_eq!(
        finished.load(Ordering::SeqCst),
        3,
        "every sibling was still polled and joined"
    );
}

/// An output whose destructor panics.
struct PanicsWhenDropped;

impl Drop for PanicsWhenDropped {
    fn drop(&mut self) {
        panic!("output dropped");
    }
}

#[test]
fn an_unwanted_outputs_panicking_destructor_is_raised_by_the_scope_after_the_others_ran() {
    let finished = AtomicUsize::new(0);
    let finished_ref = &finished;
    let outcome = common::run(
        AssertUnwindSafe(scope(|s| async move {
            // Spawned first, so that the siblings are in the same batch,
            // behind it: its output is dropped as it finishes (no handle).
            drop(s.spawn(async { PanicsWhenDropped }));
            for _ in 0..3 {
                s.spawn(async move {
                    yield_once().await;
                    finished_ref.fetch_add(1, Ordering::SeqCst);
                });
            }
        }))
        .catch_unwind(),
    );
    let payload = outcome.expect_err("the scope raises the destructor's panic");
    assert_eq!(panic_message(&*payload), "output dropped");
    assert_eq!(
        finished.load(Ordering::SeqCst),
        3,
        "the siblings polled after it were not dropped unpolled"
    );
}

/// A waker whose `wake` panics, as a broken executor's might.
struct PanickingWaker;

impl std::task::Wake for PanickingWaker {
    fn wake(self: std::sync::Arc<Self>) {
        panic!("waker panicked");
    }
}

#[test]
fn a_handles_panicking_waker_is_raised_by_the_scope_and_the_output_is_kept() {
    use std::future::Future;
    use std::task::{Context, Waker};
    let got = AtomicUsize::new(0);
    let got_ref = &got;
    let outcome = common::run(
        AssertUnwindSafe(scope(|s| async move {
            let mut handle = s.spawn(async {
                yield_once().await;
                5
            });
            // Registers the panicking waker with the handle, as a handle
            // polled by another executor would, and leaves it there while
            // the child finishes.
            let waker = Waker::from(std::sync::Arc::new(PanickingWaker));
            let first = std::pin::Pin::new(&mut handle).poll(&mut Context::from_waker(&waker));
            assert!(first.is_pending());
            while !handle.is_finished() {
                yield_once().await;
            }
            got_ref.store(handle.await, Ordering::SeqCst);
        }))
        .catch_unwind(),
    );
    let payload = outcome.expect_err("the scope raises the waker's panic");
    assert_eq!(panic_message(&*payload), "waker panicked");
    assert_eq!(
        got.load(Ordering::SeqCst),
        5,
        "the body went on and took the output"
    );
}

#[test]
fn a_body_closure_that_panics_after_spawning_drops_its_children_and_cancels_the_scope() {
    let dropped = std::sync::Arc::new(AtomicUsize::new(0));
    let probe = std::cell::RefCell::new(None);
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
        scope(|s| {
            let guard = common::DropCounter(dropped.clone());
            s.spawn(async move {
                let _guard = guard;
                std::future::pending::<()>().await;
            });
            *probe.borrow_mut() = Some(s.token().child());
            panic!("closure failed");
            #[allow(unreachable_code)]
            async {}
        })
    }));
    let payload = outcome.expect_err("the closure's panic propagates");
    assert_eq!(panic_message(&*payload), "closure failed");
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        1,
        "the child was dropped once"
    );
    let probe = probe.borrow_mut().take().expect("the closure made a probe");
    let reason = probe.reason().expect("the scope's token was cancelled");
    assert!(
        matches!(reason.origin(), CancelReason::ScopeDropped),
        "{reason}"
    );
}
