//! Behaviour of `join`, `race` and friends, driven by hand with counting
//! wakers so every interleaving is deterministic.

mod common;

use std::cell::{Cell, RefCell};
use std::future::{Future, pending, poll_fn};
use std::panic::{self, AssertUnwindSafe};
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;

use common::{CountingWaker, DropCounter, panic_message, yield_once};
use taskscope::{CancelReason, Cancelled};

/// Polls `fut` with a counting waker until it is ready, at most `limit` times.
fn run<F: Future>(fut: F, limit: usize) -> F::Output {
    let waker = CountingWaker::new();
    let mut fut = pin!(fut);
    for _ in 0..limit {
        if let Poll::Ready(out) = waker.poll(fut.as_mut()) {
            return out;
        }
    }
    panic!("not ready after {limit} polls");
}

/// A writer that commits items one by one; each item takes `steps` polls
/// between its start and its commit, and it looks for cancellation only
/// between items.
async fn writer(started: &Cell<usize>, committed: &Cell<usize>, steps: usize) -> &'static str {
    loop {
        if taskscope::checkpoint().is_err() {
            return "writer stopped";
        }
        started.set(started.get() + 1);
        for _ in 0..steps {
            yield_once().await;
        }
        committed.set(committed.get() + 1);
    }
}

/// Ready after `polls` polls.
async fn after(polls: usize) -> &'static str {
    for _ in 0..polls {
        yield_once().await;
    }
    "timer"
}

#[test]
fn join_returns_outputs_of_different_types() {
    let (a, b) = run(taskscope::join(async { 1_u8 }, async { vec!['x'] }), 1);
    assert_eq!((a, b), (1, vec!['x']));
    let (a, b, c, d) = run(
        taskscope::join!(async { 1_u8 }, after(2), async { 3.5_f64 }, async {
            "four"
        }),
        5,
    );
    assert_eq!((a, b, c, d), (1, "timer", 3.5, "four"));
    let ok = run(
        taskscope::try_join!(async { Ok::<_, Cancelled>(1_u8) }, async { Ok('c') }),
        1,
    );
    assert_eq!(ok.unwrap(), (1, 'c'));
}

#[test]
fn a_cancelled_race_loser_finishes_its_write_and_loses_nothing() {
    let (started, committed) = (Cell::new(0), Cell::new(0));
    let winner = run(
        taskscope::race(after(7), writer(&started, &committed, 3)),
        50,
    );
    assert_eq!(winner, "timer");
    assert!(started.get() >= 2, "the writer got going before it lost");
    assert_eq!(
        started.get(),
        committed.get(),
        "race returned while its loser was half-way through an item"
    );
}

#[test]
fn the_same_loser_under_select_loses_the_item_it_was_writing() {
    let (started, committed) = (Cell::new(0), Cell::new(0));
    let winner = run(
        taskscope::select(after(7), writer(&started, &committed, 3)),
        50,
    );
    assert_eq!(winner, "timer");
    assert_eq!(
        started.get(),
        committed.get() + 1,
        "select drops the loser mid-item: this is the difference race makes"
    );
}

#[test]
fn race_macro_waits_for_every_loser_and_tells_them_why() {
    let reasons = RefCell::new(Vec::new());
    let loser = |polls_after: usize| {
        let reasons = &reasons;
        async move {
            let cancelled = taskscope::cancelled().await;
            for _ in 0..polls_after {
                yield_once().await;
            }
            reasons.borrow_mut().push(cancelled.into_reason());
            "loser"
        }
    };
    let winner = run(taskscope::race!(loser(2), after(1), loser(4)), 20);
    assert_eq!(winner, "timer");
    let reasons = reasons.borrow();
    assert_eq!(
        reasons.len(),
        2,
        "both losers finished before race! returned"
    );
    assert!(reasons.iter().all(|r| matches!(r, CancelReason::LostRace)));
}

#[test]
fn race_drops_each_losers_output_before_it_returns() {
    let drops = Arc::new(AtomicUsize::new(0));
    let loser = || {
        let drops = drops.clone();
        async move {
            taskscope::cancelled().await;
            DropCounter(drops)
        }
    };
    let winner = run(
        taskscope::race!(
            loser(),
            async { DropCounter(Arc::new(AtomicUsize::new(0))) },
            loser()
        ),
        5,
    );
    assert_eq!(drops.load(Ordering::SeqCst), 2);
    drop(winner);
}

#[test]
fn nested_races_cancel_the_inner_branches_of_a_losing_inner_race() {
    let finished = Cell::new(0);
    let inner_branch = || {
        let finished = &finished;
        async move {
            let cancelled = taskscope::cancelled().await;
            // The outer race's verdict reaches the inner branches through
            // the inner race's token.
            assert!(matches!(
                cancelled.reason().origin(),
                CancelReason::LostRace
            ));
            assert!(matches!(cancelled.reason(), CancelReason::Parent(_)));
            yield_once().await;
            finished.set(finished.get() + 1);
            "inner"
        }
    };
    let inner = taskscope::race(inner_branch(), inner_branch());
    let winner = run(taskscope::race(inner, after(2)), 20);
    assert_eq!(winner, "timer");
    assert_eq!(
        finished.get(),
        2,
        "both inner branches finished before the outer race returned"
    );
}

#[test]
fn an_inner_race_winner_cancels_only_its_own_sibling() {
    let inner = taskscope::race(async { "inner winner" }, async {
        let cancelled = taskscope::cancelled().await;
        assert!(matches!(cancelled.reason(), CancelReason::LostRace));
        "inner loser"
    });
    let outer_sibling_cancelled = Cell::new(None);
    let outer = taskscope::join(inner, async {
        yield_once().await;
        outer_sibling_cancelled.set(Some(taskscope::is_cancelled()));
    });
    let (winner, ()) = run(outer, 10);
    assert_eq!(winner, "inner winner");
    assert_eq!(outer_sibling_cancelled.get(), Some(false));
}

#[test]
fn try_join_cancels_the_siblings_awaits_them_and_returns_the_first_error() {
    let sibling_done = Cell::new(false);
    let result = run(
        taskscope::try_join!(
            async {
                yield_once().await;
                Err::<u8, _>("first")
            },
            async {
                let cancelled = taskscope::cancelled().await;
                assert!(matches!(cancelled.reason(), CancelReason::SiblingFailed));
                yield_once().await;
                sibling_done.set(true);
                Err::<char, _>("second")
            },
            async { Ok::<_, &str>("third") },
        ),
        10,
    );
    assert_eq!(result, Err("first"));
    assert!(sibling_done.get());
}

#[test]
fn a_branch_panic_cancels_the_siblings_awaits_them_then_resumes() {
    let sibling_done = Cell::new(false);
    let joined = taskscope::join(
        async {
            yield_once().await;
            panic!("boom in a branch");
        },
        async {
            let cancelled = taskscope::cancelled().await;
            assert!(matches!(cancelled.reason(), CancelReason::Panicked(_)));
            yield_once().await;
            yield_once().await;
            sibling_done.set(true);
        },
    );
    let caught = panic::catch_unwind(AssertUnwindSafe(|| run(joined, 20)));
    let payload = caught.expect_err("the branch's panic must be resumed");
    assert_eq!(panic_message(&*payload), "boom in a branch");
    assert!(
        sibling_done.get(),
        "the panic was resumed before the sibling finished"
    );
}

/// A future that is ready at once and panics when dropped, or pending
/// forever and panics when dropped.
struct PanicsOnDrop {
    ready: bool,
    message: &'static str,
}

impl Future for PanicsOnDrop {
    type Output = u8;

    fn poll(self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>) -> Poll<u8> {
        if self.ready {
            Poll::Ready(1)
        } else {
            Poll::Pending
        }
    }
}

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("{}", self.message);
    }
}

/// A sibling that finishes once its token is cancelled, and records why.
async fn until_cancelled_records(why: &RefCell<Option<CancelReason>>) -> u8 {
    let cancelled = taskscope::cancelled().await;
    *why.borrow_mut() = Some(cancelled.reason().clone());
    2
}

#[test]
fn a_finished_branchs_panicking_destructor_counts_as_the_branchs_panic() {
    let why = RefCell::new(None);
    let joined = taskscope::join(
        PanicsOnDrop {
            ready: true,
            message: "destructor of a finished branch",
        },
        until_cancelled_records(&why),
    );
    let mut joined = pin!(joined);
    let waker = CountingWaker::new();
    let first = panic::catch_unwind(AssertUnwindSafe(|| waker.poll(joined.as_mut())));
    let payload = first.expect_err("the destructor's panic is resumed");
    assert_eq!(panic_message(&*payload), "destructor of a finished branch");
    assert!(
        matches!(why.borrow().as_ref(), Some(CancelReason::Panicked(_))),
        "the sibling was cancelled for the panic and finished before it was resumed"
    );
    let again = panic::catch_unwind(AssertUnwindSafe(|| waker.poll(joined.as_mut())));
    assert!(
        panic_message(&*again.expect_err("no hang")).contains("after it completed"),
        "a later poll says the join completed rather than waiting for a wake"
    );
}

#[test]
fn join_all_resumes_a_finished_branchs_panicking_destructor_after_the_others() {
    let why = RefCell::new(None);
    let branches: Vec<std::pin::Pin<Box<dyn Future<Output = u8> + '_>>> = vec![
        Box::pin(PanicsOnDrop {
            ready: true,
            message: "destructor in join_all",
        }),
        Box::pin(until_cancelled_records(&why)),
    ];
    let caught = panic::catch_unwind(AssertUnwindSafe(|| run(taskscope::join_all(branches), 5)));
    assert_eq!(
        panic_message(&*caught.unwrap_err()),
        "destructor in join_all"
    );
    assert!(matches!(
        why.borrow().as_ref(),
        Some(CancelReason::Panicked(_))
    ));
}

#[test]
fn a_select_losers_panicking_destructor_is_resumed_instead_of_the_winner() {
    let selected = taskscope::select(
        PanicsOnDrop {
            ready: false,
            message: "destructor of a select loser",
        },
        std::future::ready(5_u8),
    );
    let mut selected = pin!(selected);
    let waker = CountingWaker::new();
    let first = panic::catch_unwind(AssertUnwindSafe(|| waker.poll(selected.as_mut())));
    assert_eq!(
        panic_message(&*first.expect_err("the loser's panic is not lost")),
        "destructor of a select loser"
    );
    let again = panic::catch_unwind(AssertUnwindSafe(|| waker.poll(selected.as_mut())));
    assert!(
        panic_message(&*again.expect_err("no hang")).contains("after it completed"),
        "a later poll says the select completed rather than waiting for a wake"
    );
}

#[test]
fn a_branchs_panicking_cancel_callback_is_resumed_once_that_branch_finished() {
    let cancelled_branch_done = Cell::new(false);
    let joined = taskscope::try_join(
        async {
            let _callback = taskscope::current_token().on_cancel(|_| panic!("callback failed"));
            let _ = taskscope::cancelled().await;
            cancelled_branch_done.set(true);
            Ok::<(), &str>(())
        },
        async {
            yield_once().await;
            Err::<(), _>("failed")
        },
    );
    let caught = panic::catch_unwind(AssertUnwindSafe(|| run(joined, 10)));
    assert_eq!(panic_message(&*caught.unwrap_err()), "callback failed");
    assert!(
        cancelled_branch_done.get(),
        "the callback's panic waited for the branch it cancelled"
    );
}

#[test]
fn a_branch_panic_in_select_drops_the_other_branch_and_resumes_at_once() {
    let drops = Arc::new(AtomicUsize::new(0));
    let guard = DropCounter(drops.clone());
    let selected = taskscope::select(
        async move {
            let _guard = guard;
            pending::<()>().await
        },
        async { panic!("boom in select") },
    );
    let caught = panic::catch_unwind(AssertUnwindSafe(|| run(selected, 1)));
    assert_eq!(panic_message(&*caught.unwrap_err()), "boom in select");
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

#[test]
fn select_drops_the_losers_in_the_poll_that_picks_the_winner() {
    let drops = Arc::new(AtomicUsize::new(0));
    let loser = || {
        let guard = DropCounter(drops.clone());
        async move {
            let _guard = guard;
            pending::<u8>().await
        }
    };
    let waker = CountingWaker::new();
    let mut fut = pin!(taskscope::select!(loser(), loser(), async { 9 }));
    assert_eq!(waker.poll(fut.as_mut()), Poll::Ready(9));
    assert_eq!(
        drops.load(Ordering::SeqCst),
        2,
        "both losers dropped before select! returned"
    );
}

#[test]
fn branches_get_child_tokens_of_a_scope_childs_token() {
    let seen = std::sync::Mutex::new(Vec::new());
    futures::executor::block_on(taskscope::scope(|s| {
        let seen = &seen;
        async move {
            let child = s.spawn(async move {
                let branch = || async move {
                    let cancelled = taskscope::cancelled().await;
                    seen.lock().unwrap().push(cancelled.into_reason());
                    taskscope::checkpoint().is_err()
                };
                taskscope::join(branch(), branch()).await
            });
            yield_once().await;
            child.cancel();
            assert_eq!(child.await, (true, true));
        }
    }));
    let seen = seen.into_inner().unwrap();
    assert_eq!(seen.len(), 2);
    assert!(
        seen.iter()
            .all(|r| matches!(r.origin(), CancelReason::Requested)
                && matches!(r, CancelReason::Parent(_)))
    );
}

#[test]
fn cancelling_one_branchs_token_leaves_the_other_running() {
    let other_cancelled = Cell::new(true);
    let (a, ()) = run(
        taskscope::join(
            async {
                taskscope::current_token().cancel();
                taskscope::checkpoint().is_err()
            },
            async {
                yield_once().await;
                other_cancelled.set(taskscope::is_cancelled());
            },
        ),
        5,
    );
    assert!(a);
    assert!(!other_cancelled.get());
}

#[test]
fn fixed_forms_start_each_poll_with_the_next_branch() {
    let order = RefCell::new(Vec::new());
    let branch = |name: char| {
        let order = &order;
        poll_fn(move |cx| {
            order.borrow_mut().push(name);
            cx.waker().wake_by_ref();
            Poll::<()>::Pending
        })
    };
    let waker = CountingWaker::new();
    let mut fut = pin!(taskscope::join!(branch('a'), branch('b'), branch('c')));
    for _ in 0..3 {
        assert!(waker.poll(fut.as_mut()).is_pending());
    }
    assert_eq!(
        *order.borrow(),
        ['a', 'b', 'c', 'b', 'c', 'a', 'c', 'a', 'b']
    );
}

#[test]
fn join_all_returns_outputs_in_index_order_when_later_branches_finish_first() {
    let finished = RefCell::new(Vec::new());
    let all = run(
        taskscope::join_all((0..4).map(|i| {
            let finished = &finished;
            async move {
                // Branch `i` finishes after `3 - i` yields: the last first.
                for _ in 0..(3 - i) {
                    yield_once().await;
                }
                finished.borrow_mut().push(i);
                i * 2
            }
        })),
        10,
    );
    assert_eq!(
        *finished.borrow(),
        [3, 2, 1, 0],
        "completion order is the reverse of index order"
    );
    assert_eq!(all, [0, 2, 4, 6], "outputs in index order");
}

#[test]
fn race_all_returns_the_first_finished_output_after_its_cancelled_losers_finish() {
    let finished = Cell::new(0);
    let first = run(
        taskscope::race_all((0..3).map(|n| {
            let finished = &finished;
            async move {
                if n != 1 {
                    taskscope::cancelled().await;
                    yield_once().await;
                }
                finished.set(finished.get() + 1);
                n
            }
        })),
        10,
    );
    assert_eq!(first, 1);
    assert_eq!(finished.get(), 3, "both losers ran to their end first");
}

#[test]
fn race_ok_returns_every_error_in_order_when_none_succeeds() {
    let errors = run(
        taskscope::race_ok((0..3).map(|n| async move {
            for _ in 0..(3 - n) {
                yield_once().await;
            }
            Err::<(), _>(n)
        })),
        10,
    );
    assert_eq!(errors, Err(vec![0, 1, 2]));
}

#[test]
#[should_panic(expected = "`Join` polled after it completed")]
fn polling_a_join_after_it_completed_panics_with_a_message() {
    let waker = CountingWaker::new();
    let mut fut = pin!(taskscope::join(async {}, async {}));
    assert!(waker.poll(fut.as_mut()).is_ready());
    let _ = waker.poll(fut.as_mut());
}

/// Polls `fut` to completion, then once more; the second poll's message.
fn repoll_message<F: Future>(fut: F) -> String {
    let waker = CountingWaker::new();
    let mut fut = pin!(fut);
    assert!(waker.poll(fut.as_mut()).is_ready());
    let again = panic::catch_unwind(AssertUnwindSafe(|| waker.poll(fut.as_mut()).is_ready()));
    panic_message(&*again.expect_err("a second poll panics"))
}

#[test]
fn polling_a_macro_combinator_after_it_completed_names_the_macro() {
    let messages = [
        (
            "join!",
            repoll_message(taskscope::join!(async { 1 }, async { 2 })),
        ),
        (
            "try_join!",
            repoll_message(taskscope::try_join!(async { Ok::<_, ()>(1) }, async {
                Ok(2)
            })),
        ),
        (
            "race!",
            repoll_message(taskscope::race!(async { 1 }, async { 2 })),
        ),
        (
            "select!",
            repoll_message(taskscope::select!(async { 1 }, async { 2 })),
        ),
    ];
    for (name, message) in messages {
        assert!(
            message.contains(&format!("`{name}` polled after it completed")),
            "{name}: {message}"
        );
    }
}

#[test]
fn polling_a_macro_combinator_after_a_branch_panicked_names_the_macro() {
    let waker = CountingWaker::new();
    let mut fut = pin!(taskscope::join!(
        async { panic!("a branch panicked") },
        async {}
    ));
    let first = panic::catch_unwind(AssertUnwindSafe(|| waker.poll(fut.as_mut()).is_ready()));
    assert!(panic_message(&*first.unwrap_err()).contains("a branch panicked"));
    let again = panic::catch_unwind(AssertUnwindSafe(|| waker.poll(fut.as_mut()).is_ready()));
    let message = panic_message(&*again.unwrap_err());
    assert!(
        message.contains("`join!` polled after it completed (or panicked)"),
        "{message}"
    );
}

#[test]
fn the_combinator_futures_are_send_when_their_branches_are() {
    fn assert_send<T: Send>(_: &T) {}
    assert_send(&taskscope::join(async { 1 }, async { 2 }));
    assert_send(&taskscope::race(async { 1 }, async { 2 }));
    assert_send(&taskscope::join!(async { 1 }, async { 'x' }, async {
        "three"
    }));
    assert_send(&taskscope::race!(async { 1 }, async { 2 }));
    assert_send(&taskscope::join_all([async { 1 }]));
}

#[test]
fn a_scope_inside_a_losing_branch_hangs_under_the_branchs_token() {
    let seen = std::sync::Mutex::new(None);
    let seen_ref = &seen;
    let loser = async move {
        taskscope::scope(|s| async move {
            let child = s.spawn(async move {
                let cancelled = taskscope::cancelled().await;
                *seen_ref.lock().unwrap() = Some(cancelled.into_reason());
            });
            child.await;
        })
        .await;
        "loser"
    };
    let winner = run(taskscope::race(after(2), loser), 20);
    assert_eq!(winner, "timer");
    let reason = seen
        .into_inner()
        .unwrap()
        .expect("the scope's child saw the cancellation");
    assert!(matches!(reason.origin(), CancelReason::LostRace));
}

/// Counts which branch won each of `rounds` ties between two ready
/// branches, a new combinator per round, as in a loop.
fn tie_winners(rounds: usize, mut tie: impl FnMut() -> usize) -> [usize; 2] {
    let mut wins = [0; 2];
    for _ in 0..rounds {
        wins[tie()] += 1;
    }
    wins
}

#[test]
fn races_and_selects_made_afresh_in_loops_of_any_shape_split_their_ties() {
    let race = tie_winners(100, || {
        futures::executor::block_on(taskscope::race(async { 0 }, async { 1 }))
    });
    let select = tie_winners(100, || {
        let (first, second) = (async { 0 }, async { 1 });
        futures::executor::block_on(taskscope::select(first, second))
    });
    let race_macro = tie_winners(100, || {
        futures::executor::block_on(taskscope::race!(async { 0 }, async { 1 }))
    });
    let array = tie_winners(100, || {
        let branches = [std::future::ready(0), std::future::ready(1)];
        futures::executor::block_on(taskscope::race_array(branches))
    });
    // Two races a turn, the first counted: a counter that steps once per
    // race would start the first race of every turn at the same branch.
    let first_of_two = tie_winners(100, || {
        let first = futures::executor::block_on(taskscope::race(async { 0 }, async { 1 }));
        futures::executor::block_on(taskscope::race(async { 0 }, async { 1 }));
        first
    });
    // A join inside a branch leases a wake slot of its own each turn.
    let with_a_join_inside = tie_winners(100, || {
        let joined = async { taskscope::join(async { 0 }, async {}).await.0 };
        futures::executor::block_on(taskscope::race(joined, async { 1 }))
    });
    for (form, wins) in [
        ("race", race),
        ("select", select),
        ("race!", race_macro),
        ("race_array", array),
        ("first of two races", first_of_two),
        ("race with a join inside", with_a_join_inside),
    ] {
        assert!(wins[0] >= 25 && wins[1] >= 25, "{form}: {wins:?}");
    }
}
