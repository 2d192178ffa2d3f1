//! Bad use gets a clear message, never a hang or a lost task.

mod common;

use std::panic::AssertUnwindSafe;

use common::{CountingWaker, panic_message};
use futures::FutureExt;
use futures::executor::block_on;
use taskscope::scope;

#[test]
fn spawning_through_a_handle_that_outlived_its_scope_panics_clearly() {
    let escaped = block_on(scope(|s| async move { s }));
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
        drop(escaped.spawn(async {}));
    }));
    let message = panic_message(&*outcome.unwrap_err());
    assert!(
        message.contains("scope that has already finished"),
        "{message}"
    );
}

#[test]
fn polling_a_finished_scope_future_panics_clearly() {
    let mut fut = Box::pin(scope(|_s| async { 1 }));
    let waker = CountingWaker::new();
    assert!(waker.poll(fut.as_mut()).is_ready());
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| waker.poll(fut.as_mut())));
    assert!(panic_message(&*outcome.unwrap_err()).contains("polled after it completed"));
}

#[test]
fn polling_a_join_handle_after_it_completed_panics_clearly() {
    block_on(scope(|s| async move {
        let mut handle = s.spawn(async { 5 });
        assert_eq!((&mut handle).await, 5);
        let again = AssertUnwindSafe(&mut handle).catch_unwind().await;
        assert!(panic_message(&*again.unwrap_err()).contains("polled after it completed"));
    }));
}

#[test]
fn a_handle_of_a_child_dropped_with_its_scope_panics_clearly() {
    let escaped = std::sync::Mutex::new(None);
    let escaped_ref = &escaped;
    let mut fut = Box::pin(scope(|s| async move {
        *escaped_ref.lock().unwrap() = Some(s.spawn(std::future::pending::<()>()));
        std::future::pending::<()>().await;
    }));
    let waker = CountingWaker::new();
    assert!(waker.poll(fut.as_mut()).is_pending());
    drop(fut);
    let handle = escaped.lock().unwrap().take().unwrap();
    assert!(handle.is_finished());
    let outcome = block_on(AssertUnwindSafe(handle).catch_unwind());
    assert!(panic_message(&*outcome.unwrap_err()).contains("dropped before this child finished"));
}
