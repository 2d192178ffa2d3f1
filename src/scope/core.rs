//! The children of a scope and the polling of one child.
//!
//! `Core<T>` is generic over the boxed child type `T`: `dyn Future + Send`
//! for [`scope`](crate::scope) and [`par_scope`](crate::par_scope), plain
//! `dyn Future` for [`local_scope`](crate::local_scope). Children are polled
//! only by the scope future's own `poll` (never by a waker, never by a
//! handle), which is what makes `mem::forget` of a scope future harmless:
//! see design/soundness.md.
//!
//! A child's future is taken out of its slab entry while it is polled, so no
//! lock is held during a poll (a child may spawn into its own scope) and,
//! in a parallel scope, distinct children can be polled on distinct threads.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use slab::Slab;

use super::shared::ScopeShared;
use super::task::{TaskExit, TaskHeader};
use crate::cancel::ambient::{self, Ambient};
use crate::cleanup::CleanupTimeout;
use crate::cleanup::queue::CleanupQueue;
use crate::sync::{Mutex, WakerArc};

pub(crate) struct Core<T: ?Sized> {
    shared: WakerArc<ScopeShared>,
    state: Mutex<State<T>>,
    /// Adopted values and deferred futures, run once every child finished.
    cleanup: CleanupQueue<T>,
}

struct State<T: ?Sized> {
    tasks: Slab<Entry<T>>,
    /// Set when the scope finished or was dropped: spawning is a bug then.
    closed: bool,
}

struct Entry<T: ?Sized> {
    /// `None` while the child is being polled.
    future: Option<Pin<Box<T>>>,
    header: WakerArc<TaskHeader>,
    /// Woken while being polled elsewhere (parallel scope): queue it again
    /// when it is put back, or the wake-up would be lost.
    rewake: bool,
}

/// A child taken out of the slab to be polled.
pub(crate) struct Taken<T: ?Sized> {
    pub(crate) index: usize,
    pub(crate) future: Pin<Box<T>>,
    pub(crate) header: WakerArc<TaskHeader>,
}

impl<T: ?Sized> Core<T> {
    pub(crate) fn new(shared: WakerArc<ScopeShared>) -> Self {
        Core {
            shared,
            state: Mutex::new(State {
                tasks: Slab::new(),
                closed: false,
            }),
            cleanup: CleanupQueue::new(CleanupTimeout::default()),
        }
    }

    /// Bounds the scope's clean-up; see `Builder::cleanup_timeout_when`.
    pub(crate) fn with_cleanup_timeout(mut self, timeout: CleanupTimeout) -> Self {
        self.cleanup = CleanupQueue::new(timeout);
        self
    }

    pub(crate) fn shared(&self) -> &WakerArc<ScopeShared> {
        &self.shared
    }

    pub(crate) fn cleanup(&self) -> &CleanupQueue<T> {
        &self.cleanup
    }

    /// Adds a child and schedules its first poll.
    ///
    /// # Panics
    ///
    /// If the scope has already finished or been dropped.
    pub(crate) fn insert(&self, future: Pin<Box<T>>) -> WakerArc<TaskHeader> {
        let mut state = self.state.lock();
        if state.closed {
            drop(state);
            drop(future);
            panic!(
                "taskscope: spawn on a scope that has already finished; a scope handle \
                 must not be used after its scope returned (spawn from the scope's body \
                 or from its children instead)"
            );
        }
        let entry = state.tasks.vacant_entry();
        let index = entry.key();
        let header = WakerArc::new(TaskHeader::new(self.shared.clone(), index));
        entry.insert(Entry {
            future: Some(future),
            header: header.clone(),
            rewake: false,
        });
        drop(state);
        self.shared.schedule(index);
        header
    }

    /// Takes the child at `index` out to be polled, if it is there and idle.
    pub(crate) fn take(&self, index: usize) -> Option<Taken<T>> {
        let mut state = self.state.lock();
        let entry = state.tasks.get_mut(index)?;
        match entry.future.take() {
            Some(future) => Some(Taken {
                index,
                future,
                header: entry.header.clone(),
            }),
            None => {
                entry.rewake = true;
                None
            }
        }
    }

    /// Puts a polled child back, or removes it if it finished.
    pub(crate) fn put_back(&self, taken: Taken<T>, exit: Poll<TaskExit>) {
        let Taken {
            index,
            future,
            header,
        } = taken;
        let mut state = self.state.lock();
        match exit {
            Poll::Pending => {
                let entry = &mut state.tasks[index];
                entry.future = Some(future);
                if std::mem::take(&mut entry.rewake) {
                    drop(state);
                    // Bypasses the `queued` flag on purpose: the wake that set
                    // `rewake` found the child queued and must not be lost.
                    self.shared.schedule(index);
                }
            }
            Poll::Ready(exit) => {
                state.tasks.remove(index);
                header.mark_dead();
                drop(state);
                drop(future);
                if let TaskExit::Panicked(panic) = exit {
                    self.shared.record_panic(panic);
                }
            }
        }
    }

    /// Whether every child has finished.
    pub(crate) fn is_empty(&self) -> bool {
        self.state.lock().tasks.is_empty()
    }

    /// Refuses further spawns.
    pub(crate) fn close(&self) {
        self.state.lock().closed = true;
    }

    /// Drops every child, unpolled, and closes the scope.
    ///
    /// A child's destructor may spawn into the scope (it still holds a
    /// handle); such late children are dropped in the next round.
    pub(crate) fn drop_children(&self) {
        loop {
            let futures: Vec<_> = {
                let mut state = self.state.lock();
                if state.tasks.is_empty() {
                    state.closed = true;
                    return;
                }
                state
                    .tasks
                    .drain()
                    .filter_map(|entry| {
                        entry.header.mark_dead();
                        entry.future
                    })
                    .collect()
            };
            // Outside the lock: destructors are user code.
            drop(futures);
        }
    }
}

/// Polls one taken child with its own waker and its token made current.
pub(crate) fn poll_taken<T: ?Sized + Future<Output = TaskExit>>(
    taken: &mut Taken<T>,
) -> Poll<TaskExit> {
    taken.header.clear_queued();
    let waker = Waker::from(taken.header.clone());
    let _entered = ambient::enter(Ambient::Task(taken.header.clone()));
    taken.future.as_mut().poll(&mut Context::from_waker(&waker))
}

impl<T: ?Sized> fmt::Debug for Core<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.lock();
        f.debug_struct("Core")
            .field("children", &state.tasks.len())
            .field("closed", &state.closed)
            .field("cleanup", &self.cleanup)
            .finish()
    }
}
