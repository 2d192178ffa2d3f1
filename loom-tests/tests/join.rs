//! Loom models of join handles and of the scope's "all children finished"
//! condition: the scope never completes with a child still running, a
//! `JoinHandle` gets the child's value wherever it is awaited, and a child
//! is never polled after it completed.
//!
//! Each model names the mutant (scripts/loom.sh `--mutants`) that makes it
//! fail, where one exists.
#![cfg(loom)]

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use loom::future::block_on;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::sync::{Arc, Mutex};
use loom::thread;
use taskscope::scope;
use taskscope_loom_tests::{Flag, check};

/// Property: the scope never completes with a child still running. The
/// body returns at once; its only child waits on a flag set by another
/// thread at any point. When the scope future completes, the child has
/// finished.
///
/// Last run: 56 interleavings (preemption bound 3, LOOM_MAX_BRANCHES=10000).
/// Fails with mutant `finish_ignores_children`.
#[test]
fn scope_never_completes_with_a_child_still_running() {
    check(
        "join::scope_never_completes_with_a_child_still_running",
        3,
        || {
            let flag = Flag::new();
            let setter = {
                let flag = flag.clone();
                thread::spawn(move || flag.set())
            };
            let child_done = AtomicBool::new(false);
            let (flag, child_done_ref) = (&flag, &child_done);
            block_on(scope(|s| async move {
                s.spawn(async move {
                    flag.wait().await;
                    child_done_ref.store(true, Ordering::Relaxed);
                });
            }));
            assert!(
                child_done.load(Ordering::Relaxed),
                "the scope finished before its child"
            );
            setter.join().unwrap();
        },
    );
}

/// Property: a `JoinHandle` awaited by the body gets the child's value,
/// while the child is woken from another thread.
///
/// Last run: 56 interleavings (preemption bound 3, LOOM_MAX_BRANCHES=10000).
/// Fails with mutant `schedule_never_wakes`.
#[test]
fn join_handle_awaited_in_the_body_gets_the_value() {
    check(
        "join::join_handle_awaited_in_the_body_gets_the_value",
        3,
        || {
            let flag = Flag::new();
            let setter = {
                let flag = flag.clone();
                thread::spawn(move || flag.set())
            };
            let flag = &flag;
            let value = block_on(scope(|s| async move {
                let child = s.spawn(async move {
                    flag.wait().await;
                    7
                });
                child.await
            }));
            assert_eq!(value, 7);
            setter.join().unwrap();
        },
    );
}

/// Property: no lost wake-up and no lost value in the join slot. A handle
/// awaited on another thread races with the child's completion on the
/// scope's thread: the waiter either finds the value or is woken to take it.
///
/// Last run: 11 interleavings (preemption bound 3, LOOM_MAX_BRANCHES=10000).
/// Fails with mutant `join_stores_waker_after_unlock`.
#[test]
fn join_handle_awaited_on_another_thread_gets_the_value() {
    check(
        "join::join_handle_awaited_on_another_thread_gets_the_value",
        3,
        || {
            let waiter = block_on(scope(|s| async move {
                let child = s.spawn(async { 7 });
                thread::spawn(move || block_on(child))
            }));
            assert_eq!(waiter.join().unwrap(), 7);
        },
    );
}

/// A child that completes on its first poll after handing a clone of its
/// waker to a thread that wakes it (a stray wake after completion), and
/// counts every poll it gets after it completed.
struct WakesItselfLate {
    polls_after_ready: Arc<AtomicUsize>,
    waker_thread: Arc<Mutex<Option<thread::JoinHandle<()>>>>,
    ready: bool,
}

impl Future for WakesItselfLate {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.ready {
            self.polls_after_ready.fetch_add(1, Ordering::Relaxed);
            return Poll::Ready(());
        }
        self.ready = true;
        let waker = cx.waker().clone();
        let late = thread::spawn(move || waker.wake());
        *self.waker_thread.lock().unwrap() = Some(late);
        Poll::Ready(())
    }
}

/// Property: a child is never polled after it completed, even when its
/// waker is woken from another thread after (or while) it completes and
/// its slot is reused by the next child, which the stray wake may then
/// poll spuriously (allowed: that child is still running).
///
/// Last run: 14239 interleavings (preemption bound 3, LOOM_MAX_BRANCHES=10000).
/// Mutant `completed_child_stays`: a finished child keeps its future and
/// stays in the slab once, scheduled again; the model fails (the child, or
/// the second child's `async` block, is polled after it completed). It
/// fails in every interleaving: in `scope` children are only taken, polled
/// and removed by the scope's own thread under the core's lock, so no
/// variant of a synchronisation point alone breaks this property; the
/// mutant breaks the two things that keep it (the future dropped at its
/// completion, the child removed with it) to show the model would notice.
#[test]
fn child_is_never_polled_after_it_completed() {
    check("join::child_is_never_polled_after_it_completed", 3, || {
        let polls_after_ready = Arc::new(AtomicUsize::new(0));
        let waker_thread = Arc::new(Mutex::new(None));
        let first = WakesItselfLate {
            polls_after_ready: polls_after_ready.clone(),
            waker_thread: waker_thread.clone(),
            ready: false,
        };
        let flag = Flag::new();
        let setter = {
            let flag = flag.clone();
            thread::spawn(move || flag.set())
        };
        let flag = &flag;
        let second_value = block_on(scope(|s| async move {
            s.spawn(first).await;
            // Reuses the first child's slot in the scope.
            let second = s.spawn(async move {
                flag.wait().await;
                2
            });
            second.await
        }));
        assert_eq!(second_value, 2);
        let late = waker_thread.lock().unwrap().take();
        late.expect("the first child ran").join().unwrap();
        setter.join().unwrap();
        assert_eq!(polls_after_ready.load(Ordering::Relaxed), 0);
    });
}
