//! Round trips between `CancelToken` and tokio-util's `CancellationToken`.
#![cfg(feature = "tokio-util")]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use taskscope::{CancelReason, CancelToken};
use tokio_util::sync::CancellationToken;

fn poll_once<F: Future>(fut: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    fut.poll(&mut Context::from_waker(Waker::noop()))
}

#[test]
fn a_tokio_util_token_made_from_ours_follows_it() {
    let ours = CancelToken::new();
    let theirs = ours.to_tokio_util();
    assert!(!theirs.is_cancelled());
    ours.cancel();
    assert!(theirs.is_cancelled());
}

#[test]
fn cancelling_the_tokio_util_side_does_not_cancel_ours() {
    let ours = CancelToken::new();
    ours.to_tokio_util().cancel();
    assert!(!ours.is_cancelled());
}

#[test]
fn our_token_follows_a_tokio_util_token_through_the_bridge() {
    let theirs = CancellationToken::new();
    let (ours, bridge) = CancelToken::from_tokio_util(&theirs);
    let mut bridge = pin!(bridge);
    assert!(poll_once(bridge.as_mut()).is_pending());
    theirs.cancel();
    assert!(poll_once(bridge.as_mut()).is_ready());
    assert!(
        matches!(ours.reason(), Some(CancelReason::Parent(inner)) if matches!(*inner, CancelReason::Requested))
    );
}

#[test]
fn the_bridge_ends_when_our_token_is_cancelled_first() {
    let theirs = CancellationToken::new();
    let (ours, bridge) = CancelToken::from_tokio_util(&theirs);
    let mut bridge = pin!(bridge);
    assert!(poll_once(bridge.as_mut()).is_pending());
    ours.cancel();
    assert!(
        poll_once(bridge.as_mut()).is_ready(),
        "nothing left to forward"
    );
    assert!(!theirs.is_cancelled());
}

#[test]
fn an_already_cancelled_tokio_util_token_gives_a_cancelled_token() {
    let theirs = CancellationToken::new();
    theirs.cancel();
    let (ours, _bridge) = CancelToken::from_tokio_util(&theirs);
    assert!(ours.is_cancelled());
}

#[test]
fn a_round_trip_tokio_util_to_ours_to_tokio_util_carries_the_cancellation() {
    let app = CancellationToken::new();
    let (ours, bridge) = CancelToken::from_tokio_util(&app);
    let child = ours.child();
    let back = child.to_tokio_util();
    let mut bridge = pin!(bridge);
    assert!(poll_once(bridge.as_mut()).is_pending());
    app.cancel();
    assert!(poll_once(bridge.as_mut()).is_ready());
    assert!(back.is_cancelled());
}

#[test]
fn a_round_trip_ours_to_tokio_util_to_ours_carries_the_cancellation() {
    let ours = CancelToken::new();
    let (again, bridge) = CancelToken::from_tokio_util(&ours.to_tokio_util());
    let mut bridge = pin!(bridge);
    assert!(poll_once(bridge.as_mut()).is_pending());
    ours.cancel();
    assert!(poll_once(bridge.as_mut()).is_ready());
    assert!(again.is_cancelled());
}

#[tokio::test]
async fn a_scope_hangs_under_an_application_shutdown_token() {
    let shutdown = CancellationToken::new();
    let (parent, bridge) = CancelToken::from_tokio_util(&shutdown);
    let trigger = shutdown.clone();
    let reason = taskscope::Builder::new()
        .parent(&parent)
        .scope(|s| async move {
            let worker = s.spawn(async { taskscope::cancelled().await.into_reason() });
            tokio::task::yield_now().await;
            trigger.cancel();
            worker.await
        })
        .cancel_when(bridge)
        .await;
    assert!(matches!(reason.origin(), CancelReason::Requested));
}
