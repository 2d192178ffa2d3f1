//! Allocation counts of the combinators, measured with a counting global
//! allocator. Only allocations made by the test's own thread between
//! `count_allocations`' start and end are counted, so tests running in
//! parallel do not disturb each other.

mod common;
mod counting_alloc;

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use common::yield_once;

/// Creates the future with `make` and polls it to completion with a no-op
/// waker, counting the allocations of both.
fn count_allocations<F: Future>(make: impl FnOnce() -> F) -> (usize, F::Output) {
    counting_alloc::counted(|| {
        let mut fut = pin!(make());
        let mut cx = Context::from_waker(Waker::noop());
        let mut polls = 0;
        loop {
            if let Poll::Ready(output) = fut.as_mut().poll(&mut cx) {
                break output;
            }
            polls += 1;
            assert!(polls < 100, "the future must finish");
        }
    })
}

/// Yields `polls` times, checking for cancellation before each yield.
async fn work(polls: usize, value: u32) -> u32 {
    for _ in 0..polls {
        if taskscope::checkpoint().is_err() {
            return 0;
        }
        yield_once().await;
    }
    value
}

/// Yields `polls` times without looking at its token.
async fn quiet(polls: usize, value: u32) -> u32 {
    for _ in 0..polls {
        yield_once().await;
    }
    value
}

#[test]
fn join_and_join_macro_allocate_nothing() {
    let (allocs, out) = count_allocations(|| taskscope::join(work(3, 1), work(5, 2)));
    assert_eq!((allocs, out), (0, (1, 2)));
    let (allocs, out) = count_allocations(|| {
        taskscope::join!(work(1, 1), work(2, 2), work(3, 3), work(4, 4), async {
            "five"
        })
    });
    assert_eq!((allocs, out), (0, (1, 2, 3, 4, "five")));
}

#[test]
fn try_join_allocates_nothing_also_when_a_branch_fails() {
    let failing = async {
        yield_once().await;
        Err::<u32, &str>("failed")
    };
    let (allocs, out) = count_allocations(|| {
        taskscope::try_join!(failing, async { Ok(work(10, 1).await) }, async {
            Ok(work(10, 2).await)
        })
    });
    assert_eq!((allocs, out), (0, Err("failed")));
    let (allocs, out) =
        count_allocations(|| taskscope::try_join(async { Ok::<_, ()>(1) }, async { Ok(2) }));
    assert_eq!((allocs, out), (0, Ok((1, 2))));
}

#[test]
fn race_with_losers_that_notice_the_cancellation_allocates_nothing() {
    let (allocs, out) = count_allocations(|| taskscope::race(work(2, 1), work(50, 2)));
    assert_eq!((allocs, out), (0, 1));
    let (allocs, out) =
        count_allocations(|| taskscope::race!(work(50, 1), work(3, 2), work(50, 3)));
    assert_eq!((allocs, out), (0, 2));
}

#[test]
fn select_allocates_nothing() {
    let (allocs, out) = count_allocations(|| taskscope::select(work(2, 1), work(50, 2)));
    assert_eq!((allocs, out), (0, 1));
    let (allocs, out) = count_allocations(|| taskscope::select!(work(50, 1), work(3, 2)));
    assert_eq!((allocs, out), (0, 2));
}

#[test]
fn a_branch_that_asks_for_its_token_costs_one_allocation() {
    let (allocs, _) = count_allocations(|| {
        taskscope::join(
            async { taskscope::current_token().is_cancelled() },
            work(2, 1),
        )
    });
    assert_eq!(allocs, 1, "one token node, for the branch that asked");
}

#[test]
fn a_cancelled_loser_awaiting_its_token_costs_two_allocations() {
    // `cancelled()` makes the loser's token (one node) and registers its
    // waker in the node (the waiter slab's first slot); cancelling the made
    // token allocates nothing (I7 of design/cancellation.md).
    let (allocs, out) = count_allocations(|| {
        taskscope::race(work(2, 1), async {
            taskscope::cancelled().await;
            2
        })
    });
    assert_eq!((allocs, out), (2, 1));
}

#[test]
fn a_nested_fixed_combinator_costs_one_token() {
    // The inner race makes the outer branch's token at its first poll (one
    // node) so that the outer race's verdict reaches the inner branches;
    // cancelling that token allocates nothing (I7).
    let (allocs, out) = count_allocations(|| {
        taskscope::race(taskscope::race(quiet(5, 1), quiet(5, 2)), work(3, 3))
    });
    assert_eq!((allocs, out), (1, 3));
    // A branch that observes an inherited cancellation through `checkpoint`
    // gets a `Parent` reason, made once for the token it inherits from (I7),
    // not once per observation: one more allocation.
    let (allocs, out) = count_allocations(|| {
        taskscope::race(taskscope::race(work(50, 1), quiet(5, 2)), work(3, 3))
    });
    assert_eq!((allocs, out), (2, 3));
    // Nested but never cancelled: only the node.
    let (allocs, out) =
        count_allocations(|| taskscope::join(taskscope::join(work(1, 1), work(2, 2)), work(3, 3)));
    assert_eq!((allocs, out), (1, ((1, 2), 3)));
}

#[test]
fn the_iterator_forms_allocate_per_branch() {
    // Per branch: its box and its waker's `Arc`; once: the vector of boxes,
    // the shared `Arc`, the ready queue and the batch it is swapped with,
    // the vector of wakers, and (join_all only) the vector of outputs. No
    // allocation per poll: the queue and the batch keep their capacity.
    for n in [1, 4, 16] {
        let (allocs, out) = count_allocations(|| taskscope::join_all((0..n).map(|i| work(5, i))));
        assert_eq!(out, (0..n).collect::<Vec<_>>());
        assert_eq!(allocs, 2 * n as usize + 6, "join_all of {n}");
        let (allocs, out) = count_allocations(|| {
            taskscope::race_all((0..n).map(|i| work(if i == 0 { 2 } else { 50 }, i)))
        });
        assert_eq!(out, 0);
        assert_eq!(allocs, 2 * n as usize + 5, "race_all of {n}");
    }
}

#[test]
fn the_array_forms_allocate_nothing() {
    let (allocs, out) =
        count_allocations(|| taskscope::join_array([3, 1, 4].map(|i| work(i, i as u32))));
    assert_eq!((allocs, out), (0, [3, 1, 4]));
    let (allocs, out) = count_allocations(|| {
        taskscope::race_array([50, 2, 50, 50].map(|polls| work(polls, polls as u32)))
    });
    assert_eq!((allocs, out), (0, 2));
    let (allocs, out) = count_allocations(|| {
        taskscope::try_join_array([1, 2].map(|polls| async move {
            let value = work(polls, polls as u32).await;
            if value == 2 { Err(value) } else { Ok(value) }
        }))
    });
    assert_eq!((allocs, out), (0, Err(2)));
}

#[test]
fn repeated_checkpoints_under_a_cancelled_scope_allocate_at_most_once() {
    futures::executor::block_on(taskscope::scope(|s| async move {
        s.cancel();
        // Counted inside the body's poll, so the branches' parent is the
        // scope's token, cancelled with `Requested`: each observation is a
        // `Parent(Requested)`, made once for that token (I7), not per check.
        let (allocs, (observed, _)) = count_allocations(|| {
            taskscope::join(
                async { (0..10).filter(|_| taskscope::checkpoint().is_err()).count() },
                async {},
            )
        });
        assert_eq!(observed, 10);
        assert!(allocs <= 1, "{allocs} allocations for 10 checks");
    }));
}
