//! `par_scope`: which threads poll the children, and panics on them.
//!
//! Several tests rely on the fan-out rule (see `par_scope`'s docs): a batch
//! is polled inline until its expected work is worth a fan-out. Their first
//! child spins for milliseconds; a scope's first child poll is always timed,
//! so the rest of that batch fans out whatever the machine's speed. The
//! tests that need two threads at once run in a rayon pool of exactly two
//! threads of their own (`in_a_pool_of_two`), whatever the core count.
#![cfg(feature = "parallel")]

mod common;
mod par_support;

use std::collections::{HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Waker;
use std::thread::{self, ThreadId};
use std::time::Duration;

use common::{CountingWaker, panic_message};
use futures::FutureExt;
use futures::executor::block_on;
use par_support::{
    beside_an_unrelated_client, in_a_pool_of_two, spin_for, spin_until, spin_until_count,
};
use taskscope::par_scope;

#[test]
fn children_really_run_on_two_threads_at_once() {
    let seen = in_a_pool_of_two(|| {
        let arrived = AtomicUsize::new(0);
        let arrived = &arrived;
        let seen = Mutex::new(Vec::<ThreadId>::new());
        let seen = &seen;
        block_on(par_scope(|s| async move {
            // Heavy first child: the rest of the batch is worth a fan-out.
            s.spawn(async { spin_for(Duration::from_millis(3)) });
            for _ in 0..2 {
                s.spawn(async move {
                    // Both must be inside their polls at the same time to
                    // pass: only possible on two threads.
                    arrived.fetch_add(1, Ordering::SeqCst);
                    spin_until_count(arrived, 2, "the other child never ran meanwhile");
                    seen.lock().unwrap().push(thread::current().id());
                });
            }
        }));
        seen.lock().unwrap().clone()
    });
    let distinct: HashSet<_> = seen.iter().collect();
    assert_eq!(seen.len(), 2);
    assert_eq!(distinct.len(), 2, "the two children ran on two threads");
}

#[test]
fn a_child_woken_during_a_fan_out_is_polled_by_a_free_thread_in_the_same_poll() {
    in_a_pool_of_two(|| {
        let late_waker = Mutex::new(None::<Waker>);
        let (parked, woken, late_ran) = (
            AtomicBool::new(false),
            AtomicBool::new(false),
            AtomicBool::new(false),
        );
        let (late_waker, parked, woken, late_ran) = (&late_waker, &parked, &woken, &late_ran);
        let threads = Mutex::new(HashMap::<&str, ThreadId>::new());
        let threads = &threads;
        let mut fut = Box::pin(par_scope(|s| async move {
            s.spawn(async { spin_for(Duration::from_millis(3)) });
            // The rest is fanned out. The late child parks until `waker` wakes it.
            s.spawn(async move {
                let mut polled = false;
                std::future::poll_fn(|cx| {
                    if polled {
                        return std::task::Poll::Ready(());
                    }
                    polled = true;
                    *late_waker.lock().unwrap() = Some(cx.waker().clone());
                    parked.store(true, Ordering::SeqCst);
                    std::task::Poll::Pending
                })
                .await;
                threads
                    .lock()
                    .unwrap()
                    .insert("late", thread::current().id());
                late_ran.store(true, Ordering::SeqCst);
            });
            // Holds its thread until the late child has run, so another thread
            // must pick that child up meanwhile.
            s.spawn(async move {
                spin_until(parked, "the late child was never polled");
                let waker = late_waker.lock().unwrap().take().expect("parked");
                waker.wake();
                woken.store(true, Ordering::SeqCst);
                spin_until(late_ran, "the woken child was never polled meanwhile");
                threads
                    .lock()
                    .unwrap()
                    .insert("waker", thread::current().id());
            });
            s.spawn(async move {
                // Returns only once the late child is queued, so its thread is
                // free to pick it up.
                spin_until(woken, "the late child was never woken");
            });
        }));
        let waker = CountingWaker::new();
        assert!(
            waker.poll(fut.as_mut()).is_ready(),
            "every child finished within one poll of the scope"
        );
        let threads = threads.lock().unwrap();
        assert_ne!(threads["late"], threads["waker"]);
    });
}

#[test]
fn a_single_ready_child_is_polled_on_the_calling_thread() {
    let caller = thread::current().id();
    let seen = Mutex::new(Vec::new());
    let seen = &seen;
    block_on(par_scope(|s| async move {
        for _ in 0..5 {
            // One child at a time: each batch holds one ready child.
            s.spawn(async move {
                spin_for(Duration::from_millis(1));
                seen.lock().unwrap().push(thread::current().id());
            })
            .await;
        }
    }));
    assert_eq!(*seen.lock().unwrap(), vec![caller; 5]);
}

#[test]
fn a_childs_panic_on_another_thread_is_re_raised_at_its_handle() {
    let outcome = block_on(par_scope(|s| async move {
        s.spawn(async { spin_for(Duration::from_millis(3)) });
        let failing = s.spawn(async {
            spin_for(Duration::from_millis(1));
            panic!("child failed on a worker");
        });
        let fine = s.spawn(async {
            spin_for(Duration::from_millis(1));
            7
        });
        let caught = AssertUnwindSafe(failing).catch_unwind().await;
        (
            caught.map_err(|payload| panic_message(&*payload)),
            fine.await,
        )
    }));
    assert_eq!(outcome, (Err("child failed on a worker".to_string()), 7));
}

#[test]
fn a_panicking_cancel_callback_on_a_pool_thread_is_kept_until_the_siblings_finished() {
    // Inside a pool of two: every thread that polls children is a worker.
    let pool = rayon_core::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let callback_ran = Arc::new(AtomicBool::new(false));
    let sibling_done = AtomicBool::new(false);
    let (callback_flag, sibling_done) = (&*callback_ran.clone(), &sibling_done);
    let outcome = pool.install(|| {
        block_on(
            AssertUnwindSafe(par_scope(|s| async move {
                // A child's panic cancels the scope; this callback then
                // panics on the thread that polled that child. The scope
                // keeps that panic with the child's instead of unwinding
                // through the worker, so no sibling is left half-polled.
                let callback_ran = callback_ran.clone();
                let _registration = s.token().on_cancel(move |_| {
                    callback_ran.store(true, Ordering::SeqCst);
                    panic!("callback failed");
                });
                s.spawn(async { spin_for(Duration::from_millis(3)) });
                drop(s.spawn(async { panic!("child failed") }));
                s.spawn(async move {
                    spin_until(callback_flag, "the callback never ran");
                    spin_for(Duration::from_millis(2));
                    sibling_done.store(true, Ordering::SeqCst);
                });
                taskscope::cancelled().await;
            }))
            .catch_unwind(),
        )
    });
    let payload = outcome.expect_err("the scope re-raises the first panic");
    assert_eq!(panic_message(&*payload), "child failed");
    assert!(callback_flag.load(Ordering::SeqCst));
    assert!(
        sibling_done.load(Ordering::SeqCst),
        "the sibling finished before the scope raised the panic"
    );
}

/// A snapshot taken on another thread holds counted references to the
/// children's headers, so a cell may be freed there, after the scope
/// finished: that free must be ordered after every use of the cell on the
/// scope's thread by the cell's count alone. ThreadSanitizer
/// (scripts/tsan.sh) checks that the last release acquires what the other
/// releases published; before it did, this test failed under it.
#[test]
fn a_cell_freed_last_by_a_watchdogs_snapshot_is_ordered_after_the_scopes_uses() {
    for _ in 0..50 {
        let stop = Arc::new(AtomicBool::new(false));
        let mut watchdog = None;
        block_on(par_scope(|s| {
            let handle = s.snapshot_handle();
            let stop = stop.clone();
            watchdog = Some(thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    drop(handle.snapshot());
                }
                handle.snapshot()
            }));
            async move {
                s.spawn(async { vec![1, 2, 3] });
            }
        }));
        stop.store(true, Ordering::SeqCst);
        let watchdog = watchdog.expect("the body closure ran");
        let after = watchdog.join().expect("snapshots do not panic");
        assert!(
            after.scopes.is_empty(),
            "a finished scope is gone from its snapshots: {after:?}"
        );
    }
}

/// While a pool thread waits in a fan-out for its helpers, it runs other
/// pool work; that work must not see the task polling the scope as
/// current: not its (here cancelled) token, not its place in the tree.
#[test]
fn pool_work_stolen_during_a_fan_out_sees_no_task_of_the_scope() {
    let saw = beside_an_unrelated_client(
        || taskscope::is_cancelled() || !taskscope::snapshot().scopes.is_empty(),
        || {
            block_on(par_scope(|s| async move {
                s.cancel();
                for _ in 0..2 {
                    s.spawn(async {
                        // Nested fan-outs, made on pool threads whose slot
                        // holds this cancelled child while they wait.
                        for _ in 0..20 {
                            par_scope(|nested| async move {
                                for _ in 0..6 {
                                    nested.spawn(async { spin_for(Duration::from_millis(1)) });
                                }
                            })
                            .await;
                        }
                    });
                }
            }));
        },
    );
    assert!(
        saw.ran_during > 0,
        "some unrelated work ran while the scopes did"
    );
    assert_eq!(
        saw.probed_true, 0,
        "no unrelated job ran as part of a task of the scope"
    );
}

/// Two children that must be inside their polls at the same time.
fn pair_that_needs_two_threads(s: &taskscope::Scope<'_>, arrived: &Arc<AtomicUsize>) {
    for _ in 0..2 {
        let arrived = arrived.clone();
        s.spawn(async move {
            arrived.fetch_add(1, Ordering::SeqCst);
            spin_until_count(&arrived, 2, "the other child never ran meanwhile");
        });
    }
}

#[test]
fn two_heavy_children_of_a_new_scope_run_at_once_after_a_heavy_scope_on_its_thread() {
    in_a_pool_of_two(|| {
        // This thread's last parallel scope had heavy children...
        block_on(par_scope(|s| async move {
            s.spawn(async { spin_for(Duration::from_millis(3)) });
        }));
        // ...so a new one fans its first two ready children out at once,
        // rather than polling the first alone to learn what they cost (a
        // divide-and-conquer step would otherwise never run in parallel).
        let arrived = Arc::new(AtomicUsize::new(0));
        block_on(par_scope(|s| {
            pair_that_needs_two_threads(&s, &arrived);
            async {}
        }));
        assert_eq!(arrived.load(Ordering::SeqCst), 2);
    });
}

#[test]
fn single_light_wake_ups_between_heavy_batches_keep_the_estimate_heavy() {
    in_a_pool_of_two(|| {
        let arrived = Arc::new(AtomicUsize::new(0));
        block_on(par_scope(|s| {
            let arrived = arrived.clone();
            async move {
                // A heavy child teaches the scope that its children are heavy.
                s.spawn(async { spin_for(Duration::from_millis(3)) }).await;
                // Thirty polls of a light child, each the only one ready.
                s.spawn(async {
                    for _ in 0..30 {
                        common::yield_once().await;
                    }
                })
                .await;
                // Then two heavy ones together: still worth a fan-out.
                pair_that_needs_two_threads(&s, &arrived);
            }
        }));
        assert_eq!(arrived.load(Ordering::SeqCst), 2);
    });
}

#[test]
fn a_child_runs_on_another_thread_while_the_body_that_spawned_it_is_still_in_its_poll() {
    // A helper that starts before the body's first spawn waits for it only
    // so long (`FIRST_SPAWN_PATIENCE`): on a loaded machine the body's
    // thread can be descheduled for longer, and the child then runs after
    // the body's poll. So each round waits a bounded time, and the test
    // asks for one round, of several, in which the child ran during it.
    let ran_during_a_body_poll = in_a_pool_of_two(|| {
        (0..20).any(|_| {
            // This thread's last parallel scope spawned two heavy children
            // from its body's first poll (one alone would be polled
            // inline)...
            block_on(par_scope(|s| async move {
                for _ in 0..2 {
                    s.spawn(async { spin_for(Duration::from_millis(3)) });
                }
            }));
            // ...so a new scope's first body poll is fanned out: the pool's
            // other thread polls the children while the body is still
            // computing (here, waiting for one of them), as in `rayon::join`.
            let ran = AtomicBool::new(false);
            let ran = &ran;
            block_on(par_scope(|s| async move {
                let child = s.spawn(async move { ran.store(true, Ordering::SeqCst) });
                s.spawn(async {});
                let during = spin_until_or_timeout(ran, Duration::from_millis(500));
                child.await;
                during
            }))
        })
    });
    assert!(
        ran_during_a_body_poll,
        "in none of 20 rounds did the child run while its body was in its poll"
    );
}

/// Spins until `flag` is set (true) or `limit` has passed (false).
fn spin_until_or_timeout(flag: &AtomicBool, limit: Duration) -> bool {
    let started = std::time::Instant::now();
    while !flag.load(Ordering::SeqCst) {
        if started.elapsed() > limit {
            return false;
        }
        std::hint::spin_loop();
    }
    true
}

/// A `par_scope` under a current-thread tokio runtime (paused clock) whose
/// two children make a tokio timer while both are in their polls, so one
/// of them on a thread the runtime does not own. The number of timers that
/// fired.
#[cfg(feature = "tokio")]
fn tokio_timers_made_by_two_children_at_once() -> usize {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a runtime");
    let arrived = AtomicUsize::new(0);
    let fired = AtomicUsize::new(0);
    let (arrived, fired_ref) = (&arrived, &fired);
    runtime.block_on(par_scope(|s| async move {
        // Heavy first child: the rest of the batch is worth a fan-out.
        s.spawn(async { spin_for(Duration::from_millis(3)) });
        for _ in 0..2 {
            s.spawn(async move {
                arrived.fetch_add(1, Ordering::SeqCst);
                spin_until_count(arrived, 2, "the other child never ran meanwhile");
                // Made here, on whichever thread polls this child.
                tokio::time::sleep(Duration::from_millis(5)).await;
                fired_ref.fetch_add(1, Ordering::SeqCst);
            });
        }
    }));
    fired.into_inner()
}

#[test]
#[cfg(feature = "tokio")]
fn children_on_pool_threads_find_the_tokio_runtime_of_a_scope_polled_inside_the_pool() {
    assert_eq!(
        in_a_pool_of_two(tokio_timers_made_by_two_children_at_once),
        2
    );
}

#[test]
#[cfg(feature = "tokio")]
fn children_on_pool_threads_find_the_tokio_runtime_of_a_scope_polled_outside_the_pool() {
    assert_eq!(tokio_timers_made_by_two_children_at_once(), 2);
}
