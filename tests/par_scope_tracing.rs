//! The `tracing` feature with `par_scope`: pool work that a thread runs
//! while it waits for its helpers is not attributed to the scope.
//!
//! Its own test binary: the subscriber is the process's global one, because
//! the pool threads have no thread-local default.
#![cfg(all(feature = "tracing", feature = "parallel"))]

mod par_support;

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::executor::block_on;
use par_support::{beside_an_unrelated_client, spin_for};
use taskscope::par_scope;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

std::thread_local! {
    /// The spans entered on this thread, innermost last.
    static ENTERED: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

/// Keeps, per thread, the stack of entered spans; nothing else.
struct PerThreadStack {
    next_id: AtomicU64,
}

impl Subscriber for PerThreadStack {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, _: &Event<'_>) {}

    fn enter(&self, span: &Id) {
        ENTERED.with(|stack| stack.borrow_mut().push(span.into_u64()));
    }

    fn exit(&self, _: &Id) {
        ENTERED.with(|stack| stack.borrow_mut().pop());
    }
}

fn inside_a_span() -> bool {
    ENTERED.with(|stack| !stack.borrow().is_empty())
}

#[test]
fn pool_work_run_during_a_fan_out_is_outside_the_scopes_span() {
    tracing::subscriber::set_global_default(PerThreadStack {
        next_id: AtomicU64::new(1),
    })
    .expect("the only subscriber of this binary");
    // The scope is polled on a pool thread, which runs other pool work
    // while it waits for its helper at the end of each fan-out.
    let saw = beside_an_unrelated_client(inside_a_span, || {
        block_on(par_scope(|s| async move {
            for _ in 0..20 {
                let handles: Vec<_> = (0..6)
                    .map(|_| s.spawn(async { spin_for(Duration::from_millis(1)) }))
                    .collect();
                for handle in handles {
                    handle.await;
                }
            }
        }));
    });
    assert!(
        saw.ran_during > 0,
        "some unrelated work ran while the scope did"
    );
    assert_eq!(
        saw.probed_true, 0,
        "no unrelated job ran inside the scope's or a child's span"
    );
}
