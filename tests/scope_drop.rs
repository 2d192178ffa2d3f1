//! Dropping or forgetting a scope future mid-flight.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{CountingWaker, DropCounter};
use taskscope::{CancelReason, scope};

#[test]
fn dropping_the_scope_drops_each_child_once_after_telling_its_token() {
    let drops = Arc::new(AtomicUsize::new(0));
    let told = Arc::new(AtomicUsize::new(0));
    let mut fut = Box::pin(scope(|s| {
        for _ in 0..10 {
            let (drops, told) = (drops.clone(), told.clone());
            s.spawn(async move {
                let token = taskscope::current_token();
                let _counter = DropCounter(drops);
                let _check = OnDrop(move || {
                    if matches!(
                        token.reason().map(|r| r.origin().clone()),
                        Some(CancelReason::ScopeDropped)
                    ) {
                        told.fetch_add(1, Ordering::SeqCst);
                    }
                });
                std::future::pending::<()>().await;
            });
        }
        async { std::future::pending::<()>().await }
    }));
    let waker = CountingWaker::new();
    assert!(waker.poll(fut.as_mut()).is_pending());
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    drop(fut);
    assert_eq!(
        drops.load(Ordering::SeqCst),
        10,
        "every child dropped exactly once"
    );
    assert_eq!(
        told.load(Ordering::SeqCst),
        10,
        "each saw ScopeDropped before its destructor ran"
    );
}

#[test]
fn dropping_an_unpolled_scope_drops_children_that_never_ran() {
    let drops = Arc::new(AtomicUsize::new(0));
    let fut = scope(|s| {
        for _ in 0..3 {
            let counter = DropCounter(drops.clone());
            s.spawn(async move {
                let _counter = counter;
            });
        }
        async {}
    });
    drop(fut);
    assert_eq!(drops.load(Ordering::SeqCst), 3);
}

#[test]
fn a_forgotten_scope_future_never_polls_its_children_again() {
    // Run under Miri too: a forgotten scope must not let a child touch the
    // borrowed data after it is gone (children are only polled by the scope's
    // own `poll`, which nobody can call again).
    let polls = Arc::new(AtomicUsize::new(0));
    let waker = CountingWaker::new();
    {
        let data = vec![1_u8; 16];
        let data_ref = &data;
        let polls = polls.clone();
        let mut fut = Box::pin(scope(move |s| async move {
            s.spawn(async move {
                loop {
                    polls.fetch_add(1, Ordering::SeqCst);
                    assert_eq!(data_ref.len(), 16);
                    common::yield_once().await;
                }
            });
            std::future::pending::<()>().await;
        }));
        assert!(waker.poll(fut.as_mut()).is_pending());
        std::mem::forget(fut);
        drop(data);
    }
    let seen = polls.load(Ordering::SeqCst);
    // The child woke itself; the stale wake reaches only the 'static header.
    assert!(waker.count() >= 1);
    assert_eq!(
        polls.load(Ordering::SeqCst),
        seen,
        "nothing polls a forgotten child"
    );
}

struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}
