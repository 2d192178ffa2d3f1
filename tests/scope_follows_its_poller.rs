//! A scope future made in one place and awaited in another follows the
//! cancellation of the task (or combinator branch) that polls it, as
//! `async { scope(..).await }` there would. Each scope below has a child that
//! finishes only once it is cancelled, so without the link `run` fails with
//! "pending with no wake to come" rather than hanging.

mod common;

use common::run;
use futures::StreamExt;
use taskscope::{Builder, CancelReason, CancelToken, ScopedStreamExt, scope, try_scope};

/// A scope whose one child waits for its cancellation and returns the
/// reason its scope's token reports then.
fn scope_ending_when_cancelled() -> impl std::future::Future<Output = Option<CancelReason>> {
    scope(|s| async move {
        s.spawn(async {
            let _ = taskscope::cancelled().await;
        })
        .await;
        s.token().reason()
    })
}

fn origin(reason: Option<CancelReason>) -> CancelReason {
    reason.expect("the scope was cancelled").origin().clone()
}

#[test]
fn a_scope_that_loses_a_race_is_cancelled_although_made_outside_its_branch() {
    let seen = std::sync::Mutex::new(None);
    let winner = run(async {
        // Made here, outside the race; awaited inside its second branch.
        let made_outside = scope_ending_when_cancelled();
        let loser = async {
            *seen.lock().unwrap() = made_outside.await;
            Some(())
        };
        taskscope::race(async { None }, loser).await
    });
    assert!(winner.is_none(), "the ready branch won");
    let reason = seen.into_inner().unwrap();
    assert!(matches!(origin(reason), CancelReason::LostRace));
}

#[test]
fn cancelling_a_child_that_is_a_scope_reaches_that_scopes_children() {
    let reason = run(scope(|s| async move {
        let inner = s.spawn(scope_ending_when_cancelled());
        common::yield_once().await; // the inner scope is polled and waits
        inner.cancel();
        inner.await
    }));
    assert!(matches!(origin(reason), CancelReason::Requested));
}

#[test]
fn cancelling_a_buffered_in_stream_reaches_items_that_are_scopes() {
    let reasons = run(scope(|s| async move {
        let mut items = futures::stream::iter(0..2)
            .map(|_| scope_ending_when_cancelled())
            .buffered_in(2, &s);
        let first = std::pin::pin!(items.next());
        let _ = futures::poll!(first); // both items spawned and waiting
        items.cancel();
        items.map(origin).collect::<Vec<_>>().await
    }));
    assert_eq!(reasons.len(), 2);
    assert!(reasons.iter().all(|r| matches!(r, CancelReason::Requested)));
}

#[test]
fn a_failing_try_scope_in_try_join_cancels_its_sibling_scope() {
    let result: Result<((), ()), &str> = run(async {
        let failing = try_scope(|_| async { Err("failed") });
        let waiting = try_scope(|s| async move {
            s.spawn(async {
                let _ = taskscope::cancelled().await;
            })
            .await;
            Ok(())
        });
        taskscope::try_join(failing, waiting).await
    });
    assert_eq!(result, Err("failed"));
}

/// Whether a scope made by `builder` outside a race, losing it, finds its
/// token cancelled once it runs again after a yield.
fn losing_scope_sees_its_token_cancelled(builder: Builder) -> bool {
    let seen = std::sync::Mutex::new(None);
    run(async {
        let made_outside = builder.scope(|s| async move {
            common::yield_once().await;
            s.token().is_cancelled()
        });
        let loser = async {
            // Pending at its first poll whichever branch a race starts
            // with: the scope's yield alone would let it finish in it.
            common::yield_once().await;
            *seen.lock().unwrap() = Some(made_outside.await);
            true
        };
        assert!(!taskscope::race(async { false }, loser).await);
    });
    seen.into_inner()
        .unwrap()
        .expect("the loser ran to its end")
}

#[test]
fn a_scope_made_outside_a_losing_branch_sees_the_branch_cancelled() {
    assert!(losing_scope_sees_its_token_cancelled(Builder::new()));
}

#[test]
fn a_scope_with_an_explicit_parent_does_not_follow_its_poller() {
    let root = CancelToken::new();
    assert!(!losing_scope_sees_its_token_cancelled(
        Builder::new().parent(&root)
    ));
    assert!(!root.is_cancelled());
}

#[test]
fn cancel_when_around_a_boxed_scope_future_reaches_the_scope() {
    use taskscope::CancelExt;
    let reason = run(async {
        let boxed = Box::pin(scope_ending_when_cancelled());
        // `CancelExt::cancel_when`, not the scope's own: its token is made
        // at the first poll and reaches the scope through the link.
        boxed.cancel_when(async {}).await
    });
    assert!(matches!(origin(reason), CancelReason::Deadline));
}

/// A scope made with its own deadline, whose one child waits for its
/// cancellation; the reason its token reports then.
fn scope_with_its_own_deadline() -> impl std::future::Future<Output = Option<CancelReason>> {
    scope_ending_when_cancelled_with_deadline(std::future::pending::<()>())
}

fn scope_ending_when_cancelled_with_deadline(
    deadline: impl std::future::Future<Output = ()>,
) -> impl std::future::Future<Output = Option<CancelReason>> {
    scope(|s| async move {
        s.spawn(async {
            let _ = taskscope::cancelled().await;
        })
        .await;
        s.token().reason()
    })
    .cancel_when(deadline)
}

#[test]
fn a_scope_with_its_own_deadline_that_loses_a_race_is_cancelled() {
    let seen = std::sync::Mutex::new(None);
    run(async {
        let made_outside = scope_with_its_own_deadline();
        let loser = async {
            *seen.lock().unwrap() = made_outside.await;
            Some(())
        };
        assert!(taskscope::race(async { None }, loser).await.is_none());
    });
    assert!(matches!(
        origin(seen.into_inner().unwrap()),
        CancelReason::LostRace
    ));
}

#[test]
fn cancelling_a_child_that_is_a_scope_with_its_own_deadline_reaches_it() {
    let reason = run(scope(|s| async move {
        let inner = s.spawn(scope_with_its_own_deadline());
        common::yield_once().await;
        inner.cancel();
        inner.await
    }));
    assert!(matches!(origin(reason), CancelReason::Requested));
}

#[test]
fn a_scopes_own_deadline_still_cancels_it() {
    let reason = run(scope_ending_when_cancelled_with_deadline(async {}));
    assert!(matches!(reason, Some(CancelReason::Deadline)));
}
