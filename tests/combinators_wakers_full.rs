//! When every waker slot near the thread's cursor is leased, a fixed form
//! falls back to polling every branch on every poll, and still completes.
//! Alone in its binary: the slot table is process-wide, and tests running
//! beside it would lease and free slots under it.

mod common;

use std::cell::Cell;
use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::task::Poll;

use common::{CountingWaker, yield_once};

/// A join that stays pending, holding its slot.
type Held = Pin<Box<dyn Future<Output = ((), ())>>>;

/// More than the table holds (4096 slots), so the last leases fail.
const HELD: usize = 5000;

/// Wakes itself on every poll until its `ready_at`-th, then returns "busy".
fn busy(polls: &Cell<usize>, ready_at: usize) -> impl Future<Output = &'static str> + '_ {
    poll_fn(move |cx| {
        polls.set(polls.get() + 1);
        if polls.get() >= ready_at {
            return Poll::Ready("busy");
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    })
}

/// Never wakes, and returns "idle" on its `ready_at`-th poll: it gets there
/// only if its combinator polls it without a wake of its own, which a join
/// does only when it polls every branch.
fn idle(polls: &Cell<usize>, ready_at: usize) -> impl Future<Output = &'static str> + '_ {
    poll_fn(move |_| {
        polls.set(polls.get() + 1);
        if polls.get() >= ready_at {
            return Poll::Ready("idle");
        }
        Poll::Pending
    })
}

#[test]
#[cfg_attr(miri, ignore = "leasing the whole table takes Miri many minutes")]
fn with_the_table_full_a_join_polls_every_branch_and_completes() {
    let outer = CountingWaker::new();
    let mut held: Vec<Held> = (0..HELD)
        .map(|_| Box::pin(taskscope::join(yield_once(), std::future::pending::<()>())) as _)
        .collect();
    for join in &mut held {
        assert!(outer.poll(join.as_mut()).is_pending());
    }

    // `busy` is ready at its 4th poll and wakes the join until then; `idle`
    // is ready at its 3rd, which it reaches only through polls it never
    // asked for.
    let (busy_polls, idle_polls) = (Cell::new(0), Cell::new(0));
    let mut join = pin!(taskscope::join(busy(&busy_polls, 4), idle(&idle_polls, 3)));
    for poll in 1..4 {
        let wakes = outer.count();
        assert!(outer.poll(join.as_mut()).is_pending(), "poll {poll}");
        // A real executor polls again only when woken: `busy`'s wake must
        // reach the join's waker, or the join would never complete.
        assert_eq!(outer.count(), wakes + 1, "poll {poll} asked for the next");
    }
    // Without a slot there is no per-branch waker: `idle` is polled
    // whenever the join is, so it finishes, and then `busy` does too.
    assert_eq!((busy_polls.get(), idle_polls.get()), (3, 3));
    assert_eq!(outer.poll(join.as_mut()), Poll::Ready(("busy", "idle")));
    assert_eq!((busy_polls.get(), idle_polls.get()), (4, 3));

    drop(held);
    let (busy_polls, idle_polls) = (Cell::new(0), Cell::new(0));
    let mut join = pin!(taskscope::join(busy(&busy_polls, 4), idle(&idle_polls, 3)));
    for _ in 0..4 {
        assert!(outer.poll(join.as_mut()).is_pending());
    }
    assert_eq!(
        (busy_polls.get(), idle_polls.get()),
        (4, 1),
        "slots given back are leased again, and `idle` is polled only once"
    );
}
