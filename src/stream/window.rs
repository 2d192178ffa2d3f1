//! What the adapters share: the window check, the watch on the consumer's
//! token, and the set of children that yields them in completion order.

use std::collections::VecDeque;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll, Wake, Waker};

use slab::Slab;

use crate::cancel::WhenCancelled;
use crate::cancel::each::cancel_each;
use crate::scope::JoinHandle;
use crate::sync::{Mutex, WakerArc, mutant};

/// Panics unless `window` is at least 1; called where the adapter is made.
#[track_caller]
pub(crate) fn check_window(window: usize, method: &str) {
    assert!(
        window >= 1,
        "taskscope: `{method}` was called with a window of 0, but the window must be at \
         least 1 (with no item allowed in flight the stream could never make progress); \
         pass the number of items that may run at once"
    );
}

/// Watches the token of the task that polls an adapter, so that cancelling
/// that task reaches the items it started, even when they were spawned into
/// a scope that is not its own.
///
/// The token is the ambient one *at each poll*: an adapter may be polled by
/// different tasks over its life (moved into another child), or inside a
/// wrapper that makes another token current for one call (`shield`, a
/// deadline on a single `next()`). Watching the first poll's token for good
/// made a deadline on one call cancel every later item, and made a moved
/// consumer's cancellation never reach the items.
///
/// It keeps the consumer's waker registered with that token, so a consumer
/// blocked on an item that waits for cancellation is woken, and the adapter
/// can pass the cancellation on.
#[derive(Debug, Default)]
pub(crate) struct ConsumerWatch {
    /// The watched token's `cancelled()` future; `None` when the adapter is
    /// polled outside every scope and combinator (nothing can cancel it).
    when: Option<WhenCancelled>,
    /// The watched token was seen cancelled: items pulled now start cancelled.
    cancelled: bool,
}

impl ConsumerWatch {
    /// True only on the poll that first sees the current consumer's token
    /// cancelled: the adapter then cancels what it has in flight.
    pub(crate) fn newly_cancelled(&mut self, cx: &mut Context<'_>) -> bool {
        self.follow_current_token();
        let Some(when) = self.when.as_mut().filter(|_| !self.cancelled) else {
            return false;
        };
        if Pin::new(when).poll(cx).is_pending() {
            return false;
        }
        self.cancelled = true;
        true
    }

    /// Watches the ambient token if it is not the one watched already; a
    /// new token starts uncancelled (its own cancellation is seen at once).
    fn follow_current_token(&mut self) {
        let current = crate::cancel::ambient::current_token_in_task();
        if self.when.as_ref().map(WhenCancelled::token) != current.as_ref() {
            self.when = current.map(|token| token.cancelled());
            self.cancelled = false;
        }
    }

    /// An item just spawned, cancelled at once if the current consumer has
    /// been seen cancelled: items spawned from then on start cancelled.
    pub(crate) fn started<T>(&self, handle: JoinHandle<T>) -> JoinHandle<T> {
        if self.cancelled {
            handle.cancel();
        }
        handle
    }
}

/// Children whose outputs are taken in the order they finish.
///
/// Each child's handle is polled with a waker of its own, which records the
/// child's index in a shared queue and wakes the consumer; a poll of the set
/// then looks only at the children that were woken, so it costs nothing per
/// idle child.
pub(crate) struct Unordered<T> {
    children: Slab<Child<T>>,
    /// Outputs of children found finished when they were added (possible
    /// only where children run on other threads), oldest first.
    done: VecDeque<T>,
    woken: WakerArc<Woken>,
}

struct Child<T> {
    handle: JoinHandle<T>,
    waker: Waker,
}

/// The indices of woken children and the waker of whoever polls the set.
#[derive(Default)]
struct Woken {
    state: Mutex<WokenState>,
}

#[derive(Default)]
struct WokenState {
    indices: VecDeque<usize>,
    consumer: Option<Waker>,
}

/// The waker a child's handle is polled with.
struct ChildWaker {
    index: usize,
    woken: WakerArc<Woken>,
}

impl Wake for ChildWaker {
    fn wake(self: WakerArc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &WakerArc<Self>) {
        // Taken out, not cloned: a clone is executor code, which may poll
        // the consumer and take this lock. A wake that finds no waker (taken
        // by an earlier one) needs none: the poll that earlier wake brings
        // registers again before it drains `indices`.
        let consumer = {
            let mut state = self.woken.state.lock();
            state.indices.push_back(self.index);
            state.consumer.take()
        };
        // Outside the lock: the consumer may be polled right here.
        if let Some(consumer) = consumer {
            consumer.wake();
        }
    }
}

impl<T> Unordered<T> {
    pub(crate) fn new() -> Self {
        Unordered {
            children: Slab::new(),
            done: VecDeque::new(),
            woken: WakerArc::default(),
        }
    }

    /// Children added and not yet taken, finished or not.
    pub(crate) fn len(&self) -> usize {
        self.children.len() + self.done.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.children.is_empty() && self.done.is_empty()
    }

    /// Adds a child and polls its handle once, which registers the child's
    /// waker before the child can finish (in a serial scope), so the woken
    /// queue holds the children in the order they finished.
    pub(crate) fn push(&mut self, mut handle: JoinHandle<T>) {
        let entry = self.children.vacant_entry();
        let waker = Waker::from(WakerArc::new(ChildWaker {
            index: entry.key(),
            woken: self.woken.clone(),
        }));
        match Pin::new(&mut handle).poll(&mut Context::from_waker(&waker)) {
            Poll::Pending => {
                entry.insert(Child { handle, waker });
            }
            Poll::Ready(output) => self.done.push_back(output),
        }
    }

    /// The output of a finished child, `Ready(None)` if the set is empty,
    /// `Pending` (with `cx`'s waker registered) otherwise.
    ///
    /// Re-raises a child's panic.
    pub(crate) fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        // Register first: a child woken after the queue is drained below
        // then wakes this waker, so no completion is missed.
        let late = mutant("unordered_registers_consumer_last");
        if !late {
            self.register_consumer(cx);
        }
        if let Some(output) = self.done.pop_front() {
            return Poll::Ready(Some(output));
        }
        loop {
            let next = self.woken.state.lock().indices.pop_front();
            let Some(index) = next else { break };
            // A stale index (a child already taken, its slot reused by a
            // newer one) costs one spurious poll that merely registers the
            // newer child's waker again.
            let Some(child) = self.children.get_mut(index) else {
                continue;
            };
            let mut child_cx = Context::from_waker(&child.waker);
            let polled = panic::catch_unwind(AssertUnwindSafe(|| {
                Pin::new(&mut child.handle).poll(&mut child_cx)
            }));
            match polled {
                Ok(Poll::Pending) => {}
                Ok(Poll::Ready(output)) => {
                    self.children.remove(index);
                    return Poll::Ready(Some(output));
                }
                // The handle re-raised the child's panic: the child is gone
                // (its handle is spent), so the set must forget it before the
                // panic goes on, or a caller that catches it would find the
                // set waiting for that child for ever.
                Err(payload) => {
                    self.children.remove(index);
                    panic::resume_unwind(payload);
                }
            }
        }
        if self.is_empty() {
            Poll::Ready(None)
        } else {
            if late {
                self.register_consumer(cx);
            }
            Poll::Pending
        }
    }

    /// Stores the consumer's waker (cloned, and the old one dropped, with no
    /// lock held: `Mutex::store_waker`).
    fn register_consumer(&self, cx: &Context<'_>) {
        self.woken
            .state
            .store_waker(|state| &mut state.consumer, cx.waker());
    }

    /// Asks every unfinished child to stop.
    ///
    /// Every one of them, even if an `on_cancel` callback of one panics; the
    /// first panic is resumed afterwards (dropped if this thread is already
    /// unwinding: see `cancel_each`).
    pub(crate) fn cancel_all(&self) {
        let unfinished = self
            .children
            .iter()
            .filter(|(_, child)| !child.handle.is_finished());
        cancel_each(unfinished, |(_, child)| child.handle.cancel());
    }

    /// How many children have finished but were not taken yet.
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    pub(crate) fn finished(&self) -> usize {
        self.done.len()
            + self
                .children
                .iter()
                .filter(|(_, child)| child.handle.is_finished())
                .count()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use futures::executor::block_on;

    use super::*;
    use crate::scope;
    use crate::test_util::{CountingWaker, yield_now};

    #[test]
    fn children_finished_before_they_are_added_count_and_come_out_oldest_first() {
        block_on(scope(|s| async move {
            let (first, second) = (s.spawn(async { 1 }), s.spawn(async { 2 }));
            while !(first.is_finished() && second.is_finished()) {
                yield_now().await;
            }
            let mut set = Unordered::new();
            set.push(first);
            set.push(second);
            assert_eq!(set.len(), 2, "finished children still count");
            assert!(!set.is_empty());
            let waker = CountingWaker::new();
            let mut cx = waker.context();
            assert_eq!(set.poll_next(&mut cx), Poll::Ready(Some(1)));
            assert_eq!(set.poll_next(&mut cx), Poll::Ready(Some(2)));
            assert_eq!(set.poll_next(&mut cx), Poll::Ready(None));
            assert!(set.is_empty());
        }));
    }

    #[test]
    fn a_stale_woken_index_does_not_hide_the_wakes_behind_it() {
        block_on(scope(|s| async move {
            let mut set = Unordered::new();
            set.push(s.spawn(async {
                yield_now().await;
                7
            }));
            // An index whose child is gone, queued before the real wake.
            set.woken.state.lock().indices.push_back(99);
            // The child finishes (two polls, a body yield each) and wakes
            // index 0 behind the stale one.
            for _ in 0..4 {
                yield_now().await;
            }
            assert_eq!(set.woken.state.lock().indices, [99, 0]);
            let waker = CountingWaker::new();
            assert_eq!(set.poll_next(&mut waker.context()), Poll::Ready(Some(7)));
        }));
    }
}
