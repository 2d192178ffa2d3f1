//! The child future inside a task cell: catches panics, fills the slot.

use std::any::Any;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use super::join_handle::JoinSlot;
use super::task::{PanicBox, TaskExit, drop_after_panic};
use crate::sync::mutant;

pin_project! {
    /// A child future, dropped in place as soon as it completes (inside the
    /// same `catch_unwind`), so its destructor runs once, on the polling
    /// thread. Its output slot is its cell's (src/scope/cell.rs), passed in
    /// by the cell's owner.
    pub(crate) struct ChildFuture<F> {
        #[pin]
        future: Option<F>,
    }
}

impl<F: Future> ChildFuture<F> {
    pub(crate) fn new(future: F) -> Self {
        ChildFuture {
            future: Some(future),
        }
    }

    /// Polls the child; once it finished, stores its outcome in `slot` (or
    /// drops the output there, if the handle is gone).
    pub(crate) fn poll_child(
        self: Pin<&mut Self>,
        slot: &JoinSlot<F::Output>,
        cx: &mut Context<'_>,
    ) -> Poll<TaskExit> {
        let mut this = self.project();
        let Some(future) = this.future.as_mut().as_pin_mut() else {
            return Poll::Ready(TaskExit::Completed);
        };
        let outcome = match panic::catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(value)) => Ok(value),
            Err(payload) => Err(payload),
        };
        // Finished: drop the future now, once, where a panic in its
        // destructor is caught too. (A panicking destructor leaves `None`
        // behind all the same: assignment writes the new value on unwind.)
        let dropped = if mutant("completed_child_stays") {
            Ok(()) // the broken variant keeps the finished future pollable
        } else {
            panic::catch_unwind(AssertUnwindSafe(|| this.future.set(None)))
        };
        match (outcome, dropped) {
            (Ok(value), Ok(())) => match slot.complete(value) {
                Ok(()) => Poll::Ready(TaskExit::Completed),
                // The handle's waker panicked (the output is stored), or the
                // handle is gone and the output's destructor panicked: the
                // scope raises that panic once every child has finished.
                Err(payload) => Poll::Ready(TaskExit::Panicked(PanicBox::new(payload))),
            },
            (Ok(value), Err(payload)) => Poll::Ready(panicked(slot, payload, Some(value))),
            (Err(payload), second) => Poll::Ready(panicked(slot, payload, second.err())),
        }
    }

    /// The scope drops the child (unfinished, or finished: then a no-op):
    /// tell the handle, then drop the future in place.
    pub(crate) fn drop_future(self: Pin<&mut Self>, slot: &JoinSlot<F::Output>) {
        let mut this = self.project();
        if this.future.is_none() {
            return;
        }
        // The handle's waker may panic: the future is dropped all the same.
        let abandoned = panic::catch_unwind(AssertUnwindSafe(|| slot.abandon()));
        this.future.set(None);
        if let Err(payload) = abandoned {
            panic::resume_unwind(payload);
        }
    }
}

/// The child panicked (or its destructor did): records `payload` in the
/// slot; `leftover` (the output, or the destructor's second payload) and a
/// panic of the handle's waker are dropped where their destructors cannot
/// unwind out of the scope's poll: the first panic is the one to raise.
fn panicked<T, L>(
    slot: &JoinSlot<T>,
    payload: Box<dyn Any + Send>,
    leftover: Option<L>,
) -> TaskExit {
    drop_after_panic(leftover);
    let panic = PanicBox::of_the_task(payload);
    if let Err(waker_panic) = slot.panicked(panic.clone()) {
        drop_after_panic(waker_panic);
    }
    TaskExit::Panicked(panic)
}
