//! Loom models of the per-child waker and the scope's ready queue: a child
//! woken from another thread while the scope is being polled gets polled
//! again (no lost wake-up).
//!
//! The scope future is driven by `loom::future::block_on`, whose waker is
//! loom's: if the scope returns `Pending` and nobody will wake it, loom
//! reports a deadlock. Each model names the mutant (scripts/loom.sh
//! `--mutants`) that makes it fail.
#![cfg(loom)]

use loom::future::block_on;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;
use taskscope::scope;
use taskscope_loom_tests::{Flag, check};

/// Property: no lost wake-up. A child waits on a flag that another thread
/// sets at any point of the scope's poll (before the child's first poll,
/// while it registers, between the scope's last queue check and its
/// return...); the scope is polled again and completes, having run the
/// child to the end. The body does not await the child, so only the child's
/// waker and the ready queue can bring the scope back.
///
/// Last run: 82 interleavings (preemption bound 3, LOOM_MAX_BRANCHES=10000).
/// Fails with mutants `schedule_never_wakes` and `clear_queued_after_poll`.
#[test]
fn child_woken_from_another_thread_is_polled_again() {
    check("ready_queue::child_woken_from_another_thread", 3, || {
        let flag = Flag::new();
        let setter = {
            let flag = flag.clone();
            thread::spawn(move || flag.set())
        };
        let finished = AtomicUsize::new(0);
        let (flag, finished_ref) = (&flag, &finished);
        block_on(scope(|s| async move {
            s.spawn(async move {
                flag.wait().await;
                finished_ref.fetch_add(1, Ordering::Relaxed);
            });
        }));
        assert_eq!(finished.load(Ordering::Relaxed), 1);
        setter.join().unwrap();
    });
}

/// Property: no lost wake-up with two concurrent pushes. The body and a
/// child each wait on a flag set by its own thread; both wakes race with
/// each other and with the scope's poll (the ready queue gets two pushes,
/// possibly while the scope drains it). The scope completes with both done.
///
/// Last run: 881 interleavings (preemption bound 2, LOOM_MAX_BRANCHES=10000).
/// Fails with mutants `schedule_never_wakes` and `clear_queued_after_poll`.
#[test]
fn body_and_child_woken_from_two_threads_are_both_polled_again() {
    check(
        "ready_queue::body_and_child_woken_from_two_threads",
        2,
        || {
            let for_body = Flag::new();
            let for_child = Flag::new();
            let setters =
                [for_body.clone(), for_child.clone()].map(|flag| thread::spawn(move || flag.set()));
            let (for_body, for_child) = (&for_body, &for_child);
            let child_done = block_on(scope(|s| async move {
                let child = s.spawn(async move {
                    for_child.wait().await;
                    true
                });
                for_body.wait().await;
                child.await
            }));
            assert!(child_done);
            for setter in setters {
                setter.join().unwrap();
            }
        },
    );
}
