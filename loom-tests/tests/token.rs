//! Loom models of `CancelToken`: propagation to children created before and
//! after a cancel, registration of wakers and callbacks, concurrent cancels,
//! and handles dropped while a cancel walks the tree.
//!
//! Interleavings explored on the last run (scripts/loom.sh, default bounds)
//! are given per model; each model names the mutant (see scripts/loom.sh
//! `--mutants`) that makes it fail.
#![cfg(loom)]

use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;
use taskscope::{CancelReason, CancelToken};
use taskscope_loom_tests::{Flag, check};

/// Property: a cancellation is observed by every token created before or
/// after it. A child (and its child) created on another thread while the
/// parent is being cancelled is cancelled once both threads are done,
/// whichever side takes the parent's lock first.
///
/// Last run: 51 interleavings (preemption bound 3, LOOM_MAX_BRANCHES=10000).
/// Fails with mutant `child_skips_flag_check`.
#[test]
fn child_created_while_parent_is_cancelled_ends_cancelled() {
    check("token::child_created_while_parent_is_cancelled", 3, || {
        let parent = CancelToken::new();
        let before = parent.child();
        let creator = {
            let parent = parent.clone();
            thread::spawn(move || {
                let child = parent.child();
                let grandchild = child.child();
                (child, grandchild)
            })
        };
        parent.cancel();
        let (child, grandchild) = creator.join().unwrap();
        assert!(before.is_cancelled(), "a child made before the cancel");
        assert!(child.is_cancelled(), "a child made during the cancel");
        assert!(grandchild.is_cancelled(), "its child");
    });
}

/// Property: no lost wake-up. A `cancelled()` future polled while another
/// thread cancels the token either sees the flag or is woken (loom reports
/// a deadlock if `block_on` parks forever).
///
/// Last run: 141 interleavings (preemption bound 3, LOOM_MAX_BRANCHES=10000).
/// Fails with mutant `register_skips_recheck`.
#[test]
fn cancelled_future_racing_cancel_is_woken() {
    check("token::cancelled_future_racing_cancel_is_woken", 3, || {
        let token = CancelToken::new();
        let canceller = {
            let token = token.clone();
            thread::spawn(move || token.cancel())
        };
        let cancelled = loom::future::block_on(token.cancelled());
        assert!(matches!(cancelled.reason(), CancelReason::Requested));
        canceller.join().unwrap();
    });
}

/// Property: no lost wake-up through the tree. A `cancelled()` future of a
/// grandchild polled while the root is cancelled completes, with the
/// inherited reason.
///
/// Last run: 68 interleavings (preemption bound 3, LOOM_MAX_BRANCHES=10000).
/// Fails with mutant `register_skips_recheck`.
#[test]
fn grandchild_waiter_racing_root_cancel_is_woken() {
    check(
        "token::grandchild_waiter_racing_root_cancel_is_woken",
        3,
        || {
            let root = CancelToken::new();
            let grandchild = root.child().child();
            let canceller = thread::spawn(move || root.cancel());
            let cancelled = loom::future::block_on(grandchild.cancelled());
            assert!(matches!(cancelled.reason(), CancelReason::Parent(_)));
            canceller.join().unwrap();
        },
    );
}

/// Property: an `on_cancel` callback registered while another thread
/// cancels runs exactly once: either the cancel runs it or the
/// registration sees the flag and runs it itself.
///
/// Last run: 7 interleavings (preemption bound 3, LOOM_MAX_BRANCHES=10000).
/// Fails with mutant `on_cancel_checks_before_lock`.
#[test]
fn on_cancel_racing_cancel_runs_exactly_once() {
    check(
        "token::on_cancel_racing_cancel_runs_exactly_once",
        3,
        || {
            let token = CancelToken::new();
            let runs = Arc::new(AtomicUsize::new(0));
            let canceller = {
                let token = token.clone();
                thread::spawn(move || token.cancel())
            };
            let registration = {
                let runs = runs.clone();
                token.on_cancel(move |_| {
                    runs.fetch_add(1, Ordering::Relaxed);
                })
            };
            canceller.join().unwrap();
            assert_eq!(runs.load(Ordering::Relaxed), 1);
            drop(registration);
        },
    );
}

/// Property: concurrent cancels of a parent and of its child both finish,
/// and afterwards every descendant (at any depth) is cancelled, each
/// callback having run exactly once (at most once is the type system's:
/// a callback is an `FnOnce` moved out of its slot; the model checks that
/// it is not lost). Whichever call marks the child first owns its subtree;
/// the other must not skip it.
///
/// Last run: 191 interleavings (preemption bound 3, LOOM_MAX_BRANCHES=10000).
/// Fails with mutant `cancel_stops_at_depth_one`.
#[test]
fn concurrent_cancel_of_parent_and_child_cancels_every_descendant() {
    check("token::concurrent_cancel_of_parent_and_child", 3, || {
        let root = CancelToken::new();
        let a = root.child();
        let b = a.child();
        let c = b.child();
        let runs = Arc::new(AtomicUsize::new(0));
        let registration = {
            let runs = runs.clone();
            b.on_cancel(move |_| {
                runs.fetch_add(1, Ordering::Relaxed);
            })
        };
        let root_canceller = {
            let root = root.clone();
            thread::spawn(move || root.cancel())
        };
        let child_canceller = {
            let a = a.clone();
            thread::spawn(move || a.cancel())
        };
        root_canceller.join().unwrap();
        child_canceller.join().unwrap();
        assert!(root.is_cancelled() && a.is_cancelled());
        assert!(b.is_cancelled(), "grandchild");
        assert!(c.is_cancelled(), "great-grandchild");
        assert_eq!(runs.load(Ordering::Relaxed), 1);
        drop(registration);
    });
}

/// Property: dropping a child while its parent is cancelled neither panics
/// nor leaves a sibling uncancelled, and leaks no node (loom checks that
/// every one of its `Arc`s is freed at the end of each execution).
///
/// Last run: 622 interleavings (preemption bound 3, LOOM_MAX_BRANCHES=10000).
/// Fails with mutant `cancel_pops_in_two_steps`.
#[test]
fn child_dropped_while_parent_is_cancelled_leaks_nothing() {
    check("token::child_dropped_while_parent_is_cancelled", 3, || {
        let parent = CancelToken::new();
        let kept = parent.child();
        let dropped = parent.child();
        let grandchild = dropped.child();
        let dropper = thread::spawn(move || {
            drop(grandchild);
            drop(dropped);
        });
        parent.cancel();
        dropper.join().unwrap();
        assert!(kept.is_cancelled(), "the sibling that stays");
    });
}

/// Property: dropping the last handles of a subtree on two threads while a
/// cancel runs unlinks every node exactly once: no panic, no leak, and the
/// tree is usable afterwards.
///
/// Last run: 1808 interleavings (preemption bound 3, LOOM_MAX_BRANCHES=10000).
/// Fails with mutant `cancel_pops_in_two_steps` (sibling left uncancelled).
#[test]
fn handles_dropped_on_two_threads_during_cancel_unlink_once() {
    check(
        "token::handles_dropped_on_two_threads_during_cancel",
        3,
        || {
            let parent = CancelToken::new();
            let kept = parent.child();
            let child = parent.child();
            let other_handle = child.clone();
            let first = thread::spawn(move || drop(child));
            let second = thread::spawn(move || drop(other_handle));
            parent.cancel();
            first.join().unwrap();
            second.join().unwrap();
            assert!(kept.is_cancelled());
            assert!(parent.child().is_cancelled(), "born cancelled afterwards");
        },
    );
}

/// Property: a cancellation is observed by a task that makes its own token
/// at the same time. `JoinHandle::cancel` on another thread races with the
/// child's first `current_token()` (which creates the child's token lazily);
/// the child's `cancelled()` completes either way, else loom reports a
/// deadlock.
///
/// Last run: 347 interleavings (preemption bound 3, LOOM_MAX_BRANCHES=10000).
/// Fails with mutant `lazy_cancel_flags_after_unlock`.
#[test]
fn task_cancelled_while_it_makes_its_token_sees_the_cancel() {
    check("token::task_cancelled_while_it_makes_its_token", 3, || {
        let canceller = loom::future::block_on(taskscope::scope(|s| async move {
            let child = s.spawn(async {
                let token = taskscope::current_token();
                token.cancelled().await;
                taskscope::is_cancelled()
            });
            thread::spawn(move || {
                child.cancel();
                child
            })
        }));
        // The scope finished, so the child did: its handle has the value.
        let child = canceller.join().unwrap();
        assert!(loom::future::block_on(child), "the child saw its cancel");
    });
}

/// Property: no leak when the last handles of a child and of its own child
/// go on two threads at once, with no cancel to break the links. Whichever
/// drop comes last must unlink the child from the parent (the parent and
/// the child hold each other through `parent` and `children`); a node left
/// linked is reported by loom's leak check ("Arc leaked") once the parent's
/// handle is dropped too.
///
/// Last run: 354 interleavings (preemption bound 3, LOOM_MAX_BRANCHES=10000).
/// Fails with mutant `unlink_does_not_climb`.
#[test]
fn last_handles_of_child_and_grandchild_dropped_together_leak_nothing() {
    check(
        "token::last_handles_of_child_and_grandchild_dropped_together",
        3,
        || {
            let parent = CancelToken::new();
            let child = parent.child();
            let grandchild = child.child();
            let first = thread::spawn(move || drop(child));
            let second = thread::spawn(move || drop(grandchild));
            first.join().unwrap();
            second.join().unwrap();
            drop(parent);
        },
    );
}

/// Property: a cancellation is observed by every task registered before or
/// after it, through the scope. Another thread cancels the scope's token
/// while a child makes its own token (a child of the scope's, made on first
/// demand) and waits on it: the child's `cancelled()` completes and the
/// scope finishes, else loom reports a deadlock.
///
/// Last run: 739 interleavings (preemption bound 3, LOOM_MAX_BRANCHES=10000).
/// Fails with mutant `child_skips_flag_check`.
#[test]
fn scope_cancelled_from_another_thread_reaches_a_child_making_its_token() {
    check(
        "token::scope_cancelled_from_another_thread_reaches_a_child",
        3,
        || {
            let canceller = loom::future::block_on(taskscope::scope(|s| async move {
                s.spawn(async {
                    let cancelled = taskscope::cancelled().await;
                    assert!(matches!(cancelled.reason(), CancelReason::Parent(_)));
                });
                let token = s.token().clone();
                thread::spawn(move || token.cancel())
            }));
            canceller.join().unwrap();
        },
    );
}

/// Property: the last handles of a cancelled chain, dropped on two threads
/// at once, free every node exactly once. Once cancelled, the chain is held
/// together by `parent` links alone, and `Node::drop` frees the ancestors it
/// held the last reference to in a loop rather than recursively (I8);
/// either thread may end up freeing the middle node. Loom's leak check
/// ("Arc leaked") and its double-drop detection check the outcome.
///
/// Last run: 91 interleavings (preemption bound 3, LOOM_MAX_BRANCHES=10000).
/// Fails with mutant `chain_drop_forgets_shared_ancestor` (a thread that
/// finds an ancestor still shared leaks its reference: "Arc leaked"). A
/// recursive drop has the same outcome on a chain this short; the depth
/// where it fails is the unit test
/// `dropping_a_chain_of_a_million_does_not_overflow_the_stack`.
#[test]
fn last_handles_of_a_cancelled_chain_dropped_together_free_every_node() {
    check(
        "token::last_handles_of_a_cancelled_chain_dropped_together",
        3,
        || {
            let root = CancelToken::new();
            let middle = root.child();
            let leaf = middle.child();
            root.cancel();
            drop(root);
            let first = thread::spawn(move || drop(middle));
            let second = thread::spawn(move || {
                assert!(leaf.is_cancelled());
                drop(leaf);
            });
            first.join().unwrap();
            second.join().unwrap();
        },
    );
}

/// Property: the first reason a child reports stays its reason, also when a
/// request through its handle races its scope's cancellation. The child
/// looks once, waits for both cancels, and looks again: the two answers
/// agree (the scope's `Deadline` or the handle's `Requested`, whichever the
/// child's lazy token settled on first).
///
/// Found by a review: `cancel` checked the scope before setting its flag,
/// and `check` read both without `making`, so a child that saw
/// `Parent(Deadline)` in between later reported `Requested`.
///
/// Last run: 11922 interleavings (preemption bound 3, LOOM_MAX_BRANCHES=10000).
/// Fails with mutant `check_skips_first_sight` (the code before that fix).
#[test]
fn a_reason_a_child_saw_stays_when_its_cancel_races_the_scopes() {
    check("token::a_reason_a_child_saw_stays", 3, || {
        let (handle_done, scope_done) = (Flag::new(), Flag::new());
        let (by_handle, by_scope) = loom::future::block_on(taskscope::scope(|s| async move {
            let (seen_handle, seen_scope) = (handle_done.clone(), scope_done.clone());
            let child = s.spawn(async move {
                let first = taskscope::checkpoint().err().map(|c| c.reason().clone());
                seen_handle.wait().await;
                seen_scope.wait().await;
                let second = taskscope::checkpoint().err().map(|c| c.reason().clone());
                (first, second)
            });
            let token = s.token().clone();
            let by_handle = thread::spawn(move || {
                child.cancel();
                handle_done.set();
                child
            });
            let by_scope = thread::spawn(move || {
                token.cancel_with(CancelReason::Deadline);
                scope_done.set();
            });
            (by_handle, by_scope)
        }));
        let child = by_handle.join().unwrap();
        by_scope.join().unwrap();
        let (first, second) = loom::future::block_on(child);
        if let Some(first) = first {
            let second = second.expect("cancelled by then");
            assert_eq!(
                format!("{:?}", first.origin()),
                format!("{:?}", second.origin()),
                "a reason the child saw changed"
            );
        }
    });
}
