//! Deadlines: `cancel_when` with any future, `cancel_after`/`cancel_at` on
//! tokio's paused clock.
#![cfg(feature = "tokio")]

use std::time::Duration;

use taskscope::{CancelExt, CancelReason, scope, try_scope};
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn cancel_after_cancels_a_scope_with_the_deadline_reason_when_the_timer_fires() {
    let start = Instant::now();
    let reason = scope(|s| async move {
        s.spawn(async { taskscope::cancelled().await })
            .await
            .into_reason()
    })
    .cancel_after(Duration::from_secs(5))
    .await;
    assert!(matches!(reason.origin(), CancelReason::Deadline));
    assert!(start.elapsed() >= Duration::from_secs(5));
}

#[tokio::test(start_paused = true)]
async fn a_pending_deadline_never_prolongs_the_scope() {
    let start = Instant::now();
    let value = scope(|s| async move { s.spawn(async { 3 }).await })
        .cancel_after(Duration::from_secs(3600))
        .await;
    assert_eq!(value, 3);
    assert!(start.elapsed() < Duration::from_secs(3600));
}

#[tokio::test(start_paused = true)]
async fn a_future_sees_the_deadline_at_its_next_checkpoint_and_finishes_its_work() {
    let steps = async {
        let mut steps = 0;
        while taskscope::checkpoint().is_ok() {
            tokio::time::sleep(Duration::from_secs(1)).await;
            steps += 1;
        }
        steps
    }
    .cancel_after(Duration::from_millis(3500))
    .await;
    // Cancellation is voluntary: the step under way at 3.5 s completes.
    assert_eq!(steps, 4);
}

#[tokio::test(start_paused = true)]
async fn cancel_at_reaches_scopes_created_inside_the_future() {
    let at = Instant::now() + Duration::from_secs(2);
    let reason = async {
        scope(|s| async move {
            s.spawn(async { taskscope::cancelled().await })
                .await
                .into_reason()
        })
        .await
    }
    .cancel_at(at)
    .await;
    assert!(matches!(reason.origin(), CancelReason::Deadline));
    assert!(Instant::now() >= at);
}

#[tokio::test(start_paused = true)]
async fn a_try_scope_with_a_deadline_returns_the_error_its_children_make_of_it() {
    let result: Result<(), String> = try_scope(|s| async move {
        s.spawn_try(async {
            taskscope::cancelled().await;
            Err::<(), _>(String::from("timed out"))
        });
        Ok(())
    })
    .cancel_after(Duration::from_secs(1))
    .await;
    assert_eq!(result, Err(String::from("timed out")));
}

#[tokio::test(start_paused = true)]
async fn cancel_when_accepts_any_future_as_the_timer() {
    let (fire, deadline) = tokio::sync::oneshot::channel::<()>();
    let work =
        tokio::spawn(async { taskscope::cancelled().await.into_reason() }.cancel_when(deadline));
    tokio::task::yield_now().await;
    assert!(!work.is_finished());
    fire.send(()).unwrap();
    let reason = work.await.unwrap();
    assert!(matches!(reason, CancelReason::Deadline));
}
