//! Shields: clean-up that its cancelled surroundings cannot stop.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};

use common::yield_once;
use taskscope::{CancelToken, scope, shield};

#[test]
fn shielded_cleanup_in_a_cancelled_child_runs_to_the_end() {
    let cleaned = AtomicUsize::new(0);
    let cleaned = &cleaned;
    common::run(scope(|s| async move {
        let worker = s.spawn(async move {
            taskscope::cancelled().await;
            shield(async move {
                for _ in 0..5 {
                    // Each step would stop here without the shield.
                    taskscope::checkpoint().expect("a shield is not cancelled by its surroundings");
                    yield_once().await;
                    cleaned.fetch_add(1, Ordering::SeqCst);
                }
            })
            .await;
            taskscope::is_cancelled()
        });
        s.cancel();
        assert!(
            worker.await,
            "outside the shield the child is still cancelled"
        );
    }));
    assert_eq!(cleaned.load(Ordering::SeqCst), 5);
}

#[test]
fn scopes_created_inside_a_shield_hang_under_the_shield_token() {
    let (shield_token, inner_token) = common::run(scope(|s| async move {
        s.cancel();
        shield(async {
            let inner = scope(|inner| async move { inner.token().clone() }).await;
            (taskscope::current_token(), inner)
        })
        .await
    }));
    assert!(
        !inner_token.is_cancelled(),
        "the cancelled outer scope does not reach inside"
    );
    shield_token.cancel();
    assert!(inner_token.is_cancelled(), "the shield's own token does");
}

#[test]
fn a_shield_token_is_a_root_that_no_ancestor_reaches() {
    let outer = CancelToken::new();
    let inside = common::run(
        taskscope::Builder::new()
            .parent(&outer)
            .scope(|_| async { shield(async { taskscope::current_token() }).await }),
    );
    outer.cancel();
    assert!(!inside.is_cancelled());
}
