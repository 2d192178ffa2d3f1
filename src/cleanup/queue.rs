//! The scope's clean-up stack: adopted values handed back and deferred futures.
//!
//! It lives in the scope's `Core` (not in the `'static` `ScopeShared`),
//! because its entries borrow `'env` data. Entries have the scope's child
//! type `T`, so they are `Send` exactly when the scope's children must be.
//!
//! The stack holds one slot per `adopt` or `defer` call, in call order.
//! `adopt` reserves an empty slot; the guard fills it when it is dropped, so
//! an adopted value is cleaned up in the position of its `adopt` call, not
//! of its drop. The runner (run.rs) pops from the top: last in, first out.

use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;

use super::run::Run;
use super::skipped::{Skip, note_skipped};
use super::timeout::CleanupTimeout;
use crate::scope::gone::Gone;
use crate::sync::{Mutex, mutant};

pub(crate) struct CleanupQueue<T: ?Sized> {
    pub(super) state: Mutex<State<T>>,
    pub(super) timeout: CleanupTimeout,
}

pub(super) struct State<T: ?Sized> {
    slots: Vec<Slot<T>>,
    next_id: u64,
    pub(super) phase: Phase,
    /// The runner's state between two polls of the scope.
    pub(super) run: Option<Run<T>>,
}

struct Slot<T: ?Sized> {
    id: u64,
    /// `None` while the adopted value's guard is alive.
    task: Option<Pin<Box<T>>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    /// The body or children are running: clean-ups are only collected.
    Open,
    /// Every child finished; the runner is working through the stack.
    Running,
    /// The stack was run to the end; the scope returned.
    Finished,
    /// The scope future is being dropped unfinished: clean-ups are dropped
    /// unrun, and those their destructors adopt or defer are still taken,
    /// to be dropped in turn.
    Abandoning,
    /// The scope future was dropped unfinished, and its last clean-up with it.
    Abandoned,
}

impl<T: ?Sized> CleanupQueue<T> {
    pub(crate) fn new(timeout: CleanupTimeout) -> Self {
        CleanupQueue {
            state: Mutex::new(State {
                slots: Vec::new(),
                next_id: 0,
                phase: Phase::Open,
                run: None,
            }),
            timeout,
        }
    }

    /// Reserves a slot for a value being adopted.
    ///
    /// # Panics
    ///
    /// If the scope has finished or was dropped.
    #[track_caller]
    pub(crate) fn reserve(&self) -> u64 {
        let mut state = self.state.lock();
        if let Some(gone) = gone(state.phase) {
            drop(state);
            gone.refuse("adopt");
        }
        state.push(None)
    }

    /// Pushes a deferred future.
    ///
    /// # Panics
    ///
    /// If the scope has finished or was dropped.
    #[track_caller]
    pub(crate) fn push(&self, task: Pin<Box<T>>) {
        let mut state = self.state.lock();
        if let Some(gone) = gone(state.phase) {
            drop(state);
            drop(task);
            gone.refuse("defer");
        }
        state.push(Some(task));
    }

    /// An adopted value's guard was dropped: its clean-up takes its slot.
    ///
    /// Never panics on its own (guards are dropped while unwinding, where a
    /// second panic would abort): if the scope is gone, the value is dropped
    /// synchronously and counted as skipped.
    pub(crate) fn hand_back(&self, id: u64, task: Pin<Box<T>>) {
        let mut state = self.state.lock();
        let why = match state.phase {
            Phase::Running if mutant("hand_back_skips_while_running") => Skip::AfterScope,
            Phase::Open | Phase::Running | Phase::Abandoning => {
                match state.slots.iter_mut().rev().find(|slot| slot.id == id) {
                    Some(slot) => slot.task = Some(task),
                    // Its slot was popped while the guard lived on somewhere
                    // (leaked past the end of the children): run it next.
                    None => {
                        state.push(Some(task));
                    }
                }
                return;
            }
            Phase::Finished => Skip::AfterScope,
            Phase::Abandoned => Skip::ScopeDropped,
        };
        drop(state);
        note_skipped(why);
        if mutant("skipped_hand_back_leaks") {
            std::mem::forget(task);
            return;
        }
        if let Some(payload) = drop_caught(task) {
            if !std::thread::panicking() {
                panic::resume_unwind(payload);
            }
        }
    }

    /// An adopted value was closed in place: its slot goes.
    pub(crate) fn release(&self, id: u64) {
        let mut state = self.state.lock();
        if let Some(position) = state.slots.iter().rposition(|slot| slot.id == id) {
            let slot = state.slots.remove(position);
            drop(state);
            drop(slot);
        }
    }

    /// Whether the scope is running its clean-up now.
    pub(crate) fn is_running(&self) -> bool {
        self.state.lock().phase == Phase::Running
    }

    /// Takes the top clean-up; with none left, ends the clean-up (under the
    /// same lock, so a concurrent hand-back either is popped or sees
    /// `Finished`, never lost in between).
    pub(super) fn pop_or_finish(&self) -> Option<Pin<Box<T>>> {
        let mut state = self.state.lock();
        while let Some(slot) = state.slots.pop() {
            // An empty slot is a guard still alive elsewhere; when it is
            // dropped it is handled as above.
            if slot.task.is_some() {
                return slot.task;
            }
        }
        state.phase = Phase::Finished;
        None
    }

    /// The scope future was dropped unfinished: no async work can run, so
    /// drop every clean-up unrun (adopted values get their sync `Drop`),
    /// newest first, counting each.
    ///
    /// # Panics
    ///
    /// Re-raises the first panic of those drops, unless already unwinding.
    pub(crate) fn abandon(&self) {
        let mut first_panic = None;
        loop {
            let (run, stacked): (_, Vec<_>) = {
                let mut state = self.state.lock();
                let stacked: Vec<_> = state.slots.drain(..).rev().collect();
                let run = state.run.take();
                if stacked.is_empty() && run.is_none() {
                    // Under the same lock as the check: an `adopt` or
                    // `defer` either came before and was dropped in an
                    // earlier round, or comes after and is refused.
                    state.phase = Phase::Abandoned;
                    break;
                }
                state.phase = Phase::Abandoning;
                (
                    run,
                    stacked.into_iter().filter_map(|slot| slot.task).collect(),
                )
            };
            let (current, timer) = run.map(Run::dismantle).unwrap_or_default();
            // The timer is the user's future too: its destructor's panic is
            // kept like a clean-up's, so the clean-ups below are still
            // dropped, counted and the queue closed.
            if let Some(payload) = drop_caught(timer) {
                first_panic.get_or_insert(payload);
            }
            // Outside the lock: destructors are user code and may adopt or
            // defer again; what they add is dropped in the next round.
            for task in current.into_iter().chain(stacked) {
                note_skipped(Skip::ScopeDropped);
                if let Some(payload) = drop_caught(task) {
                    first_panic.get_or_insert(payload);
                }
            }
        }
        if let Some(payload) = first_panic {
            if !std::thread::panicking() {
                panic::resume_unwind(payload);
            }
        }
    }
}

/// Why a scope takes no more clean-ups, if it takes none.
fn gone(phase: Phase) -> Option<Gone> {
    match phase {
        Phase::Finished => Some(Gone::Returned),
        Phase::Abandoned => Some(Gone::Dropped),
        Phase::Open | Phase::Running | Phase::Abandoning => None,
    }
}

impl<T: ?Sized> State<T> {
    fn push(&mut self, task: Option<Pin<Box<T>>>) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.slots.push(Slot { id, task });
        id
    }
}

/// Drops `value`, returning the panic of its destructor, if any.
pub(super) fn drop_caught<V>(value: V) -> Option<Box<dyn std::any::Any + Send>> {
    panic::catch_unwind(AssertUnwindSafe(move || drop(value))).err()
}

impl<T: ?Sized> fmt::Debug for CleanupQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Read under the lock, written after it, as in `Core`'s `Debug`.
        let (slots, phase) = {
            let state = self.state.lock();
            (state.slots.len(), state.phase)
        };
        f.debug_struct("CleanupQueue")
            .field("slots", &slots)
            .field("phase", &phase)
            .field("timeout", &self.timeout)
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::future::Future;

    type Task<'a> = dyn Future<Output = ()> + 'a;

    fn task(f: impl Future<Output = ()> + 'static) -> Pin<Box<Task<'static>>> {
        Box::pin(f)
    }

    #[test]
    fn an_adopted_value_takes_the_place_of_its_adopt_call() {
        let queue = CleanupQueue::<Task<'static>>::new(CleanupTimeout::default());
        let adopted = queue.reserve();
        queue.push(task(async {}));
        queue.hand_back(adopted, task(async {}));
        let state = queue.state.lock();
        assert_eq!(
            state.slots[0].id, adopted,
            "the hand-back filled the reserved slot"
        );
        assert!(state.slots[0].task.is_some());
        assert_eq!(state.slots.len(), 2);
    }

    #[test]
    fn a_hand_back_after_the_scope_finished_drops_at_once() {
        thread_local!(static DROPPED: Cell<bool> = const { Cell::new(false) });
        struct Flag;
        impl Drop for Flag {
            fn drop(&mut self) {
                DROPPED.with(|d| d.set(true));
            }
        }
        let queue = CleanupQueue::<Task<'static>>::new(CleanupTimeout::default());
        let id = queue.reserve();
        assert!(queue.pop_or_finish().is_none(), "an empty slot is not run");
        let flag = Flag;
        queue.hand_back(
            id,
            task(async move {
                let _flag = flag;
            }),
        );
        assert!(DROPPED.with(Cell::get), "dropped synchronously, not stored");
        assert!(queue.state.lock().slots.is_empty());
    }

    #[test]
    fn release_removes_only_its_own_slot() {
        let queue = CleanupQueue::<Task<'static>>::new(CleanupTimeout::default());
        let first = queue.reserve();
        let second = queue.reserve();
        queue.release(first);
        let state = queue.state.lock();
        assert_eq!(state.slots.len(), 1);
        assert_eq!(state.slots[0].id, second);
    }
}
