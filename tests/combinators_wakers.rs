//! The fixed forms give each branch its own waker: a wake polls only the
//! branch it belongs to, a waker outliving its combinator does nothing, and
//! a branch's wake reaches whichever task polls the combinator now.

mod common;

use std::cell::{Cell, RefCell};
use std::future::{Future, poll_fn};
use std::pin::pin;
use std::task::{Poll, Waker};

use common::{CountingWaker, returns};

/// A branch that counts its polls, keeps its latest waker, and finishes
/// once `done` is set.
#[derive(Default)]
struct Probe {
    polls: Cell<usize>,
    waker: RefCell<Option<Waker>>,
    done: Cell<bool>,
}

impl Probe {
    fn run(&self) -> impl Future<Output = usize> + '_ {
        poll_fn(|cx| {
            self.polls.set(self.polls.get() + 1);
            *self.waker.borrow_mut() = Some(cx.waker().clone());
            if self.done.get() {
                Poll::Ready(self.polls.get())
            } else {
                Poll::Pending
            }
        })
    }

    fn wake(&self) {
        self.waker
            .borrow()
            .as_ref()
            .expect("polled once")
            .wake_by_ref();
    }

    fn finish(&self) {
        self.done.set(true);
        self.wake();
    }
}

#[test]
fn a_wake_of_one_branch_of_join_polls_only_that_branch() {
    let (a, b) = (Probe::default(), Probe::default());
    let outer = CountingWaker::new();
    let mut join = pin!(taskscope::join(a.run(), b.run()));
    assert!(outer.poll(join.as_mut()).is_pending());
    assert_eq!((a.polls.get(), b.polls.get()), (1, 1));

    a.wake();
    assert_eq!(outer.count(), 1, "a branch's wake reaches the outer waker");
    assert!(outer.poll(join.as_mut()).is_pending());
    assert_eq!((a.polls.get(), b.polls.get()), (2, 1));

    b.finish();
    assert!(outer.poll(join.as_mut()).is_pending());
    assert_eq!((a.polls.get(), b.polls.get()), (2, 2));

    a.finish();
    assert_eq!(outer.poll(join.as_mut()), Poll::Ready((3, 2)));
}

#[test]
fn a_wake_of_one_of_eight_branches_of_join_macro_polls_only_that_one() {
    let probes: [Probe; 8] = Default::default();
    let [p0, p1, p2, p3, p4, p5, p6, p7] = &probes;
    let outer = CountingWaker::new();
    let mut join = pin!(taskscope::join!(
        p0.run(),
        p1.run(),
        p2.run(),
        p3.run(),
        p4.run(),
        p5.run(),
        p6.run(),
        p7.run()
    ));
    assert!(outer.poll(join.as_mut()).is_pending());
    for _ in 0..10 {
        p5.wake();
        assert!(outer.poll(join.as_mut()).is_pending());
    }
    let polls: Vec<usize> = probes.iter().map(|p| p.polls.get()).collect();
    assert_eq!(polls, [1, 1, 1, 1, 1, 11, 1, 1]);
    for probe in &probes {
        probe.finish();
    }
    assert!(outer.poll(join.as_mut()).is_ready());
}

#[test]
fn an_unwoken_poll_of_race_polls_no_branch() {
    let (a, b) = (Probe::default(), Probe::default());
    let outer = CountingWaker::new();
    let mut race = pin!(taskscope::race(a.run(), b.run()));
    assert!(outer.poll(race.as_mut()).is_pending());
    // A spurious poll of the race (nothing woke a branch) polls nobody.
    assert!(outer.poll(race.as_mut()).is_pending());
    assert_eq!((a.polls.get(), b.polls.get()), (1, 1));
    a.finish();
    // The winner is polled because it woke; the loser is polled because the
    // race cancelled it, so that it sees its token.
    assert!(outer.poll(race.as_mut()).is_pending());
    assert_eq!((a.polls.get(), b.polls.get()), (2, 2));
    b.finish();
    assert_eq!(outer.poll(race.as_mut()), Poll::Ready(2));
}

#[test]
fn a_branch_waker_that_outlives_its_join_is_inert() {
    let (a, b) = (Probe::default(), Probe::default());
    let outer = CountingWaker::new();
    {
        let mut join = pin!(taskscope::join(a.run(), b.run()));
        assert!(outer.poll(join.as_mut()).is_pending());
    }
    a.wake();
    a.wake();
    assert_eq!(
        outer.count(),
        0,
        "the join is gone; its waker must not fire"
    );
}

#[test]
fn a_stale_branch_waker_does_not_wake_the_next_join_on_its_slot() {
    let stale = Probe::default();
    let outer = CountingWaker::new();
    {
        let mut first = pin!(taskscope::join(stale.run(), std::future::pending::<()>()));
        assert!(outer.poll(first.as_mut()).is_pending());
    }
    // On this thread the next join leases the slot the first gave back.
    let (a, b) = (Probe::default(), Probe::default());
    let next_outer = CountingWaker::new();
    let mut next = pin!(taskscope::join(a.run(), b.run()));
    assert!(next_outer.poll(next.as_mut()).is_pending());
    stale.wake();
    assert_eq!(next_outer.count(), 0);
    assert!(next_outer.poll(next.as_mut()).is_pending());
    assert_eq!((a.polls.get(), b.polls.get()), (1, 1));
}

#[test]
fn a_branch_wake_reaches_the_task_that_polled_the_join_last() {
    let (a, b) = (Probe::default(), Probe::default());
    let (first, second) = (CountingWaker::new(), CountingWaker::new());
    let mut join = pin!(taskscope::join(a.run(), b.run()));
    assert!(first.poll(join.as_mut()).is_pending());
    a.wake();
    assert!(second.poll(join.as_mut()).is_pending());
    a.wake();
    assert_eq!((first.count(), second.count()), (1, 1));
}

#[test]
fn a_branch_woken_from_another_thread_is_polled() {
    let outer = CountingWaker::new();
    let (sender, receiver) = futures::channel::oneshot::channel();
    let mut join = pin!(taskscope::join(receiver, async { 1 }));
    assert!(outer.poll(join.as_mut()).is_pending());
    std::thread::spawn(move || sender.send(7).unwrap())
        .join()
        .unwrap();
    assert_eq!(outer.count(), 1);
    assert_eq!(outer.poll(join.as_mut()), Poll::Ready((Ok(7), 1)));
}

#[test]
fn a_branch_that_wakes_itself_while_polled_wakes_the_task_once_and_runs_again() {
    let other = Probe::default();
    let outer = CountingWaker::new();
    let mut polls = 0;
    let busy = poll_fn(|cx| {
        polls += 1;
        if polls == 3 {
            return Poll::Ready(polls);
        }
        cx.waker().wake_by_ref();
        cx.waker().wake_by_ref();
        Poll::Pending
    });
    let mut join = pin!(taskscope::join(busy, other.run()));
    assert!(outer.poll(join.as_mut()).is_pending());
    assert_eq!(
        outer.count(),
        1,
        "two wakes during the poll, one wake of the task"
    );
    assert!(outer.poll(join.as_mut()).is_pending());
    assert_eq!(outer.count(), 2);
    other.finish();
    assert_eq!(outer.poll(join.as_mut()), Poll::Ready((3, 2)));
    assert_eq!(
        other.polls.get(),
        2,
        "the idle branch ran only at the start and when it woke"
    );
}

/// A task's waker whose destructor wakes a branch of the combinator that
/// held the waker last, as an executor's task freed with its last waker may
/// complete a channel a branch waits on.
struct WakesBranchOnDrop(std::sync::Arc<std::sync::Mutex<Option<Waker>>>);

impl std::task::Wake for WakesBranchOnDrop {
    fn wake(self: std::sync::Arc<Self>) {}
}

impl Drop for WakesBranchOnDrop {
    fn drop(&mut self) {
        if let Some(branch) = self.0.lock().expect("not poisoned").as_ref() {
            branch.wake_by_ref();
        }
    }
}

type Saved = std::sync::Arc<std::sync::Mutex<Option<Waker>>>;

/// A pending branch that saves its waker where `WakesBranchOnDrop` finds it.
fn saving_branch(saved: Saved) -> impl Future<Output = ()> + Send {
    poll_fn(move |cx| {
        *saved.lock().expect("not poisoned") = Some(cx.waker().clone());
        Poll::Pending
    })
}

/// Polls `combinator` with a first task waker, drops the caller's copy, and
/// polls again with a second: the combinator then drops the first waker's
/// last reference, whose destructor wakes one of the combinator's branches.
fn poll_with_two_wakers(combinator: impl Future, saved: &Saved) {
    let first = Waker::from(std::sync::Arc::new(WakesBranchOnDrop(saved.clone())));
    let second = CountingWaker::new();
    let mut combinator = pin!(combinator);
    assert!(
        combinator
            .as_mut()
            .poll(&mut std::task::Context::from_waker(&first))
            .is_pending()
    );
    drop(first);
    assert!(second.poll(combinator.as_mut()).is_pending());
    assert_eq!(second.count(), 1, "the branch's wake reached the new waker");
    saved.lock().expect("not poisoned").take();
}

#[test]
fn a_replaced_task_waker_of_join_is_dropped_outside_its_lock() {
    assert!(returns(|| {
        let saved = Saved::default();
        let join = taskscope::join(saving_branch(saved.clone()), std::future::pending::<()>());
        poll_with_two_wakers(join, &saved);
    }));
}

#[test]
fn a_replaced_task_waker_of_join_all_is_dropped_outside_its_lock() {
    assert!(returns(|| {
        let saved = Saved::default();
        let join =
            taskscope::join_all([saving_branch(saved.clone()), saving_branch(saved.clone())]);
        poll_with_two_wakers(join, &saved);
    }));
}
