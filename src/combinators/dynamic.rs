//! The driver of the iterator forms (`join_all`, `race_all`, ...): one
//! waker per branch, and only branches whose waker fired are polled.

use std::fmt;
use std::future::Future;
use std::mem;
use std::pin::Pin;
use std::task::{Context, Poll, Wake, Waker};

use super::branch::{Branch, BranchDyn};
use super::engine::{BranchList, Engine};
use crate::sync::{AtomicBool, Mutex, Ordering, WakerArc, mutant};

/// The branches of an iterator form, each boxed: pinning the elements of a
/// growable collection in place is impossible without `unsafe`.
pub(crate) type Boxed<F> = Vec<Pin<Box<Branch<F>>>>;

impl<F: Future> BranchList for Boxed<F> {
    fn count(&self) -> usize {
        self.len()
    }

    fn branch(&mut self, index: usize) -> Pin<&mut dyn BranchDyn> {
        self[index].as_mut()
    }
}

/// What the branch wakers share: the ready queue and the combinator's waker.
struct Shared {
    ready: Mutex<Vec<usize>>,
    waker: Mutex<Option<Waker>>,
}

struct BranchWaker {
    shared: WakerArc<Shared>,
    index: usize,
    /// Set by a wake, cleared just before the branch is polled: a branch is
    /// queued at most once however often it is woken.
    queued: AtomicBool,
}

impl Wake for BranchWaker {
    fn wake(self: WakerArc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &WakerArc<Self>) {
        if !self.queue() {
            return;
        }
        // Taken out, not cloned: a clone is executor code, which may wake
        // another branch and take this lock. Woken outside the lock. A wake
        // that finds no waker (taken by an earlier one) needs none: the poll
        // that earlier wake brings registers again, then takes `ready`.
        let waker = self.shared.waker.lock().take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl BranchWaker {
    /// Queues the branch unless it is queued already; true if this call
    /// queued it.
    fn queue(&self) -> bool {
        // AcqRel: release what the waking side wrote before it woke us to
        // the poller's swap in `poll_dynamic`, which acquires it.
        if self.queued.swap(true, Ordering::AcqRel) {
            return false;
        }
        self.shared.ready.lock().push(self.index);
        true
    }
}

/// The per-branch wakers of an iterator form, made at its first poll.
pub(crate) struct Wakers {
    shared: WakerArc<Shared>,
    branches: Vec<(WakerArc<BranchWaker>, Waker)>,
    /// Swapped with the ready queue for each batch, so both keep their
    /// capacity and a steady state allocates nothing.
    batch: Vec<usize>,
}

impl Wakers {
    fn new(count: usize) -> Self {
        let shared = WakerArc::new(Shared {
            ready: Mutex::new((0..count).collect()),
            waker: Mutex::new(None),
        });
        let branches = (0..count)
            .map(|index| {
                let inner = WakerArc::new(BranchWaker {
                    shared: shared.clone(),
                    index,
                    queued: AtomicBool::new(true),
                });
                (inner.clone(), Waker::from(inner))
            })
            .collect();
        Wakers {
            shared,
            branches,
            batch: Vec::with_capacity(count),
        }
    }
}

impl fmt::Debug for Wakers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Read under the lock, written after it: the formatter's sink is
        // the caller's code.
        let ready = self.shared.ready.lock().len();
        f.debug_struct("Wakers")
            .field("branches", &self.branches.len())
            .field("ready", &ready)
            .finish()
    }
}

/// Polls the woken branches once each, in the order they were woken.
pub(crate) fn poll_dynamic<F: Future>(
    engine: &mut Engine,
    list: &mut Boxed<F>,
    wakers: &mut Option<Wakers>,
    cx: &mut Context<'_>,
) -> Poll<Option<usize>> {
    engine.start_if_needed(list);
    let wakers = wakers.get_or_insert_with(|| Wakers::new(list.len()));
    // Registered before the ready queue is taken, so a wake after the take
    // finds it.
    wakers.shared.waker.store_waker(|waker| waker, cx.waker());
    loop {
        wakers.batch.clear();
        mem::swap(&mut *wakers.shared.ready.lock(), &mut wakers.batch);
        let mut cancelled = false;
        for &index in &wakers.batch {
            let (inner, waker) = &wakers.branches[index];
            let late = mutant("branch_clears_queued_after_poll");
            // AcqRel: see `wake_by_ref`; a wake after this queues again.
            if !late {
                inner.queued.swap(false, Ordering::AcqRel);
            }
            if !list[index].is_running() {
                continue;
            }
            let step = list[index].as_mut().step(&mut Context::from_waker(waker));
            if late {
                inner.queued.swap(false, Ordering::AcqRel);
            }
            cancelled |= engine.record(index, step, list);
        }
        if !cancelled {
            break;
        }
        // Cancelled branches get a poll now, so they notice at once. Queued
        // without waking the task: this loop takes the queue next, and the
        // task's wake is executor code that could unwind out of it half-way.
        for (index, (inner, _)) in wakers.branches.iter().enumerate() {
            if list[index].is_running() {
                inner.queue();
            }
        }
    }
    engine.poll_done()
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::test_util::CountingWaker;

    #[test]
    fn a_branch_woken_twice_is_queued_once_and_wakes_the_combinator() {
        let wakers = Wakers::new(2);
        let parent = CountingWaker::new();
        *wakers.shared.waker.lock() = Some(parent.context().waker().clone());
        wakers.shared.ready.lock().clear();
        for (inner, _) in &wakers.branches {
            inner.queued.store(false, Ordering::Relaxed);
        }
        wakers.branches[1].1.wake_by_ref();
        wakers.branches[1].1.wake_by_ref();
        assert_eq!(*wakers.shared.ready.lock(), [1]);
        assert_eq!(parent.count(), 1);
    }
}
