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
/// Last run: 56 interleavings (preemption bound 3, LOOM_MAX_BRANCHES=10000).
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
/// Last run: 909 interleavings (preemption bound 2, LOOM_MAX_BRANCHES=10000).
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

/// Property: a spawn through a handle on another thread that races the drop
/// of the scope future leaks nothing. The spawn either lands before the
/// drop (the child is dropped with the scope), or is refused with a panic;
/// a child put in the slab just before the drop drained it must not be
/// registered after the scope retired its registry, where the header and
/// the scope's shared part would keep each other alive (loom reports the
/// scope's token node as "Arc leaked").
///
/// Last run: 241 interleavings (preemption bound 3, LOOM_MAX_BRANCHES=10000).
/// Fails with mutant `spawned_after_retire_registers` (loom: "Arc leaked").
#[test]
fn spawn_from_another_thread_racing_the_scope_futures_drop_leaks_nothing() {
    quiet_refused_spawns();
    check("ready_queue::spawn_racing_the_drop", 3, || {
        let mut spawner = None;
        let spawner_slot = &mut spawner;
        let mut scope_future = Box::pin(scope(|s| {
            let handle = s.clone();
            *spawner_slot = Some(thread::spawn(move || {
                let spawn = std::panic::AssertUnwindSafe(|| drop(handle.spawn(async {})));
                // Refused once the scope was dropped: the panic is the
                // documented answer, not a failure of the model.
                let _ = std::panic::catch_unwind(spawn);
            }));
            std::future::pending::<()>()
        }));
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(scope_future.as_mut().poll(&mut cx).is_pending());
        drop(scope_future);
        spawner.expect("the body ran").join().unwrap();
    });
}

/// Keeps the refused spawns' panics, expected in most interleavings of the
/// model above, out of the log; every other panic reaches the default hook.
fn quiet_refused_spawns() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied());
            if !message.is_some_and(|text| text.contains("spawn on a scope that was dropped")) {
                default(info);
            }
        }));
    });
}
