//! Loom models of the fixed forms' per-branch wakers
//! (src/combinators/wake_slots.rs): a branch woken from another thread is
//! polled again, whichever task polls the combinator by then (W4), and two
//! branches woken at once on two threads are both polled again (W6).
//!
//! Each model names the mutant (scripts/loom.sh `--mutants`) that makes it
//! fail, where one exists.
#![cfg(loom)]

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use loom::future::block_on;
use loom::thread;
use taskscope::join;
use taskscope_loom_tests::{Flag, check};

/// Polls its future first with a waker that reaches nobody (a task that
/// has since moved on), then with the caller's: a wake after the second
/// pass must reach the new waker, not the one registered first.
struct MovesToANewTask<F> {
    future: Pin<Box<F>>,
    moved: bool,
}

impl<F: Future> Future for MovesToANewTask<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        if !self.moved {
            self.moved = true;
            let stale = &mut Context::from_waker(Waker::noop());
            if let Poll::Ready(output) = self.future.as_mut().poll(stale) {
                return Poll::Ready(output);
            }
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.future.as_mut().poll(cx)
    }
}

/// Property: no lost wake-up when the combinator changes tasks. A `join`
/// whose first branch waits on a flag set by another thread is polled once
/// with a stale waker, then by `block_on`; it completes.
///
/// Last run: 193 interleavings (preemption bound 3, LOOM_MAX_BRANCHES=10000).
/// Fails with mutant `branch_wakers_keep_first_waker`.
#[test]
fn branch_woken_while_the_join_changes_tasks_is_polled_again() {
    check(
        "branch_wakers::branch_woken_while_the_join_changes_tasks_is_polled_again",
        3,
        || {
            let flag = Flag::new();
            let setter = {
                let flag = flag.clone();
                thread::spawn(move || flag.set())
            };
            let flag = &flag;
            let output = block_on(MovesToANewTask {
                future: Box::pin(join(
                    async move {
                        flag.wait().await;
                        1
                    },
                    async { 2 },
                )),
                moved: false,
            });
            assert_eq!(output, (1, 2));
            setter.join().unwrap();
        },
    );
}

/// Property: two branches woken at the same time from two threads are both
/// polled again (their bits share one word of the slot).
///
/// Last run: 1011 interleavings (preemption bound 2, LOOM_MAX_BRANCHES=10000).
/// Fails with mutant `branch_wakers_pass_forgets_wakes`.
#[test]
fn branches_woken_from_two_threads_are_both_polled_again() {
    check(
        "branch_wakers::branches_woken_from_two_threads_are_both_polled_again",
        2,
        || {
            let flags = [Flag::new(), Flag::new()];
            let setters = flags.clone().map(|flag| thread::spawn(move || flag.set()));
            let [a, b] = &flags;
            let output = block_on(join(
                async move {
                    a.wait().await;
                    'a'
                },
                async move {
                    b.wait().await;
                    'b'
                },
            ));
            assert_eq!(output, ('a', 'b'));
            for setter in setters {
                setter.join().unwrap();
            }
        },
    );
}
