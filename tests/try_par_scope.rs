//! `try_par_scope`: `try_scope`'s error policy with `par_scope`'s threads.
//!
//! As in `par_scope_threads.rs`, a test that needs two children polled at
//! once spawns a heavy first child (a scope times its first child poll
//! alone, so the rest of that batch fans out) and runs in a rayon pool of
//! exactly two threads of its own.
#![cfg(feature = "parallel")]

mod common;
mod par_support;

use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use common::panic_message;
use futures::FutureExt;
use futures::executor::block_on;
use par_support::{digest, in_a_pool_of_two, spin_for, spin_until};
use taskscope::{Builder, CancelReason, CancelToken, try_par_scope};

#[test]
fn a_failing_child_cancels_a_sibling_running_on_another_thread() {
    let (result, sibling) = in_a_pool_of_two(|| {
        let started = AtomicBool::new(false);
        let started = &started;
        let sibling = Mutex::new(None::<(ThreadId, CancelReason)>);
        let sibling = &sibling;
        let failing = Mutex::new(None::<ThreadId>);
        let failing = &failing;
        let result: Result<(), &str> = block_on(try_par_scope(|s| async move {
            s.spawn(async { spin_for(Duration::from_millis(3)) });
            s.spawn_try(async move {
                // Fails only while the sibling is inside its poll: the
                // cancellation must reach it on its own thread.
                spin_until(started, "the sibling never started");
                *failing.lock().unwrap() = Some(thread::current().id());
                Err::<(), _>("boom")
            });
            s.spawn_try(async move {
                started.store(true, Ordering::SeqCst);
                let reason = wait_for_cancellation();
                *sibling.lock().unwrap() = Some((thread::current().id(), reason));
                Ok(())
            });
            Ok(())
        }));
        let failing = failing.lock().unwrap().expect("the failing child ran");
        let (thread, reason) = sibling.lock().unwrap().clone().expect("the sibling ran");
        assert_ne!(failing, thread, "the two children ran on two threads");
        (result, reason)
    });
    assert_eq!(result, Err("boom"), "the child's own error is the scope's");
    assert!(
        matches!(sibling.origin(), CancelReason::Failed(debug) if &**debug == "\"boom\""),
        "the sibling saw the failure as its reason: {sibling:?}"
    );
}

/// Spins until the running task's token is cancelled (the cancelling child
/// runs on another thread), or fails the test after a long time rather than
/// hanging it; returns the reason.
fn wait_for_cancellation() -> CancelReason {
    let started = Instant::now();
    loop {
        if let Err(cancelled) = taskscope::checkpoint() {
            return cancelled.reason().clone();
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the cancellation never reached this child"
        );
        std::hint::spin_loop();
    }
}

#[test]
fn one_error_is_kept_and_the_rest_are_counted_when_every_parallel_child_fails() {
    const CHILDREN: usize = 64;
    let (result, suppressed, handles_failed, threads) = in_a_pool_of_two(|| {
        let threads = Mutex::new(HashSet::<ThreadId>::new());
        let threads = &threads;
        block_on(async {
            let mut outcome = None;
            let result: Result<(), usize> = try_par_scope(|s| {
                let outcome = &mut outcome;
                async move {
                    s.spawn(async { spin_for(Duration::from_millis(3)) });
                    let handles: Vec<_> = (0..CHILDREN)
                        .map(|i| {
                            s.spawn_try(async move {
                                threads.lock().unwrap().insert(thread::current().id());
                                spin_for(Duration::from_micros(200));
                                Err::<(), _>(i)
                            })
                        })
                        .collect();
                    let mut failed = 0;
                    for handle in handles {
                        failed += usize::from(handle.await.is_err());
                    }
                    *outcome = Some((s.suppressed_errors(), failed));
                    Ok(())
                }
            })
            .await;
            let (suppressed, failed) = outcome.expect("the body finished");
            let threads = threads.lock().unwrap().len();
            (result, suppressed, failed, threads)
        })
    });
    let first = result.expect_err("every child failed");
    assert!(first < CHILDREN, "the error is one child's: {first}");
    assert_eq!(suppressed, CHILDREN - 1, "every later error is counted");
    assert_eq!(
        handles_failed, CHILDREN,
        "every handle says its child failed"
    );
    assert_eq!(threads, 2, "the children were spread over both threads");
}

#[test]
fn children_borrow_and_return_results_from_two_threads() {
    let lines: Vec<String> = (1..=2_000_u64).map(|n| n.to_string()).collect();
    let lines = &lines;
    let total: Result<u64, String> = in_a_pool_of_two(|| {
        block_on(try_par_scope(|s| async move {
            let handles: Vec<_> = lines
                .chunks(50)
                .map(|chunk| {
                    s.spawn_try(async move {
                        let mut sum = 0;
                        for line in chunk {
                            std::hint::black_box(digest(line, 20));
                            sum += line.parse::<u64>().map_err(|e| e.to_string())?;
                        }
                        Ok(sum)
                    })
                })
                .collect();
            let mut total = 0;
            for handle in handles {
                total += handle.await.map_err(|c| c.to_string())?;
            }
            Ok(total)
        }))
    });
    assert_eq!(total, Ok(2_000 * 2_001 / 2));
}

#[test]
fn a_panic_on_a_worker_wins_over_an_earlier_error() {
    let outcome = in_a_pool_of_two(|| {
        std::panic::catch_unwind(AssertUnwindSafe(|| {
            let failed = AtomicBool::new(false);
            let failed = &failed;
            block_on(try_par_scope(|s| async move {
                s.spawn(async { spin_for(Duration::from_millis(3)) });
                s.spawn_try(async move {
                    failed.store(true, Ordering::SeqCst);
                    Err::<(), _>("recorded first")
                });
                s.spawn(async move {
                    spin_until(failed, "the failing child never ran");
                    panic!("the worker panicked");
                });
                Ok::<(), &str>(())
            }))
        }))
    });
    let payload = outcome.expect_err("the panic is re-raised, not turned into an Err");
    assert_eq!(panic_message(&*payload), "the worker panicked");
}

#[test]
fn a_builder_parent_token_reaches_the_parallel_children() {
    let parent = CancelToken::new();
    parent.cancel();
    let seen: Result<Vec<bool>, ()> = block_on(
        Builder::new()
            .parent(&parent)
            .try_par_scope(|s| async move {
                let handles: Vec<_> = (0..4)
                    .map(|_| s.spawn_try(async { Ok(taskscope::checkpoint().is_err()) }))
                    .collect();
                let mut seen = Vec::new();
                for handle in handles {
                    seen.push(handle.await.expect("no child failed"));
                }
                Ok(seen)
            })
            .boxed(),
    );
    assert_eq!(
        seen,
        Ok(vec![true; 4]),
        "every child saw the parent's cancel"
    );
}
