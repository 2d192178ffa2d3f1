//! The `tracing` feature with `par_scope`: pool work that a thread runs
//! while it waits for its helpers is not attributed to the scope.
//!
//! Its own test binary: the subscriber is the process's global one, because
//! the pool threads have no thread-local default.
#![cfg(all(feature = "tracing", feature = "parallel"))]

mod par_support;

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use futures::executor::block_on;
use par_support::spin_for;
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
    let pool = Arc::new(
        rayon_core::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .expect("a pool"),
    );
    let done = Arc::new(AtomicBool::new(false));
    let ran_during = Arc::new(AtomicUsize::new(0));
    let inside = Arc::new(Mutex::new(0_usize));
    // An unrelated client of the same pool, spawning jobs throughout.
    let client = {
        let (pool, done, ran_during, inside) = (
            pool.clone(),
            done.clone(),
            ran_during.clone(),
            inside.clone(),
        );
        thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                let (done, ran_during, inside) = (done.clone(), ran_during.clone(), inside.clone());
                pool.spawn(move || {
                    if !done.load(Ordering::SeqCst) {
                        ran_during.fetch_add(1, Ordering::SeqCst);
                    }
                    if inside_a_span() {
                        *inside.lock().unwrap() += 1;
                    }
                });
                spin_for(Duration::from_micros(50));
            }
        })
    };
    // The scope is polled on a pool thread, which runs other pool work
    // while it waits for its helper at the end of each fan-out.
    pool.install(|| {
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
    done.store(true, Ordering::SeqCst);
    client.join().expect("the client thread does not panic");
    pool.install(|| ());
    assert!(
        ran_during.load(Ordering::SeqCst) > 0,
        "some unrelated work ran while the scope did"
    );
    assert_eq!(
        *inside.lock().unwrap(),
        0,
        "no unrelated job ran inside the scope's or a child's span"
    );
}
