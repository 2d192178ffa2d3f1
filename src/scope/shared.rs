//! The part of a scope that wakers reach: the ready queue and the scope's waker.
//!
//! Wakers may outlive the scope and run on any thread, so this part is
//! `'static` and shared through an `Arc`; it never touches a child future.
//!
//! The queue's protocol (checked by the loom models in `loom-tests/`):
//!
//! 1. A child's index is pushed at most once between two polls of it (its
//!    header's `queued` flag).
//! 2. `notified` is true from the moment somebody is sure to look at the
//!    queue again (the scope's `poll` is running, or the scope's waker was
//!    woken) until the poll that empties the queue clears it, under the lock.
//!    A push while it is false wakes the scope's waker: no wake-up is lost.

use std::collections::VecDeque;
use std::fmt;
use std::task::Waker;

use super::task::{BODY, PanicBox};
use crate::cancel::CancelToken;
use crate::sync::{Mutex, WakerArc, mutant};

pub(crate) struct ScopeShared {
    token: CancelToken,
    ready: Mutex<Ready>,
    /// Panics of the body and the children, in the order they happened.
    panics: Mutex<Vec<WakerArc<PanicBox>>>,
}

#[derive(Default)]
struct Ready {
    queue: VecDeque<usize>,
    waker: Option<Waker>,
    notified: bool,
}

impl ScopeShared {
    pub(crate) fn new(token: CancelToken) -> Self {
        ScopeShared {
            token,
            ready: Mutex::new(Ready::default()),
            panics: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn token(&self) -> &CancelToken {
        &self.token
    }

    /// Queues `index` for a poll and wakes the scope if nobody will look (2).
    pub(crate) fn schedule(&self, index: usize) {
        let waker = {
            let mut ready = self.ready.lock();
            ready.queue.push_back(index);
            if ready.notified || mutant("schedule_never_wakes") {
                None
            } else {
                ready.notified = true;
                ready.waker.clone()
            }
        };
        // Woken outside the lock: an executor may poll the scope right here.
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Starts a poll of the scope: remembers its waker; pushes need not wake.
    pub(crate) fn begin_poll(&self, waker: &Waker) {
        let mut ready = self.ready.lock();
        match &mut ready.waker {
            Some(current) if current.will_wake(waker) => {}
            slot => *slot = Some(waker.clone()),
        }
        ready.notified = true;
    }

    /// Moves up to `limit` ready indices into `batch`.
    pub(crate) fn take_ready(&self, batch: &mut Vec<usize>, limit: usize) {
        let mut ready = self.ready.lock();
        let count = limit.min(ready.queue.len());
        batch.extend(ready.queue.drain(..count));
    }

    /// Moves up to `limit` indices from the front of the queue into `into`,
    /// stopping at the body, which only the driver may poll (on the scope's
    /// thread): how a parallel scope's participants find children woken (or
    /// left over) while a batch runs. Stopping at the body rather than
    /// skipping it keeps the queue's order: the children behind it were woken
    /// after it and wait for the driver's next batch. Returns how many moved.
    #[cfg_attr(not(feature = "parallel"), allow(dead_code))]
    pub(crate) fn take_ready_children(&self, into: &mut Vec<usize>, limit: usize) -> usize {
        let mut ready = self.ready.lock();
        let count = ready
            .queue
            .iter()
            .take(limit)
            .take_while(|&&index| index != BODY)
            .count();
        into.extend(ready.queue.drain(..count));
        count
    }

    /// Ends a poll if the queue is empty (clearing `notified`, (2)); false if
    /// more work arrived and the caller should go on.
    pub(crate) fn try_end_poll(&self) -> bool {
        let mut ready = self.ready.lock();
        if ready.queue.is_empty() {
            ready.notified = false;
            true
        } else {
            false
        }
    }

    /// Records a panic; the first one cancels the scope with its reason.
    pub(crate) fn record_panic(&self, panic: WakerArc<PanicBox>) {
        let first = {
            let mut panics = self.panics.lock();
            panics.push(panic.clone());
            panics.len() == 1
        };
        if first {
            self.token.cancel_with(panic.reason().clone());
        }
    }

    /// The first panic that nobody re-raised yet, if any.
    pub(crate) fn take_unraised_panic(&self) -> Option<Box<dyn std::any::Any + Send>> {
        let panics = std::mem::take(&mut *self.panics.lock());
        panics.iter().find_map(|panic| panic.take())
    }
}

impl fmt::Debug for ScopeShared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopeShared")
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}
