//! A nested `par_scope` in a child that a helper of an outer fan-out polls
//! must not wait through rayon's fork-join: that wait runs other pool jobs,
//! and one of them may wait for the executor whose thread owns the outer
//! fan-out, which waits for the helper.
//!
//! Its own test binary: it builds rayon's global pool, of two threads.
#![cfg(feature = "parallel")]

mod par_support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use futures::executor::block_on;
use par_support::spin_for;
use taskscope::par_scope;

/// An inner scope of three children; the second starts a pool job that
/// waits for the executor's other task, then all compute.
async fn inner_scope_starting_a_blocking_job(fed: &Arc<Mutex<mpsc::Receiver<()>>>) {
    par_scope(|t| async move {
        let handles: Vec<_> = (0..3)
            .map(|j| {
                t.spawn(async move {
                    if j == 1 {
                        let fed = fed.clone();
                        rayon_core::spawn(move || {
                            fed.lock().unwrap().recv().expect("the feeder sends");
                        });
                    }
                    spin_for(Duration::from_millis(if j == 1 { 2 } else { 30 }));
                })
            })
            .collect();
        futures::future::join_all(handles).await;
    })
    .await;
}

/// One run of the scenario; whether a helper (a pool thread) polled a
/// child that nests a scope, which is the case under test. Fails the test
/// on a deadlock.
fn nested_scope_on_a_helper_beside_a_blocking_job() -> bool {
    let (feed, fed) = mpsc::channel::<()>();
    let fed = Arc::new(Mutex::new(fed));
    let nested_on_helper = Arc::new(AtomicBool::new(false));
    let seen = nested_on_helper.clone();
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (fed, seen) = (&fed, &seen);
        let outer = par_scope(|s| async move {
            let handles: Vec<_> = (0..3)
                .map(|i| {
                    s.spawn(async move {
                        // The children a helper polls nest a scope.
                        if i == 0 || rayon_core::current_thread_index().is_none() {
                            spin_for(Duration::from_millis(20));
                        } else {
                            seen.store(true, Ordering::SeqCst);
                            inner_scope_starting_a_blocking_job(fed).await;
                        }
                    })
                })
                .collect();
            futures::future::join_all(handles).await;
        });
        let feeder = async move { feed.send(()).expect("the job waits") };
        block_on(async { futures::join!(outer, feeder) });
        done_tx.send(()).expect("the test waits");
    });
    done_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("deadlock: the outer scope's poll never returned");
    nested_on_helper.load(Ordering::SeqCst)
}

#[test]
fn a_nested_scope_on_a_helper_runs_no_pool_job_that_waits_for_the_outer_executor() {
    rayon_core::ThreadPoolBuilder::new()
        .num_threads(2)
        .build_global()
        .expect("the only pool of this binary");
    // Whether a helper takes a nesting child is up to the scheduler; run
    // until one did, so that the test cannot pass without its case.
    let exercised = (0..20).any(|_| nested_scope_on_a_helper_beside_a_blocking_job());
    assert!(
        exercised,
        "in 20 runs no helper polled a child that nests a scope"
    );
}
