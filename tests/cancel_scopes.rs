//! Cancellation adapters used inside and around scopes, without a runtime.

mod common;

use common::yield_once;
use futures::StreamExt;
use taskscope::{CancelExt, CancelReason, CancelStreamExt, scope};

#[test]
fn a_scope_futures_token_cancels_it_from_outside() {
    let fut = scope(|s| async move { s.spawn(async { taskscope::cancelled().await }).await });
    let token = fut.token().clone();
    token.cancel();
    let cancelled = common::run(fut);
    assert!(matches!(
        cancelled.reason().origin(),
        CancelReason::Requested
    ));
}

#[test]
fn a_scope_with_cancel_when_is_cancelled_when_the_other_future_completes() {
    let (fire, deadline) = futures::channel::oneshot::channel::<()>();
    let reason = common::run(
        scope(|s| async move {
            let waiter = s.spawn(async { taskscope::cancelled().await.into_reason() });
            yield_once().await;
            fire.send(()).unwrap();
            waiter.await
        })
        .cancel_when(deadline),
    );
    assert!(matches!(reason.origin(), CancelReason::Deadline));
}

#[test]
fn until_cancelled_ambient_drops_a_childs_wait_when_the_child_is_cancelled() {
    let drops = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = common::DropCounter(drops.clone());
    let (outcome, dropped_by_then) = common::run(scope(|s| async move {
        let child = s.spawn(async move {
            let wait = async move {
                let _counter = counter;
                std::future::pending::<()>().await;
            };
            // Kept alive past its output: the wait must go when the token
            // fires, not when the adapter is dropped.
            let mut until = std::pin::pin!(wait.until_cancelled_ambient());
            let outcome = until.as_mut().await;
            (outcome, drops.load(std::sync::atomic::Ordering::SeqCst))
        });
        yield_once().await;
        child.cancel();
        child.await
    }));
    assert!(matches!(
        outcome.unwrap_err().reason(),
        CancelReason::Requested
    ));
    assert_eq!(
        dropped_by_then, 1,
        "the wait was dropped when the token fired"
    );
}

#[test]
fn a_stream_in_a_child_ends_with_one_error_when_its_scope_is_cancelled() {
    let items = common::run(scope(|s| async move {
        let consumer = s.spawn(async {
            let token = taskscope::current_token();
            let mut stream = futures::stream::iter(0..)
                .then(|n| async move {
                    yield_once().await;
                    n
                })
                .until_cancelled(&token)
                .boxed();
            let mut seen = Vec::new();
            while let Some(item) = stream.next().await {
                seen.push(item.map_err(|c| c.to_string()));
            }
            seen
        });
        for _ in 0..3 {
            yield_once().await;
        }
        s.cancel();
        consumer.await
    }));
    let (last, oks) = items.split_last().expect("at least the error");
    assert!(
        last.is_err(),
        "the stream ends with Err(Cancelled): {items:?}"
    );
    assert!(oks.iter().all(Result::is_ok));
}

#[test]
fn a_handle_cancel_after_the_scope_was_cancelled_keeps_the_scopes_reason() {
    let reasons = common::run(scope(|s| async move {
        let child = s.spawn(async {
            yield_once().await;
            // Asked before, while and after the child's own token is made.
            let before = taskscope::checkpoint().unwrap_err().reason().clone();
            let token = taskscope::current_token().reason().expect("cancelled");
            let after = taskscope::checkpoint().unwrap_err().reason().clone();
            [before, token, after]
        });
        s.token().cancel_with(CancelReason::Deadline);
        child.cancel();
        child.await
    }));
    for reason in reasons {
        assert!(
            matches!(reason, CancelReason::Parent(_))
                && matches!(reason.origin(), CancelReason::Deadline),
            "the scope's earlier deadline stays the reason: {reason:?}"
        );
    }
}

#[test]
fn a_handle_cancel_before_the_scope_is_cancelled_stays_the_childs_reason() {
    let reasons = common::run(scope(|s| async move {
        let child = s.spawn(async {
            yield_once().await;
            let before = taskscope::checkpoint().unwrap_err().reason().clone();
            let token = taskscope::current_token().reason().expect("cancelled");
            [before, token]
        });
        child.cancel();
        s.token().cancel_with(CancelReason::Deadline);
        child.await
    }));
    for reason in reasons {
        assert!(matches!(reason, CancelReason::Requested), "{reason:?}");
    }
}

/// The driver of these tests fails a future that would hang `block_on`,
/// so a cancellation that stops arriving fails its test instead of hanging
/// the suite.
#[test]
#[should_panic(expected = "pending with no wake to come")]
fn the_test_driver_fails_a_future_that_no_wake_will_finish() {
    common::run(std::future::pending::<()>());
}
