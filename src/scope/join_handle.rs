//! [`JoinHandle`]: the child's output, awaited from anywhere.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::mem;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use super::cell::JoinRef;
use super::task::PanicBox;
use crate::cancel::ambient;
use crate::sync::{Mutex, MutexGuard, WakerArc, mutant};

/// Where a child leaves its output for its [`JoinHandle`]: a field of the
/// child's task cell (src/scope/cell.rs).
pub(crate) struct JoinSlot<T> {
    state: Mutex<SlotState<T>>,
}

enum SlotState<T> {
    Running(Option<Waker>),
    Done(T),
    Panicked(WakerArc<PanicBox>),
    /// The scope was dropped before the child finished.
    Abandoned,
    /// The handle already returned (or raised) the outcome.
    Taken,
    /// The handle is gone: an output that arrives now is dropped at once by
    /// the child's poll (C4 in design/soundness.md, "Task cells").
    Detached,
}

impl<T> JoinSlot<T> {
    pub(crate) fn new() -> Self {
        JoinSlot {
            state: Mutex::new(SlotState::Running(None)),
        }
    }

    /// Stores the output and wakes the handle; see `finish` for the `Err`.
    /// If the handle is gone, drops the output instead: its destructor may
    /// panic, and that panic is caught and returned too.
    pub(crate) fn complete(&self, value: T) -> Result<(), Box<dyn Any + Send>> {
        let state = self.state.lock();
        if matches!(*state, SlotState::Detached) {
            drop(state);
            return panic::catch_unwind(AssertUnwindSafe(|| drop(value)));
        }
        self.finish(state, SlotState::Done(value))
    }

    /// Stores the panic and wakes the handle; see `finish` for the `Err`.
    pub(crate) fn panicked(&self, panic: WakerArc<PanicBox>) -> Result<(), Box<dyn Any + Send>> {
        let state = self.state.lock();
        if matches!(*state, SlotState::Detached) {
            return Ok(()); // nobody to tell: the scope raises it
        }
        self.finish(state, SlotState::Panicked(panic))
    }

    /// The handle is dropped: drops the output (or the handle's waker)
    /// outside the lock, and makes later outputs be dropped by the child.
    pub(crate) fn detach(&self) {
        let previous = mem::replace(&mut *self.state.lock(), SlotState::Detached);
        drop(previous);
    }

    /// The child was dropped unfinished; no-op if it had finished.
    pub(crate) fn abandon(&self) {
        let mut state = self.state.lock();
        if let SlotState::Running(waker) = &mut *state {
            let waker = waker.take();
            *state = SlotState::Abandoned;
            drop(state);
            if let Some(waker) = waker {
                waker.wake();
            }
        }
    }

    /// The outcome is stored either way. The handle's waker belongs to
    /// whoever awaits the handle (another executor, perhaps) and may panic;
    /// that panic is caught and returned, so that it cannot unwind through
    /// the scope's poll loop with a child half put back.
    fn finish(
        &self,
        mut state: MutexGuard<'_, SlotState<T>>,
        outcome: SlotState<T>,
    ) -> Result<(), Box<dyn Any + Send>> {
        let previous = mem::replace(&mut *state, outcome);
        drop(state);
        match previous {
            SlotState::Running(Some(waker)) => {
                panic::catch_unwind(AssertUnwindSafe(|| waker.wake()))
            }
            _ => Ok(()),
        }
    }

    /// Stores `waker` for a child still running; false if it finished
    /// meanwhile. Cloning the new waker and dropping the old one run the
    /// executor's code, which may drop the task that owns the scope and so
    /// reach this slot (`abandon`): neither happens under the lock.
    fn register(&self, waker: &Waker) -> bool {
        let new = waker.clone();
        let mut state = self.state.lock();
        let SlotState::Running(stored) = &mut *state else {
            drop(state);
            return false;
        };
        let old = stored.replace(new);
        drop(state);
        drop(old);
        true
    }

    pub(crate) fn is_finished(&self) -> bool {
        !matches!(*self.state.lock(), SlotState::Running(_))
    }
}

/// An owned permission to await a child's output.
///
/// Returned by [`Scope::spawn`](crate::Scope::spawn) and its kin. Awaiting it
/// gives the child's output; dropping it does **not** cancel or detach the
/// child: the child is still joined before its scope returns (use
/// [`cancel`](Self::cancel) to ask it to stop).
///
/// It is deliberately not `#[must_use]`: spawning a child and letting its
/// handle go is a normal way to start work the scope will still join.
///
/// # Cancel safety
///
/// Awaiting a borrow, `(&mut handle).await`, is cancel-safe: dropping that
/// future before it completes loses nothing; the output stays in the
/// child's slot for the next await of the same handle. `handle.await`
/// moves the handle into the await, so dropping that future (in a
/// `select!`, under a timeout) drops the handle itself, and the child's
/// output, when it comes, is dropped unseen, as with any dropped handle.
///
/// # Panics
///
/// Awaiting it:
/// - re-raises the child's panic, if the child panicked;
/// - panics if the scope was dropped before the child finished (the child
///   was dropped with it, so there is no output);
/// - panics if the child panicked and the scope already re-raised that panic
///   because the handle was not awaited before the scope finished;
/// - panics if polled again after it returned its output;
/// - panics if the child itself awaits it, directly or from a scope that
///   the child polls (at any depth): it cannot finish while it waits for
///   itself. A scope future made inside the child but polled elsewhere (spawned
///   as the child's sibling, say) may await it.
///
/// # Deadlocks
///
/// A child runs only while its scope future is polled, so awaiting its
/// handle where that cannot happen never completes: two children awaiting
/// each other's handles, or a handle awaited (say with `block_on`) on the
/// thread that should poll its scope, instead of polling it. Only the
/// self-join above is cheap to detect, so only it panics. Cancelling does
/// not break such a cycle: awaiting a handle is not a cancellation point
/// (the awaited child decides when it ends), so await a handle in a
/// `select` with [`cancelled`](crate::cancelled) where a cycle is possible.
/// A [snapshot](crate::snapshot) shows the tasks involved pending, with
/// few polls, but not what each awaits. The same holds for a child of a
/// scope future leaked with [`mem::forget`](std::mem::forget): nothing
/// polls that scope again, so its children never finish (nor are they
/// dropped: they leak with it), and their handles wait forever.
pub struct JoinHandle<T> {
    /// The child's cell: its header and output slot, never its future.
    join: JoinRef<T>,
}

impl<T> JoinHandle<T> {
    pub(crate) fn new(join: JoinRef<T>) -> Self {
        JoinHandle { join }
    }

    /// Asks this child alone to stop: cancels its own token with
    /// [`CancelReason::Requested`](crate::CancelReason::Requested).
    ///
    /// Voluntary: the child notices it through
    /// [`checkpoint`](crate::checkpoint) or
    /// [`current_token`](crate::current_token) and is still joined. A child
    /// that never looks (a plain timer, a client request) can be spawned as
    /// `s.spawn(fut.until_cancelled_ambient())`
    /// ([`CancelExt`](crate::CancelExt)): it is then dropped at the cancel
    /// and its handle yields `Err(Cancelled)`.
    ///
    /// # Panics
    ///
    /// As [`CancelToken::cancel`](crate::CancelToken::cancel): if an
    /// [`on_cancel`](crate::CancelToken::on_cancel) callback on the child's
    /// token or below it panics, the rest are still cancelled and the first
    /// panic is then resumed from here.
    pub fn cancel(&self) {
        #[cfg(feature = "tracing")]
        {
            let task = self.join.task();
            task.info()
                .trace_cancel_through_handle(task.shared().info());
        }
        self.join.task().token().cancel();
    }

    /// Whether the child has finished (completed, panicked or been dropped).
    pub fn is_finished(&self) -> bool {
        self.join.slot().is_finished()
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let slot = self.join.slot();
        let mut state = slot.state.lock();
        match mem::replace(&mut *state, SlotState::Taken) {
            SlotState::Done(value) => {
                drop(state);
                self.join.mark_taken();
                Poll::Ready(value)
            }
            SlotState::Running(waker) if mutant("join_stores_waker_after_unlock") => {
                *state = SlotState::Running(waker);
                drop(state);
                *slot.state.lock() = SlotState::Running(Some(cx.waker().clone()));
                Poll::Pending
            }
            SlotState::Running(Some(waker)) if waker.will_wake(cx.waker()) => {
                *state = SlotState::Running(Some(waker));
                Poll::Pending
            }
            SlotState::Running(waker) => {
                *state = SlotState::Running(waker);
                drop(state);
                // Checked when a waker is first stored, not at every poll.
                assert!(
                    !ambient::runs_inside(self.join.task()),
                    "taskscope: a child awaited its own JoinHandle (directly, or from a scope \
                     it polls); it cannot finish while it waits for itself, so this \
                     would never complete: await the handle from the scope's body or a \
                     sibling instead"
                );
                if slot.register(cx.waker()) {
                    Poll::Pending
                } else {
                    self.poll(cx) // finished meanwhile: take the outcome now
                }
            }
            SlotState::Panicked(panic) => {
                drop(state);
                self.join.mark_taken();
                self.join.task().info().panic_reraised();
                match panic.take() {
                    Some(payload) => panic::resume_unwind(payload),
                    None => panic!(
                        "taskscope: the child behind this JoinHandle panicked, and its scope \
                         already re-raised that panic because the handle was not awaited \
                         before the scope finished; await handles inside the scope"
                    ),
                }
            }
            SlotState::Abandoned => {
                // Kept, so that every poll says why (not "polled after it
                // completed" from the second on).
                *state = SlotState::Abandoned;
                drop(state);
                panic!(
                    "taskscope: the scope was dropped before this child finished, so the child \
                     was dropped too and has no output; await JoinHandles inside their scope"
                )
            }
            SlotState::Taken | SlotState::Detached => {
                // Unlocked first: a panic hook is user code.
                drop(state);
                panic!(
                    "taskscope: JoinHandle polled after it completed; a child's output can be \
                     taken once"
                )
            }
        }
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        // A finished child nobody will join is not worth showing any more.
        self.join.task().info().release();
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}
